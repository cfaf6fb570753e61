//! Where a natively scanned page's running text is (pipelines/placement.py `_Text`): each
//! block's own text (nested blocks subtracted), the link text in it, each link's block, and
//! the blocks that are running text. The same dicts, in Python's insertion order; Python's
//! class stays the reference and the fallback (tests/test_native_rules.py).
use std::collections::HashMap;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::scan_object::{self, ScanArrays};

/// `_Text`'s dicts as (key, value) in insertion order, and each link's block (-1: none).
pub struct Text {
    pub own: Vec<(i64, i64)>,
    pub link_para: Vec<i64>,
    pub links: Vec<(i64, i64)>,
    pub good: Vec<(i64, i64)>,
}

fn bad(what: &str) -> PyErr {
    PyValueError::new_err(format!("text: {what}"))
}

/// `nearest[parent[key]]`, Python's way (a parent -1 reads the last entry, -1).
fn para_above(parent: &[i64], nearest: &[i64], key: i64) -> PyResult<i64> {
    let up = usize::try_from(key)
        .ok()
        .and_then(|k| parent.get(k))
        .ok_or_else(|| bad("a key past the page"))?;
    let at = if *up < 0 {
        nearest.len() - 1
    } else {
        *up as usize
    };
    nearest
        .get(at)
        .copied()
        .ok_or_else(|| bad("nearest is not the scan's"))
}

/// `_Text.__init__` with the scan's *nearest*; *paras* in the dict's order.
pub fn text(
    parent: &[i64],
    nearest: &[i64],
    paras: &[(i64, i64)],
    link_keys: &[i64],
    anchor_len: &[i64],
    min_para: i64,
    max_density: f64,
) -> PyResult<Text> {
    if nearest.len() != parent.len() + 1 || link_keys.len() != anchor_len.len() {
        return Err(bad("arrays of other lengths"));
    }
    let mut own = paras.to_vec();
    let mut at: HashMap<i64, usize> = HashMap::with_capacity(own.len());
    for (i, &(key, _)) in own.iter().enumerate() {
        at.insert(key, i); // a key once in a dict: the last wins
    }
    for &(key, length) in paras {
        let outer = para_above(parent, nearest, key)?;
        if outer >= 0 && key != outer {
            let i = *at
                .get(&outer)
                .ok_or_else(|| bad("a block not among the blocks"))?;
            own[i].1 -= length;
        }
    }
    let mut link_para = Vec::with_capacity(link_keys.len());
    let mut links: Vec<(i64, i64)> = Vec::new();
    let mut link_at: HashMap<i64, usize> = HashMap::new();
    for (&key, &length) in link_keys.iter().zip(anchor_len) {
        let p = para_above(parent, nearest, key)?;
        link_para.push(p);
        if p >= 0 {
            match link_at.get(&p) {
                Some(&i) => links[i].1 += length,
                None => {
                    link_at.insert(p, links.len());
                    links.push((p, length));
                }
            }
        }
    }
    let good = own
        .iter()
        .filter(|&&(key, length)| {
            let in_links = link_at.get(&key).map_or(0, |&i| links[i].1);
            length >= min_para && (in_links as f64) <= max_density * length as f64
        })
        .copied()
        .collect();
    Ok(Text {
        own,
        link_para,
        links,
        good,
    })
}

fn dict<'py>(py: Python<'py>, items: &[(i64, i64)]) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    for &(key, value) in items {
        out.set_item(key, value)?;
    }
    Ok(out)
}

type TextDicts<'py> = (
    Bound<'py, PyDict>,
    Vec<i64>,
    Bound<'py, PyDict>,
    Bound<'py, PyDict>,
);

/// placement.py `_Text` of a natively scanned page: (own, link_para, links, good). *scan*:
/// the scan's arrays (scan_object.rs), read in place of *parent* and *nearest*.
#[pyfunction]
#[pyo3(name = "page_text")]
#[pyo3(signature = (parent, nearest, paras, link_keys, anchor_len, min_para, max_density, scan=None))]
#[allow(clippy::too_many_arguments)]
fn page_text_py<'py>(
    py: Python<'py>,
    parent: Bound<'py, PyAny>,
    nearest: Bound<'py, PyAny>,
    paras: Bound<'py, PyDict>,
    link_keys: Vec<i64>,
    anchor_len: Vec<i64>,
    min_para: i64,
    max_density: f64,
    scan: Option<Bound<'py, ScanArrays>>,
) -> PyResult<TextDicts<'py>> {
    let scan = scan.as_ref().map(Bound::get);
    let parent = scan_object::parent(scan, &parent)?;
    let nearest = scan_object::nearest(scan, &nearest)?;
    let mut items = Vec::with_capacity(paras.len());
    for (key, length) in paras.iter() {
        items.push((key.extract::<i64>()?, length.extract::<i64>()?));
    }
    let text = crate::extract::guarded(|| {
        text(
            &parent,
            &nearest,
            &items,
            &link_keys,
            &anchor_len,
            min_para,
            max_density,
        )
    })??;
    Ok((
        dict(py, &text.own)?,
        text.link_para,
        dict(py, &text.links)?,
        dict(py, &text.good)?,
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(page_text_py, m)?)
}
