//! Page type's link signals (pipelines/page_type.py `_link_signals`) over the columns of a
//! page's links: the same numbers, in the same order (`LINK_SIGNALS`), by the same string
//! operations (splits on "://", "/", "?", "#"; `str.count`'s non-overlapping counts; `log1p`
//! and divisions of the same integers). Python's function stays the reference and the
//! fallback; tests/test_native_page_type.py holds the two equal on the pages and on random
//! and hostile URLs and anchors.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use foldhash::fast::RandomState;
use memchr::memmem;
#[cfg(test)]
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
    /// The anchor phrases, per signal (`_ANCHOR_PHRASES`' values, in its order).
    phrases: Counts,
    /// Path pieces of product and forum targets (`_PRODUCT_PATHS`, `_FORUM_PATHS`): the
    /// groups 0 and 1.
    paths: Counts,
    /// The characters of an anchor read (`_ANCHOR_CHARS`).
    anchor_chars: usize,
}

/// Groups of non-empty strings, each counted in a text as Python's `str.count` counts it
/// (non-overlapping, left to right), summed per group (a string twice in a group counts
/// twice, as Python's sum), in one Aho-Corasick pass over the text: the 50 memmem passes of
/// the anchor phrases were ~60% of `link_signals`' instructions.
pub struct Counts {
    /// The distinct strings (pattern ids: their indexes in first-seen order).
    automaton: AhoCorasick,
    /// Per group, its strings' pattern ids.
    groups: Vec<Vec<usize>>,
    /// The number of distinct strings.
    distinct: usize,
}

impl Counts {
    fn new(groups: &[Vec<String>]) -> Result<Counts, String> {
        let mut ids: HashMap<&str, usize> = HashMap::new();
        let mut distinct: Vec<&str> = Vec::new();
        let mut by_group = Vec::with_capacity(groups.len());
        for group in groups {
            let mut members = Vec::with_capacity(group.len());
            for string in group {
                if string.is_empty() {
                    return Err("an empty phrase or path".into());
                }
                let id = *ids.entry(string.as_str()).or_insert_with(|| {
                    distinct.push(string.as_str());
                    distinct.len() - 1
                });
                members.push(id);
            }
            by_group.push(members);
        }
        // Standard semantics: the overlapping search reports every occurrence of every string.
        // A DFA: a table step per byte (the fastest kind; the strings are few and short).
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&distinct)
            .map_err(|e| e.to_string())?;
        Ok(Counts {
            automaton,
            groups: by_group,
            distinct: distinct.len(),
        })
    }

    /// Each group's count in *text* (Python's `sum(text.count(s) for s in group)`), added to
    /// *sums* (one per group). The occurrences come in the order they end, so each string's
    /// in the order they start: one is counted when it starts at or after the end of the last
    /// one counted (str.count's scan resumes there).
    fn add(&self, text: &str, sums: &mut [usize]) {
        let mut found = vec![0usize; self.distinct];
        let mut resume = vec![0usize; self.distinct];
        for m in self.automaton.find_overlapping_iter(text) {
            let id = m.pattern().as_usize();
            if m.start() >= resume[id] {
                found[id] += 1;
                resume[id] = m.end();
            }
        }
        for (sum, group) in sums.iter_mut().zip(&self.groups) {
            *sum += group.iter().map(|&id| found[id]).sum::<usize>();
        }
    }
}

static TABLES: RwLock<Option<Arc<Tables>>> = RwLock::new(None);

fn tables() -> Option<Arc<Tables>> {
    TABLES.read().ok().and_then(|t| t.clone())
}

/// What follows the first "://" (all of *url* without one): Python's
/// `url.split("://", 1)[-1]`.
fn after_scheme(url: &str) -> &str {
    memmem::find(url.as_bytes(), b"://").map_or(url, |i| &url[i + 3..])
}

/// The host part as page_type.py takes it: `url.split("://", 1)[-1].split("/", 1)[0]`.
fn host_of(url: &str) -> &str {
    let rest = after_scheme(url);
    memchr::memchr(b'/', rest.as_bytes()).map_or(rest, |i| &rest[..i])
}

/// `_path_shape`: the path's first non-empty segment and its number of non-empty segments.
fn path_shape(url: &str) -> (&str, usize) {
    let rest = after_scheme(url);
    let path = memchr::memchr(b'/', rest.as_bytes()).map_or("", |i| &rest[i + 1..]);
    let path = memchr::memchr(b'?', path.as_bytes()).map_or(path, |i| &path[..i]);
    let path = memchr::memchr(b'#', path.as_bytes()).map_or(path, |i| &path[..i]);
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
    if text.len() <= n {
        return text; // no more characters than bytes
    }
    text.char_indices().nth(n).map_or(text, |(i, _)| &text[..i])
}

/// *text* lowercased onto *out* as Python's `str.lower` (full case mapping): ASCII byte by
/// byte, else `str::to_lowercase`. Lowercasing the anchors one by one equals lowercasing them
/// joined by "\n": a newline is neither cased nor case-ignorable, so no final-sigma context
/// crosses it (Unicode 3.13, as both Python and Rust apply it).
fn push_lower(out: &mut String, text: &str) {
    if text.is_ascii() {
        let start = out.len();
        out.push_str(text);
        out[start..].make_ascii_lowercase();
    } else {
        out.push_str(&text.to_lowercase());
    }
}

/// `str.count`: the non-overlapping occurrences of a non-empty *needle* (the tables hold
/// none empty), left to right.
#[cfg(test)]
fn count(haystack: &str, needle: &Finder<'_>) -> usize {
    needle.find_iter(haystack.as_bytes()).count()
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
    // (foldhash, seeded per process: the targets are the page's; only counts are read)
    let mut content_targets: HashMap<&str, usize, RandomState> = HashMap::default();
    let mut shapes: HashMap<(&str, usize), usize, RandomState> = HashMap::default();
    let (mut words, mut images, mut internal, mut ugcs) = (0usize, 0usize, 0usize, 0usize);
    let mut paths = [0usize; 2]; // product, forum
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
        push_lower(&mut lines, text);
        ugcs += ugc[k] as usize;
        if place != PLACES[0] {
            continue;
        }
        let target = targets[k].as_ref();
        let seen = content_targets.entry(target).or_insert(0);
        if *seen == 0 {
            // each distinct target once (Python counts in the distinct targets joined by
            // "\n": no piece holds a "\n", so no count spans two targets)
            t.paths.add(target, &mut paths);
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
    let mut out = Vec::with_capacity(17 + t.phrases.groups.len());
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
    out.push(log1p(paths[0]));
    out.push(log1p(paths[1]));
    // Python lowercases the anchors joined (str.lower, full case mapping, as str::to_lowercase;
    // the tests check that both map onto the phrases' characters alike, on every code point):
    // here each as it is pushed (push_lower).
    lines.push('\n');
    let mut phrases = vec![0usize; t.phrases.groups.len()];
    t.phrases.add(&lines, &mut phrases);
    out.extend(phrases.into_iter().map(log1p));
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
    let tables = Tables {
        phrases: Counts::new(&phrases).map_err(PyValueError::new_err)?,
        paths: Counts::new(&[product, forum]).map_err(PyValueError::new_err)?,
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

/// *text* lowercased as `link_signals` lowercases anchors, each line on its own (for the
/// tests' sweep of every code point against Python's `str.lower` of the whole).
#[pyfunction]
fn _lower_for_test(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (k, line) in text.split('\n').enumerate() {
        if k > 0 {
            out.push('\n');
        }
        push_lower(&mut out, line);
    }
    out
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
    fn counts_as_str_count() {
        // Python: sum("aaaa".count(s) for s in ("aa", "a", "aa")) == 2 + 4 + 2
        let groups = vec![
            vec!["aa".to_string(), "a".into(), "aa".into()],
            vec!["aba".into(), "\nx\n".into()],
            vec!["é".into(), "\u{301}".into()],
        ];
        let c = Counts::new(&groups).unwrap();
        let mut sums = [0usize; 3];
        c.add("aaaa", &mut sums);
        assert_eq!(sums, [8, 0, 0]);
        let mut sums = [0usize; 3];
        c.add("ababa\nx\nx\nx\n\u{e9}e\u{301}", &mut sums);
        // "ababa".count("aba") == 1; "\nx\nx\nx\n".count("\nx\n") == 2; "é" (U+E9) once, U+301 once
        assert_eq!(sums, [3, 1 + 2, 1 + 1]);
        assert!(Counts::new(&[vec![String::new()]]).is_err());
    }

    #[test]
    fn no_links_no_panic() {
        let t = Tables {
            phrases: Counts::new(&[vec!["\nread more".into()]]).unwrap(),
            paths: Counts::new(&[vec!["/p/".into()], vec!["/t/".into()]]).unwrap(),
            anchor_chars: 100,
        };
        let none: [&str; 0] = [];
        let out = link_signals("", &none, &none, &none, &[], &[], &t);
        assert_eq!(out.len(), 18);
        assert!(out.iter().all(|&x| x == 0.0));
    }
}
