//! The language detector's feature counts (py3langid's `visit_counts`, pipelines/pagelang.py
//! `detect`): its byte automaton walked over a sample's UTF-8 bytes, each feature reached
//! counted, in the order first reached (the order py3langid's `Counter` keeps, which its float
//! sums then follow). Only integers: the scores stay py3langid's own (numpy, in Python).
//! The tables are py3langid's, read in place at each call.
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::extract::guarded;
use crate::rules::IndexMap;

/// Each feature reached walking *text* (`output[state] >= 0`), with its count, in the order
/// first reached; None if a table is too short for the walk (py3langid would raise
/// IndexError: the caller then runs it).
///
/// `state = nextmove[rowbase[state] + byte]` from state 0, as `visit_counts` steps.
pub fn visits(
    nextmove: &[u32],
    rowbase: &[i64],
    output: &[i64],
    text: &[u8],
) -> Option<Vec<(i64, u64)>> {
    let mut order: Vec<(i64, u64)> = Vec::new();
    // (feature numbers are the tables', not a page's: one multiply a lookup, not SipHash)
    let mut at: IndexMap<i64, usize> = IndexMap::default();
    let mut state = 0usize;
    for &byte in text {
        let row = usize::try_from(*rowbase.get(state)?).ok()?;
        state = *nextmove.get(row.checked_add(byte as usize)?)? as usize;
        let feature = *output.get(state)?;
        if feature >= 0 {
            match at.get(&feature) {
                Some(&k) => order[k].1 += 1,
                None => {
                    at.insert(feature, order.len());
                    order.push((feature, 1));
                }
            }
        }
    }
    Some(order)
}

/// `visit_counts(nextmove, rowbase, output, text)` for Python: a dict of feature -> count in
/// the order first reached (empty: no feature), or None if a table is too short. The tables
/// are `array.array`s (exactly: typecodes "I", "q", "q"), read in place (the automaton is
/// ~10M entries: no copy; abi3 for Python 3.10 has no buffer protocol, so each array's own
/// `buffer_info()` gives where its items are). TypeError for other tables; a panic is a
/// RuntimeError.
#[pyfunction]
fn langid_visits<'py>(
    py: Python<'py>,
    nextmove: &Bound<'py, PyAny>,
    rowbase: &Bound<'py, PyAny>,
    output: &Bound<'py, PyAny>,
    text: &[u8],
) -> PyResult<Option<Bound<'py, PyDict>>> {
    let array = py.import("array")?.getattr("array")?;
    let nextmove = items::<u32>(&array, nextmove, "I")?;
    let (rowbase, output) = (
        items::<i64>(&array, rowbase, "q")?,
        items::<i64>(&array, output, "q")?,
    );
    // SAFETY: each (address, length) is an array.array's own, of its typecode's items; the
    // arrays are referenced by the caller and neither resized nor written while the GIL is
    // held and no Python code runs (none runs until the slices are dropped below).
    let found = guarded(|| unsafe {
        visits(
            std::slice::from_raw_parts(nextmove.0 as *const u32, nextmove.1),
            std::slice::from_raw_parts(rowbase.0 as *const i64, rowbase.1),
            std::slice::from_raw_parts(output.0 as *const i64, output.1),
            text,
        )
    })?;
    let Some(order) = found else {
        return Ok(None);
    };
    let dict = PyDict::new(py);
    for (feature, count) in order {
        dict.set_item(feature, count)?;
    }
    Ok(Some(dict))
}

/// Where an `array.array` of *typecode* (items of T's size) keeps its items, and how many:
/// (a dangling, aligned address for none). TypeError for anything else.
fn items<T>(
    array: &Bound<'_, PyAny>,
    table: &Bound<'_, PyAny>,
    typecode: &str,
) -> PyResult<(usize, usize)> {
    let exact = table.get_type().is(array);
    if !exact
        || table.getattr("typecode")?.extract::<String>()? != typecode
        || table.getattr("itemsize")?.extract::<usize>()? != std::mem::size_of::<T>()
    {
        return Err(PyTypeError::new_err(format!(
            "a table is not an array.array('{typecode}')"
        )));
    }
    let (at, n): (usize, usize) = table.call_method0("buffer_info")?.extract()?;
    if n == 0 || at == 0 {
        return Ok((std::ptr::NonNull::<T>::dangling().as_ptr() as usize, 0));
    }
    if at % std::mem::align_of::<T>() != 0 {
        return Err(PyTypeError::new_err("an array's items are not aligned"));
    }
    Ok((at, n))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(langid_visits, m)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Python's visit_counts, step for step (a Counter's first-reached order).
    fn python(nm: &[u32], rowbase: &[i64], out: &[i64], text: &[u8]) -> Vec<(i64, u64)> {
        let mut state = 0usize;
        let mut seen: Vec<(i64, u64)> = Vec::new();
        for &b in text {
            state = nm[rowbase[state] as usize + b as usize] as usize;
            let f = out[state];
            if f >= 0 {
                if let Some(e) = seen.iter_mut().find(|e| e.0 == f) {
                    e.1 += 1;
                } else {
                    seen.push((f, 1));
                }
            }
        }
        seen
    }

    #[test]
    fn counts_in_first_reached_order() {
        // 3 states; state s moves to (s + byte) % 3; states 1 and 2 are features 7 and 5.
        let rowbase = [0i64, 256, 512];
        let nm: Vec<u32> = (0..768u32).map(|i| ((i / 256) + (i % 256)) % 3).collect();
        let out = [-1i64, 7, 5];
        let mut seed = 12345u64;
        for n in 0..200 {
            let text: Vec<u8> = (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (seed >> 33) as u8
                })
                .collect();
            assert_eq!(
                visits(&nm, &rowbase, &out, &text).unwrap(),
                python(&nm, &rowbase, &out, &text)
            );
        }
        assert_eq!(
            visits(&nm, &rowbase, &out, b"\x01\x00\x01").unwrap(),
            vec![(7, 2), (5, 1)]
        );
        assert_eq!(visits(&nm[..10], &rowbase, &out, b"\xff"), None); // a short table
        assert_eq!(visits(&nm, &[-1], &out, b"a"), None);
    }
}
