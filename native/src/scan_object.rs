//! A native scan's arrays kept in Rust (`ScanArrays`), handed to Python with the scan's lists
//! (extract.rs `lexbor_scan`, the one place both are made) and given back to the core's later
//! calls on the page (`void_labels`, `page_text`, `best_block`, `is_thread`,
//! `placement_rules`): they read the arrays in place instead of converting Python's lists
//! again (each call converted 500-element int lists, and `void_labels` and
//! `placement_rules` each the 130 kind tuples, per page). A call given lists and no object,
//! or an object whose array is not the length of the list Python passed (never from
//! placement.py: an adopted page's arrays are not changed), reads the lists as before.
use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyType};
use pyo3::IntoPyObjectExt;

use crate::facts::WordHasher;
use crate::scan::{Kind, Scan};

/// Each scanned element's parent, depth, kind and nearest block of running text (with the
/// last -1, scan_arrays.rs `nearest`), and the kinds: what the later calls read.
#[pyclass(frozen, eq, module = "linkcrawl_native", name = "ScanArrays")]
#[derive(PartialEq)]
pub struct ScanArrays {
    pub parent: Vec<i64>,
    pub depth: Vec<i64>,
    pub kind_of: Vec<usize>,
    pub nearest: Vec<i64>,
    pub kinds: Vec<Kind>,
    /// The kinds' tags end to end (kind k's ends at `tag_ends[k]`, starts where k - 1's ends):
    /// `kind_flags` reads them from one short run of memory, not a string per kind (each a
    /// cache miss by the later calls: most of the call, perf found).
    tags: String,
    tag_ends: Vec<usize>,
}

#[pymethods]
impl ScanArrays {
    fn __len__(&self) -> usize {
        self.parent.len()
    }

    fn __repr__(&self) -> String {
        format!("<ScanArrays of {} elements>", self.parent.len())
    }
}

impl ScanArrays {
    /// The arrays of *scan* and its *nearest* (copies: the scan's own go to Python's lists),
    /// with its *kinds* (taken from the scan: Python's tuples were made from them first).
    pub fn of(scan: &Scan, nearest: &[i64], kinds: Vec<Kind>) -> Self {
        let mut tags = String::with_capacity(kinds.iter().map(|k| k.0.len()).sum());
        let mut tag_ends = Vec::with_capacity(kinds.len());
        for kind in &kinds {
            tags.push_str(&kind.0);
            tag_ends.push(tags.len());
        }
        ScanArrays {
            parent: scan.parent.clone(),
            depth: scan.depth.iter().map(|&d| d as i64).collect(),
            kind_of: scan.kind_of.iter().map(|&k| k as usize).collect(),
            nearest: nearest.to_vec(),
            kinds,
            tags,
            tag_ends,
        }
    }

    /// Each kind's flags by its tag in *table* (Python's `_TAG_FLAGS`; rules.rs
    /// `kind_flags` of the kinds' tuples). The table's entries are read once, and each kind's
    /// tag looked up in Rust: no Python string made per kind (that was most of the call).
    pub fn kind_flags(&self, table: &Bound<'_, PyDict>) -> PyResult<Vec<u32>> {
        let mut entries = Vec::with_capacity(table.len());
        for (tag, value) in table.iter() {
            // A key that is not text (or holds a lone surrogate) equals no kind's tag.
            if let Ok(tag) = tag.cast_into::<PyString>() {
                entries.push((tag, value.extract::<u32>()?));
            }
        }
        // (FNV: the table's keys are the fixed tag names; SipHash was most of this call.)
        let mut by_tag: HashMap<&str, u32, BuildHasherDefault<WordHasher>> = HashMap::default();
        for (tag, value) in &entries {
            if let Ok(text) = tag.to_str() {
                by_tag.insert(text, *value);
            }
        }
        let mut start = 0;
        Ok(self
            .tag_ends
            .iter()
            .map(|&end| {
                let tag = &self.tags[start..end];
                start = end;
                by_tag.get(tag).copied().unwrap_or(0)
            })
            .collect())
    }
}

/// The object's array (*pick*) if Python passed the object and the array is as long as
/// *list*, else *list*'s items (*items*).
fn array<'a, 'py, T: Clone>(
    scan: Option<&'a ScanArrays>,
    pick: fn(&ScanArrays) -> &[T],
    list: &Bound<'py, PyAny>,
    items: fn(&Bound<'py, PyAny>) -> PyResult<Vec<T>>,
) -> PyResult<Cow<'a, [T]>> {
    if let Some(scan) = scan {
        let own = pick(scan);
        if list.len().ok() == Some(own.len()) {
            return Ok(Cow::Borrowed(own));
        }
    }
    Ok(Cow::Owned(items(list)?))
}

fn i64s(list: &Bound<'_, PyAny>) -> PyResult<Vec<i64>> {
    list.extract()
}

fn usizes(list: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
    list.extract()
}

pub fn parent<'a>(s: Option<&'a ScanArrays>, list: &Bound<'_, PyAny>) -> PyResult<Cow<'a, [i64]>> {
    array(s, |s| &s.parent, list, i64s)
}

pub fn depth<'a>(s: Option<&'a ScanArrays>, list: &Bound<'_, PyAny>) -> PyResult<Cow<'a, [i64]>> {
    array(s, |s| &s.depth, list, i64s)
}

pub fn kind_of<'a>(
    s: Option<&'a ScanArrays>,
    list: &Bound<'_, PyAny>,
) -> PyResult<Cow<'a, [usize]>> {
    array(s, |s| &s.kind_of, list, usizes)
}

pub fn nearest<'a>(s: Option<&'a ScanArrays>, list: &Bound<'_, PyAny>) -> PyResult<Cow<'a, [i64]>> {
    array(s, |s| &s.nearest, list, i64s)
}

/// The object Python passed, if it has as many kinds as *kinds* (Python's list of them).
pub fn with_kinds<'a>(
    s: Option<&'a ScanArrays>,
    kinds: &Bound<'_, PyAny>,
) -> Option<&'a ScanArrays> {
    s.filter(|s| kinds.len().ok() == Some(s.kinds.len()))
}

/// A column of strings Python reads a few of, by index (the links' hrefs as the walk read
/// them: placement's `_internal` reads one per link it asks about, most pages none): kept in
/// Rust, each string made when read (not one Python string per link made per page).
#[pyclass(frozen, eq, sequence, module = "linkcrawl_native", name = "Strings")]
#[derive(PartialEq)]
pub struct Strings(pub Vec<String>);

#[pymethods]
impl Strings {
    fn __len__(&self) -> usize {
        self.0.len()
    }

    /// The string at *index* (negative: from the end, as a list's); IndexError past it.
    fn __getitem__(&self, index: isize) -> PyResult<&str> {
        let at = if index < 0 {
            index.checked_add(self.0.len() as isize)
        } else {
            Some(index)
        };
        at.and_then(|at| usize::try_from(at).ok())
            .and_then(|at| self.0.get(at))
            .map(String::as_str)
            .ok_or_else(|| pyo3::exceptions::PyIndexError::new_err("index out of range"))
    }

    fn __repr__(&self) -> String {
        format!("<Strings of {}>", self.0.len())
    }
}

/// `array.array("Q", values)`: a column Python only indexes (or reads once) as one object,
/// not an int object per element (most of the scan's are past the small ints CPython keeps:
/// node addresses, fingerprints, bits). The bytes are copied once into the array.
pub(crate) fn u64_array<'py>(
    py: Python<'py>,
    values: impl ExactSizeIterator<Item = u64>,
) -> PyResult<Bound<'py, PyAny>> {
    static ARRAY: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    let bytes = PyBytes::new_with(py, values.len() * 8, |buf| {
        for (slot, value) in buf.chunks_exact_mut(8).zip(values) {
            slot.copy_from_slice(&value.to_ne_bytes());
        }
        Ok(())
    })?;
    ARRAY.import(py, "array", "array")?.call1(("Q", bytes))
}

/// Slots of `int_list`'s table of recent ints.
const INT_SLOTS: usize = 64;

/// A list of Python ints of *values*, an int object shared by the values equal to one met
/// shortly before (a small table by value: a page's parents, fingerprints, nearest blocks
/// and bits repeat, most past the small ints CPython keeps): fewer ints made, then freed.
/// The same list to Python (ints are immutable; nothing reads their identity).
pub(crate) fn int_list<'py, T>(
    py: Python<'py>,
    values: impl ExactSizeIterator<Item = T>,
) -> PyResult<Bound<'py, PyList>>
where
    T: Copy + PartialEq + Into<i128> + IntoPyObject<'py>,
{
    let mut slots: [Option<(T, Bound<'py, PyAny>)>; INT_SLOTS] = std::array::from_fn(|_| None);
    let mut failed = None;
    let items = values.map(|value| {
        let wide: i128 = value.into();
        let mixed = ((wide as u64) ^ ((wide >> 64) as u64)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let slot = &mut slots[(mixed >> 58) as usize % INT_SLOTS];
        match slot {
            Some((held, int)) if *held == value => int.clone(),
            _ => match value.into_bound_py_any(py) {
                Ok(int) => {
                    *slot = Some((value, int.clone()));
                    int
                }
                Err(err) => {
                    // (never for an int: a placeholder, the error raised after)
                    failed.get_or_insert(err);
                    py.None().into_bound(py)
                }
            },
        }
    });
    let list = PyList::new(py, items)?;
    match failed {
        Some(err) => Err(err),
        None => Ok(list),
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ScanArrays>()?;
    m.add_class::<Strings>()
}
