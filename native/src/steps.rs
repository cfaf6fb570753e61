//! The way down lexbor's tree to recorded elements (pipelines/placement.py `_Nodes`): each
//! one's position among its parent's child nodes, found by comparing addresses (never reading
//! one that is not reached from a live node), so that Python steps `.child` and `.next` to it
//! instead of reading every child of every ancestor in Python.
use pyo3::prelude::*;

use crate::extract::{element_of, guarded};
use crate::lexbor::{document_of, Node, Tree, API};

/// From *start*, each next address's position among the child nodes of the one before (the
/// first among *start*'s); None if one is not a child there.
///
/// # Safety
/// *start* is a live `lxb_dom_node_t *` whose tree no one changes during the call.
pub unsafe fn child_steps(start: usize, addresses: &[usize]) -> Option<Vec<usize>> {
    let api = API.get()?;
    let document = document_of(api, start as Node)?;
    let tree = Tree::new(api, document);
    let mut steps = Vec::with_capacity(addresses.len());
    let mut cur = start as Node;
    for &address in addresses {
        let mut child = tree.first_child(cur);
        let mut position = 0;
        loop {
            let node = child?;
            if node as usize == address {
                steps.push(position);
                cur = node;
                break;
            }
            position += 1;
            child = tree.next(node);
        }
    }
    Some(steps)
}

/// `child_steps` from *node* (a selectolax `LexborNode`), under the GIL (its tree holds,
/// unchanged). None if an address is not found on the way (Python then reads the children).
#[pyfunction]
#[pyo3(name = "child_steps")]
fn child_steps_py(node: &Bound<'_, PyAny>, addresses: Vec<usize>) -> PyResult<Option<Vec<usize>>> {
    let start = element_of(&node.getattr(pyo3::intern!(node.py(), "parser"))?, node)?;
    // SAFETY: element_of's contract; a panic becomes a RuntimeError.
    guarded(|| unsafe { child_steps(start, &addresses) })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(child_steps_py, m)?)
}
