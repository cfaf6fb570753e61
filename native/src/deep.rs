//! extract.py `_flatten_deep`'s search over lexbor's tree: whether anything nests deeper
//! than MAX_DOM_DEPTH, so needs flattening. Most pages with many tags have nothing that deep
//! (none of the Zyte and WCXB pages): the core's walk answers them, and Python's walk (the
//! reference, which then flattens) runs only on a page that has.
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::extract::{element_of, guarded};
use crate::lexbor::{document_of, Node, Tree, API};

/// Whether a node at depth *max_depth* under *root* (depth 0) has a child: what
/// `_flatten_deep` would cut (its walk cuts nodes at that depth that have a child, and goes
/// no deeper). None if the API is not loaded or *root* is not in a document.
///
/// # Safety
/// *root* is a live `lxb_dom_node_t *` whose tree no one changes during the call.
pub unsafe fn nests_deeper(root: usize, max_depth: usize) -> Option<bool> {
    let api = API.get()?;
    let document = document_of(api, root as Node)?;
    let tree = Tree::new(api, document);
    let mut stack: Vec<(Node, usize)> = vec![(root as Node, 0)];
    while let Some((node, depth)) = stack.pop() {
        let Some(child) = tree.first_child(node) else {
            continue;
        };
        if depth >= max_depth {
            return Some(true);
        }
        let mut cur = Some(child);
        while let Some(n) = cur {
            stack.push((n, depth + 1)); // each node once: the stack holds at most the tree
            cur = tree.next(n);
        }
    }
    Some(false)
}

/// `nests_deeper` of *tree* (a selectolax `LexborHTMLParser`) from its root element, under
/// the GIL (the tree holds, unchanged). RuntimeError if it is not one, or on a panic.
#[pyfunction]
#[pyo3(name = "nests_deeper")]
fn nests_deeper_py(tree: &Bound<'_, PyAny>, max_depth: usize) -> PyResult<bool> {
    let root = element_of(tree, &tree.getattr("root")?)?;
    // SAFETY: the contract above; a panic becomes a RuntimeError.
    guarded(|| unsafe { nests_deeper(root, max_depth) })?
        .ok_or_else(|| PyRuntimeError::new_err("the root is not in a lexbor document"))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(nests_deeper_py, m)?)
}
