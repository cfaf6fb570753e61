//! The core's Python functions (registered by lib.rs): `src/walk.rs` does the work.
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::exceptions::{PyLookupError, PyRuntimeError};
use pyo3::prelude::*;

use crate::walk::{self, PageRow};

/// Run *f* so that a panic in it becomes a Python RuntimeError (not PanicException, a
/// BaseException that `except Exception` would let through and stop a crawl).
fn guarded<T>(f: impl FnOnce() -> T) -> PyResult<T> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|panic| {
        let msg = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        PyRuntimeError::new_err(format!("linkcrawl_native panicked: {msg}"))
    })
}

/// The page's fields and its links, for `pipelines/native.py`. *body*: the bytes Python
/// bounded (and stripped of a byte-order mark); *encoding*: a WHATWG label (LookupError if
/// encoding_rs does not know it); *flatten*: flatten what nests deeper than MAX_DOM_DEPTH
/// (Python asks for it on pages with many tags, as `parse_page` does).
#[pyfunction]
fn extract_links(py: Python<'_>, body: &[u8], encoding: &str, flatten: bool) -> PyResult<PageRow> {
    py.detach(|| guarded(|| walk::extract(body, encoding, flatten)))?
        .ok_or_else(|| unknown(encoding))
}

/// `extract_links` of a page Python decoded (a codec encoding_rs lacks) from the bytes it
/// bounded: *text* is its UTF-8, not cut at MAX_PARSE_BYTES again (it may be longer).
#[pyfunction]
fn extract_decoded(py: Python<'_>, text: &[u8], flatten: bool) -> PyResult<PageRow> {
    py.detach(|| guarded(|| walk::extract_decoded(text, flatten)))
}

/// The parse alone (UTF-8 bytes into the arena): the node count. The benchmark's floor.
#[pyfunction]
fn parse_only(py: Python<'_>, body: &[u8]) -> PyResult<usize> {
    py.detach(|| guarded(|| walk::parse_only(body)))
}

/// *body* decoded as the core decodes a page (encoding_rs, a WHATWG label; a bad byte is
/// U+FFFD): tests/test_native.py compares it with Python's decoders.
#[pyfunction]
#[pyo3(name = "decode")]
fn decode_py(body: &[u8], encoding: &str) -> PyResult<String> {
    walk::decode(body, encoding)
        .map(|text| text.to_string())
        .ok_or_else(|| unknown(encoding))
}

fn unknown(encoding: &str) -> PyErr {
    PyLookupError::new_err(format!("unknown encoding: {encoding}"))
}

/// Panics inside the guard: tests/test_native.py checks that Python gets a RuntimeError.
#[pyfunction]
fn _panic_for_test() -> PyResult<()> {
    guarded(|| panic!("on purpose"))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(extract_links, m)?)?;
    m.add_function(wrap_pyfunction!(extract_decoded, m)?)?;
    m.add_function(wrap_pyfunction!(parse_only, m)?)?;
    m.add_function(wrap_pyfunction!(decode_py, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_test, m)?)?;
    Ok(())
}
