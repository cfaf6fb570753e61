//! Placement's per-element lists of a native scan (pipelines/placement.py `_Page.adopt`):
//! each recorded element's tag, label and bits, read from its kind (one Python object made
//! per kind, each element's entry a reference to it), and the elements (but the root) whose
//! kind names the article's body. adopt built them with `map` over the kinds, ~0.1 ms a page.
use std::collections::HashMap;

use pyo3::prelude::*;
use pyo3::types::{PyInt, PyList, PyString, PyTuple};

use crate::facts::Facts;
use crate::scan::Kind;

/// The kinds as Python's tuples (tag, class, id, role, itemprop, align), and each kind's tag
/// (the same objects): equal strings one object (a page's kinds repeat a few dozen tags, and
/// classes across tags), each made once. Not interned (a page names them, see below).
pub(crate) fn kind_tuples<'py, 'k>(
    py: Python<'py>,
    kinds: &'k [Kind],
) -> PyResult<(Bound<'py, PyList>, Vec<Bound<'py, PyString>>)> {
    // (foldhash, seeded per process: the strings are the page's)
    let mut made: HashMap<&'k str, Bound<'py, PyString>, foldhash::fast::RandomState> =
        HashMap::with_capacity_and_hasher(kinds.len() * 2, Default::default());
    let mut string = |text: &'k str| -> Bound<'py, PyString> {
        made.entry(text)
            .or_insert_with(|| PyString::new(py, text))
            .clone()
    };
    let mut tags = Vec::with_capacity(kinds.len());
    let mut tuples = Vec::with_capacity(kinds.len());
    for (tag, cls, id, role, itemprop, align) in kinds {
        let tag = string(tag);
        let mut value = |v: &'k Option<String>| match v {
            Some(text) => string(text).into_any(),
            None => py.None().into_bound(py),
        };
        let parts = [
            tag.clone().into_any(),
            value(cls),
            value(id),
            value(role),
            value(itemprop),
            value(align),
        ];
        tuples.push(PyTuple::new(py, parts)?);
        tags.push(tag);
    }
    Ok((PyList::new(py, tuples)?, tags))
}

/// (tag, label, bits) per element, and the body's elements (keys > 0, in order).
pub(crate) type ElementLists = (Py<PyList>, Py<PyList>, Py<PyList>, Vec<usize>);

/// The lists of a scan whose kinds have *facts* (None without them: adopt looks them up),
/// each kind's tag *tags* (`kind_tuples`'); None too if a kind index is past the kinds
/// (never from scan.rs: adopt then fails as before, in Python).
pub(crate) fn element_lists<'py>(
    py: Python<'py>,
    tags: &[Bound<'py, PyString>],
    kind_of: &[u32],
    facts: Option<&[Facts]>,
) -> PyResult<Option<ElementLists>> {
    let Some(facts) = facts else {
        return Ok(None);
    };
    if facts.len() != tags.len() || kind_of.iter().any(|&k| k as usize >= tags.len()) {
        return Ok(None);
    }
    // The labels interned: they are then placement.py's own constants (identifier-like
    // literals are interned), which the later calls match by identity (rules.rs `code_of`).
    // Not the tags: a page names them (custom elements), and CPython 3.12 makes an interned
    // string immortal: every page's names would stay for the worker's life (review13-p13 2).
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
