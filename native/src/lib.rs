//! linkcrawl's native core, reached from Python only through `pipelines/native.py`.
use pyo3::prelude::*;

mod arena;
mod extract;
mod lexbor;
pub mod urls;
mod walk;

/// The version of the core, checked by `pipelines/native.py` against the Python package's so
/// that a stale build left in site-packages is not used.
#[pyfunction]
fn core_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pymodule]
fn linkcrawl_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(core_version, m)?)?;
    urls::register(m)?;
    extract::register(m)?;
    Ok(())
}
