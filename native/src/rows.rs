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
    // A page links to the same href many times (an image and a title per card).
    let mut resolved: foldhash::HashMap<String, Option<String>> =
        foldhash::HashMap::with_capacity_and_hasher(links.len(), Default::default());
    let mut nodes = Vec::new();
    let mut out = Columns::default();
    for (node, (href, tag, rel, title, text, is_image, alts)) in links {
        let found = match resolved.get(&href) {
            Some(found) => found.clone(),
            None => {
                let found = target(&href, &base, same_document, &tracking);
                resolved.insert(href.clone(), found.clone());
                found
            }
        };
        let Some(target) = found else {
            continue;
        };
        if chars(&target) > MAX_URL_CHARS {
            out.long = true;
            continue;
        }
        nodes.push(node);
        out.hrefs.push(href);
        out.push(
            target,
            tag,
            rel.as_deref(),
            title.as_deref(),
            &text,
            is_image,
            &alts,
        );
    }
    (nodes, out)
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
        text: &str,
        is_image: bool,
        alts: &[String],
    ) {
        let text = collapse_ws(text);
        let mut anchor = if text.is_empty() && !alts.is_empty() {
            // The same image twice (a lazy-load <img> and its <noscript> copy) is one label.
            let mut distinct: Vec<&str> = Vec::new();
            for alt in alts {
                if !distinct.contains(&alt.as_str()) {
                    distinct.push(alt);
                }
            }
            collapse_ws(&distinct.join(" "))
        } else {
            text.clone()
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
        if text != anchor {
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
