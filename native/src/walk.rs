//! The per-page walk: decode, parse, flatten what nests too deep, then one walk that finds
//! the page's fields and its links with their anchor text as rendered. Mirrors
//! `pipelines/extract.py` (`parse_page`, `_extract`, `_flatten_deep`, `_foreign_links`) and
//! `pipelines/linktext.py` (`anchor_parts`); Python resolves the hrefs and builds the rows.
//! Pure Rust (no Python): `src/extract.rs` binds it, `fuzz/` fuzzes it.
use encoding_rs::Encoding;
use html5ever::tendril::StrTendril;
use html5ever::{local_name, ns, Attribute, LocalName, QualName};
use std::borrow::Cow;

use crate::arena::{parse, Arena, Data, Element, NONE};

/// Bytes parsed at most (pipelines/extract.py MAX_PARSE_BYTES: Python cuts first; this is the
/// core's own bound).
const MAX_PARSE_BYTES: usize = 8 * 1024 * 1024;
/// UTF-8 bytes of a page Python decoded parsed at most (4 a byte of MAX_PARSE_BYTES).
const MAX_DECODED_BYTES: usize = 4 * MAX_PARSE_BYTES;
/// pipelines/extract.py MAX_LINKS_PER_PAGE, MAX_ALTERNATES, MAX_DOM_DEPTH.
pub(crate) const MAX_LINKS_PER_PAGE: usize = 100_000;
pub(crate) const MAX_ALTERNATES: usize = 200;
const MAX_DOM_DEPTH: usize = 256;
/// `<meta>` charset declarations of the head reported at most (Python takes the first that
/// names an encoding).
const MAX_HEAD_METAS: usize = 64;

/// One link: href, tag, rel, title attribute, anchor text (not collapsed), wraps an image,
/// the images' alt texts.
pub type LinkRow = (
    String,
    &'static str,
    Option<String>,
    Option<String>,
    String,
    bool,
    Vec<String>,
);
type Text = Option<String>;
type Alternates = Vec<(String, String)>;
/// title, base href, canonical href, robots contents, hreflang alternates, links cut,
/// the head's charset `<meta>` tags (serialized), flattened, links.
pub type PageRow = (
    Text,
    Text,
    Text,
    Vec<String>,
    Alternates,
    bool,
    Vec<String>,
    bool,
    Vec<LinkRow>,
);
/// The page's fields of a walk over lexbor's tree (`PageRow`'s first six).
pub type Fields = (Text, Text, Text, Vec<String>, Alternates, bool);

/// Python's `str.isspace` (Rust's `char::is_whitespace` plus the separators U+001C..U+001F).
pub(crate) fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()`: ASCII spaces byte by byte (most text: the `\n    ` between
/// tags), then, at an end that is not ASCII, `py_space` char by char.
pub(crate) fn py_strip(s: &str) -> &str {
    let ascii_space = |c: u8| matches!(c, b'\t'..=b'\r' | b'\x1c'..=b'\x1f' | b' ');
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && ascii_space(b[i]) {
        i += 1;
    }
    let mut j = b.len();
    while j > i && ascii_space(b[j - 1]) {
        j -= 1;
    }
    let inner = &s[i..j]; // (ASCII bytes trimmed: on char boundaries)
    match (inner.as_bytes().first(), inner.as_bytes().last()) {
        (Some(&first), Some(&last)) if first >= 0x80 || last >= 0x80 => {
            inner.trim_matches(py_space)
        }
        _ => inner,
    }
}

/// pipelines/linktext.py `is_hidden`: a `hidden` attribute hides but `until-found`.
fn is_hidden(e: &Element) -> bool {
    match e.attr("hidden") {
        None => false,
        Some(v) => v.to_lowercase() != "until-found",
    }
}

/// Elements whose text a reader does not see in a link (linktext.py `_HIDDEN`).
pub(crate) fn unrendered(name: &str) -> bool {
    matches!(
        name,
        "script"
            | "style"
            | "template"
            | "head"
            | "title"
            | "desc"
            | "metadata"
            | "rp"
            | "datalist"
            | "textarea"
            | "video"
            | "audio"
            | "iframe"
            | "noembed"
            | "noframes"
    )
}

/// Elements whose edges separate words (linktext.py `_BLOCKS`).
pub(crate) fn block(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "body"
            | "br"
            | "caption"
            | "center"
            | "dd"
            | "details"
            | "dialog"
            | "dir"
            | "div"
            | "dl"
            | "dt"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "footer"
            | "form"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "header"
            | "hgroup"
            | "hr"
            | "legend"
            | "li"
            | "listing"
            | "main"
            | "menu"
            | "nav"
            | "ol"
            | "optgroup"
            | "option"
            | "p"
            | "plaintext"
            | "pre"
            | "search"
            | "section"
            | "summary"
            | "svg"
            | "table"
            | "td"
            | "th"
            | "tr"
            | "ul"
            | "xmp"
    )
}

/// What anchor text reads of a tree: the arena's (here) and lexbor's (lexbor.rs) answer alike,
/// so one `anchor_parts` serves both walks.
pub(crate) trait Dom {
    type Node: Copy;
    fn first_child(&self, node: Self::Node) -> Option<Self::Node>;
    fn next(&self, node: Self::Node) -> Option<Self::Node>;
    /// A text node's text; None for any other node.
    fn text_of_node(&self, node: Self::Node) -> Option<Cow<'_, str>>;
    /// An element's tag; None for any other node (text, comments).
    fn tag(&self, node: Self::Node) -> Option<Cow<'_, str>>;
    /// Whether the element has the attribute, with or without a value.
    fn has_attr(&self, node: Self::Node, key: &str) -> bool;
    /// The attribute's value; None if absent or valueless.
    fn attr_value(&self, node: Self::Node, key: &str) -> Option<Cow<'_, str>>;
    /// Hidden by the `hidden` attribute (UA style), as linktext.py `is_hidden`.
    fn hidden(&self, node: Self::Node) -> bool;
}

enum Step<N> {
    Node(N),
    /// A node walked without its following siblings (a closed `<details>`'s summary).
    Alone(N),
    BlockEnd,
}

/// linktext.py `anchor_parts`: the visible text of a link (not collapsed), whether it wraps
/// an image, and the images' alt texts.
pub(crate) fn anchor_parts<D: Dom>(dom: &D, link: D::Node) -> (String, bool, Vec<String>) {
    let mut text = String::new();
    let mut alts = Vec::new();
    let mut is_image = false;
    let Some(first) = dom.first_child(link) else {
        return (text, false, alts);
    };
    let mut stack = vec![Step::Node(first)];
    while let Some(step) = stack.pop() {
        let node = match step {
            Step::BlockEnd => {
                text.push(' ');
                continue;
            }
            Step::Alone(node) => node,
            Step::Node(node) => {
                if let Some(next) = dom.next(node) {
                    stack.push(Step::Node(next));
                }
                node
            }
        };
        if let Some(t) = dom.text_of_node(node) {
            text.push_str(&t);
            continue;
        }
        let Some(name) = dom.tag(node) else {
            continue; // comments
        };
        if unrendered(&name) || dom.hidden(node) {
            continue;
        }
        if (name == "dialog" || name == "details") && !dom.has_attr(node, "open") {
            if name == "details" {
                if let Some(summary) = summary_of(dom, node) {
                    text.push(' ');
                    stack.push(Step::BlockEnd);
                    stack.push(Step::Alone(summary));
                }
            }
            continue;
        }
        if name == "img" {
            is_image = true;
            if let Some(alt) = dom.attr_value(node, "alt").filter(|a| !a.is_empty()) {
                alts.push(alt.into_owned());
            }
            continue;
        }
        let child = dom.first_child(node);
        if block(&name) {
            text.push(' ');
            if child.is_some() {
                stack.push(Step::BlockEnd);
            }
        }
        if let Some(child) = child {
            stack.push(Step::Node(child));
        }
    }
    (text, is_image, alts)
}

fn summary_of<D: Dom>(dom: &D, details: D::Node) -> Option<D::Node> {
    let mut cur = dom.first_child(details);
    while let Some(node) = cur {
        if dom.tag(node).is_some_and(|t| t == "summary") {
            return Some(node);
        }
        cur = dom.next(node);
    }
    None
}

impl Dom for Arena {
    type Node = u32;

    fn first_child(&self, node: u32) -> Option<u32> {
        let child = self.nodes[node as usize].first_child;
        (child != NONE).then_some(child)
    }

    fn next(&self, node: u32) -> Option<u32> {
        let next = self.nodes[node as usize].next;
        (next != NONE).then_some(next)
    }

    fn text_of_node(&self, node: u32) -> Option<Cow<'_, str>> {
        match &self.nodes[node as usize].data {
            Data::Text(t) => Some(Cow::Borrowed(&**t)),
            _ => None,
        }
    }

    fn tag(&self, node: u32) -> Option<Cow<'_, str>> {
        self.nodes[node as usize]
            .element()
            .map(|e| Cow::Borrowed(e.local()))
    }

    fn has_attr(&self, node: u32, key: &str) -> bool {
        self.nodes[node as usize]
            .element()
            .is_some_and(|e| e.attr(key).is_some())
    }

    fn attr_value(&self, node: u32, key: &str) -> Option<Cow<'_, str>> {
        let value = self.nodes[node as usize].element()?.attr(key)?;
        Some(Cow::Borrowed(value))
    }

    fn hidden(&self, node: u32) -> bool {
        self.nodes[node as usize].element().is_some_and(is_hidden)
    }
}

/// The text of the descendants of *id*, in document order (lexbor's `node.text()`).
fn text_of(arena: &Arena, id: u32) -> String {
    let mut out = String::new();
    let mut stack = vec![arena.nodes[id as usize].first_child];
    while let Some(cur) = stack.pop() {
        if cur == NONE {
            continue;
        }
        let node = &arena.nodes[cur as usize];
        stack.push(node.next);
        if let Data::Text(t) = &node.data {
            out.push_str(t);
        }
        stack.push(node.first_child);
    }
    out
}

/// The attribute's name as lexbor spells it (`xlink:href` in SVG).
fn attr_key(a: &Attribute) -> String {
    match &a.name.prefix {
        Some(p) => format!("{}:{}", &**p, &*a.name.local),
        None => a.name.local.to_string(),
    }
}

/// extract.py `_ATTR_NAME`: `[a-zA-Z_:][-a-zA-Z0-9_:.]*`.
fn plain_attr_name(k: &str) -> bool {
    let mut chars = k.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
}

/// Where SVG or MathML children are HTML again (extract.py `_HTML_AGAIN`, both namespaces).
fn html_again_any(name: &str) -> bool {
    matches!(
        name,
        "foreignObject" | "desc" | "title" | "mi" | "mo" | "mn" | "ms" | "mtext" | "annotation-xml"
    )
}

/// What a flattened element keeps of its content (extract.py `_flat_html`).
enum Flat {
    Text(String),
    Link(Vec<(String, String)>, String, bool, Vec<String>),
    Area(Vec<(String, String)>),
}

fn flat_attrs(e: &Element) -> Vec<(String, String)> {
    e.attrs
        .iter()
        .map(|a| (attr_key(a), a.value.to_string()))
        .filter(|(k, _)| plain_attr_name(k))
        .collect()
}

/// extract.py `_flat_html`: the links (with their anchor text and images) and the visible
/// text under *cut*, in document order.
fn flat_items(arena: &Arena, cut: u32) -> Vec<Flat> {
    let nodes = &arena.nodes;
    let mut out: Vec<Flat> = Vec::new();
    let mut stack = vec![(nodes[cut as usize].first_child, false)];
    while let Some((cur, foreign)) = stack.pop() {
        if cur == NONE {
            continue;
        }
        let node = &nodes[cur as usize];
        stack.push((node.next, foreign));
        let e = match &node.data {
            Data::Text(t) => {
                match out.last_mut() {
                    Some(Flat::Text(s)) => s.push_str(t),
                    _ => out.push(Flat::Text(t.to_string())),
                }
                continue;
            }
            Data::Element(e) => e,
            _ => continue,
        };
        let name = e.local();
        let not_text = matches!(
            name,
            "script" | "style" | "template" | "textarea" | "title" | "noembed" | "noframes"
        );
        if not_text || is_hidden(e) {
            continue;
        }
        if (name == "a" || name == "area") && !foreign && e.attr("href").is_some() {
            if name == "area" {
                out.push(Flat::Area(flat_attrs(e)));
            } else {
                let (text, is_image, alts) = anchor_parts(arena, cur);
                out.push(Flat::Link(flat_attrs(e), text, is_image, alts));
            }
            continue;
        }
        let inner = if name == "svg" || name == "math" {
            true
        } else if foreign && html_again_any(name) {
            false
        } else {
            foreign
        };
        stack.push((node.first_child, inner));
    }
    out
}

fn new_element(arena: &mut Arena, local: LocalName, attrs: Vec<(String, String)>) -> u32 {
    let attrs = attrs
        .into_iter()
        .map(|(k, v)| Attribute {
            name: QualName::new(None, ns!(), LocalName::from(k)),
            value: StrTendril::from(v),
        })
        .collect();
    let name = QualName::new(None, ns!(html), local);
    arena.push(Data::Element(Box::new(Element {
        name,
        attrs,
        template: NONE,
        annotation_html: false,
    })))
}

/// extract.py `_flatten_deep`: the content of each element at depth *max_depth* is replaced
/// by a `<span>` of its links and text, side by side. True if any element was.
fn flatten_deep(arena: &mut Arena, max_depth: usize) -> bool {
    let root = arena.root();
    if root == NONE {
        return false;
    }
    let mut cuts = Vec::new();
    let mut stack = vec![(root, 0usize)];
    while let Some((id, depth)) = stack.pop() {
        let mut child = arena.nodes[id as usize].first_child;
        if child == NONE {
            continue;
        }
        if depth >= max_depth {
            cuts.push(id);
            continue;
        }
        while child != NONE {
            stack.push((child, depth + 1));
            child = arena.nodes[child as usize].next;
        }
    }
    for &cut in &cuts {
        let items = flat_items(arena, cut);
        let node = &mut arena.nodes[cut as usize];
        node.first_child = NONE; // the old content is left unreachable in the arena
        node.last_child = NONE;
        let span = new_element(arena, local_name!("span"), Vec::new());
        arena.append(cut, span);
        for item in items {
            match item {
                Flat::Text(t) => arena.append_text(span, &t),
                Flat::Area(attrs) => {
                    let area = new_element(arena, local_name!("area"), attrs);
                    arena.append(span, area);
                }
                Flat::Link(attrs, text, is_image, alts) => {
                    let a = new_element(arena, local_name!("a"), attrs);
                    arena.append(span, a);
                    if !text.is_empty() {
                        arena.append_text(a, &text);
                    }
                    let bare = is_image && alts.is_empty();
                    for alt in alts.into_iter().map(Some).chain(bare.then_some(None)) {
                        let img = new_element(
                            arena,
                            local_name!("img"),
                            alt.map(|v| vec![("alt".to_string(), v)])
                                .unwrap_or_default(),
                        );
                        arena.append(a, img);
                    }
                }
            }
        }
    }
    !cuts.is_empty()
}

/// `<meta ...>` as lexbor serializes it (what `encoding_of_meta` reads).
fn serialize_meta(e: &Element) -> String {
    let mut out = String::from("<meta");
    for a in &e.attrs {
        out.push(' ');
        out.push_str(&attr_key(a));
        out.push_str("=\"");
        for c in a.value.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '"' => out.push_str("&quot;"),
                '\u{a0}' => out.push_str("&nbsp;"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('>');
    out
}

pub(crate) fn rel_has(rel: &str, token: &str) -> bool {
    rel.to_lowercase()
        .split(['\t', '\n', '\x0c', '\r', ' '])
        .any(|t| t == token)
}

pub(crate) const OUTSIDE: u8 = 0;
const IN_SVG: u8 = 1;
const IN_MATH: u8 = 2;

/// Per element of the walk, what its ancestors decide: the nearest `<svg>`/`<math>` (its
/// kind), whether an HTML integration point lies between (then an `<a>` is HTML again), and
/// whether it is in the `<head>`.
#[derive(Clone, Copy)]
pub(crate) struct Scope {
    pub(crate) kind: u8,
    pub(crate) html_again: bool,
    pub(crate) in_head: bool,
}

pub(crate) const TOP: Scope = Scope {
    kind: OUTSIDE,
    html_again: false,
    in_head: false,
};

fn child_scope(s: Scope, id: u32, head: u32, e: &Element) -> Scope {
    scope_under(s, id == head, e.local(), || e.attr("encoding"))
}

/// The scope of the children of element *name* (in scope *s*; *is_head*: it is the page's
/// `<head>`; *encoding*: its `encoding` attribute, asked only of an `annotation-xml`).
pub(crate) fn scope_under<'a>(
    s: Scope,
    is_head: bool,
    name: &str,
    encoding: impl FnOnce() -> Option<&'a str>,
) -> Scope {
    let in_head = s.in_head || is_head;
    match name {
        "svg" => {
            return Scope {
                kind: IN_SVG,
                html_again: false,
                in_head,
            }
        }
        "math" => {
            return Scope {
                kind: IN_MATH,
                html_again: false,
                in_head,
            }
        }
        _ => {}
    }
    let again = match s.kind {
        IN_SVG => matches!(name, "foreignObject" | "desc" | "title"),
        IN_MATH => {
            matches!(name, "mi" | "mo" | "mn" | "ms" | "mtext")
                || (name == "annotation-xml"
                    && matches!(
                        py_strip(encoding().unwrap_or("")).to_lowercase().as_str(),
                        "text/html" | "application/xhtml+xml"
                    ))
        }
        _ => false,
    };
    Scope {
        kind: s.kind,
        html_again: s.html_again || again,
        in_head,
    }
}

fn head_of(arena: &Arena) -> u32 {
    let root = arena.root();
    if root == NONE {
        return NONE;
    }
    let mut cur = arena.nodes[root as usize].first_child;
    while cur != NONE {
        let node = &arena.nodes[cur as usize];
        if node
            .element()
            .is_some_and(|e| e.name.ns == ns!(html) && e.name.local == local_name!("head"))
        {
            return cur;
        }
        cur = node.next;
    }
    NONE
}

/// extract.py `_extract`'s walk, in one preorder pass over the arena.
fn walk(arena: &Arena) -> PageRow {
    let nodes = &arena.nodes;
    let head = head_of(arena);
    let (mut title, mut base, mut canonical) = (None, None, None);
    let mut robots = Vec::new();
    let mut alternates = Vec::new();
    let mut metas = Vec::new();
    let mut links: Vec<(u32, &'static str)> = Vec::new();
    let mut truncated = false;
    let mut stack = vec![(nodes[0].first_child, TOP)];
    while let Some((id, scope)) = stack.pop() {
        if id == NONE {
            continue;
        }
        let node = &nodes[id as usize];
        stack.push((node.next, scope));
        let Some(e) = node.element() else { continue };
        match e.local() {
            tag @ ("a" | "area") => {
                let foreign = tag == "a" && scope.kind != OUTSIDE && !scope.html_again;
                if e.attr("href").is_some() && !foreign {
                    if links.len() < MAX_LINKS_PER_PAGE {
                        links.push((id, if tag == "a" { "a" } else { "area" }));
                    } else {
                        truncated = true;
                    }
                }
            }
            "title" if title.is_none() && scope.kind == OUTSIDE => title = Some(text_of(arena, id)),
            "base" if base.is_none() => base = e.attr("href").map(str::to_string),
            "link" => {
                if let (Some(rel), Some(href)) = (e.attr("rel"), e.attr("href")) {
                    if canonical.is_none() && rel_has(rel, "canonical") {
                        canonical = Some(href.to_string());
                    }
                    if let Some(lang) = e.attr("hreflang") {
                        if rel_has(rel, "alternate") && alternates.len() < MAX_ALTERNATES {
                            alternates.push((lang.to_string(), href.to_string()));
                        }
                    }
                }
            }
            "meta" => {
                let declares = e.attr("charset").is_some()
                    || (e.attr("http-equiv").is_some() && e.attr("content").is_some());
                if scope.in_head && declares && metas.len() < MAX_HEAD_METAS {
                    metas.push(serialize_meta(e));
                }
                if let (Some(name), Some(content)) = (e.attr("name"), e.attr("content")) {
                    let name = py_strip(name).to_lowercase();
                    if (name == "robots" || name == "googlebot") && !content.is_empty() {
                        robots.push(py_strip(content).to_string());
                    }
                }
            }
            _ => {}
        }
        if node.first_child != NONE {
            stack.push((node.first_child, child_scope(scope, id, head, e)));
        }
    }
    let rows = links
        .into_iter()
        .map(|(id, tag)| {
            let e = nodes[id as usize].element().expect("a link is an element");
            let href = e.attr("href").unwrap_or("").to_string();
            let rel = e.attr("rel").map(str::to_string);
            let title = e.attr("title").map(str::to_string);
            let (text, is_image, alts) = if tag == "area" {
                (
                    String::new(),
                    false,
                    vec![e.attr("alt").unwrap_or("").to_string()],
                )
            } else {
                anchor_parts(arena, id)
            };
            (href, tag, rel, title, text, is_image, alts)
        })
        .collect();
    (
        title, base, canonical, robots, alternates, truncated, metas, false, rows,
    )
}

/// *body* decoded with the encoding of WHATWG label *label* (None: no such label; one copy: a valid UTF-8 body is borrowed, then copied into the tendril).
pub fn decode(body: &[u8], label: &str) -> Option<StrTendril> {
    let body = &body[..body.len().min(MAX_PARSE_BYTES)];
    let encoding = Encoding::for_label(label.as_bytes())?;
    Some(StrTendril::from_slice(
        &encoding.decode_without_bom_handling(body).0,
    ))
}

/// The page's fields and links (see `PageRow`) of *body*, decoded with *label* (None: no such
/// label); *flatten*: flatten what nests deeper than MAX_DOM_DEPTH (`_flatten_deep`).
pub fn extract(body: &[u8], label: &str, flatten: bool) -> Option<PageRow> {
    Some(extract_text(decode(body, label)?, flatten))
}

/// `extract` of a page Python decoded (a codec encoding_rs lacks) from at most
/// MAX_PARSE_BYTES bytes: *text* is its UTF-8, longer than them (up to 3 bytes a byte), so it
/// is cut only at MAX_DECODED_BYTES, which such a text never reaches.
pub fn extract_decoded(text: &[u8], flatten: bool) -> PageRow {
    let text = &text[..text.len().min(MAX_DECODED_BYTES)];
    extract_text(
        StrTendril::from_slice(&String::from_utf8_lossy(text)),
        flatten,
    )
}

fn extract_text(text: StrTendril, flatten: bool) -> PageRow {
    let mut arena = parse(text);
    let flattened = flatten && flatten_deep(&mut arena, MAX_DOM_DEPTH);
    let mut page = walk(&arena);
    page.7 = flattened;
    page
}

/// The parse alone: the arena's node count.
pub fn parse_only(body: &[u8]) -> usize {
    parse(decode(body, "utf-8").unwrap_or_default()).nodes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn py_strip_is_trim_matches_py_space() {
        // Every string of up to 5 of these: ASCII spaces and separators, letters, and the
        // Unicode spaces Python strips (NBSP, NEL, ideographic, line separator).
        let chars = [
            ' ', '\t', '\n', '\x0b', '\x1c', '\x1f', 'a', 'é', '\u{a0}', '\u{85}', '\u{3000}',
            '\u{2028}', '\x08', '!',
        ];
        let mut strings = vec![String::new()];
        for _ in 0..5 {
            let longer: Vec<String> = strings
                .iter()
                .flat_map(|s| chars.iter().map(move |c| format!("{s}{c}")))
                .collect();
            for s in &longer {
                assert_eq!(py_strip(s), s.trim_matches(py_space), "{s:?}");
            }
            strings = longer;
        }
    }
}
