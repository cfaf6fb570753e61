//! The labels placement drops before it scores main (pipelines/placement.py
//! `_void_wrapper_labels`, `_side_regions`, `_void_builder_labels`) over a natively scanned
//! page's arrays: each element's raw good text (scan_arrays.rs `tree_sums`, Python's floats);
//! a region label on a wrapper of most of the page's text; a page builder's sidebar name on
//! boxes that hold most of it side by side. Python's functions stay the reference and the
//! fallback; tests/test_native_rules.py holds the two equal.
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::extract::guarded;
use crate::facts::{tables, Tables};
use crate::rules::{code_of, kind_flags, BLOCK, FOOTER, MAIN_OR_ARTICLE, NAV, NONE, SIDEBAR};
use crate::scan_arrays::tree_sums;
use crate::scan_object::{self, ScanArrays};

/// placement.py's `_MIN_ARTICLE`, `_WRAPPER_SHARE`, `_BUILDER_NESTED`.
pub struct Shares {
    pub min_article: f64,
    pub wrapper: f64,
    pub nested: f64,
}

type Words = Rc<HashSet<String>>;

/// What the rules read per element, and the class names that give a label (`_region_words`).
pub struct Page<'a, F: FnMut(usize, u8) -> Words> {
    pub parent: &'a [i64],
    pub flags: &'a [u32],
    pub label: Vec<u8>,
    pub region_words: F,
}

fn labelled(label: &[u8], region: u8) -> impl Iterator<Item = usize> + '_ {
    (1..label.len()).filter(move |&k| label[k] == region)
}

/// `_void_wrapper_labels`: each element's raw good text, and the elements whose label goes,
/// in the order Python drops them. *good*: `text.good`'s (key, length), each key once.
pub fn void_labels<F: FnMut(usize, u8) -> Words>(
    page: &mut Page<'_, F>,
    good: &[(usize, i64)],
    shares: &Shares,
) -> (Vec<f64>, Vec<usize>) {
    let n = page.parent.len();
    let mut raw = vec![0.0f64; n];
    for &(key, value) in good {
        raw[key] += value as f64;
    }
    let raw = tree_sums(page.parent, raw, 1.0);
    let total = raw[0];
    let mut dropped = Vec::new();
    if total < shares.min_article {
        return (raw, dropped);
    }
    let mut voided = Vec::new();
    for region in [NAV, SIDEBAR, FOOTER] {
        let keys: Vec<usize> = labelled(&page.label, region).collect();
        for key in keys {
            if raw[key] > shares.wrapper * total {
                page.label[key] = NONE;
                dropped.push(key);
                if region != NAV {
                    voided.push(key);
                }
            }
        }
    }
    let regions = side_regions(page, &voided);
    void_builder_labels(page, &raw, &regions, shares, &mut dropped);
    (raw, dropped)
}

/// `_side_regions`.
fn side_regions<F: FnMut(usize, u8) -> Words>(
    page: &mut Page<'_, F>,
    voided: &[usize],
) -> HashSet<usize> {
    let sidebars: Vec<usize> = labelled(&page.label, SIDEBAR).collect();
    let mut regions: HashSet<usize> = sidebars
        .into_iter()
        .filter(|&k| (page.region_words)(k, SIDEBAR).is_empty())
        .collect();
    regions.extend(labelled(&page.label, FOOTER));
    if !voided.is_empty() {
        let mut holds_main: HashSet<usize> = HashSet::from([0]);
        for k in 1..page.parent.len() {
            if page.flags[k] & MAIN_OR_ARTICLE == 0 {
                continue;
            }
            let mut key = k;
            while holds_main.insert(key) {
                key = page.parent[key] as usize;
            }
        }
        regions.extend(voided.iter().filter(|k| !holds_main.contains(k)));
    }
    regions
}

/// `_void_builder_labels`.
fn void_builder_labels<F: FnMut(usize, u8) -> Words>(
    page: &mut Page<'_, F>,
    raw: &[f64],
    regions: &HashSet<usize>,
    shares: &Shares,
    dropped: &mut Vec<usize>,
) {
    let n = page.parent.len();
    let total = raw[0];
    let mut words_of: Vec<(usize, Words)> = Vec::new();
    let mut words_at: HashMap<usize, Words> = HashMap::new();
    let sidebars: Vec<usize> = labelled(&page.label, SIDEBAR).collect();
    for &key in &sidebars {
        if raw[key] != 0.0 && page.flags[key] & BLOCK != 0 {
            let words = (page.region_words)(key, SIDEBAR);
            words_at.insert(key, words.clone());
            words_of.push((key, words));
        }
    }
    let mut text: HashMap<&str, f64> = HashMap::new();
    let mut boxes: HashMap<&str, usize> = HashMap::new();
    let mut nested: HashMap<&str, usize> = HashMap::new();
    let empty: Words = Rc::new(HashSet::new());
    let mut above: Vec<Option<Words>> = vec![None; n];
    let mut aside: Vec<bool> = vec![false; n];
    above[0] = Some(empty.clone());
    for (key, words) in &words_of {
        let mut path = Vec::new();
        let mut cur = page.parent[*key] as usize;
        while above[cur].is_none() {
            path.push(cur);
            cur = page.parent[cur] as usize;
        }
        let mut names = above[cur].clone().unwrap_or_else(|| empty.clone());
        let mut inside = aside[cur];
        for &cur in path.iter().rev() {
            if let Some(more) = words_at.get(&cur).filter(|more| !more.is_empty()) {
                names = Rc::new(names.union(more).cloned().collect());
            }
            above[cur] = Some(names.clone());
            inside = inside || regions.contains(&cur);
            aside[cur] = inside;
        }
        for word in words.iter() {
            *boxes.entry(word).or_insert(0) += 1;
            if names.contains(word) {
                *nested.entry(word).or_insert(0) += 1;
            }
        }
        if inside {
            continue;
        }
        for word in words.iter().filter(|w| !names.contains(*w)) {
            *text.entry(word).or_insert(0.0) += raw[*key];
        }
    }
    let builder: HashSet<&str> = text
        .iter()
        .filter(|&(word, &value)| {
            let nested = nested.get(word).copied().unwrap_or(0) as f64;
            value > shares.wrapper * total && nested <= shares.nested * boxes[word] as f64
        })
        .map(|(&word, _)| word)
        .collect();
    if builder.is_empty() {
        return;
    }
    for key in sidebars {
        let words = match words_at.get(&key).filter(|w| !w.is_empty()) {
            Some(words) => words.clone(),
            None => (page.region_words)(key, SIDEBAR),
        };
        if words.iter().any(|w| builder.contains(w.as_str())) {
            page.label[key] = NONE;
            dropped.push(key);
        }
    }
}

/// `_class_region_words(cls, label)`: the class's names whose region word is *label*.
fn class_region_words(tables: &Tables, cls: &str, label: &str) -> HashSet<String> {
    cls.split(crate::walk::py_space)
        .filter(|w| !w.is_empty() && tables.word_region(w) == Some(label))
        .map(str::to_string)
        .collect()
}

/// placement.py `_void_wrapper_labels` of a natively scanned page (its attributes those of
/// its kinds): each element's raw good text, and the elements whose label goes (Python sets
/// them None). *kinds*: the scan's (tag, class, ...) tuples; *tag_flags*: rules.rs's flags by
/// tag; *shares*: `_MIN_ARTICLE`, `_WRAPPER_SHARE`, `_BUILDER_NESTED`; *names*: the five
/// labels (CONTENT, NAV, SIDEBAR, FOOTER, COMMENT); *scan*: the scan's arrays
/// (scan_object.rs), read in place of *parent*, *kind_of* and *kinds*.
#[pyfunction]
#[pyo3(name = "void_labels")]
#[pyo3(signature = (parent, kind_of, kinds, tag_flags, labels, good, shares, names, scan=None))]
#[allow(clippy::too_many_arguments)]
fn void_labels_py(
    parent: Bound<'_, PyAny>,
    kind_of: Bound<'_, PyAny>,
    kinds: Bound<'_, PyList>,
    tag_flags: Bound<'_, PyDict>,
    labels: Bound<'_, PyList>,
    good: HashMap<i64, i64>,
    shares: (f64, f64, f64),
    names: [Bound<'_, PyString>; 5],
    scan: Option<Bound<'_, ScanArrays>>,
) -> PyResult<(Vec<f64>, Vec<usize>)> {
    let scan = scan_object::with_kinds(scan.as_ref().map(Bound::get), kinds.as_any());
    let parent = scan_object::parent(scan, &parent)?;
    let kind_of = scan_object::kind_of(scan, &kind_of)?;
    let n = parent.len();
    if n == 0 || parent[0] != -1 || kind_of.len() != n || labels.len() != n {
        return Err(PyValueError::new_err(
            "void labels: arrays of other lengths",
        ));
    }
    for (k, &up) in parent.iter().enumerate().skip(1) {
        if up < 0 || up as usize >= k {
            return Err(PyValueError::new_err(
                "void labels: an element before its parent",
            ));
        }
    }
    let per_kind = match scan {
        Some(scan) => scan.kind_flags(&tag_flags)?,
        None => kind_flags(&kinds, &tag_flags)?,
    };
    let mut flags = Vec::with_capacity(n);
    for &kind in kind_of.iter() {
        flags.push(
            *per_kind
                .get(kind)
                .ok_or_else(|| PyValueError::new_err("void labels: a kind past the kinds"))?,
        );
    }
    let mut label = Vec::with_capacity(n);
    for item in labels.iter() {
        label.push(code_of(&names, &item)?);
    }
    let mut good_keys = Vec::with_capacity(good.len());
    for (&key, &length) in &good {
        let key = usize::try_from(key)
            .ok()
            .filter(|&k| k < n)
            .ok_or_else(|| PyValueError::new_err("void labels: a key past the page"))?;
        good_keys.push((key, length));
    }
    let tables = tables().ok_or_else(|| PyRuntimeError::new_err("no placement tables"))?;
    let label_names: Vec<String> = names
        .iter()
        .map(|name| name.to_str().map(str::to_string))
        .collect::<PyResult<_>>()?;
    // Each kind's class, read once, and its region words per label.
    let mut classes: HashMap<usize, Option<String>> = HashMap::new();
    let mut memo: HashMap<(usize, u8), Words> = HashMap::new();
    let mut error: Option<PyErr> = None;
    let region_words = |key: usize, code: u8| -> Words {
        let kind = kind_of[key];
        if let Some(words) = memo.get(&(kind, code)) {
            return words.clone();
        }
        let cls = classes.entry(kind).or_insert_with(|| {
            if let Some(scan) = scan {
                return scan.kinds.get(kind).and_then(|k| k.1.clone());
            }
            match kinds.get_item(kind).and_then(|k| k.get_item(1)) {
                Ok(value) if value.is_none() => None,
                Ok(value) => match value.extract::<String>() {
                    Ok(cls) => Some(cls),
                    Err(err) => {
                        error.get_or_insert(err);
                        None
                    }
                },
                Err(err) => {
                    error.get_or_insert(err);
                    None
                }
            }
        });
        let words = Rc::new(match cls {
            Some(cls) => class_region_words(&tables, cls, &label_names[code as usize - 1]),
            None => HashSet::new(),
        });
        memo.insert((kind, code), words.clone());
        words
    };
    let shares = Shares {
        min_article: shares.0,
        wrapper: shares.1,
        nested: shares.2,
    };
    let mut page = Page {
        parent: &parent[..],
        flags: &flags,
        label,
        region_words,
    };
    let answer = guarded(|| void_labels(&mut page, &good_keys, &shares))?;
    drop(page);
    match error {
        Some(err) => Err(err),
        None => Ok(answer),
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(void_labels_py, m)?)
}
