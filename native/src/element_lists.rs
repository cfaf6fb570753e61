//! Placement's per-element lists of a native scan (pipelines/placement.py `_Page.adopt`):
//! each recorded element's tag, label and bits, read from its kind (one Python object made
//! per kind, each element's entry a reference to it), and the elements (but the root) whose
//! kind names the article's body. adopt built them with `map` over the kinds, ~0.1 ms a page.
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyList, PyString};

use crate::facts::Facts;
use crate::scan::Kind;

/// (tag, label, bits) per element, and the body's elements (keys > 0, in order).
pub(crate) type ElementLists = (Py<PyList>, Py<PyList>, Py<PyList>, Vec<usize>);

/// The lists of a scan whose kinds have *facts* (None without them: adopt looks them up);
/// None too if a kind index is past the kinds (never from scan.rs: adopt then fails as
/// before, in Python).
pub(crate) fn element_lists(
    py: Python<'_>,
    kinds: &[Kind],
    kind_of: &[u32],
    facts: Option<&[Facts]>,
) -> PyResult<Option<ElementLists>> {
    let Some(facts) = facts else {
        return Ok(None);
    };
    if facts.len() != kinds.len() || kind_of.iter().any(|&k| k as usize >= kinds.len()) {
        return Ok(None);
    }
    // The labels interned: they are then placement.py's own constants (identifier-like
    // literals are interned), which the later calls match by identity (rules.rs `code_of`).
    // Not the tags: a page names them (custom elements), and CPython 3.12 makes an interned
    // string immortal: every page's names would stay for the worker's life (review13-p13 2).
    let tags: Vec<Bound<'_, PyString>> = kinds.iter().map(|k| PyString::new(py, &k.0)).collect();
    let labels: Vec<Bound<'_, PyAny>> = facts
        .iter()
        .map(|f| match &f.0 {
            Some(label) => PyString::intern(py, label).into_any(),
            None => py.None().into_bound(py),
        })
        .collect();
    let bits: Vec<Bound<'_, PyInt>> = facts.iter().map(|f| PyInt::new(py, f.2)).collect();
    let of = |k: &u32| *k as usize;
    let tag = PyList::new(py, kind_of.iter().map(|k| &tags[of(k)]))?;
    let label = PyList::new(py, kind_of.iter().map(|k| &labels[of(k)]))?;
    let bit = PyList::new(py, kind_of.iter().map(|k| &bits[of(k)]))?;
    let body = (1..kind_of.len())
        .filter(|&key| facts[kind_of[key] as usize].1)
        .collect();
    Ok(Some((tag.unbind(), label.unbind(), bit.unbind(), body)))
}
