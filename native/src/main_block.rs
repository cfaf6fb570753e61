//! Main-block scoring (pipelines/placement.py `_best_block`) over the scan's arrays: each
//! element's gain (running text) and cost (link text outside it, text under boilerplate),
//! summed up the tree (scan_arrays.rs `tree_sums`, Python's order of operations), and the
//! deepest element of the best net score. The same floats by the same operations in the
//! same order as Python's loop, which stays the reference and the fallback (a native scan's
//! pages only); tests/test_native_main_block.py holds the two equal.
use std::collections::HashMap;

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;

use crate::extract::guarded;
use crate::scan_arrays::tree_sums;
use crate::scan_object::{self, ScanArrays};

/// What `_best_block` reads, as Python holds it.
pub struct Input<'a, S> {
    /// Each element's parent (an element after its parent; the root's -1) and depth.
    pub parent: &'a [i64],
    pub depth: &'a [i64],
    /// Each element's label (None: no region).
    pub label: &'a [Option<S>],
    /// The labels that are boilerplate (placement.py `BOILERPLATE`).
    pub boilerplate: &'a [String],
    /// The blocks scored (`text.own` for a hub, else `text.good`: key, text length; each
    /// key once, so their order changes no sum), the blocks of running text (`text.good`)
    /// and each block's link text (`text.links`).
    pub blocks: &'a HashMap<i64, i64>,
    pub good: &'a HashMap<i64, i64>,
    pub link_text: &'a HashMap<i64, i64>,
    /// Each link's element, anchor length and block of running text (-1: none).
    pub link_keys: &'a [i64],
    pub anchor_len: &'a [i64],
    pub link_para: &'a [i64],
    pub hub: bool,
    /// placement.py `_BOILER_WEIGHT`, `_LINK_WEIGHT`, `_DECAY`.
    pub boiler_weight: f64,
    pub link_weight: f64,
    pub decay: f64,
}

/// An index of an element, if *key* is one (Python would raise, or read from the end, on
/// another: its loop answers then).
fn element(key: i64, n: usize) -> Option<usize> {
    usize::try_from(key).ok().filter(|&k| k < n)
}

/// placement.py `_best_block`: the deepest element of the best gain - cost (the first of
/// those on a tie), or the root (0) if it gains no more than it costs. None when the arrays
/// are not a tree Python's loop reads alike (a parent not before its child, a key out of
/// range, lengths that differ, an overflow, a NaN): then Python's loop answers.
pub fn best_block<S: AsRef<str>>(x: &Input<'_, S>) -> Option<usize> {
    let n = x.parent.len();
    if n == 0 || x.depth.len() != n || x.label.len() != n {
        return None;
    }
    let m = x.link_keys.len();
    if x.anchor_len.len() != m || x.link_para.len() != m {
        return None;
    }
    // Under (or on) a boilerplate label (`_Boiler`): the root never is.
    let mut boiler = vec![false; n];
    for k in 1..n {
        let up = element(x.parent[k], k)?;
        let own = x.label[k]
            .as_ref()
            .is_some_and(|l| x.boilerplate.iter().any(|b| b == l.as_ref()));
        boiler[k] = boiler[up] || own;
    }
    let mut gain = vec![0.0f64; n];
    let mut cost = vec![0.0f64; n];
    for (&key, &value) in x.blocks {
        let k = element(key, n)?;
        if boiler[k] {
            cost[k] += x.boiler_weight * value as f64;
        } else {
            let minus = if x.hub {
                x.link_text.get(&key).copied().unwrap_or(0)
            } else {
                0
            };
            gain[k] += value.checked_sub(minus)? as f64;
        }
    }
    for ((&key, &length), para) in x.link_keys.iter().zip(x.anchor_len).zip(x.link_para) {
        let k = element(key, n)?;
        if x.hub {
            if !boiler[k] {
                gain[k] += 0.5 * length as f64;
            }
        } else if !x.good.contains_key(para) {
            cost[k] += x.link_weight * length.max(1) as f64;
        }
    }
    let gain = tree_sums(x.parent, gain, x.decay);
    let cost = tree_sums(x.parent, cost, 1.0);
    let net: Vec<f64> = gain.iter().zip(&cost).map(|(g, c)| g - c).collect();
    let mut top = net[0];
    for &v in &net[1..] {
        if v > top {
            top = v; // Python's max: the first, replaced by a greater one only
        }
    }
    if top.is_nan() {
        return None;
    }
    let mut best = net.iter().position(|&v| v == top)?;
    for k in best + 1..n {
        if net[k] == top && x.depth[k] > x.depth[best] {
            best = k;
        }
    }
    Some(if gain[best] > cost[best] { best } else { 0 })
}

/// `best_block` for Python (pipelines/native.py `best_block`): None where Python's loop
/// answers; a panic is a RuntimeError. *scan*: the scan's arrays (scan_object.rs), read in
/// place of *parent* and *depth*.
#[pyfunction]
#[pyo3(name = "best_block")]
#[pyo3(signature = (parent, depth, label, boilerplate, blocks, good, link_text, links, hub, weights, scan=None))]
#[allow(clippy::too_many_arguments)]
fn best_block_py(
    py: Python<'_>,
    parent: Bound<'_, PyAny>,
    depth: Bound<'_, PyAny>,
    label: Vec<Option<PyBackedStr>>,
    boilerplate: Vec<String>,
    blocks: HashMap<i64, i64>,
    good: HashMap<i64, i64>,
    link_text: HashMap<i64, i64>,
    links: (Vec<i64>, Vec<i64>, Vec<i64>),
    hub: bool,
    weights: (f64, f64, f64),
    scan: Option<Bound<'_, ScanArrays>>,
) -> PyResult<Option<usize>> {
    let scan = scan.as_ref().map(Bound::get);
    let parent = scan_object::parent(scan, &parent)?;
    let depth = scan_object::depth(scan, &depth)?;
    let (link_keys, anchor_len, link_para) = links;
    let (boiler_weight, link_weight, decay) = weights;
    py.detach(|| {
        guarded(|| {
            best_block(&Input {
                parent: &parent,
                depth: &depth,
                label: &label,
                boilerplate: &boilerplate,
                blocks: &blocks,
                good: &good,
                link_text: &link_text,
                link_keys: &link_keys,
                anchor_len: &anchor_len,
                link_para: &link_para,
                hub,
                boiler_weight,
                link_weight,
                decay,
            })
        })
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(best_block_py, m)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        parent: &[i64],
        label: &[Option<&str>],
        blocks: &[(i64, i64)],
        hub: bool,
    ) -> Option<usize> {
        let depth: Vec<i64> = (0..parent.len() as i64).collect();
        let good: HashMap<i64, i64> = blocks.iter().copied().collect();
        best_block(&Input {
            parent,
            depth: &depth,
            label,
            boilerplate: &["nav".to_string()],
            blocks: &good,
            good: &good,
            link_text: &HashMap::new(),
            link_keys: &[],
            anchor_len: &[],
            link_para: &[],
            hub,
            boiler_weight: 1.0,
            link_weight: 1.0,
            decay: 0.85,
        })
    }

    #[test]
    fn the_text_block_wins_and_boilerplate_costs() {
        assert_eq!(
            run(&[-1, 0, 1], &[None, None, None], &[(2, 100)], false),
            Some(2)
        );
        assert_eq!(
            run(&[-1, 0, 1], &[None, Some("nav"), None], &[(2, 100)], false),
            Some(0)
        );
    }

    #[test]
    fn bad_trees_are_pythons() {
        assert_eq!(run(&[-1, 5], &[None, None], &[], false), None);
        assert_eq!(run(&[-1, 0], &[None, None], &[(7, 1)], false), None);
        assert_eq!(run(&[], &[], &[], true), None);
    }
}
