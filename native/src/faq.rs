//! A main block inside an FAQ (pipelines/placement.py `_past_faq`, `_names_faq`,
//! `_first_landmark`) over a natively scanned page's kinds: the page's `<main>` around it.
//! Python's functions stay the reference and the fallback (tests/test_native_rules.py).
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

use crate::extract::guarded;
use crate::facts::tokens;
use crate::rules::{code_of, CONTENT};
use crate::walk::{py_space, py_strip};

/// An element on main's path as `_past_faq` reads it: its tag, class, id, role, label.
pub struct Element {
    pub tag: String,
    pub cls: Option<String>,
    pub id: Option<String>,
    pub role: Option<String>,
    pub label: u8,
}

/// `_names_faq`: class/id names hold an FAQ word, taxonomy classes aside.
pub fn names_faq(names: &str, words: &[String], taxonomy: &[String]) -> bool {
    for name in names.split(py_space).filter(|n| !n.is_empty()) {
        let low = name.to_lowercase();
        if taxonomy.iter().any(|t| low.starts_with(t.as_str())) {
            continue;
        }
        let named = |value: &str| {
            tokens(value)
                .iter()
                .any(|t| words.iter().any(|w| w.as_str() == t.as_ref()))
        };
        if named(name) || named(&low) {
            return true;
        }
    }
    false
}

/// `_is_landmark`.
fn is_landmark(e: &Element) -> bool {
    e.tag == "main"
        || (e.label == CONTENT
            && py_strip(e.role.as_deref().unwrap_or("")).to_lowercase() == "main")
}

/// `_past_faq` over *path* (main, then its ancestors to the root): the index in *path* of
/// the landmark to widen to, or None (main stays).
pub fn past_faq(path: &[Element], words: &[String], taxonomy: &[String]) -> Option<usize> {
    let mut faq = None;
    for (i, e) in path.iter().enumerate() {
        if e.tag == "article" {
            continue;
        }
        let names = format!(
            "{} {}",
            e.cls.as_deref().unwrap_or(""),
            e.id.as_deref().unwrap_or("")
        );
        let low = names.to_lowercase();
        if words.iter().any(|w| low.contains(w.as_str())) && names_faq(&names, words, taxonomy) {
            faq = Some(i);
        }
    }
    let faq = faq?;
    // `path[faq + 1 : -1]`: the FAQ's ancestors below the root.
    let end = path.len().saturating_sub(1);
    (faq + 1..end).find(|&i| is_landmark(&path[i]))
}

fn text(value: Bound<'_, PyAny>) -> PyResult<Option<String>> {
    if value.is_none() {
        Ok(None)
    } else {
        Ok(Some(value.extract()?))
    }
}

/// placement.py `_past_faq` of a natively scanned page (its names its kinds'): *path* main
/// and its ancestors, *kind_of*, *kinds*, *labels* the page's, *words* the FAQ words,
/// *taxonomy* `_TAXONOMY`. The element to widen to, or main; None (Python answers) when a
/// class or id is not ASCII: Rust's `to_lowercase` follows a newer Unicode than CPython's
/// `str.lower` (U+A7DC lowers to a letter of the token pattern in Rust, not in Python 3.11).
#[pyfunction]
#[pyo3(name = "past_faq")]
#[allow(clippy::too_many_arguments)]
fn past_faq_py(
    path: Vec<usize>,
    kind_of: Bound<'_, PyList>,
    kinds: Bound<'_, PyList>,
    labels: Bound<'_, PyList>,
    words: Vec<String>,
    taxonomy: Vec<String>,
    names: [Bound<'_, PyString>; 5],
) -> PyResult<Option<usize>> {
    let main = *path
        .first()
        .ok_or_else(|| PyValueError::new_err("past_faq: no path"))?;
    let mut elements = Vec::with_capacity(path.len());
    for &k in &path {
        let kind = kinds.get_item(kind_of.get_item(k)?.extract::<usize>()?)?;
        let e = Element {
            tag: kind.get_item(0)?.extract()?,
            cls: text(kind.get_item(1)?)?,
            id: text(kind.get_item(2)?)?,
            role: text(kind.get_item(3)?)?,
            label: code_of(&names, &labels.get_item(k)?)?,
        };
        let ascii = |v: &Option<String>| v.as_deref().is_none_or(|s| s.is_ascii());
        if !(ascii(&e.cls) && ascii(&e.id) && ascii(&e.role)) {
            return Ok(None);
        }
        elements.push(e);
    }
    let at = guarded(|| past_faq(&elements, &words, &taxonomy))?;
    Ok(Some(at.map_or(main, |i| path[i])))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(past_faq_py, m)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_faq_as_python() {
        let folds: Vec<String> = ["faq", "faqs", "accordion"].map(String::from).to_vec();
        let taxonomy: Vec<String> = ["category-", "tag-"].map(String::from).to_vec();
        assert!(!names_faq(
            "post category-faq tag-accordion",
            &folds,
            &taxonomy
        ));
        assert!(names_faq("FAQs", &folds, &taxonomy));
        assert!(names_faq("x faq-list", &folds, &taxonomy));
    }
}
