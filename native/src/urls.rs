//! linkcrawl's URL rules, ported from `pipelines/urls.py` with the same answers (README, "Native
//! URL rules", lists where they differ and why).
//!
//! Both resolve with ada (WHATWG, C++; the `ada-url` crate here, its Python wheel there) and
//! normalize ada's serialization with the same string steps, ported one for one. The functions
//! are `pub` for the rest of the crate and exposed to Python under the same names (registered by
//! [`register`]). Nothing here panics by design (no indexing that can fail); the Python wrappers
//! also catch a panic, which would otherwise reach Python as `PanicException`.
//!
//! Bounds: like the Python path, no length cut of its own (a cut would change answers; the
//! caller drops URLs over its `MAX_URL_CHARS`): every step is linear in its input, and ada's
//! punycode stops on overflow (tests/test_native_urls.py, hostile inputs).

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt::Write;

use ada_url::Url as AdaUrl;
use encoding_rs::{EncoderResult, Encoding};

/// Query parameters removed by [`normalize_url`], matched against the lowercased name.
pub const DEFAULT_TRACKING_PARAMS: [&str; 4] = ["gclid", "fbclid", "mc_cid", "mc_eid"];
/// Query parameter name prefixes removed by [`normalize_url`] (lowercase).
pub const DEFAULT_TRACKING_PREFIXES: [&str; 1] = ["utm_"];

/// The query parameters normalization drops: names and name prefixes, lowercase.
#[derive(Clone, Debug)]
pub struct Tracking {
    pub params: Vec<String>,
    pub prefixes: Vec<String>,
}

impl Default for Tracking {
    fn default() -> Self {
        Tracking {
            params: DEFAULT_TRACKING_PARAMS.map(String::from).to_vec(),
            prefixes: DEFAULT_TRACKING_PREFIXES.map(String::from).to_vec(),
        }
    }
}

impl Tracking {
    /// Whether the parameter `name` is dropped: its lowercase is one of the names, or starts
    /// with one of the prefixes (compared without allocating).
    fn drops(&self, name: &str) -> bool {
        let lowered_is = |name: &[u8], lowercase: &[u8]| {
            name.len() == lowercase.len()
                && name
                    .iter()
                    .zip(lowercase)
                    .all(|(n, l)| n.to_ascii_lowercase() == *l)
        };
        let name = name.as_bytes();
        self.params.iter().any(|p| lowered_is(name, p.as_bytes()))
            || self.prefixes.iter().any(|p| {
                name.get(..p.len())
                    .is_some_and(|start| lowered_is(start, p.as_bytes()))
            })
    }
}

// --- WHATWG resolution -----------------------------------------------------------------------

/// `href` parsed by ada against `base`, or None when that fails.
fn parse(href: &str, base: Option<&str>) -> Option<AdaUrl> {
    AdaUrl::parse(href, base).ok()
}

/// A page's base URL, checked and its origin taken once for all its links (the free functions
/// keep the last one); ada parses it again for an href relative to its path.
pub struct Base {
    text: String,
    /// None: not a valid absolute URL; for an http(s) base, its `scheme://userinfo@host:port`,
    /// else empty.
    origin: Option<String>,
}

impl Base {
    /// `base` parsed; one that does not parse resolves no href.
    pub fn new(base: &str) -> Base {
        let origin = parse(base, None).map(|url| {
            let serialized = url.href();
            match serialized
                .strip_prefix("http://")
                .or_else(|| serialized.strip_prefix("https://"))
            {
                Some(after) => {
                    let path_start =
                        serialized.len() - after.len() + after.find('/').unwrap_or(after.len());
                    serialized.get(..path_start).unwrap_or_default().to_owned()
                }
                None => String::new(),
            }
        });
        Base {
            text: base.to_owned(),
            origin,
        }
    }

    /// `pipelines.urls._resolve`, with its shortcuts: an "http(s)://" href does not depend on
    /// a (valid) base, and a path-absolute href ("/x") is the http(s) base's origin followed
    /// by it.
    fn resolve(&self, href: &str) -> Option<AdaUrl> {
        let origin = self.origin.as_deref()?;
        if href.starts_with("http://") || href.starts_with("https://") {
            return parse(href, None);
        }
        let mut chars = href.chars();
        if !origin.is_empty()
            && chars.next() == Some('/')
            && !matches!(chars.next(), Some('/' | '\\' | '\t' | '\n' | '\r'))
        {
            return parse(&format!("{origin}{href}"), None);
        }
        parse(href, Some(&self.text))
    }

    /// [`resolve_href`] against this base.
    pub fn resolve_href(&self, href: &str) -> Option<String> {
        self.resolve(href).map(|url| url.href().to_owned())
    }

    /// [`resolve_link`] against this base.
    pub fn resolve_link(&self, href: &str, tracking: &Tracking) -> Option<String> {
        normalize_serialized(self.resolve(href)?.href(), tracking)
    }
}

thread_local! {
    // The last base parsed: the same for every link of a page.
    static LAST_BASE: RefCell<Option<Base>> = const { RefCell::new(None) };
}

/// `href` resolved against `base` (absolute when `base` is None), the last base kept parsed.
fn resolve(href: &str, base: Option<&str>) -> Option<AdaUrl> {
    let Some(base) = base else {
        return parse(href, None);
    };
    LAST_BASE.with(|cell| {
        let mut last = cell.try_borrow_mut().ok()?;
        if last.as_ref().is_none_or(|parsed| parsed.text != base) {
            *last = Some(Base::new(base));
        }
        last.as_ref()?.resolve(href)
    })
}

/// What a browser resolves `<a href="{href}">` to on a page whose base URL is `base`, per the
/// WHATWG URL standard, or None when that fails (`pipelines.urls.resolve_href`).
///
/// `resolve_href("../c/./d?q=1#top", Some("http://Example.COM/a/b/"))` is
/// `Some("http://example.com/a/c/d?q=1#top")`.
pub fn resolve_href(href: &str, base: Option<&str>) -> Option<String> {
    resolve(href, base).map(|url| url.href().to_owned())
}

/// Where the query of `href` is (from its `?` to its end), when it has a non-ASCII character.
pub(crate) fn non_ascii_query(href: &str) -> Option<(usize, usize)> {
    let start = href.find('?')?;
    let end = href[start..].find('#').map_or(href.len(), |i| start + i);
    (!href[start + 1..end].is_ascii()).then_some((start, end))
}

/// `href` with the non-ASCII characters of its query percent-encoded in `encoding`, as a
/// browser encodes a link's query on a page in that (legacy) encoding; a character the encoding
/// lacks becomes `%26%23<code point>%3B` (`&#N;`). The rest is left to the URL parser.
///
/// `encode_query("/s?q=привет#якорь", WINDOWS_1251)` is `"/s?q=%EF%F0%E8%E2%E5%F2#якорь"`.
pub fn encode_query<'a>(href: &'a str, encoding: &'static Encoding) -> Cow<'a, str> {
    let Some((start, end)) = non_ascii_query(href) else {
        return Cow::Borrowed(href);
    };
    let query = &href[start + 1..end];
    let mut out = String::with_capacity(href.len() + 3 * query.len());
    out.push_str(&href[..=start]);
    let mut utf8 = [0u8; 4];
    let mut encoded = [0u8; 16]; // a character takes at most 8 bytes (ISO-2022-JP)
    for ch in query.chars() {
        if ch.is_ascii() {
            out.push(ch);
            continue;
        }
        // One character at a time, each from the encoder's initial state, as Python's
        // `char.encode(encoding)` does.
        let mut encoder = encoding.new_encoder();
        let (result, _, written) = encoder.encode_from_utf8_without_replacement(
            ch.encode_utf8(&mut utf8),
            &mut encoded,
            true,
        );
        match (result, encoded.get(..written)) {
            (EncoderResult::InputEmpty, Some(bytes)) => {
                for byte in bytes {
                    let _ = write!(out, "%{byte:02X}");
                }
            }
            _ => {
                let _ = write!(out, "%26%23{}%3B", u32::from(ch));
            }
        }
    }
    out.push_str(&href[end..]);
    Cow::Owned(out)
}

// --- Normalization ---------------------------------------------------------------------------

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(byte: u8) -> Option<u8> {
    (byte as char)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// The byte a `%` at `bytes[i]` escapes, when two hex digits follow it.
fn escaped_byte(bytes: &[u8], i: usize) -> Option<u8> {
    let high = hex_value(*bytes.get(i + 1)?)?;
    Some(high * 16 + hex_value(*bytes.get(i + 2)?)?)
}

/// Decode the escapes of unreserved characters and uppercase the hex of the others; beside a
/// `%` not followed by two hex digits, an escape of a hex digit stays encoded, so that decoding
/// cannot make a new escape (`pipelines.urls._normalize_escapes`).
///
/// `normalize_escapes("/%7euser/%e2%82%ac/a%2fb")` is `"/~user/%E2%82%AC/a%2Fb"`.
pub fn normalize_escapes(s: &str) -> Cow<'_, str> {
    let bytes = s.as_bytes();
    if !bytes.contains(&b'%') {
        return Cow::Borrowed(s);
    }
    let stray_percent = bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'%' && escaped_byte(bytes, i).is_none());
    let mut out = String::with_capacity(s.len());
    let mut copied = 0; // s[..copied] is in out
    let mut i = 0;
    while i < bytes.len() {
        let escaped = if bytes[i] == b'%' {
            escaped_byte(bytes, i)
        } else {
            None
        };
        let Some(byte) = escaped else {
            i += 1;
            continue;
        };
        // Escapes are ASCII: i and i + 3 are character boundaries.
        out.push_str(&s[copied..i]);
        if is_unreserved(byte) && !(stray_percent && byte.is_ascii_hexdigit()) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
        i += 3;
        copied = i;
    }
    out.push_str(&s[copied..]);
    Cow::Owned(out)
}

/// A parameter's name and value (None: no `=`), `equals` the index of its `=`.
fn name_and_value(param: &str, equals: Option<usize>) -> (&str, Option<&str>) {
    match equals {
        Some(i) => (param.get(..i).unwrap_or_default(), param.get(i + 1..)),
        None => (param, None),
    }
}

/// The query (without `?`): empty and tracking parameters dropped, escapes normalized,
/// parameters sorted by name then value, each kept as it was encoded
/// (`pipelines.urls._normalize_query`).
fn normalize_query(query: &str, tracking: &Tracking) -> String {
    // Sorted by (name, value), no value ("a") before an empty one ("a="): Python's order of
    // "name\0value" strings (a serialized query has no NUL: it is "%00").
    let mut params: Vec<(Cow<'_, str>, Option<usize>)> = Vec::new();
    for param in query.split('&').filter(|p| !p.is_empty()) {
        let param = normalize_escapes(param);
        let equals = param.find('=');
        if tracking.drops(name_and_value(&param, equals).0) {
            continue;
        }
        params.push((param, equals));
    }
    params.sort_unstable_by(|(a, a_eq), (b, b_eq)| {
        name_and_value(a, *a_eq).cmp(&name_and_value(b, *b_eq))
    });
    let mut out = String::with_capacity(query.len());
    for (param, _) in &params {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(param);
    }
    out
}

/// `host` without its trailing dots, parsed again as the URL parser parses a host (`0x7f..` is
/// a domain, `0x7f` the IPv4 address 0.0.0.127); None when nothing is left or it fails.
fn strip_trailing_dots(host: &str) -> Option<String> {
    let stripped = host.trim_end_matches('.');
    if stripped.is_empty() {
        return None;
    }
    let reparsed = parse(&format!("http://{stripped}/"), None)?;
    let reparsed = reparsed.href();
    reparsed
        .get(7..reparsed.len().saturating_sub(1))
        .map(str::to_owned)
}

/// Normalize `url`, an http(s) URL as ada serializes it (`pipelines.urls._normalize_serialized`).
///
/// ada has lowercased the scheme and host, converted the host to punycode (and an IPv4 host to
/// dotted decimal), removed the default port and resolved dot segments. In its serialization,
/// `@` in the user info, `?` and `#` in the user info and path, and `#` in the query are
/// percent-encoded, so plain string splitting is exact.
fn normalize_serialized(url: &str, tracking: &Tracking) -> Option<String> {
    let authority_start = if url.starts_with("https://") {
        8
    } else if url.starts_with("http://") {
        7
    } else {
        return None;
    };
    let url = url.split_once('#').map_or(url, |(before, _)| before);
    if !url.contains(['?', '%', '@']) && !url.contains("./") && !url.contains(".:") {
        // The common case: no query, escape, user info, or host's trailing dot.
        return Some(url.to_owned());
    }
    let path_start = authority_start + url.get(authority_start..)?.find('/')?;
    let mut authority = Cow::Borrowed(&url[authority_start..path_start]);
    let rest = &url[path_start..];
    if authority.contains('@') || authority.ends_with('.') || authority.contains(".:") {
        let host_port = authority
            .rsplit_once('@')
            .map_or(&*authority, |(_, after)| after);
        let (host, port) = host_port.split_once(':').unwrap_or((host_port, ""));
        // An IPv6 address never ends with a dot.
        authority = if !host_port.starts_with('[') && host.ends_with('.') {
            let host = strip_trailing_dots(host)?;
            Cow::Owned(if port.is_empty() {
                host
            } else {
                format!("{host}:{port}")
            })
        } else {
            Cow::Owned(host_port.to_owned())
        };
    }
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, normalize_query(query, tracking)),
        None => (rest, String::new()),
    };
    let path = normalize_escapes(path);
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..authority_start]);
    out.push_str(&authority);
    out.push_str(&path);
    if !query.is_empty() {
        out.push('?');
        out.push_str(&query);
    }
    Some(out)
}

/// The normalized form of the absolute URL `url`, or None when it is not a valid http or https
/// URL (`pipelines.urls.normalize_url`, README "URL normalization").
///
/// `normalize_url("HTTP://User:Pw@WWW.Example.COM.:80/a/./b/../%7ec?b=2&utm_source=x&a=1#f",
/// &Tracking::default())` is `Some("http://www.example.com/a/~c?a=1&b=2")`.
pub fn normalize_url(url: &str, tracking: &Tracking) -> Option<String> {
    normalize_serialized(parse(url, None)?.href(), tracking)
}

/// The normalized target of `<a href="{href}">` on a page whose base URL is `base`, or None
/// when it does not resolve to an http or https URL: `normalize_url(resolve_href(href, base))`
/// with one parse (`pipelines.urls.resolve_link`).
///
/// `resolve_link("../b/?z=1&a=%7e#frag", Some("https://www.example.com/x/y/z.html"),
/// &Tracking::default())` is `Some("https://www.example.com/x/b/?a=~&z=1")`.
pub fn resolve_link(href: &str, base: Option<&str>, tracking: &Tracking) -> Option<String> {
    normalize_serialized(resolve(href, base)?.href(), tracking)
}

// --- Hrefs that are not links ----------------------------------------------------------------

/// True when `href` is not a link to another resource: empty, fragment-only, or with a scheme
/// other than http and https, read as the URL parser reads it (`pipelines.urls.is_skipped_href`).
///
/// An empty or fragment-only href is skipped only when the base is the document itself
/// (`same_document`, see [`is_same_document`]); under a `<base href>` naming another document
/// it is a link to that document.
///
/// `is_skipped_href(" java\nscript:void(0)", true)` and `is_skipped_href("#top", true)` are
/// true, `is_skipped_href("a/b:c", true)` and `is_skipped_href("#top", false)` are false.
pub fn is_skipped_href(href: &str, same_document: bool) -> bool {
    if href.starts_with(['/', '.', '?'])
        || href.starts_with("http://")
        || href.starts_with("https://")
    {
        return false; // the common cases: no scheme, or http(s)
    }
    let trimmed = href.trim_matches(|c: char| c <= ' ');
    let mut chars = trimmed.chars().filter(|c| !matches!(c, '\t' | '\n' | '\r'));
    let first = match chars.next() {
        None | Some('#') => return same_document,
        Some(c) if c.is_ascii_alphabetic() => c,
        Some(_) => return false,
    };
    let mut scheme = String::from(first.to_ascii_lowercase());
    for c in chars {
        match c {
            ':' => return scheme != "http" && scheme != "https",
            c if c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-') => {
                scheme.push(c.to_ascii_lowercase())
            }
            _ => return false,
        }
    }
    false
}

/// Whether the base URL `base` names the document at `url` itself: both normalized (what a
/// link to the base would target) are equal; when either is not an http(s) URL, both as the
/// WHATWG parser serializes them (an unparsable one as written), without their fragments
/// (`pipelines.urls.is_same_document`).
///
/// `is_same_document("http://a.test/%70?utm_source=z#top", "HTTP://A.test:80/p")` is true.
pub fn is_same_document(base: &str, url: &str) -> bool {
    let normalized = DEFAULT_TRACKING
        .with(|tracking| normalize_url(base, tracking).zip(normalize_url(url, tracking)));
    if let Some((base, url)) = normalized {
        return base == url;
    }
    let base = resolve_href(base, None).unwrap_or_else(|| base.to_owned());
    let url = resolve_href(url, None).unwrap_or_else(|| url.to_owned());
    let cut = |s: &str| s.split('#').next().unwrap_or("").to_owned();
    cut(&base) == cut(&url)
}

thread_local! {
    pub(crate) static DEFAULT_TRACKING: Tracking = Tracking::default();
}

// --- Python ------------------------------------------------------------------------------------

/// The Python functions (`register`); left out of the fuzzing build (cargo fuzz sets
/// `--cfg fuzzing`), which links no libpython.
#[cfg(not(fuzzing))]
pub use python::register;

#[cfg(not(fuzzing))]
mod python {
    use super::*;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    use pyo3::exceptions::PyLookupError;
    use pyo3::prelude::*;
    use pyo3::types::{PyBytes, PyString};

    /// A Python str as Rust text: a lone surrogate becomes U+FFFD and a surrogate pair its code
    /// point, as a browser converts a DOM string to a USVString (`pipelines.urls._to_usv`).
    fn usv<'a>(s: &'a Bound<'_, PyString>) -> PyResult<Cow<'a, str>> {
        if let Ok(text) = s.to_str() {
            return Ok(Cow::Borrowed(text));
        }
        let encoded = s.call_method1("encode", ("utf-16-le", "surrogatepass"))?;
        let units: Vec<u16> = encoded
            .cast::<PyBytes>()?
            .as_bytes()
            .chunks_exact(2)
            .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
            .collect();
        Ok(Cow::Owned(String::from_utf16_lossy(&units)))
    }

    fn usv_opt<'a>(s: &'a Option<Bound<'_, PyString>>) -> PyResult<Option<Cow<'a, str>>> {
        s.as_ref().map(usv).transpose()
    }

    /// `f()`, or `fallback` if it panics: no panic crosses into Python.
    fn guarded<T>(fallback: T, f: impl FnOnce() -> T) -> T {
        catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
    }

    /// The strings of a Python iterable (a frozenset of names, a tuple of prefixes).
    fn strings(items: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
        items
            .try_iter()?
            .map(|item| item?.extract::<String>())
            .collect()
    }

    fn tracking_from(
        params: Option<Bound<'_, PyAny>>,
        prefixes: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Tracking> {
        let default = Tracking::default();
        Ok(Tracking {
            params: params
                .as_ref()
                .map(strings)
                .transpose()?
                .unwrap_or(default.params),
            prefixes: prefixes
                .as_ref()
                .map(strings)
                .transpose()?
                .unwrap_or(default.prefixes),
        })
    }

    #[pyfunction(name = "resolve_href")]
    fn py_resolve_href(
        href: Bound<'_, PyString>,
        base: Option<Bound<'_, PyString>>,
    ) -> PyResult<Option<String>> {
        let (href, base) = (usv(&href)?, usv_opt(&base)?);
        Ok(guarded(None, || resolve_href(&href, base.as_deref())))
    }

    #[pyfunction(name = "normalize_url")]
    #[pyo3(signature = (url, *, tracking_params=None, tracking_prefixes=None))]
    fn py_normalize_url(
        url: Bound<'_, PyString>,
        tracking_params: Option<Bound<'_, PyAny>>,
        tracking_prefixes: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Option<String>> {
        let url = usv(&url)?;
        let tracking = tracking_from(tracking_params, tracking_prefixes)?;
        Ok(guarded(None, || normalize_url(&url, &tracking)))
    }

    #[pyfunction(name = "resolve_link")]
    #[pyo3(signature = (href, base, *, tracking_params=None, tracking_prefixes=None))]
    fn py_resolve_link(
        href: Bound<'_, PyString>,
        base: Option<Bound<'_, PyString>>,
        tracking_params: Option<Bound<'_, PyAny>>,
        tracking_prefixes: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Option<String>> {
        let (href, base) = (usv(&href)?, usv_opt(&base)?);
        let link = match (tracking_params, tracking_prefixes) {
            (None, None) => DEFAULT_TRACKING
                .with(|tracking| guarded(None, || resolve_link(&href, base.as_deref(), tracking))),
            (params, prefixes) => {
                let tracking = tracking_from(params, prefixes)?;
                guarded(None, || resolve_link(&href, base.as_deref(), &tracking))
            }
        };
        Ok(link)
    }

    #[pyfunction(name = "is_skipped_href")]
    #[pyo3(signature = (href, same_document = true))]
    fn py_is_skipped_href(href: Bound<'_, PyString>, same_document: bool) -> PyResult<bool> {
        let href = usv(&href)?;
        Ok(guarded(true, || is_skipped_href(&href, same_document)))
    }

    #[pyfunction(name = "is_same_document")]
    fn py_is_same_document(base: Bound<'_, PyString>, url: Bound<'_, PyString>) -> PyResult<bool> {
        let (base, url) = (usv(&base)?, usv(&url)?);
        Ok(guarded(false, || is_same_document(&base, &url)))
    }

    /// `encode_query(href, label)`: *label* is a WHATWG label (LookupError if encoding_rs does not
    /// know it), as the page's decode takes.
    #[pyfunction(name = "encode_query")]
    fn py_encode_query(href: Bound<'_, PyString>, encoding: &str) -> PyResult<String> {
        let href = usv(&href)?;
        // A WHATWG label: pipelines/native.py's whatwg_label, the one map from Python's codec names.
        let Some(encoding) = Encoding::for_label(encoding.as_bytes()) else {
            // As Python: an unknown encoding fails only when a character is to be encoded.
            return match non_ascii_query(&href) {
                None => Ok(href.into_owned()),
                Some(_) => Err(PyLookupError::new_err(format!(
                    "unknown encoding: {encoding}"
                ))),
            };
        };
        Ok(guarded(href.to_string(), || {
            encode_query(&href, encoding).into_owned()
        }))
    }

    /// Adds the URL functions to the module.
    pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add_function(wrap_pyfunction!(py_resolve_href, m)?)?;
        m.add_function(wrap_pyfunction!(py_normalize_url, m)?)?;
        m.add_function(wrap_pyfunction!(py_resolve_link, m)?)?;
        m.add_function(wrap_pyfunction!(py_is_skipped_href, m)?)?;
        m.add_function(wrap_pyfunction!(py_is_same_document, m)?)?;
        m.add_function(wrap_pyfunction!(py_encode_query, m)?)?;
        Ok(())
    }
}
