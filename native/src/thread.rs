//! Whether a natively scanned page is a thread, a forum's or a Q&A's (pipelines/placement.py
//! `_is_thread`, with `_Boiler`'s flags and `_holds_comment`): most of its running text in
//! comments, main among them or holding some. Python's function stays the reference and the
//! fallback (tests/test_native_rules.py compares them on every page).
use std::collections::HashMap;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

use crate::extract::guarded;
use crate::rules::{code_of, COMMENT, CONTENT, NONE};
use crate::scan_object::{self, ScanArrays};

/// What `_is_thread` reads; *parent* checked to be a tree (an element after its parent).
pub struct Page<'a> {
    pub parent: &'a [i64],
    pub depth: &'a [i64],
    pub label: &'a [u8],
}

/// `_Boiler`: whether an element is under (or is) a boilerplate label, memoized.
struct Boiler<'a> {
    page: &'a Page<'a>,
    flags: Vec<Option<bool>>,
}

impl Boiler<'_> {
    fn under(&mut self, key: usize) -> bool {
        let mut path = Vec::new();
        let mut cur = key;
        while self.flags[cur].is_none() {
            path.push(cur);
            cur = self.page.parent[cur] as usize;
        }
        let mut flag = self.flags[cur] == Some(true);
        for &k in path.iter().rev() {
            let lab = self.page.label[k];
            flag = flag || (lab != NONE && lab != CONTENT);
            self.flags[k] = Some(flag);
        }
        self.flags[key] == Some(true)
    }
}

/// `_is_thread`'s `kind`: 1 if the outermost boilerplate label over *key* is a comment, else 2.
fn kind(page: &Page, boiler: &mut Boiler, kinds: &mut HashMap<usize, u8>, key: usize) -> u8 {
    let mut path = Vec::new();
    let mut cur = key;
    let found = loop {
        if let Some(&found) = kinds.get(&cur) {
            break found;
        }
        path.push(cur);
        let up = page.parent[cur];
        if up <= 0 || !boiler.under(up as usize) {
            break if page.label[cur] == COMMENT { 1 } else { 2 };
        }
        cur = up as usize;
    };
    for k in path {
        kinds.insert(k, found);
    }
    found
}

/// `_holds_comment`: an element labelled comment lies below *key*.
fn holds_comment(page: &Page, key: usize) -> bool {
    let top = page.depth[key];
    for k in 1..page.label.len() {
        if page.label[k] != COMMENT {
            continue;
        }
        let mut cur = page.parent[k];
        while cur >= 0 && page.depth[cur as usize] > top {
            cur = page.parent[cur as usize];
        }
        if cur == key as i64 {
            return true;
        }
    }
    false
}

/// `_is_thread` (with no comment on the page Python answers before: False). *good*: the
/// blocks of running text (key, length), *body*: the elements markup names the body.
pub fn is_thread(
    page: &Page,
    good: &[(usize, i64)],
    body: &[usize],
    main: usize,
    share: f64,
    other_max: i64,
) -> bool {
    let mut boiler = Boiler {
        page,
        flags: vec![None; page.parent.len()],
    };
    boiler.flags[0] = Some(false);
    let mut kinds = HashMap::new();
    let (mut comments, mut other) = (0i64, 0i64);
    for &(k, v) in good {
        if !boiler.under(k) {
            other += v;
        } else if kind(page, &mut boiler, &mut kinds, k) == 1 {
            comments += v;
        }
    }
    if comments == 0 || (comments as f64) < share * (comments + other) as f64 {
        return false;
    }
    if boiler.under(main) && kind(page, &mut boiler, &mut kinds, main) == 1 {
        return true;
    }
    if other < other_max && body.iter().all(|&k| boiler.under(k)) {
        return true;
    }
    holds_comment(page, main)
}

fn bad(what: &str) -> PyErr {
    PyValueError::new_err(format!("is_thread: {what}"))
}

fn element(key: i64, n: usize) -> PyResult<usize> {
    usize::try_from(key)
        .ok()
        .filter(|&k| k < n)
        .ok_or_else(|| bad("a key past the page"))
}

/// placement.py `_is_thread` of a natively scanned page: *good* `text.good`, *body*
/// `page.body`, *constants* `_THREAD_SHARE` and `_THREAD_OTHER`, *names* the five labels;
/// *scan*: the scan's arrays (scan_object.rs), read in place of *parent* and *depth*.
#[pyfunction]
#[pyo3(name = "is_thread")]
#[pyo3(signature = (parent, depth, labels, good, body, main, constants, names, scan=None))]
#[allow(clippy::too_many_arguments)]
fn is_thread_py(
    parent: Bound<'_, PyAny>,
    depth: Bound<'_, PyAny>,
    labels: Bound<'_, PyList>,
    good: Bound<'_, pyo3::types::PyDict>,
    body: Vec<i64>,
    main: i64,
    constants: (f64, i64),
    names: [Bound<'_, PyString>; 5],
    scan: Option<Bound<'_, ScanArrays>>,
) -> PyResult<bool> {
    let scan = scan.as_ref().map(Bound::get);
    let parent = scan_object::parent(scan, &parent)?;
    let depth = scan_object::depth(scan, &depth)?;
    let n = parent.len();
    if n == 0 || parent[0] != -1 || depth.len() != n || labels.len() != n {
        return Err(bad("arrays of other lengths"));
    }
    for (k, &up) in parent.iter().enumerate().skip(1) {
        if up < 0 || up as usize >= k {
            return Err(bad("an element before its parent"));
        }
    }
    let mut label = Vec::with_capacity(n);
    for item in labels.iter() {
        label.push(code_of(&names, &item)?);
    }
    let mut blocks = Vec::with_capacity(good.len());
    for (key, length) in good.iter() {
        blocks.push((element(key.extract()?, n)?, length.extract::<i64>()?));
    }
    let body = body
        .into_iter()
        .map(|k| element(k, n))
        .collect::<PyResult<Vec<_>>>()?;
    let main = element(main, n)?;
    let page = Page {
        parent: &parent,
        depth: &depth,
        label: &label,
    };
    guarded(|| is_thread(&page, &blocks, &body, main, constants.0, constants.1))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(is_thread_py, m)?)
}
