//! Whether main is one item of a listing (pipelines/placement.py `_listing`: `_whole_list`
//! then `_has_items`) over lexbor's tree in one call: the elements on main's path are found
//! down from the root by their addresses (never reading one that is not reached from a live
//! node, as steps.rs), then their like children counted. Python found each node through
//! `_Nodes` (a step per ancestor), stepped `.next` through every child and built each one's
//! attribute dict. Python's functions stay the reference and the fallback
//! (tests/test_native_lists.py compares them on every page and on edge trees).
use std::collections::HashMap;

use pyo3::prelude::*;

use crate::extract::{element_of, guarded};
use crate::lexbor::{document_of, Key, Node, Tree, API, ELEMENT, HREF};

const CLASS: Key = Key::new("class");
/// Foreign content's `xlink:href`, which lexbor's `[href]` matches in svg and math (its local
/// name) but not on an HTML element: a case Python's selectors tell (review16-p16 1).
pub(crate) const XLINK_HREF: Key = Key::new("xlink:href");

/// What `_listing` reads besides the tree: placement.py's constants.
pub struct Rules<'a> {
    /// `_ITEM_TAGS`, `_LAYOUT_TAGS`.
    pub item_tags: &'a [String],
    pub layout_tags: &'a [String],
    /// Children read of an element (`range(200)`), and the like items that make a list (3).
    pub limit: usize,
    pub need: usize,
}

/// Among the first *limit* child nodes of *node*, the elements named *tag* whose class
/// (`attributes.get("class")`: None if absent or without a value) is *cls*.
fn same_children(tree: &Tree, node: Node, tag: &str, cls: Option<&str>, limit: usize) -> usize {
    let mut same = 0;
    let mut child = tree.first_child(node);
    for _ in 0..limit {
        let Some(cur) = child else { break };
        if tree.kind(cur) == ELEMENT
            && tree.name(cur) == tag
            && tree.value(cur, CLASS).as_deref() == cls
        {
            same += 1;
        }
        child = tree.next(cur);
    }
    same
}

/// Whether an element under *node* (not itself) is an `a` with an `href` (selectolax's
/// `node.css_first("a[href]") is not None`): its subtree in document order, without
/// recursion (up by parents, never above *node*); None at an `a` with only an `xlink:href`.
fn has_link(tree: &Tree, node: Node) -> Option<bool> {
    let Some(mut cur) = tree.first_child(node) else {
        return Some(false);
    };
    loop {
        if tree.kind(cur) == ELEMENT && tree.name(cur) == "a" {
            if tree.has(cur, HREF) {
                return Some(true);
            }
            if tree.has(cur, XLINK_HREF) {
                return None;
            }
        }
        if let Some(child) = tree.first_child(cur) {
            cur = child;
            continue;
        }
        loop {
            if let Some(next) = tree.next(cur) {
                cur = next;
                break;
            }
            match tree.parent(cur) {
                Some(up) if up != node => cur = up,
                _ => return Some(false),
            }
        }
    }
}

/// placement.py `_has_items`: among the first `limit` child nodes of *node*, `need` elements
/// of one item tag and one class that hold a link (None: `has_link`'s).
fn has_items(tree: &Tree, node: Node, rules: &Rules) -> Option<bool> {
    let mut seen: HashMap<(String, Option<String>), usize> = HashMap::new();
    let mut child = tree.first_child(node);
    for _ in 0..rules.limit {
        let Some(cur) = child else {
            return Some(false);
        };
        if tree.kind(cur) == ELEMENT {
            let tag = tree.name(cur);
            if rules.item_tags.iter().any(|t| *t == tag) && has_link(tree, cur)? {
                let cls = tree.value(cur, CLASS).map(|c| c.into_owned());
                let n = seen.entry((tag.into_owned(), cls)).or_insert(0);
                *n += 1;
                if *n >= rules.need {
                    return Some(true);
                }
            }
        }
        child = tree.next(cur);
    }
    Some(false)
}

/// The nodes from *start* down the elements at *addresses* (each a child of the one before):
/// *start* first; None if one is not a child there.
fn path_nodes(tree: &Tree, start: Node, addresses: &[usize]) -> Option<Vec<Node>> {
    let mut nodes = Vec::with_capacity(addresses.len() + 1);
    nodes.push(start);
    let mut cur = start;
    for &address in addresses {
        let mut child = tree.first_child(cur);
        loop {
            let node = child?;
            if node as usize == address {
                cur = node;
                break;
            }
            child = tree.next(node);
        }
        nodes.push(cur);
    }
    Some(nodes)
}

/// placement.py `_whole_list` over *path* (the root first, main last: each the parent of the
/// next): the index in *path* of the list around main, or main's.
fn whole_list(tree: &Tree, path: &[Node], levels: usize, rules: &Rules) -> usize {
    let main = path.len() - 1;
    let mut cur = main;
    for _ in 0..levels {
        let Some(up) = cur.checked_sub(1) else {
            return main;
        };
        let tag = tree.name(path[cur]);
        let cls = tree.value(path[cur], CLASS);
        if rules.layout_tags.iter().any(|t| *t == tag) || up == 0 {
            return main; // layout rows and cells are not items
        }
        // Unclassed boxes (no class, or an empty one) are looked through: only repeated
        // classed boxes make a list.
        let item = rules.item_tags.iter().any(|t| *t == tag);
        if (item || cls.as_deref().is_some_and(|c| !c.is_empty()))
            && same_children(tree, path[up], &tag, cls.as_deref(), rules.limit) >= rules.need
        {
            return up;
        }
        cur = up;
    }
    main
}

/// placement.py `_listing` from *root* (its `_Page`'s root) down *addresses* (main's
/// ancestors below the root, then main): the index in that path (the root 0) of the list
/// around main, and whether main is a listing; None if an element is not where the scan put
/// it (Python's then), or lexbor is not loaded.
///
/// # Safety
/// *root* is a live `lxb_dom_node_t *` whose tree no one changes during the call.
pub unsafe fn listing(
    root: usize,
    addresses: &[usize],
    levels: usize,
    rules: &Rules,
) -> Option<(usize, bool)> {
    let api = API.get()?;
    let tree = Tree::new(api, document_of(api, root as Node)?);
    let path = path_nodes(&tree, root as Node, addresses)?;
    let main = path.len() - 1;
    let items = whole_list(&tree, &path, levels, rules);
    Some((items, items != main || has_items(&tree, path[main], rules)?))
}

/// `listing` from *root* (a selectolax `LexborNode`), under the GIL (its tree holds,
/// unchanged). *constants*: `_ITEM_TAGS`, `_LAYOUT_TAGS`, the children read and the items
/// that make a list.
#[pyfunction]
#[pyo3(name = "main_listing")]
fn listing_py(
    root: &Bound<'_, PyAny>,
    addresses: Vec<usize>,
    levels: usize,
    constants: (Vec<String>, Vec<String>, usize, usize),
) -> PyResult<Option<(usize, bool)>> {
    let start = element_of(&root.getattr(pyo3::intern!(root.py(), "parser"))?, root)?;
    let (item_tags, layout_tags, limit, need) = constants;
    let rules = Rules {
        item_tags: &item_tags,
        layout_tags: &layout_tags,
        limit,
        need,
    };
    // SAFETY: element_of's contract; a panic becomes a RuntimeError.
    guarded(|| unsafe { listing(start, &addresses, levels, &rules) })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(listing_py, m)?)
}
