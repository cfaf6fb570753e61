//! Page type's link signals (pipelines/page_type.py `_link_signals`) over the columns of a
//! page's links: the same numbers, in the same order (`LINK_SIGNALS`), by the same string
//! operations (splits on "://", "/", "?", "#"; `str.count`'s non-overlapping counts; `log1p`
//! and divisions of the same integers). Python's function stays the reference and the
//! fallback; tests/test_native_page_type.py holds the two equal on the pages and on random
//! and hostile URLs and anchors.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use memchr::memmem::Finder;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;

use crate::extract::guarded;

/// The placements whose shares are signals (`lp_` + name), in page_type.py's order
/// (`_LINK_PLACES`): content first, comment last.
const PLACES: [&str; 5] = ["content", "nav", "sidebar", "footer", "comment"];

/// What page_type.py counts, given once by Python (`link_signal_tables`): the one copy is
/// Python's.
pub struct Tables {
    /// The anchor phrases, per signal (`_ANCHOR_PHRASES`' values, in its order), as SIMD
    /// substring searches (Python's str.count skips ahead too: Two-Way, 50 passes over the
    /// anchors, cost more than all the rest).
    phrases: Vec<Vec<Finder<'static>>>,
    /// Path pieces of product and forum targets (`_PRODUCT_PATHS`, `_FORUM_PATHS`).
    product: Vec<Finder<'static>>,
    forum: Vec<Finder<'static>>,
    /// The characters of an anchor read (`_ANCHOR_CHARS`).
    anchor_chars: usize,
}

static TABLES: RwLock<Option<Arc<Tables>>> = RwLock::new(None);

fn tables() -> Option<Arc<Tables>> {
    TABLES.read().ok().and_then(|t| t.clone())
}

/// What follows the first "://" (all of *url* without one): Python's
/// `url.split("://", 1)[-1]`.
fn after_scheme(url: &str) -> &str {
    url.find("://").map_or(url, |i| &url[i + 3..])
}

/// The host part as page_type.py takes it: `url.split("://", 1)[-1].split("/", 1)[0]`.
fn host_of(url: &str) -> &str {
    let rest = after_scheme(url);
    rest.split('/').next().unwrap_or(rest)
}

/// `_path_shape`: the path's first non-empty segment and its number of non-empty segments.
fn path_shape(url: &str) -> (&str, usize) {
    let rest = after_scheme(url);
    let path = rest.find('/').map_or("", |i| &rest[i + 1..]);
    let path = path.split('?').next().unwrap_or("");
    let path = path.split('#').next().unwrap_or("");
    let mut first = "";
    let mut count = 0;
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        if count == 0 {
            first = segment;
        }
        count += 1;
    }
    (first, count)
}

/// The first *n* characters of *text* (Python's `text[:n]`: code points).
fn first_chars(text: &str, n: usize) -> &str {
    text.char_indices().nth(n).map_or(text, |(i, _)| &text[..i])
}

/// `str.count`: the non-overlapping occurrences of a non-empty *needle* (the tables hold
/// none empty), left to right.
fn count(haystack: &str, needle: &Finder<'_>) -> usize {
    needle.find_iter(haystack.as_bytes()).count()
}

fn finders(strings: &[String]) -> Vec<Finder<'static>> {
    strings
        .iter()
        .map(|s| Finder::new(s.as_bytes()).into_owned())
        .collect()
}

fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

fn log1p(n: usize) -> f64 {
    (n as f64).ln_1p() // libm's log1p, as Python's math.log1p
}

/// The link signals of a page at *url* (page_type.py `LINK_SIGNALS`, in order) from its
/// links' targets, anchors, placements, ugc and image flags (equal lengths; Python passes
/// the first MAX_SIGNAL_LINKS).
pub fn link_signals<S: AsRef<str>>(
    url: &str,
    targets: &[S],
    anchors: &[S],
    places: &[S],
    ugc: &[bool],
    is_image: &[bool],
    t: &Tables,
) -> Vec<f64> {
    let host = host_of(url);
    let n = targets
        .len()
        .min(anchors.len())
        .min(places.len())
        .min(ugc.len())
        .min(is_image.len());
    let mut by_place = [0usize; PLACES.len()];
    let mut content_targets: HashMap<&str, usize> = HashMap::new();
    let mut shapes: HashMap<(&str, usize), usize> = HashMap::new();
    let (mut words, mut images, mut internal, mut ugcs) = (0usize, 0usize, 0usize, 0usize);
    let (mut product, mut forum) = (0usize, 0usize);
    let mut lines = String::from("\n");
    for k in 0..n {
        let place = places[k].as_ref();
        if let Some(p) = PLACES.iter().position(|&name| name == place) {
            by_place[p] += 1;
        }
        let text = first_chars(anchors[k].as_ref(), t.anchor_chars);
        if k > 0 {
            lines.push_str("\n\n");
        }
        lines.push_str(text);
        ugcs += ugc[k] as usize;
        if place != PLACES[0] {
            continue;
        }
        let target = targets[k].as_ref();
        let seen = content_targets.entry(target).or_insert(0);
        if *seen == 0 {
            // each distinct target once (Python counts in the distinct targets joined by
            // "\n": no piece holds a "\n", so no count spans two targets)
            product += t.product.iter().map(|p| count(target, p)).sum::<usize>();
            forum += t.forum.iter().map(|p| count(target, p)).sum::<usize>();
        }
        *seen += 1;
        if host_of(target) == host {
            internal += 1;
            *shapes.entry(path_shape(target)).or_insert(0) += 1;
        }
        if !text.is_empty() {
            words += memchr::memchr_iter(b' ', text.as_bytes()).count() + 1;
        }
        images += is_image[k] as usize;
    }
    let total = n;
    let content = by_place[0];
    let mut out = Vec::with_capacity(17 + t.phrases.len());
    out.push(log1p(total));
    out.push(log1p(content));
    for &c in &by_place {
        out.push(ratio(c, total));
    }
    out.push(log1p(by_place[PLACES.len() - 1]));
    out.push(log1p(ugcs));
    out.push(ratio(words, content));
    out.push(ratio(images, content));
    out.push(ratio(internal, content));
    let repeated: usize = content_targets.values().filter(|&&c| c > 1).sum();
    out.push(ratio(repeated, content));
    let top = shapes.values().copied().max().unwrap_or(0);
    out.push(log1p(top));
    out.push(ratio(top, content));
    out.push(log1p(product));
    out.push(log1p(forum));
    // Python lowercases the anchors joined (str.lower, full case mapping, as str::to_lowercase;
    // the tests check that both map onto the phrases' characters alike, on every code point).
    let mut lines = lines.to_lowercase();
    lines.push('\n');
    for phrases in &t.phrases {
        out.push(log1p(phrases.iter().map(|p| count(&lines, p)).sum()));
    }
    out
}

/// Page type's tables (pipelines/native.py passes them once): the anchor phrases per signal,
/// the product and forum path pieces, the characters of an anchor read. ValueError on an
/// empty string (which `str.count` would count otherwise than `count`).
#[pyfunction]
fn link_signal_tables(
    phrases: Vec<Vec<String>>,
    product: Vec<String>,
    forum: Vec<String>,
    anchor_chars: usize,
) -> PyResult<()> {
    let all = phrases.iter().flatten().chain(&product).chain(&forum);
    if all.into_iter().any(|s| s.is_empty()) {
        return Err(PyValueError::new_err("an empty phrase or path"));
    }
    let tables = Tables {
        phrases: phrases.iter().map(|p| finders(p)).collect(),
        product: finders(&product),
        forum: finders(&forum),
        anchor_chars,
    };
    *TABLES
        .write()
        .map_err(|_| PyValueError::new_err("poisoned"))? = Some(Arc::new(tables));
    Ok(())
}

/// `link_signals` for Python (page_type.py `_link_signals`' core path): None before
/// `link_signal_tables`; ValueError if the columns' lengths differ; a panic is a
/// RuntimeError.
#[pyfunction]
#[pyo3(name = "link_signals")]
fn link_signals_py(
    py: Python<'_>,
    url: &str,
    targets: Vec<PyBackedStr>,
    anchors: Vec<PyBackedStr>,
    places: Vec<PyBackedStr>,
    ugc: Vec<bool>,
    is_image: Vec<bool>,
) -> PyResult<Option<Vec<f64>>> {
    let n = targets.len();
    if [anchors.len(), places.len(), ugc.len(), is_image.len()] != [n; 4] {
        return Err(PyValueError::new_err("columns of different lengths"));
    }
    let Some(t) = tables() else {
        return Ok(None);
    };
    py.detach(|| guarded(|| link_signals(url, &targets, &anchors, &places, &ugc, &is_image, &t)))
        .map(Some)
}

/// *text* lowercased as `link_signals` lowercases anchors (for the tests' sweep of every
/// code point against Python's `str.lower`).
#[pyfunction]
fn _lower_for_test(text: &str) -> String {
    text.to_lowercase()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(link_signal_tables, m)?)?;
    m.add_function(wrap_pyfunction!(link_signals_py, m)?)?;
    m.add_function(wrap_pyfunction!(_lower_for_test, m)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_hosts_split_as_python_does() {
        assert_eq!(
            path_shape("https://a.test/products/red-shoes?x=1"),
            ("products", 2)
        );
        assert_eq!(path_shape("a.test"), ("", 0));
        assert_eq!(path_shape("x://a/b//c#d/e"), ("b", 2));
        assert_eq!(host_of("http://u@h:1/x://y"), "u@h:1");
        assert_eq!(host_of("noscheme/a://b"), "b");
        assert_eq!(first_chars("héllo", 2), "hé");
        assert_eq!(count("/p/p/", &Finder::new("/p/")), 1);
        assert_eq!(count("aaaa", &Finder::new("aa")), 2);
    }

    #[test]
    fn no_links_no_panic() {
        let t = Tables {
            phrases: vec![finders(&["\nread more".into()])],
            product: finders(&["/p/".into()]),
            forum: finders(&["/t/".into()]),
            anchor_chars: 100,
        };
        let none: [&str; 0] = [];
        let out = link_signals("", &none, &none, &none, &[], &[], &t);
        assert_eq!(out.len(), 18);
        assert!(out.iter().all(|&x| x == 0.0));
    }
}
