//! Per-element arrays that placement's rules read, derived from a scan (scan.rs `Scan`) in
//! the same pass: each element's nearest block of running text (placement.py `_Text.nearest`)
//! and its ancestry's bits (`_ancestry`); and the sums up the tree its scoring takes
//! (`_tree_sums`). The Python path computes them itself from the same arrays (the
//! reference); tests/test_native.py holds them equal.
use crate::facts::Facts;

/// Each element's nearest block of running text, ancestor-or-self (-1: none), then one more
/// -1 (what the root's parent, -1, reads: `_Text.nearest[-1]`). *parent*: an element after
/// its parent, the root's -1; *paras*: the blocks' keys (any order).
pub fn nearest(parent: &[i64], paras: &[(usize, usize)]) -> Vec<i64> {
    let n = parent.len();
    let mut is_para = vec![false; n];
    for &(key, _) in paras {
        if key < n {
            is_para[key] = true;
        }
    }
    let mut out = vec![-1i64; n + 1];
    for k in 0..n {
        out[k] = if is_para[k] {
            k as i64
        } else {
            // The root's parent (-1) reads the last entry, -1; a parent comes before.
            match usize::try_from(parent[k]) {
                Ok(up) if up < k => out[up],
                _ => -1,
            }
        };
    }
    out
}

/// Each element's bits ORed with its ancestors' (`_ancestry`): the bits of its kind
/// (*facts*, per kind; *kind_of*, per element), the root's none.
pub fn ancestry(parent: &[i64], kind_of: &[u32], facts: &[Facts]) -> Vec<u64> {
    let mut out = vec![0u64; parent.len()];
    for k in 1..parent.len() {
        let own = facts.get(kind_of[k] as usize).map_or(0, |f| f.2);
        let up = match usize::try_from(parent[k]) {
            Ok(up) if up < k => out[up],
            _ => 0,
        };
        out[k] = own | up;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_is_the_closest_block_up() {
        // 0 <- 1 <- 2 <- 3, 1 <- 4; blocks 1 and 3
        let parent = [-1, 0, 1, 2, 1];
        assert_eq!(nearest(&parent, &[(3, 30), (1, 40)]), [-1, 1, 1, 3, 1, -1]);
    }

    #[test]
    fn ancestry_ors_down_but_not_the_roots() {
        let parent = [-1, 0, 1, 0];
        let facts: Vec<Facts> = vec![(None, false, 1), (None, false, 2), (None, false, 4)];
        assert_eq!(ancestry(&parent, &[0, 1, 2, 0], &facts), [0, 2, 6, 1]);
    }

    #[test]
    fn tree_sums_decay_up() {
        let parent = [-1, 0, 1, 0, 99];
        let sums = tree_sums(&parent, vec![0.0, 1.0, 10.0, 100.0, 5.0], 0.5);
        assert_eq!(
            sums,
            [
                0.5 * (1.0 + 0.5 * 10.0) + 0.5 * 100.0,
                6.0,
                10.0,
                100.0,
                5.0
            ]
        );
    }
}

/// placement.py `_tree_sums`: each element's value plus *decay* times its children's sums,
/// summed from the last element up (an element comes after its parent; *parent*: the root's
/// -1), in Python's order of operations (the same floats). A parent out of range (not before
/// its child) is skipped: no panic on a caller's bad array.
pub fn tree_sums(parent: &[i64], mut values: Vec<f64>, decay: f64) -> Vec<f64> {
    let n = parent.len().min(values.len());
    for key in (1..n).rev() {
        if let Ok(up) = usize::try_from(parent[key]) {
            if up < key {
                values[up] += decay * values[key];
            }
        }
    }
    values
}

/// `tree_sums` for Python (placement.py `_tree_sums`'s core path).
#[pyo3::pyfunction]
#[pyo3(name = "tree_sums")]
fn tree_sums_py(parent: Vec<i64>, values: Vec<f64>, decay: f64) -> Vec<f64> {
    tree_sums(&parent, values, decay)
}

pub fn register(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
    use pyo3::types::PyModuleMethods;
    m.add_function(pyo3::wrap_pyfunction!(tree_sums_py, m)?)
}

/// A hasher for node addresses (not chosen by a page: its allocator's), far cheaper than
/// SipHash on the scan's address maps: one multiply, the high half folded into the low one
/// (addresses are aligned: their low bits alone would fill few buckets).
#[derive(Default, Clone, Copy)]
pub struct AddressHasher(u64);

impl std::hash::Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        let h = self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^ (h >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x100_0000_01B3);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0.rotate_left(5) ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A map keyed by node addresses.
pub type AddressMap<V> =
    std::collections::HashMap<usize, V, std::hash::BuildHasherDefault<AddressHasher>>;
