//! A page's link rows from its walk's raw links, every column but placement:
//! `pipelines/extract.py` `link_targets` (hrefs resolved, normalized, skipped) and
//! `append_links` (anchor, title, rel and its flags, cut at MAX_TEXT_CHARS), one for one, and
//! `collapse_ws`/`split_rel`. Handed to Python as columns (plain lists): one Python object per
//! cell, none per row. Pure Rust (no Python, no lexbor).
use crate::urls::{is_same_document, is_skipped_href, resolve_href, resolve_link, Tracking};
use crate::walk::{py_space, py_strip, LinkRow};

/// pipelines/extract.py MAX_TEXT_CHARS, MAX_URL_CHARS (in characters, as Python counts).
const MAX_TEXT_CHARS: usize = 4096;
const MAX_URL_CHARS: usize = 8192;

/// The kept links' columns, in order (`position` is the index). `texts`: where the text
/// placement reads differs from the anchor (an image's alt taken, or a cut): (index, text).
#[derive(Default)]
pub struct Columns {
    pub targets: Vec<String>,
    pub anchors: Vec<String>,
    pub titles: Vec<Option<String>>,
    pub rels: Vec<Vec<String>>,
    pub nofollow: Vec<bool>,
    pub sponsored: Vec<bool>,
    pub ugc: Vec<bool>,
    pub is_image: Vec<bool>,
    pub tags: Vec<&'static str>,
    pub texts: Vec<(usize, String)>,
    /// A string was cut or a link dropped for its length ("long_strings").
    pub long: bool,
    /// Each kept link's href as the walk read it (placement's `_internal` reads it).
    pub hrefs: Vec<String>,
}

/// `collapse_ws` of an owned *text*, in its own buffer (no allocation): each word moved
/// down to follow the last, one space between. The same string as `collapse_ws`.
pub fn collapse_owned(text: String) -> String {
    let ascii_space = |b: u8| matches!(b, b'\t'..=b'\r' | b'\x1c'..=b'\x1f' | b' ');
    // Already collapsed (most short anchors): kept as it is.
    let bytes = text.as_bytes();
    let collapsed = bytes.is_ascii()
        && bytes.first().is_none_or(|&b| !ascii_space(b))
        && bytes.last().is_none_or(|&b| !ascii_space(b))
        && !bytes
            .windows(2)
            .any(|w| ascii_space(w[1]) && (w[1] != b' ' || ascii_space(w[0])));
    if collapsed {
        return text;
    }
    let mut bytes = text.into_bytes();
    let (mut write, mut read) = (0, 0);
    loop {
        // SAFETY: the bytes from *read* on are the text's own, unmoved, from a char boundary
        // (writes land below *read*: each word moves down by the spaces dropped before it).
        let rest = unsafe { std::str::from_utf8_unchecked(&bytes[read..]) };
        let Some(start) = rest.find(|c: char| !py_space(c)) else {
            break;
        };
        let end = rest[start..]
            .find(py_space)
            .map_or(rest.len(), |e| start + e);
        let (start, end) = (read + start, read + end);
        if write > 0 {
            bytes[write] = b' ';
            write += 1;
        }
        bytes.copy_within(start..end, write);
        write += end - start;
        read = end;
    }
    bytes.truncate(write);
    // SAFETY: what was written is whole words of the text, one ASCII space between two.
    unsafe { String::from_utf8_unchecked(bytes) }
}

/// linktext.py `collapse_ws`: `" ".join(text.split())`.
pub fn collapse_ws(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split(py_space).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// extract.py `split_rel` of an ASCII rel: lowercased tokens split on ASCII whitespace,
/// repeats dropped. (Python lowercases the others: no Unicode table here is every Python's.)
pub fn split_rel(rel: Option<&str>) -> Vec<String> {
    let mut tokens: Vec<String> = Vec::new();
    let lowered = rel.unwrap_or_default().to_ascii_lowercase();
    for token in lowered.split(['\t', '\n', '\x0c', '\r', ' ']) {
        if !token.is_empty() && !tokens.iter().any(|t| t == token) {
            tokens.push(token.to_string());
        }
    }
    tokens
}

/// Python's `len(text)`.
fn chars(text: &str) -> usize {
    if text.is_ascii() {
        text.len()
    } else {
        text.chars().count()
    }
}

/// Python's `text[:max]`, and whether it cut.
fn cut(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false; // (no more characters than bytes)
    }
    match text.char_indices().nth(max) {
        Some((end, _)) => {
            text.truncate(end);
            true
        }
        None => false,
    }
}

/// extract.py `_cap_tokens`: the first tokens that fit in MAX_TEXT_CHARS (the first cut).
fn cap_tokens(tokens: Vec<String>) -> Vec<String> {
    let mut room = MAX_TEXT_CHARS;
    let mut kept = Vec::new();
    for token in &tokens {
        let len = chars(token);
        if len > room {
            break;
        }
        kept.push(token.clone());
        room -= len;
    }
    if kept.is_empty() {
        let mut first = tokens.into_iter().next().unwrap_or_default();
        cut(&mut first, MAX_TEXT_CHARS);
        kept.push(first);
    }
    kept
}

/// extract.py `link_targets`' per-href answer: the target, None when the href makes no link.
/// (No `encode_query`: Python builds the rows of a legacy-encoded page whose hrefs need it.)
fn target(href: &str, base: &str, same_document: bool, tracking: &Tracking) -> Option<String> {
    if (href.starts_with("http://") || href.starts_with("https://")) && chars(href) <= MAX_URL_CHARS
    {
        return resolve_link(href, None, tracking); // does not depend on the base
    }
    if is_skipped_href(href, same_document) {
        return None;
    }
    resolve_link(href, Some(base), tracking)
}

/// extract.py `page_fields`' base: the first `<base href>` resolved against the page, else
/// the page's URL.
pub fn base_url(base_href: Option<&str>, page_url: &str) -> String {
    base_href
        .and_then(|href| resolve_href(py_strip(href), Some(page_url)))
        .unwrap_or_else(|| page_url.to_string())
}

/// The rows of *links* (with each its node) on the page at *page_url* under *base_href*: the
/// columns, and each kept link's node.
pub fn link_rows<N: Copy>(
    links: Vec<(N, LinkRow)>,
    base_href: Option<&str>,
    page_url: &str,
) -> (Vec<N>, Columns) {
    let base = base_url(base_href, page_url);
    let same_document = base == page_url || is_same_document(&base, page_url);
    let tracking = Tracking::default();
    // A page links to the same href many times (an image and a title per card): each href's
    // answer by the row that took its target first (borrowed keys: no copies kept).
    let mut resolved: foldhash::HashMap<&str, Seen> =
        foldhash::HashMap::with_capacity_and_hasher(links.len(), Default::default());
    let mut links = links;
    let mut kept = Vec::with_capacity(links.len());
    let mut out = Columns::default();
    for (at, (_, (href, tag, rel, title, text, is_image, alts))) in links.iter_mut().enumerate() {
        let href = shared(href);
        let target = match resolved.get(href.as_str()) {
            Some(Seen::Skipped) => continue,
            Some(Seen::Long) => {
                out.long = true;
                continue;
            }
            Some(&Seen::Row(row)) => out.targets[row].clone(),
            None => match target(href, &base, same_document, &tracking) {
                None => {
                    resolved.insert(href, Seen::Skipped);
                    continue;
                }
                Some(target) if chars(&target) > MAX_URL_CHARS => {
                    resolved.insert(href, Seen::Long);
                    out.long = true;
                    continue;
                }
                Some(target) => {
                    resolved.insert(href, Seen::Row(out.targets.len()));
                    target
                }
            },
        };
        kept.push(at);
        out.push(
            target,
            tag,
            rel.as_deref(),
            title.as_deref(),
            std::mem::take(text),
            *is_image,
            alts,
        );
    }
    drop(resolved);
    // The kept links' nodes and hrefs, moved out of them.
    let mut nodes = Vec::with_capacity(kept.len());
    out.hrefs.reserve_exact(kept.len());
    for at in kept {
        let (node, row) = &mut links[at];
        nodes.push(*node);
        out.hrefs.push(std::mem::take(&mut row.0));
    }
    (nodes, out)
}

/// A mutable borrow made shared for as long as it lasts (a key kept in a map while the
/// row's other fields are taken).
fn shared<T>(value: &mut T) -> &T {
    value
}

/// What an href gave the first time it was met: no link, a target too long, or the target of
/// that row.
enum Seen {
    Skipped,
    Long,
    Row(usize),
}

impl Columns {
    /// extract.py `append_links`' row for one kept link.
    #[allow(clippy::too_many_arguments)] // one link's raw fields, as the walk gives them
    fn push(
        &mut self,
        target: String,
        tag: &'static str,
        rel: Option<&str>,
        title: Option<&str>,
        text: String,
        is_image: bool,
        alts: &[String],
    ) {
        let text = collapse_owned(text);
        // The anchor: the text, else the images' alts (then the text differs: it is kept).
        let (mut anchor, text) = if text.is_empty() && !alts.is_empty() {
            // The same image twice (a lazy-load <img> and its <noscript> copy) is one label.
            let mut distinct: Vec<&str> = Vec::new();
            for alt in alts {
                if !distinct.contains(&alt.as_str()) {
                    distinct.push(alt);
                }
            }
            (collapse_ws(&distinct.join(" ")), Some(text))
        } else {
            (text, None)
        };
        // A cut anchor differs from the text: the text is kept whole.
        let text = match text {
            None if chars(&anchor) > MAX_TEXT_CHARS => Some(anchor.clone()),
            other => other,
        };
        let mut title = title.filter(|t| !t.is_empty()).map(collapse_ws);
        let mut rel = split_rel(rel);
        let has = |token: &str| rel.iter().any(|t| t == token);
        let (nofollow, sponsored, ugc) = (has("nofollow"), has("sponsored"), has("ugc"));
        self.long |= cut(&mut anchor, MAX_TEXT_CHARS);
        self.long |= title.as_mut().is_some_and(|t| cut(t, MAX_TEXT_CHARS));
        if rel.iter().map(|t| chars(t)).sum::<usize>() > MAX_TEXT_CHARS {
            rel = cap_tokens(rel);
            self.long = true;
        }
        if let Some(text) = text.filter(|t| *t != anchor) {
            self.texts.push((self.targets.len(), text));
        }
        self.targets.push(target);
        self.anchors.push(anchor);
        self.titles.push(title);
        self.rels.push(rel);
        self.nofollow.push(nofollow);
        self.sponsored.push(sponsored);
        self.ugc.push(ugc);
        self.is_image.push(is_image);
        self.tags.push(tag);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapse_owned_is_collapse_ws() {
        let parts = [
            "", " ", "  ", "a", "bc", "\n", "\t ", "\u{a0}", "é", "\u{3000}", "\x1c", "x y",
        ];
        let mut texts = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = texts
                .iter()
                .flat_map(|t| parts.iter().map(move |p| format!("{t}{p}")))
                .collect();
            for text in &longer {
                assert_eq!(collapse_owned(text.clone()), collapse_ws(text), "{text:?}");
            }
            texts = longer;
        }
    }

    #[test]
    fn python_examples() {
        assert_eq!(
            collapse_ws("  Hello\n\t wide\u{a0} world "),
            "Hello wide world"
        );
        assert_eq!(
            split_rel(Some(" NoFollow\tEXTERNAL nofollow")),
            ["nofollow", "external"]
        );
        assert_eq!(split_rel(Some("external,nofollow")), ["external,nofollow"]);
        assert!(split_rel(None).is_empty());
        let long = "y".repeat(MAX_TEXT_CHARS + 10);
        assert_eq!(
            cap_tokens(vec![long, "ugc".into()])[0].len(),
            MAX_TEXT_CHARS
        );
    }
}
