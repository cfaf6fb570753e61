//! The byte-level nesting bounds of a page with many tags, before its parse:
//! `pipelines/extract.py` `_limit_nesting` then `_limit_open_elements`, one for one (the
//! Python functions stay the reference; tests/test_native.py compares their bytes). Their
//! regular expressions are read here by hand-written scanners that match the same spans.
//! Pure Rust; linear in the body (each scan moves forward; the stack steps are O(1) each).
use std::collections::HashMap;

use memchr::{memchr, memmem};

/// extract.py `_BLOCK_TAG_RE`'s tag names.
const BLOCKS: &[&[u8]] = &[
    b"address",
    b"article",
    b"aside",
    b"blockquote",
    b"center",
    b"details",
    b"dialog",
    b"dir",
    b"div",
    b"dl",
    b"fieldset",
    b"figcaption",
    b"figure",
    b"footer",
    b"form",
    b"h1",
    b"h2",
    b"h3",
    b"h4",
    b"h5",
    b"h6",
    b"header",
    b"hgroup",
    b"listing",
    b"main",
    b"menu",
    b"nav",
    b"ol",
    b"pre",
    b"search",
    b"section",
    b"summary",
    b"ul",
];
/// The longest of them and its delimiter: past that, no block name can end.
const MAX_BLOCK_NAME: usize = 11;

/// The bytes that end a tag name (`[\t\n\f\r />]`).
pub(crate) fn ends_name(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ' | b'/' | b'>')
}

/// One match of a tag pattern: its span, whether an end tag, its name (None: a comment).
struct Tag<'a> {
    start: usize,
    end: usize,
    closing: bool,
    name: Option<&'a [u8]>,
}

/// `[^>]*>?` from *at*: the end of the tag.
fn tag_end(s: &[u8], at: usize) -> usize {
    match memchr(b'>', &s[at..]) {
        Some(i) => at + i + 1,
        None => s.len(),
    }
}

/// Where *needle* is first in *s* from *from*.
fn find(s: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    memmem::find(s.get(from..)?, needle).map(|i| from + i)
}

/// The matches of `_TAG_RE` (`<(/?)([a-z][^\t\n\f\r />]*)[^>]*>?|<!--`) in *s* (lowercased),
/// in order, as `finditer` gives them; *lts*: every `<` of *s* (the marks pass found them: a
/// memchr search per `<` cost more than the visit).
struct Tags<'a> {
    s: &'a [u8],
    lts: &'a [usize],
    pos: usize,
}

impl<'a> Iterator for Tags<'a> {
    type Item = Tag<'a>;

    fn next(&mut self) -> Option<Tag<'a>> {
        let s = self.s;
        while let Some((&i, rest)) = self.lts.split_first() {
            self.lts = rest;
            if i < self.pos {
                continue; // inside the last match
            }
            let closing = s.get(i + 1) == Some(&b'/');
            let at = i + 1 + usize::from(closing);
            if s.get(at).is_some_and(u8::is_ascii_lowercase) {
                let name_end = (at..s.len()).find(|&k| ends_name(s[k])).unwrap_or(s.len());
                let end = tag_end(s, name_end);
                self.pos = end;
                let name = Some(&s[at..name_end]);
                return Some(Tag {
                    start: i,
                    end,
                    closing,
                    name,
                });
            }
            if s[i..].starts_with(b"<!--") {
                self.pos = i + 4;
                return Some(Tag {
                    start: i,
                    end: i + 4,
                    closing: false,
                    name: None,
                });
            }
            self.pos = i + 1;
        }
        self.pos = s.len();
        None
    }
}

/// Every `<` of *s* (for a caller without the marks).
fn lt_positions(s: &[u8]) -> Vec<usize> {
    memchr::memchr_iter(b'<', s).collect()
}

/// BLOCKS by their first byte: the bits of their indices.
static BLOCKS_BY_FIRST: [u64; 256] = {
    assert!(BLOCKS.len() <= 64);
    let mut by_first = [0u64; 256];
    let mut i = 0;
    while i < BLOCKS.len() {
        by_first[BLOCKS[i][0] as usize] |= 1 << i;
        i += 1;
    }
    by_first
};

/// `BLOCKS.contains(name)` (a name is compared with the few of its first byte, not all 33).
fn is_block(name: &[u8]) -> bool {
    let Some(&first) = name.first() else {
        return false;
    };
    let mut candidates = BLOCKS_BY_FIRST[first as usize];
    while candidates != 0 {
        let block = BLOCKS[candidates.trailing_zeros() as usize];
        candidates &= candidates - 1;
        if block == name {
            return true;
        }
    }
    false
}

/// The matches of `_BLOCK_TAG_RE` in *s* (lowercased) from *from*: (start, end, end tag);
/// *lts*: every `<` of *s*.
fn block_tags<'s>(
    s: &'s [u8],
    lts: &'s [usize],
    from: usize,
) -> impl Iterator<Item = (usize, usize, bool)> + 's {
    let mut pos = from;
    let mut lts = &lts[lts.partition_point(|&p| p < from)..];
    std::iter::from_fn(move || {
        while let Some((&i, rest)) = lts.split_first() {
            lts = rest;
            if i < pos {
                continue; // inside the last match
            }
            let closing = s.get(i + 1) == Some(&b'/');
            let at = i + 1 + usize::from(closing);
            let window = &s[at.min(s.len())..(at + MAX_BLOCK_NAME).min(s.len())];
            let Some(len) = window.iter().position(|&b| ends_name(b)) else {
                continue; // no delimiter right after a name: the look-ahead fails
            };
            if len > 0 && is_block(&s[at..at + len]) {
                pos = tag_end(s, at + len);
                return Some((i, pos, closing));
            }
        }
        None
    })
}

/// A buffer kept by a thread between pages past this is given back after use: most pages are
/// smaller, and a large one (up to the parse bound, 8 MiB) costs one allocation, not 8 MiB
/// held for the worker's life (review13-b13 2).
pub(crate) const KEPT_BUFFER_BYTES: usize = 1 << 20;

/// *f* of *body* lowercased (ASCII), in a buffer the thread keeps (a page's bounds lowercase
/// it up to four times: a new copy of a large body each time was an mmap and its page
/// faults); a new copy if the buffer is in use.
pub(crate) fn with_lowered<R>(body: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    thread_local! {
        static LOWERED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    LOWERED.with(|cell| {
        let Ok(mut buffer) = cell.try_borrow_mut() else {
            return f(&body.to_ascii_lowercase());
        };
        buffer.clear();
        buffer.extend_from_slice(body);
        buffer.make_ascii_lowercase();
        let out = f(&buffer);
        if buffer.capacity() > KEPT_BUFFER_BYTES {
            *buffer = Vec::new();
        }
        out
    })
}

/// *f* of *lowered* (*body* lowercased already) if given, else of `with_lowered`'s.
pub(crate) fn lowered_or<R>(body: &[u8], lowered: Option<&[u8]>, f: impl FnOnce(&[u8]) -> R) -> R {
    match lowered {
        Some(lowered) => f(lowered),
        None => with_lowered(body, f),
    }
}

/// `_cut_spans`: *body* without the sorted, disjoint spans of *drop*.
pub(crate) fn cut_spans(body: &[u8], drop: &[(usize, usize)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut last = 0;
    for &(start, end) in drop {
        out.extend_from_slice(&body[last..start]);
        last = end;
    }
    out.extend_from_slice(&body[last..]);
    out
}

/// `_limit_nesting`: from where block elements nest deeper than *max_depth*, the block tags
/// dropped. None: the body as it is.
pub fn limit_nesting(body: &[u8], max_depth: usize) -> Option<Vec<u8>> {
    limit_nesting_in(body, None, &lt_positions(body), max_depth)
}

/// `limit_nesting`, with *body* lowercased if the caller has it, and *lts*: every `<` of it.
pub(crate) fn limit_nesting_in(
    body: &[u8],
    lowered: Option<&[u8]>,
    lts: &[usize],
    max_depth: usize,
) -> Option<Vec<u8>> {
    lowered_or(body, lowered, |lowered| {
        let max_depth = i64::try_from(max_depth).unwrap_or(i64::MAX);
        let mut depth: i64 = 0;
        let first = block_tags(lowered, lts, 0).find(|&(_, _, closing)| {
            depth += if closing { -1 } else { 1 };
            depth > max_depth
        })?;
        let drop: Vec<(usize, usize)> = std::iter::once(first)
            .chain(block_tags(lowered, lts, first.1))
            .map(|(start, end, _)| (start, end))
            .collect();
        Some(cut_spans(body, &drop))
    })
}

mod names {
    pub const VOID: &[&[u8]] = &[
        b"area",
        b"base",
        b"br",
        b"col",
        b"embed",
        b"hr",
        b"img",
        b"input",
        b"link",
        b"meta",
        b"source",
        b"track",
        b"wbr",
        b"param",
        b"keygen",
        b"frame",
        b"basefont",
        b"bgsound",
        b"image",
        b"html",
        b"head",
        b"body",
    ];
    pub const RAW_TEXT: &[&[u8]] = &[
        b"script",
        b"style",
        b"textarea",
        b"title",
        b"xmp",
        b"iframe",
        b"noembed",
        b"noframes",
        b"plaintext",
    ];
    pub const TABLE_BOUNDS: &[&[u8]] = &[b"table", b"template", b"html"];
    /// The boundaries `_SCOPE_BOUNDS` and `_LIST_BOUNDS` share; then each one's own.
    pub const SCOPE_COMMON: &[&[u8]] = &[
        b"applet",
        b"caption",
        b"html",
        b"table",
        b"td",
        b"th",
        b"marquee",
        b"object",
        b"template",
        b"button",
    ];
    pub const SCOPE_MORE: &[&[u8]] = &[b"svg", b"math"];
    pub const LIST_MORE: &[&[u8]] = &[
        b"ul",
        b"ol",
        b"dl",
        b"menu",
        b"section",
        b"article",
        b"aside",
        b"nav",
        b"header",
        b"footer",
        b"main",
        b"blockquote",
        b"fieldset",
        b"figure",
        b"form",
        b"details",
    ];
    /// Start tags that close an open `<p>` (`_CLOSES_P`): the blocks, and these.
    pub const CLOSES_P_MORE: &[&[u8]] = &[
        b"hr",
        b"li",
        b"dd",
        b"dt",
        b"p",
        b"table",
        b"xmp",
        b"plaintext",
    ];
    pub const HEADINGS: &[&[u8]] = &[b"h1", b"h2", b"h3", b"h4", b"h5", b"h6"];
    pub const TABLE_PARTS: &[&[u8]] = &[
        b"tbody", b"thead", b"tfoot", b"tr", b"td", b"th", b"caption",
    ];
    pub const RUBY: &[&[u8]] = &[b"rb", b"rt", b"rtc", b"rp"];
}
use names::*;

/// Which of the three boundary sets (`_TABLE_BOUNDS`, `_SCOPE_BOUNDS`, `_LIST_BOUNDS`).
#[derive(Clone, Copy)]
enum Bounds {
    Table = 0,
    Scope = 1,
    List = 2,
}

/// Whether *name* is a boundary of the set *bounds*.
fn is_bound(bounds: Bounds, name: &[u8]) -> bool {
    match bounds {
        Bounds::Table => TABLE_BOUNDS.contains(&name),
        Bounds::Scope => SCOPE_COMMON.contains(&name) || SCOPE_MORE.contains(&name),
        Bounds::List => SCOPE_COMMON.contains(&name) || LIST_MORE.contains(&name),
    }
}

/// `_CLOSES`: the open elements a start tag closes, above which boundary.
fn closes(name: &[u8]) -> Option<(&'static [&'static [u8]], Bounds)> {
    Some(match name {
        b"li" => (&[b"li"], Bounds::List),
        b"dd" | b"dt" => (&[b"dd", b"dt"], Bounds::List),
        b"option" => (&[b"option"], Bounds::Scope),
        b"optgroup" => (&[b"option", b"optgroup"], Bounds::Scope),
        b"tr" => (&[b"tr", b"td", b"th"], Bounds::Table),
        b"td" | b"th" => (&[b"td", b"th"], Bounds::Table),
        b"a" => (&[b"a"], Bounds::Scope),
        b"nobr" => (&[b"nobr"], Bounds::Scope),
        b"button" => (&[b"button"], Bounds::Table),
        b"form" => (&[b"form"], Bounds::Table),
        b"tbody" | b"thead" | b"tfoot" | b"caption" | b"colgroup" => (TABLE_PARTS, Bounds::Table),
        b"rb" | b"rt" | b"rtc" | b"rp" => (RUBY, Bounds::Scope),
        _ => return None,
    })
}

/// Names numbered at most (beyond those open): see `Stack::renumber_if_full`.
const MAX_NAMES: usize = 4096;

/// What the stack steps read of one tag name, found once a page (a name's lists were
/// searched at each of its tags, and its positions looked up by name several times a tag).
struct Name {
    /// Where it is open, lowest first.
    positions: Vec<usize>,
    /// A void element's, a raw text element's (`VOID`, `RAW_TEXT`).
    void: bool,
    raw: bool,
    /// A start tag of it closes an open `<p>` (a block or `_CLOSES_P`).
    closes_p: bool,
    heading: bool,
    /// A boundary of each set (`Bounds` order).
    bound: [bool; 3],
    /// `_CLOSES`: the open elements it closes (their ids once read), above which boundary.
    closes: Option<(&'static [&'static [u8]], Bounds)>,
    closes_ids: Vec<u32>,
}

/// The estimated stack of open elements (`_limit_open_elements`' locals), over the page's
/// names numbered as they come (one hash a tag).
struct Stack<'a> {
    /// The open elements' name ids; the first: the empty name, never popped.
    tags: Vec<u32>,
    /// (foldhash, seeded per process and per table: the names are the page's, and a page
    /// cannot pick names that collide on every machine; SipHash was ~6% of bound_body.)
    ids: HashMap<&'a [u8], u32, foldhash::fast::RandomState>,
    names: Vec<Name>,
    /// Per boundary set, the position of the nearest boundary at or below each position.
    near: [Vec<usize>; 3],
    /// The ids of `p`, `svg` and `math`.
    p: u32,
    svg: u32,
    math: u32,
}

impl<'a> Stack<'a> {
    fn new() -> Self {
        let mut stack = Stack {
            tags: Vec::new(),
            ids: HashMap::default(),
            names: Vec::new(),
            near: [vec![0], vec![0], vec![0]],
            p: 0,
            svg: 0,
            math: 0,
        };
        let empty = stack.id(b"");
        stack.tags.push(empty);
        (stack.p, stack.svg, stack.math) = (stack.id(b"p"), stack.id(b"svg"), stack.id(b"math"));
        stack
    }

    /// *name*'s id (numbered at its first sight).
    fn id(&mut self, name: &'a [u8]) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        let sets = [Bounds::Table, Bounds::Scope, Bounds::List];
        self.names.push(Name {
            positions: Vec::new(),
            void: VOID.contains(&name),
            raw: RAW_TEXT.contains(&name),
            closes_p: BLOCKS.contains(&name) || CLOSES_P_MORE.contains(&name),
            heading: HEADINGS.contains(&name),
            bound: sets.map(|bounds| is_bound(bounds, name)),
            closes: closes(name),
            closes_ids: Vec::new(),
        });
        self.ids.insert(name, id);
        id
    }

    /// Take back the number just given to *name* (*id*) if it was not opened after all and
    /// no other name was numbered since.
    fn forget_if_last(&mut self, name: &[u8], id: u32, fresh: bool) {
        if fresh && id as usize + 1 == self.names.len() {
            self.ids.remove(name);
            self.names.pop();
        }
    }

    /// Past `MAX_NAMES` numbered names, number again only those open now (and `p`, `svg`,
    /// `math`): a page of many distinct names opened and closed holds a bounded table.
    fn renumber_if_full(&mut self) {
        if self.names.len() <= MAX_NAMES + self.tags.len() {
            return;
        }
        let fixed = [self.tags[0], self.p, self.svg, self.math];
        let mut new_id = vec![u32::MAX; self.names.len()];
        let mut names = Vec::new();
        let old: Vec<Name> = std::mem::take(&mut self.names);
        let mut old: Vec<Option<Name>> = old.into_iter().map(Some).collect();
        for id in 0..old.len() as u32 {
            let open = old[id as usize]
                .as_ref()
                .is_some_and(|n| !n.positions.is_empty());
            if open || fixed.contains(&id) {
                new_id[id as usize] = names.len() as u32;
                let mut name = old[id as usize].take().expect("each name taken once");
                name.closes_ids.clear(); // read again, by the new numbers
                names.push(name);
            }
        }
        self.ids.retain(|_, id| {
            let kept = new_id[*id as usize];
            *id = kept;
            kept != u32::MAX
        });
        self.tags
            .iter_mut()
            .for_each(|id| *id = new_id[*id as usize]);
        (self.p, self.svg, self.math) = (
            new_id[self.p as usize],
            new_id[self.svg as usize],
            new_id[self.math as usize],
        );
        self.names = names;
    }

    /// Where the name *id* is open, highest: 0 if not.
    fn top_of(&self, id: u32) -> usize {
        self.names[id as usize]
            .positions
            .last()
            .copied()
            .unwrap_or(0)
    }

    fn pop_to(&mut self, k: usize) {
        while self.tags.len() > k {
            if let Some(id) = self.tags.pop() {
                self.names[id as usize].positions.pop();
            }
            self.near.iter_mut().for_each(|n| {
                n.pop();
            });
        }
    }

    /// The highest position of an open element of the names *group* above the nearest
    /// boundary.
    fn open_in(&self, group: &[u32], bounds: Bounds) -> usize {
        let floor = *self.near[bounds as usize].last().unwrap_or(&0);
        group
            .iter()
            .map(|&id| self.top_of(id))
            .filter(|&at| at > floor)
            .max()
            .unwrap_or(0)
    }

    fn push(&mut self, id: u32) {
        let k = self.tags.len();
        self.tags.push(id);
        let name = &mut self.names[id as usize];
        name.positions.push(k);
        for (n, bound) in self.near.iter_mut().zip(name.bound) {
            let below = *n.last().unwrap_or(&0);
            n.push(if bound { k } else { below });
        }
    }

    /// What a start tag of the name *id* closes before it opens (`<p>`, a heading,
    /// `_CLOSES`).
    fn close_for(&mut self, id: u32) {
        if self.names[id as usize].closes_p {
            let k = self.open_in(&[self.p], Bounds::Scope);
            if k > 0 {
                self.pop_to(k);
            }
            let top = self.tags.last().copied().unwrap_or_default();
            if self.names[id as usize].heading && self.names[top as usize].heading {
                self.pop_to(self.tags.len() - 1);
            }
        }
        if let Some((group, bounds)) = self.names[id as usize].closes {
            if self.names[id as usize].closes_ids.is_empty() {
                let ids = group.iter().map(|name| self.id(name)).collect();
                self.names[id as usize].closes_ids = ids;
            }
            let k = self.open_in(&self.names[id as usize].closes_ids, bounds);
            if k > 0 {
                self.pop_to(k);
            }
        }
    }
}

/// `_limit_open_elements`: the start tags that would nest elements deeper than *max_depth*
/// dropped (but `<a>`). None: the body as it is.
pub fn limit_open_elements(body: &[u8], max_depth: usize) -> Option<Vec<u8>> {
    limit_open_elements_in(body, None, &lt_positions(body), max_depth)
}

/// `limit_open_elements`, with *body* lowercased if the caller has it, and *lts*: every `<`
/// of it.
pub(crate) fn limit_open_elements_in(
    body: &[u8],
    lowered: Option<&[u8]>,
    lts: &[usize],
    max_depth: usize,
) -> Option<Vec<u8>> {
    lowered_or(body, lowered, |lowered| {
        let mut stack = Stack::new();
        let mut drop: Vec<(usize, usize)> = Vec::new();
        let mut skip_to = 0;
        for tag in (Tags {
            s: lowered,
            lts,
            pos: 0,
        }) {
            if tag.start < skip_to {
                continue;
            }
            let Some(name) = tag.name else {
                match find(lowered, b"-->", tag.end) {
                    Some(end) => skip_to = end + 3,
                    None => break,
                }
                continue;
            };
            // Only names that are opened are numbered: a page of 500,000 distinct names that
            // are closed, void or dropped must not hold an entry each.
            let known = stack.ids.get(name).copied();
            if tag.closing {
                let at = known.map_or(0, |id| stack.top_of(id));
                if at > 0 {
                    stack.pop_to(at);
                }
                continue;
            }
            let (void, raw) = match known {
                Some(id) => (stack.names[id as usize].void, stack.names[id as usize].raw),
                None => (VOID.contains(&name), RAW_TEXT.contains(&name)),
            };
            if void {
                continue;
            } else if raw {
                let close = [b"</", name].concat();
                match find(lowered, &close, tag.end) {
                    Some(end) => skip_to = end,
                    None => break,
                }
            } else {
                let id = stack.id(name);
                stack.close_for(id);
                let in_foreign = stack.top_of(stack.svg) > 0 || stack.top_of(stack.math) > 0;
                let foreign_self_closing =
                    lowered[tag.start..tag.end].ends_with(b"/>") && in_foreign;
                let too_deep = stack.tags.len() > max_depth && name != b"a";
                if foreign_self_closing || too_deep {
                    if too_deep && !foreign_self_closing {
                        drop.push((tag.start, tag.end));
                    }
                    stack.forget_if_last(name, id, known.is_none());
                    continue;
                }
                stack.push(id);
                stack.renumber_if_full();
            }
        }
        (!drop.is_empty()).then(|| cut_spans(body, &drop))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `is_block` (by the first byte's few) is `BLOCKS.contains`, on every name these bounds
    /// know, their prefixes and extensions, and the empty name.
    #[test]
    fn is_block_is_the_lists() {
        let lists = [
            BLOCKS,
            VOID,
            RAW_TEXT,
            TABLE_BOUNDS,
            SCOPE_COMMON,
            SCOPE_MORE,
            LIST_MORE,
            CLOSES_P_MORE,
            HEADINGS,
            TABLE_PARTS,
            RUBY,
        ];
        let mut blocks = 0;
        for name in lists.concat() {
            for cut in 0..=name.len() {
                for word in [&name[..cut], &[name, b"x"].concat(), &[b"x", name].concat()] {
                    assert_eq!(is_block(word), BLOCKS.contains(&word), "{word:?}");
                    blocks += usize::from(is_block(word));
                }
            }
        }
        assert!(blocks >= BLOCKS.len());
    }
}
