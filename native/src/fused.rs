//! The walk of a page's lexbor tree and placement's scan of it in one call
//! (`lexbor_page_scan`): the scan runs right after the walk, while the tree it reads is still
//! in the CPU's caches (placement called it later, after Python's steps: measured, the same
//! scan took ~0.6 ms a page of the Zyte and WCXB mix then, ~0.5 ms right after the walk), and
//! one call less. `lexbor_page` and `lexbor_scan` stay: the probe, the tests and the rows
//! built in Python use them.
use pyo3::prelude::*;

use crate::extract::{lexbor_page_gathering, lexbor_scan_with, page_out, LexborPage, ScanRow};
use crate::scan::Elements;

/// The scan's part of `lexbor_page_scan`: its row (None: not scanned, or a root outside
/// the document), or the message of its failure (then placement scans: a failure of the scan
/// is not the walk's).
type ScanPart = (Option<ScanRow>, Option<String>);

/// `lexbor_page(tree, page_url, legacy, rows, max_links)`, then, when it built the rows and
/// kept a link, `lexbor_scan(tree, root, <its links' addresses>, blocks, containers,
/// min_para)` (*root*: placement's, the tree's `<body>` or `<html>`), but for the kinds'
/// facts (None when the scan's per-element lists were made of them).
#[pyfunction]
#[allow(clippy::too_many_arguments)] // the two calls' arguments
fn lexbor_page_scan(
    tree: &Bound<'_, PyAny>,
    page_url: &str,
    legacy: bool,
    rows: bool,
    max_links: usize,
    root: &Bound<'_, PyAny>,
    blocks: Vec<String>,
    containers: Vec<String>,
    min_para: usize,
) -> PyResult<(LexborPage, ScanPart)> {
    // One walk of the tree: the scan's elements and text lengths gathered by the page's walk.
    let mut elements = Elements::default();
    let gather = rows.then_some(&mut elements); // (without the rows, no scan here)
    let page = lexbor_page_gathering(tree, page_url, legacy, rows, max_links, gather)?;
    if page.4.is_none() || page.2.is_empty() {
        // rows by Python, or no link: placement asks itself
        return Ok((page_out(tree.py(), page)?, (None, None)));
    }
    // The gathered elements' failure is the scan's (the rows stand), as a scan's own is.
    let scanned = crate::extract::guarded(|| elements.finish()).and_then(|elements| {
        lexbor_scan_with(
            tree,
            root,
            &page.2,
            blocks,
            containers,
            min_para,
            Some(elements),
        )
    });
    // A failed scan (RuntimeError: the core's refusal, a caught panic) leaves placement its
    // own scan, as scan_page's caller does; any other error is raised, as it was there.
    let part = match scanned {
        Ok(mut row) => {
            // The kinds' facts stay in Rust when the per-element lists were made of them
            // (`_Page.adopt` reads the lists; `lexbor_scan` hands both: the tests read them).
            if let Some(row) = row.as_mut().filter(|row| row.11 .1.is_some()) {
                row.0 = None;
            }
            (row, None)
        }
        Err(err) if err.is_instance_of::<pyo3::exceptions::PyRuntimeError>(tree.py()) => {
            (None, Some(err.value(tree.py()).to_string()))
        }
        Err(err) => return Err(err),
    };
    Ok((page_out(tree.py(), page)?, part))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(lexbor_page_scan, m)?)?;
    Ok(())
}
