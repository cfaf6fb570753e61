//! The page's own URLs placement reads for its site (pipelines/placement.py `_site_of`'s
//! `_SELF_URLS`: `link[rel="canonical"][href]`, `meta[property="og:url"][content]`,
//! `base[href]`), each the first in document order, found in one walk of lexbor's tree:
//! selectolax's three `css_first` calls walked the whole document each (a `base` is rare).
//! Python's calls stay the reference and the fallback (tests/test_native_site.py).
use pyo3::prelude::*;

use crate::extract::{element_of, guarded};
use crate::lexbor::{document_of, Key, Node, Tree, API, ELEMENT, HREF};
use crate::lists::XLINK_HREF;

const REL: Key = Key::new("rel");
const PROPERTY: Key = Key::new("property");
const CONTENT: Key = Key::new("content");

/// One selector's answer: not met, or met with its attribute's value (None: valueless).
pub type Found = Option<Option<String>>;

/// What *value* (a `rel`, None: valueless) is to a match of *want*: a match, no match, or a
/// case that lexbor's selectors tell by the element's namespace (they match `rel` in any
/// ASCII case on HTML elements only): None, then Python's calls answer.
fn matches(value: Option<&str>, want: &str) -> Option<bool> {
    match value {
        Some(v) if v == want => Some(true),
        Some(v) if v.eq_ignore_ascii_case(want) => None,
        _ => Some(false),
    }
}

/// The three selectors' answers under *root* (itself included), in document order, without
/// recursion, up to the first selector's element (the others then not read: its URL settles
/// most pages); None when one is a case only Python's selectors tell.
fn self_urls(tree: &Tree, root: Node) -> Option<[Found; 3]> {
    let mut found: [Found; 3] = [None, None, None];
    let mut cur = root;
    loop {
        if tree.kind(cur) == ELEMENT {
            let name = tree.name(cur);
            // `[href]` matches foreign content's xlink:href (review16-p16 1): Python tells
            if matches!(name.as_ref(), "link" | "base")
                && !tree.has(cur, HREF)
                && tree.has(cur, XLINK_HREF)
            {
                return None;
            }
            match name.as_ref() {
                "link" if found[0].is_none() && tree.has(cur, HREF) => {
                    if matches(tree.value(cur, REL).as_deref(), "canonical")? {
                        found[0] = Some(tree.value(cur, HREF).map(|v| v.into_owned()));
                    }
                }
                "meta" if found[1].is_none() && tree.has(cur, CONTENT) => {
                    // (`property` is matched in its case on any element)
                    if tree.value(cur, PROPERTY).as_deref() == Some("og:url") {
                        found[1] = Some(tree.value(cur, CONTENT).map(|v| v.into_owned()));
                    }
                }
                "base" if found[2].is_none() && tree.has(cur, HREF) => {
                    found[2] = Some(tree.value(cur, HREF).map(|v| v.into_owned()));
                }
                _ => {}
            }
            if found[0].is_some() {
                return Some(found); // the first settles most pages: the rest are not read
            }
        }
        if let Some(child) = tree.first_child(cur) {
            cur = child;
            continue;
        }
        loop {
            if cur == root {
                return Some(found);
            }
            if let Some(next) = tree.next(cur) {
                cur = next;
                break;
            }
            match tree.parent(cur) {
                Some(up) => cur = up,
                None => return Some(found),
            }
        }
    }
}

/// `self_urls` under *root* (a selectolax `LexborNode`: the parser's root), under the GIL
/// (its tree holds, unchanged): the first selector's value alone if it met an element, else
/// the three; each None if not met or valueless. None: a case Python's selectors tell, or
/// lexbor not loaded.
#[pyfunction]
#[pyo3(name = "self_urls")]
fn self_urls_py(root: &Bound<'_, PyAny>) -> PyResult<Option<Vec<Option<String>>>> {
    let start = element_of(&root.getattr(pyo3::intern!(root.py(), "parser"))?, root)?;
    guarded(|| {
        let api = API.get()?;
        // SAFETY: element_of's contract (a live node of its parser's tree); a panic becomes
        // a RuntimeError.
        let tree = Tree::new(api, document_of(api, start as Node)?);
        // (met valueless and not met read alike: as Python's `attributes.get(attr) or ""`)
        self_urls(&tree, start as Node).map(|[first, second, third]| match first {
            Some(first) => vec![first],
            None => vec![None, second.flatten(), third.flatten()],
        })
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(self_urls_py, m)?)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn exact_or_pythons() {
        assert_eq!(matches(Some("canonical"), "canonical"), Some(true));
        assert_eq!(matches(Some("Canonical"), "canonical"), None);
        assert_eq!(matches(Some("canonical "), "canonical"), Some(false));
        assert_eq!(matches(None, "canonical"), Some(false));
    }
}
