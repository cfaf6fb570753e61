//! linkcrawl's native core, reached from Python only through `pipelines/native.py`.
use pyo3::prelude::*;

mod arena;
mod bound;
mod bounds;
mod classify;
mod deep;
mod element_lists;
mod extract;
mod facts;
mod faq;
mod fused;
mod langid;
mod layout;
mod lexbor;
mod link_objects;
mod lists;
mod main_block;
mod model;
mod page_type;
mod rows;
mod rules;
mod scan;
mod scan_arrays;
mod scan_object;
mod site;
mod steps;
mod text;
mod thread;
pub mod urls;
mod void_labels;
mod walk;

/// The version of the core and of its Python interface, checked by `pipelines/native.py`
/// (`CORE_VERSION`) so that a stale build left in site-packages is not used. Bump the `+apiN`
/// number with any change of a function's name, signature or return shape.
#[pyfunction]
fn core_version() -> &'static str {
    concat!(env!("CARGO_PKG_VERSION"), "+api22")
}

#[pymodule]
fn linkcrawl_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(core_version, m)?)?;
    urls::register(m)?;
    extract::register(m)?;
    scan_arrays::register(m)?;
    page_type::register(m)?;
    main_block::register(m)?;
    deep::register(m)?;
    model::register(m)?;
    fused::register(m)?;
    rules::register(m)?;
    void_labels::register(m)?;
    text::register(m)?;
    thread::register(m)?;
    steps::register(m)?;
    faq::register(m)?;
    langid::register(m)?;
    classify::register(m)?;
    layout::register(m)?;
    scan_object::register(m)?;
    link_objects::register(m)?;
    lists::register(m)?;
    site::register(m)?;
    Ok(())
}
