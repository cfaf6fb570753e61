#![allow(dead_code, clippy::all)]
//! The reference for tests: bound.rs and bounds.rs as they were at 6619e60 (before the
//! fast path), unchanged but for this header. extract.py `bound_body`, whole: the byte cuts (MAX_PARSE_BYTES, MAX_TAGS), the
//! re-open estimate (`_limit_reopened`), the attribute bound (`_limit_attributes`, its
//! readings of the tokenizer's tree-dependent states), the nesting bounds (bounds.rs) and
//! `_links_may_nest`, one for one. The Python functions stay the reference: tests/test_native_bound_body.py
//! compares bytes, limits and flags. Their regular expressions are read here by hand-written
//! scanners that match the same spans (Python `re`: leftmost-first alternation, possessive
//! and atomic groups, ASCII-only case folding on bytes; a look-ahead does not see past a
//! search's end). Linear scans with memchr; a search that may repeat from many starts (the
//! next `>`, a quote, an end tag) is cached as `_Ends` caches it.
use std::collections::{BTreeSet, HashMap};

use memchr::{memchr, memchr2, memchr_iter, memmem, memrchr};

use bounds::{cut_spans, ends_name};

/// bounds.rs as it was (the nesting bounds).
#[allow(dead_code)]
pub(super) mod bounds {
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
    /// in order, as `finditer` gives them.
    struct Tags<'a> {
        s: &'a [u8],
        pos: usize,
    }

    impl<'a> Iterator for Tags<'a> {
        type Item = Tag<'a>;

        fn next(&mut self) -> Option<Tag<'a>> {
            let s = self.s;
            while let Some(i) = memchr(b'<', &s[self.pos..]).map(|i| self.pos + i) {
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

    /// The matches of `_BLOCK_TAG_RE` in *s* (lowercased) from *from*: (start, end, end tag).
    fn block_tags(s: &[u8], from: usize) -> impl Iterator<Item = (usize, usize, bool)> + '_ {
        let mut pos = from;
        std::iter::from_fn(move || {
            while let Some(i) = memchr(b'<', &s[pos..]).map(|i| pos + i) {
                pos = i + 1;
                let closing = s.get(i + 1) == Some(&b'/');
                let at = i + 1 + usize::from(closing);
                let window = &s[at.min(s.len())..(at + MAX_BLOCK_NAME).min(s.len())];
                let Some(len) = window.iter().position(|&b| ends_name(b)) else {
                    continue; // no delimiter right after a name: the look-ahead fails
                };
                if len > 0 && BLOCKS.contains(&&s[at..at + len]) {
                    pos = tag_end(s, at + len);
                    return Some((i, pos, closing));
                }
            }
            pos = s.len();
            None
        })
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
        let lowered = body.to_ascii_lowercase();
        let max_depth = i64::try_from(max_depth).unwrap_or(i64::MAX);
        let mut depth: i64 = 0;
        let first = block_tags(&lowered, 0).find(|&(_, _, closing)| {
            depth += if closing { -1 } else { 1 };
            depth > max_depth
        })?;
        let drop: Vec<(usize, usize)> = std::iter::once(first)
            .chain(block_tags(&lowered, first.1))
            .map(|(start, end, _)| (start, end))
            .collect();
        Some(cut_spans(body, &drop))
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
            b"tbody" | b"thead" | b"tfoot" | b"caption" | b"colgroup" => {
                (TABLE_PARTS, Bounds::Table)
            }
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
        ids: HashMap<&'a [u8], u32>,
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
                ids: HashMap::new(),
                names: Vec::new(),
                near: [vec![0], vec![0], vec![0]],
                p: 0,
                svg: 0,
                math: 0,
            };
            let empty = stack.id(b"");
            stack.tags.push(empty);
            (stack.p, stack.svg, stack.math) =
                (stack.id(b"p"), stack.id(b"svg"), stack.id(b"math"));
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
        let lowered = body.to_ascii_lowercase();
        let mut stack = Stack::new();
        let mut drop: Vec<(usize, usize)> = Vec::new();
        let mut skip_to = 0;
        for tag in (Tags {
            s: &lowered,
            pos: 0,
        }) {
            if tag.start < skip_to {
                continue;
            }
            let Some(name) = tag.name else {
                match find(&lowered, b"-->", tag.end) {
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
                match find(&lowered, &close, tag.end) {
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
    }
}

/// extract.py REOPEN_UNIT_BYTES.
const REOPEN_UNIT_BYTES: usize = 1024;
/// extract.py MAX_ATTRS_PER_TAG.
const MAX_ATTRS_PER_TAG: usize = 256;
/// extract.py MAX_READINGS (its value at import: Python passes the current one, see Limits).
const MAX_READINGS: usize = 8;
/// extract.py MAX_ROOTS (likewise).
const MAX_ROOTS: usize = 16;
/// extract.py MAX_HELD (likewise).
const MAX_HELD: usize = 16;
/// extract.py MAX_ISLAND_TAGS (likewise).
const MAX_ISLAND_TAGS: usize = 4096;
/// extract.py MAX_BLOCK_DEPTH.
const MAX_BLOCK_DEPTH: usize = 512;

/// extract.py `_FORMATTING`'s names (the formatting elements but `<a>`).
const FORMATTING: &[&[u8]] = &[
    b"b", b"big", b"i", b"u", b"s", b"small", b"strike", b"strong", b"em", b"font", b"nobr",
    b"code", b"tt",
];
/// The same and `a` (`_FORMATTING_TAG_RE`, `_HEAVY_FORMATTING_RE`).
const FORMATTING_A: &[&[u8]] = &[
    b"b", b"big", b"i", b"u", b"s", b"small", b"strike", b"strong", b"em", b"font", b"nobr",
    b"code", b"tt", b"a",
];
/// extract.py `_POPPING_START_RE`'s names.
const POPPING: &[&[u8]] = &[
    b"address",
    b"article",
    b"aside",
    b"blockquote",
    b"button",
    b"caption",
    b"center",
    b"col",
    b"colgroup",
    b"dd",
    b"details",
    b"dialog",
    b"dir",
    b"div",
    b"dl",
    b"dt",
    b"fieldset",
    b"figcaption",
    b"figure",
    b"footer",
    b"form",
    b"frameset",
    b"h1",
    b"h2",
    b"h3",
    b"h4",
    b"h5",
    b"h6",
    b"header",
    b"hgroup",
    b"hr",
    b"input",
    b"keygen",
    b"li",
    b"listing",
    b"main",
    b"menu",
    b"nav",
    b"ol",
    b"optgroup",
    b"option",
    b"p",
    b"plaintext",
    b"pre",
    b"search",
    b"section",
    b"select",
    b"summary",
    b"table",
    b"tbody",
    b"td",
    b"textarea",
    b"tfoot",
    b"th",
    b"thead",
    b"tr",
    b"ul",
    b"xmp",
];
/// extract.py `_NESTING_LINK_RE`'s names.
const NESTING_LINK: &[&[u8]] = &[
    b"a",
    b"object",
    b"applet",
    b"marquee",
    b"template",
    b"td",
    b"th",
    b"caption",
];
/// extract.py `_RAW_TEXT_NAMES`.
const RAW_TEXT_NAMES: &[&[u8]] = &[
    b"script",
    b"style",
    b"textarea",
    b"title",
    b"xmp",
    b"iframe",
    b"noembed",
    b"noframes",
];
/// extract.py `_FOREIGN_ROOTS`.
const FOREIGN_ROOTS: &[&[u8]] = &[b"svg", b"math"];
/// extract.py `_ISLANDS`.
const ISLANDS: &[&[u8]] = &[
    b"foreignobject",
    b"desc",
    b"title",
    b"mi",
    b"mo",
    b"mn",
    b"ms",
    b"mtext",
    b"annotation-xml",
];
/// extract.py `_CONTEXT_NAMES` (roots, islands, frameset).
const CONTEXT_NAMES: &[&[u8]] = &[
    b"svg",
    b"math",
    b"foreignobject",
    b"desc",
    b"title",
    b"mi",
    b"mo",
    b"mn",
    b"ms",
    b"mtext",
    b"annotation-xml",
    b"frameset",
];
/// `_HTML_OPENER_RE`'s context tags.
const HTML_CONTEXT: &[&[u8]] = &[b"svg", b"math", b"frameset"];
/// extract.py `_VOID_NAMES`.
const VOID_NAMES: &[&[u8]] = &[
    b"area",
    b"base",
    b"basefont",
    b"bgsound",
    b"br",
    b"col",
    b"embed",
    b"frame",
    b"hr",
    b"img",
    b"input",
    b"keygen",
    b"link",
    b"meta",
    b"param",
    b"source",
    b"track",
    b"wbr",
];
/// extract.py `_HELD`.
const HELD: &[u8] = b"!";

/// `[\t\n\f\r ]`.
fn is_ws(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

fn contains(names: &[&[u8]], name: &[u8]) -> bool {
    names.iter().any(|n| *n == name)
}

/// extract.py `_CONTEXT_ONLY_NAMES`: the context names that are not raw text.
fn is_context_only(name: &[u8]) -> bool {
    contains(CONTEXT_NAMES, name) && !contains(RAW_TEXT_NAMES, name)
}

/// A set of tag names, with the first bytes they start with (either case) and their longest
/// length: most `<` are rejected by one table look-up.
struct Names {
    list: &'static [&'static [u8]],
    first: [bool; 256],
    longest: usize,
    /// The names by their first byte, lowercased (made at first use).
    by_first: std::sync::OnceLock<Vec<Vec<&'static [u8]>>>,
}

const fn names(list: &'static [&'static [u8]]) -> Names {
    let mut first = [false; 256];
    let mut longest = 0;
    let mut i = 0;
    while i < list.len() {
        let c = list[i][0];
        first[c.to_ascii_lowercase() as usize] = true;
        first[c.to_ascii_uppercase() as usize] = true;
        if list[i].len() > longest {
            longest = list[i].len();
        }
        i += 1;
    }
    Names {
        list,
        first,
        longest,
        by_first: std::sync::OnceLock::new(),
    }
}

static FORMATTING_SET: Names = names(FORMATTING);
static FORMATTING_A_SET: Names = names(FORMATTING_A);
static POPPING_SET: Names = names(POPPING);
static NESTING_LINK_SET: Names = names(NESTING_LINK);
static RAW_TEXT_SET: Names = names(RAW_TEXT_NAMES);
static CONTEXT_SET: Names = names(CONTEXT_NAMES);
static HTML_CONTEXT_SET: Names = names(HTML_CONTEXT);
static LINK_SET: Names = names(&[b"a"]);

/// Where a name of *set* (ASCII case-insensitive) at *at* ends, if one is followed by a
/// delimiter before *lim* (`(?:names)(?=[\t\n\f\r />])`, the search ending at *lim*).
#[inline(always)]
fn word_in(s: &[u8], at: usize, lim: usize, set: &Names) -> Option<usize> {
    let lim = lim.min(s.len());
    if at >= lim || !set.first[s[at] as usize] {
        return None; // most `<`: by one look-up, inline at each scanner's loop
    }
    word_at(s, at, lim, set)
}

/// `word_in` past its first byte's look-up.
#[inline(never)]
fn word_at(s: &[u8], at: usize, lim: usize, set: &Names) -> Option<usize> {
    let stop = lim.min(at + set.longest + 1);
    let d = (at + 1..stop).find(|&k| ends_name(s[k]))?;
    let word = &s[at..d];
    let by_first = set.by_first.get_or_init(|| {
        let mut by_first = vec![Vec::new(); 256];
        for name in set.list {
            by_first[name[0].to_ascii_lowercase() as usize].push(*name);
        }
        by_first
    });
    by_first[s[at].to_ascii_lowercase() as usize]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(word))
        .then_some(d)
}

/// A search's last answer, (searched from, found at): a search from a start between the two
/// finds the same (a search from each of many starts in one stretch would be quadratic).
/// `(1, 0)`: none yet.
type Seen = (usize, usize);

/// *search*'s answer from *from*, by *seen* if it holds it (then updated).
fn cached(seen: &mut Seen, from: usize, search: impl FnOnce() -> usize) -> usize {
    if !(seen.0 <= from && from <= seen.1) {
        *seen = (from, search());
    }
    seen.1
}

/// The first index >= *from* of one of two bytes, cached (`Seen`).
struct NextOf {
    a: u8,
    b: u8,
    seen: Seen,
}

impl NextOf {
    fn new(a: u8, b: u8) -> Self {
        NextOf { a, b, seen: (1, 0) }
    }

    /// The index, or `s.len()`.
    fn at(&mut self, s: &[u8], from: usize) -> usize {
        let (a, b) = (self.a, self.b);
        cached(&mut self.seen, from, || {
            s.get(from..)
                .and_then(|rest| memchr2(a, b, rest))
                .map_or(s.len(), |i| from + i)
        })
    }
}

/// What the scanners below read of a body's `<` and `>`, found in one pass over it: the
/// scanners visit each `<` (the formatting tags, the long tags, the nesting links...), and a
/// memchr search per `<` or per tag's `>`, and per scanner, cost more than the visits (HTML
/// has a `<` every ~50 bytes).
pub struct Marks {
    /// The position of every `<`, in order.
    pub lts: Vec<usize>,
    /// The stretches without a `>` of `LONG_GAP` bytes or more, in order: (its first byte,
    /// the `>` that ends it or the body's length). The next `>` from a position outside them
    /// is less than `LONG_GAP` bytes away.
    gaps: Vec<(usize, usize)>,
}

/// The shortest stretch without a `>` that `Marks` keeps: `_LONG_TAG_RE`'s 2 x
/// MAX_ATTRS_PER_TAG bytes (the longest distance the scanners ask about is 1,021).
const LONG_GAP: usize = 2 * MAX_ATTRS_PER_TAG;

impl Marks {
    /// The marks of *s*.
    pub fn of(s: &[u8]) -> Marks {
        let mut marks = Marks {
            lts: Vec::new(),
            gaps: Vec::new(),
        };
        let mut from = 0; // the first byte after the last `>`
        let mut visit = |at: usize, byte: u8, marks: &mut Marks| {
            if byte == b'<' {
                marks.lts.push(at);
            } else {
                if at - from >= LONG_GAP {
                    marks.gaps.push((from, at));
                }
                from = at + 1;
            }
        };
        let done = sse2_marks(s, &mut |at, byte| visit(at, byte, &mut marks));
        for (at, &byte) in s.iter().enumerate().skip(done) {
            if byte == b'<' || byte == b'>' {
                visit(at, byte, &mut marks);
            }
        }
        if s.len() - from.min(s.len()) >= LONG_GAP {
            marks.gaps.push((from, s.len()));
        }
        marks
    }

    /// The first `>` at or after *at* (the body's length: none) if at least *far* bytes
    /// away, far >= `LONG_GAP` (NextOf(b'>') for a caller that asks about long distances);
    /// *gap*: where to look from in `gaps`, moved on (callers ask in increasing order).
    fn far_gt(&self, at: usize, far: usize, gap: &mut usize) -> Option<usize> {
        debug_assert!(far >= LONG_GAP);
        while *gap < self.gaps.len() && self.gaps[*gap].1 < at {
            *gap += 1;
        }
        let &(first, end) = self.gaps.get(*gap)?;
        (first <= at && end - at >= far).then_some(end)
    }
}

/// Calls *visit* with each `<` and `>` of the whole 16-byte blocks of *s*, in order (SSE2,
/// every x86-64 has it: 16 bytes by a few instructions); the bytes read.
#[cfg(target_arch = "x86_64")]
fn sse2_marks(s: &[u8], visit: &mut impl FnMut(usize, u8)) -> usize {
    use std::arch::x86_64::{__m128i, _mm_set1_epi8};
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128};
    let blocks = s.len() / 16;
    // SAFETY: SSE2 is part of x86-64; each load reads 16 bytes inside *s*.
    unsafe {
        let (lt, gt) = (_mm_set1_epi8(b'<' as i8), _mm_set1_epi8(b'>' as i8));
        for block in 0..blocks {
            let at = block * 16;
            let bytes = _mm_loadu_si128(s.as_ptr().add(at) as *const __m128i);
            let hits = _mm_or_si128(_mm_cmpeq_epi8(bytes, lt), _mm_cmpeq_epi8(bytes, gt));
            let mut mask = _mm_movemask_epi8(hits) as u32;
            while mask != 0 {
                let k = at + mask.trailing_zeros() as usize;
                visit(k, s[k]);
                mask &= mask - 1;
            }
        }
    }
    blocks * 16
}

/// (Elsewhere: the bytes are read one by one.)
#[cfg(not(target_arch = "x86_64"))]
fn sse2_marks(_s: &[u8], _visit: &mut impl FnMut(usize, u8)) -> usize {
    0
}

/// How many of the positions *lts* are in *lo..hi*.
fn lts_in(lts: &[usize], lo: usize, hi: usize) -> usize {
    below(lts, hi).saturating_sub(below(lts, lo)) as usize
}

/// The positions *lts* from *lo* on.
fn lts_from(lts: &[usize], lo: usize) -> &[usize] {
    &lts[lts.partition_point(|&p| p < lo)..]
}

// -- formatting elements re-opened in each block (_limit_reopened) ---------------------------

/// `_QUOTED_GT_RE`'s matches: each `=` then maybe spaces, then a quoted value that reaches a
/// `>` before its closing quote.
pub fn quoted_gts(body: &[u8]) -> Vec<usize> {
    let mut double = NextOf::new(b'"', b'>');
    let mut single = NextOf::new(b'\'', b'>');
    let n = body.len();
    let mut out = Vec::new();
    for eq in memchr_iter(b'=', body) {
        let mut p = eq + 1;
        while p < n && is_ws(body[p]) {
            p += 1;
        }
        let stop = match body.get(p) {
            Some(b'"') => double.at(body, p + 1),
            Some(b'\'') => single.at(body, p + 1),
            _ => continue,
        };
        if stop < n && body[stop] == b'>' {
            out.push(eq);
        }
    }
    out
}

/// `_FORMATTING_ATTRS` from *i* (a tag's name end): its attributes as the tokenizer reads
/// them, then maybe its `>`; the end, or *cap* if the read reaches it (only the first *cap*
/// bytes are read: a tag that long is all a caller needs to know).
fn formatting_attrs(s: &[u8], mut i: usize, cap: usize) -> usize {
    let s = &s[..cap];
    let n = s.len();
    while i < n {
        let c = s[i];
        if is_ws(c) || c == b'/' {
            while i < n && (is_ws(s[i]) || s[i] == b'/') {
                i += 1;
            }
            continue;
        }
        if c == b'>' {
            return i + 1;
        }
        i = one_attr(s, i);
    }
    i
}

/// One attribute from *i* (its first byte is not `[\t\n\f\r />]`): a name (its first byte
/// may be `=`), then maybe `=` and a value, quoted (to its closing quote or the end) or not.
fn one_attr(s: &[u8], mut i: usize) -> usize {
    let n = s.len();
    i += 1;
    while i < n && !ends_name(s[i]) && s[i] != b'=' {
        i += 1;
    }
    let mut j = i;
    while j < n && is_ws(s[j]) {
        j += 1;
    }
    if j < n && s[j] == b'=' {
        j += 1;
        while j < n && is_ws(s[j]) {
            j += 1;
        }
        match s.get(j) {
            Some(&q @ (b'"' | b'\'')) => {
                j = memchr(q, &s[j + 1..]).map_or(n, |k| j + 1 + k + 1);
            }
            _ => {
                while j < n && !is_ws(s[j]) && s[j] != b'>' {
                    j += 1;
                }
            }
        }
        i = j;
    }
    i
}

/// A match of `_FORMATTING_TAG_RE` at *p*: its end, whether an end tag, its name's span.
struct FormattingTag {
    end: usize,
    closing: bool,
    name: (usize, usize),
}

fn formatting_tag(s: &[u8], p: usize, cap: usize) -> Option<FormattingTag> {
    if s.get(p) != Some(&b'<') {
        return None;
    }
    let closing = s.get(p + 1) == Some(&b'/');
    let at = p + 1 + usize::from(closing);
    let d = word_in(s, at, s.len(), &FORMATTING_A_SET)?;
    Some(FormattingTag {
        end: formatting_attrs(s, d, cap.max(d).min(s.len())),
        closing,
        name: (at, d),
    })
}

/// The matches of `_FORMATTING_TAG_RE` (or `_FORMATTING_WHOLE_RE` in the lowercased body:
/// the same spans), as finditer gives them.
fn formatting_tags(s: &[u8], lts: &[usize]) -> Vec<FormattingTag> {
    let mut out = Vec::new();
    let mut pos = 0;
    for &p in lts {
        if p < pos {
            continue; // inside the tag matched last
        }
        if let Some(tag) = formatting_tag(s, p, s.len()) {
            pos = tag.end;
            out.push(tag);
        }
    }
    out
}

/// `len(_FORMATTING_START_RE.findall(body))`.
fn formatting_starts(body: &[u8], lts: &[usize]) -> usize {
    lts.iter()
        .filter(|&&p| word_in(body, p + 1, body.len(), &FORMATTING_SET).is_some())
        .count()
}

/// The first `</?[a-zA-Z]` that starts at or after *lo* and ends by *hi* (`_TAG_START_RE`
/// searched with an end).
fn tag_start_in(s: &[u8], lo: usize, hi: usize) -> Option<usize> {
    let hi = hi.min(s.len());
    if lo >= hi {
        return None;
    }
    memchr_iter(b'<', &s[lo..hi])
        .map(|i| lo + i)
        .find(|&p| tag_start_at(s, p, hi))
}

/// `_TAG_START_RE.match` at *p*, the string ending at *hi*.
fn tag_start_at(s: &[u8], p: usize, hi: usize) -> bool {
    let letter = |k: usize| k < hi && s[k].is_ascii_alphabetic();
    s.get(p) == Some(&b'<') && (letter(p + 1) || (p + 1 < hi && s[p + 1] == b'/' && letter(p + 2)))
}

/// `_heavy_formatting`.
fn heavy_formatting(body: &[u8], quoted: &[usize], lts: &[usize]) -> bool {
    let n = body.len();
    let mut gt = NextOf::new(b'>', b'>');
    for &p in lts {
        if let Some(d) = word_in(body, p + 1, n, &FORMATTING_A_SET) {
            if gt.at(body, d) - d >= REOPEN_UNIT_BYTES - 3 {
                return true;
            }
        }
    }
    for &at in quoted {
        let lo = memrchr(b'>', &body[..at]).map_or(0, |g| g + 1);
        if let Some(start) = tag_start_in(body, lo, at) {
            let cap = (start + REOPEN_UNIT_BYTES).min(n);
            if let Some(tag) = formatting_tag(body, start, cap) {
                if tag.end - start >= REOPEN_UNIT_BYTES {
                    return true;
                }
            }
        }
    }
    false
}

/// `_pop_positions` of the lowercased body.
fn pop_positions(lowered: &[u8], lts: &[usize]) -> Vec<usize> {
    let n = lowered.len();
    lts.iter()
        .copied()
        .filter(|&p| {
            lowered.get(p + 1) == Some(&b'/') || word_in(lowered, p + 1, n, &POPPING_SET).is_some()
        })
        .collect()
}

fn units(len: usize) -> i64 {
    1 + (len / REOPEN_UNIT_BYTES) as i64
}

/// `_reopen_bound`, over the formatting tags of the lowercased body.
fn reopen_bound(
    lowered: &[u8],
    lts: &[usize],
    tags: &[FormattingTag],
    pops: usize,
    starts: usize,
) -> i64 {
    let mut alike: HashMap<&[u8], i64> = HashMap::new();
    for tag in tags {
        let start = tag.name.0 - 1 - usize::from(tag.closing);
        *alike.entry(&lowered[start..tag.end]).or_default() += 1;
    }
    let (mut listed, mut link) = (1i64, 1i64);
    for (tag, n) in alike {
        if tag[1] == b'a' {
            link = link.max(units(tag.len()));
        } else if tag[1] != b'/' {
            listed += n.min(3) * units(tag.len());
        }
    }
    let links = lts
        .iter()
        .filter(|&&p| word_in(lowered, p + 1, lowered.len(), &LINK_SET).is_some())
        .count();
    (listed - 1 + link).saturating_mul((pops + links + starts) as i64)
}

/// `bisect_left(pops, x)`.
fn below(pops: &[usize], x: usize) -> i64 {
    pops.partition_point(|&p| p < x) as i64
}

/// `_reopen_cost` over the lowercased body (its spans are the body's), with *drop*: the
/// spans dropped to stay within *budget*.
fn reopen_cost(
    lowered: &[u8],
    lts: &[usize],
    ftags: &[FormattingTag],
    tags: i64,
    pops: &[usize],
    budget: i64,
    mut drop: Option<&mut Vec<(usize, usize)>>,
) -> i64 {
    let (mut size, mut link) = (0i64, 0i64);
    let mut alike: HashMap<&[u8], i64> = HashMap::new();
    let mut certain: Vec<(&[u8], &[u8])> = Vec::new();
    let (mut cost, mut seen, mut last) = (0i64, 0i64, 0usize);
    for tag in ftags {
        let start = tag.name.0 - 1 - usize::from(tag.closing);
        let between = lts_in(lts, last, start) as i64;
        if between > 0 {
            certain.clear();
            if size != 0 {
                cost += size * (below(pops, start) - below(pops, last));
            }
        }
        seen += between + 1;
        last = tag.end;
        let name = &lowered[tag.name.0..tag.name.1];
        let whole = &lowered[start..tag.end];
        let (is_a, is_nobr) = (name == b"a", name == b"nobr");
        if tag.closing || is_a || is_nobr {
            cost += size;
        }
        if tag.closing {
            if certain.last().is_some_and(|top| top.0 == name) {
                let key = certain.pop().map(|top| top.1).unwrap_or_default();
                let n = alike.get(key).copied().unwrap_or(0);
                alike.insert(key, n - 1);
                if n <= 3 {
                    size -= units(key.len());
                }
            } else {
                certain.clear();
            }
            continue;
        }
        if is_a || is_nobr {
            certain.clear();
            if is_a {
                let u = units(whole.len());
                if let Some(drop) = drop.as_deref_mut() {
                    if u > 1 && cost + (size - link + u) * (tags - seen) > budget {
                        drop.push((start, tag.end));
                        continue;
                    }
                }
                size += u - link;
                link = u;
                continue;
            }
        } else if let Some(drop) = drop.as_deref_mut() {
            if cost + (size + units(whole.len())) * (tags - seen) > budget {
                drop.push((start, tag.end));
                continue;
            }
        }
        let n = alike.get(whole).copied().unwrap_or(0);
        alike.insert(whole, n + 1);
        if n < 3 {
            size += units(whole.len());
        }
        if !is_nobr {
            certain.push((name, whole));
        }
    }
    cost + size * (pops.len() as i64 - below(pops, last))
}

/// `_limit_reopened(body, tags, budget, quoted)`: the body without the dropped formatting
/// start tags, or None (nothing dropped). *lts*: the body's `lt_positions`.
pub fn limit_reopened(
    body: &[u8],
    tags: usize,
    budget: i64,
    quoted: &[usize],
    lts: &[usize],
) -> Option<Vec<u8>> {
    let starts = formatting_starts(body, lts);
    if ((starts as i64 + 1).saturating_mul(tags as i64) <= budget)
        && !heavy_formatting(body, quoted, lts)
    {
        return None;
    }
    // (Lowercasing keeps every `<` where it was: the body's positions are the lowered's.)
    let lowered = body.to_ascii_lowercase();
    let pops = pop_positions(&lowered, lts);
    let ftags = formatting_tags(&lowered, lts);
    if reopen_bound(&lowered, lts, &ftags, pops.len(), starts) <= budget {
        return None;
    }
    let tags = tags as i64;
    if reopen_cost(&lowered, lts, &ftags, tags, &pops, budget, None) <= budget {
        return None;
    }
    let mut drop = Vec::new();
    reopen_cost(&lowered, lts, &ftags, tags, &pops, budget, Some(&mut drop));
    (!drop.is_empty()).then(|| cut_spans(body, &drop))
}

// -- attributes per tag (_limit_attributes) --------------------------------------------------

/// extract.py `Context`: (roots, islands, held, unsure); ordered as Python orders the tuples.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Ctx {
    roots: Vec<u8>,
    islands: i64,
    held: Vec<u8>,
    unsure: u8,
}

impl Ctx {
    fn html() -> Self {
        Ctx {
            roots: Vec::new(),
            islands: 0,
            held: Vec::new(),
            unsure: 0,
        }
    }

    fn unsure() -> Self {
        Ctx {
            roots: Vec::new(),
            islands: 0,
            held: Vec::new(),
            unsure: 1,
        }
    }

    /// `context[0] or context[3]`: raw text may be markup.
    fn foreign(&self) -> bool {
        !self.roots.is_empty() || self.unsure != 0
    }
}

type Reading = (usize, Ctx);

/// The ends `_Ends.next` looks for.
#[derive(Clone, Copy)]
enum Key {
    Raw(usize), // RAW_TEXT_NAMES[i]: its end tag
    CommentOpen,
    CommentEnd,
    BangEnd,
    CdataEnd,
}

impl Key {
    fn slot(self) -> usize {
        match self {
            Key::Raw(i) => i,
            Key::CommentOpen => RAW_TEXT_NAMES.len(),
            Key::CommentEnd => RAW_TEXT_NAMES.len() + 1,
            Key::BangEnd => RAW_TEXT_NAMES.len() + 2,
            Key::CdataEnd => RAW_TEXT_NAMES.len() + 3,
        }
    }
}

/// extract.py `_Ends`.
struct Ends<'a> {
    lowered: &'a [u8],
    /// The `lt_positions` of the body (the lowered's too).
    lts: &'a [usize],
    found: [Seen; RAW_TEXT_NAMES.len() + 4],
    escaped: HashMap<usize, usize>,
    island_tags: usize,
    caps: Caps,
}

impl<'a> Ends<'a> {
    fn new(lowered: &'a [u8], caps: Caps, lts: &'a [usize]) -> Self {
        Ends {
            lowered,
            lts,
            found: [(1, 0); RAW_TEXT_NAMES.len() + 4],
            escaped: HashMap::new(),
            island_tags: 0,
            caps,
        }
    }

    fn search(&self, key: Key, at: usize) -> usize {
        let s = self.lowered;
        let n = s.len();
        if at > n {
            return n;
        }
        let finder = &finders()[key.slot()];
        let Key::Raw(_) = key else {
            return finder.find(&s[at..]).map_or(n, |k| at + k);
        };
        let needle = finder.needle();
        let mut from = at;
        while let Some(k) = finder.find(&s[from..]) {
            let p = from + k;
            if s.get(p + needle.len()).is_some_and(|&b| ends_name(b)) {
                return p;
            }
            from = p + 1;
        }
        n
    }

    /// `_Ends.next`.
    fn next(&mut self, key: Key, at: usize) -> usize {
        let mut seen = self.found[key.slot()];
        let found = cached(&mut seen, at, || self.search(key, at));
        self.found[key.slot()] = seen;
        found
    }

    /// `_Ends.script`.
    fn script(&mut self, start: usize) -> usize {
        let mut escapes = Vec::new();
        let mut end: Option<usize> = None;
        let mut at = start;
        let script = Key::Raw(0);
        let mut result = 0;
        while end.is_none() {
            let e = self.next(script, at);
            end = Some(e);
            let escape = self.next(Key::CommentOpen, at);
            if escape < e {
                escapes.push(escape);
                end = self.escaped.get(&escape).copied();
                if end.is_none() {
                    let (got, next_at) = escaped_script(self.lowered, escape);
                    end = got;
                    at = next_at;
                }
            }
            if let Some(e) = end {
                result = e;
            }
        }
        for escape in escapes {
            self.escaped.insert(escape, result);
        }
        result
    }
}

/// The searchers of `Ends::search`, by `Key::slot`: `</` and each raw text name, then the
/// literals (built once a process: a searcher costs more to build than most searches).
fn finders() -> &'static [memmem::Finder<'static>] {
    static FINDERS: std::sync::OnceLock<Vec<memmem::Finder<'static>>> = std::sync::OnceLock::new();
    FINDERS.get_or_init(|| {
        let raw = RAW_TEXT_NAMES.iter().map(|name| [b"</", *name].concat());
        let literals: [&[u8]; 4] = [b"<!--", b"-->", b"--!>", b"]]>"];
        raw.chain(literals.iter().map(|l| l.to_vec()))
            .map(|needle| memmem::Finder::new(&needle).into_owned())
            .collect()
    })
}

/// `_escaped_script`.
fn escaped_script(lowered: &[u8], escape: usize) -> (Option<usize>, usize) {
    let n = lowered.len();
    let mut doubly = false;
    let mut at = escape + 2;
    loop {
        // _SCRIPT_EVENT_RE: -->|<(/?)script[\t\n\f\r />]
        let mut event = None;
        let mut from = at.min(n);
        while let Some(k) = memchr2(b'-', b'<', &lowered[from..]) {
            let p = from + k;
            if lowered[p] == b'-' {
                if lowered[p..].starts_with(b"-->") {
                    event = Some((p, p + 3, None));
                    break;
                }
            } else {
                let closing = lowered.get(p + 1) == Some(&b'/');
                let name = p + 1 + usize::from(closing);
                if lowered[name..].starts_with(b"script")
                    && lowered.get(name + 6).is_some_and(|&b| ends_name(b))
                {
                    event = Some((p, name + 7, Some(closing)));
                    break;
                }
            }
            from = p + 1;
        }
        let Some((start, end, tag)) = event else {
            return (Some(n), at);
        };
        at = end;
        match tag {
            None => return (None, at),
            Some(true) if !doubly => return (Some(start), at),
            Some(closing) => {
                doubly = !closing;
                at -= 1;
            }
        }
    }
}

/// `_next_context`.
fn next_context(ctx: &Ctx, name: &[u8], end_tag: bool, self_closing: bool, caps: Caps) -> Ctx {
    if ctx.unsure != 0 {
        return Ctx::unsure();
    }
    let mut roots = ctx.roots.clone();
    let mut islands = ctx.islands;
    let mut held = ctx.held.clone();
    let island = contains(ISLANDS, name);
    if islands != 0 || (island && !roots.is_empty() && !end_tag && !self_closing) {
        held = held_after(held, name, end_tag, caps.held);
    }
    if contains(FOREIGN_ROOTS, name) {
        if !end_tag && !self_closing {
            if roots.len() >= caps.roots {
                return Ctx::unsure();
            }
            roots.push(name[0]);
        } else if end_tag && islands == 0 && roots.last() == Some(&name[0]) {
            roots.pop();
            if held == HELD && roots.is_empty() {
                return Ctx::unsure();
            }
        }
    } else if island && !roots.is_empty() {
        if !end_tag && !self_closing {
            islands += 1;
        } else if end_tag && islands != 0 {
            islands -= 1;
            if islands == 0 && !held.is_empty() {
                held = HELD.to_vec();
            }
        }
    } else if name == b"frameset" && !end_tag {
        return Ctx::unsure();
    }
    if roots.is_empty() {
        held.clear();
    }
    Ctx {
        roots,
        islands,
        held,
        unsure: ctx.unsure,
    }
}

/// `_held`.
fn held_after(held: Vec<u8>, name: &[u8], end_tag: bool, max_held: usize) -> Vec<u8> {
    if held == HELD || (contains(VOID_NAMES, name) && !end_tag) {
        return held;
    }
    if end_tag {
        let k = held.len().wrapping_sub(name.len() + 1);
        if held.len() > name.len() && held[k] == b' ' && &held[k + 1..] == name {
            return held[..k].to_vec();
        }
        return HELD.to_vec();
    }
    if held.iter().filter(|&&b| b == b' ').count() >= max_held || name.len() > 32 {
        return HELD.to_vec();
    }
    let mut held = held;
    held.push(b' ');
    held.extend_from_slice(name);
    held
}

/// `_TAG_NAME_RE.match(lowered, start)[1]`.
fn tag_name(lowered: &[u8], start: usize) -> &[u8] {
    let mut i = start + 1;
    if lowered.get(i) == Some(&b'/') {
        i += 1;
    }
    let i = i.min(lowered.len());
    let j = (i..lowered.len())
        .find(|&k| ends_name(lowered[k]))
        .unwrap_or(lowered.len());
    &lowered[i..j]
}

/// `_comment_end`.
fn comment_end(lowered: &[u8], start: usize, ends: &mut Ends) -> usize {
    let rest = &lowered[start..];
    if rest.starts_with(b"<!-->") {
        return start + 5;
    }
    if rest.starts_with(b"<!--->") {
        return start + 6;
    }
    let end = ends.next(Key::CommentEnd, start + 4);
    let bang = ends.next(Key::BangEnd, start + 4);
    (end + 3).min(bang + 4).min(lowered.len())
}

/// `_FIRST_ATTRS_RE` then `_MORE_ATTRS_RE` (or `_WHOLE_TAG_RE`) at *start*: where the first
/// MAX_ATTRS_PER_TAG attributes end (None: fewer), and where the last ends.
fn read_tag(body: &[u8], start: usize) -> (Option<usize>, usize) {
    let n = body.len();
    let mut i = start + 1;
    if body[i] == b'/' {
        i += 1;
    }
    i += 1; // the letter
    while i < n && !ends_name(body[i]) {
        i += 1;
    }
    let mut count = 0;
    let mut first = None;
    loop {
        let mut j = i;
        while j < n && (is_ws(body[j]) || body[j] == b'/') {
            j += 1;
        }
        if j >= n || ends_name(body[j]) {
            break;
        }
        i = one_attr(body, j);
        count += 1;
        if count == MAX_ATTRS_PER_TAG {
            first = Some(i);
        }
    }
    (first, i)
}

/// `_SELF_CLOSING_RE.match(body, end)`.
fn self_closing(body: &[u8], end: usize) -> bool {
    let mut r = end;
    while r < body.len() && (is_ws(body[r]) || body[r] == b'/') {
        r += 1;
    }
    r > end && body[r - 1] == b'/' && body.get(r) == Some(&b'>')
}

type Cut = Option<(usize, usize)>;

/// `_read_markup`.
fn read_markup(
    body: &[u8],
    lowered: &[u8],
    start: usize,
    ctx: Ctx,
    ends: &mut Ends,
) -> (Vec<Reading>, Cut) {
    let n = body.len();
    if lowered[start..].starts_with(b"<!--") {
        return (vec![(comment_end(lowered, start, ends), ctx)], None);
    }
    if !tag_start_at(body, start, n) {
        let from = (start + 2).min(n);
        let mut stops = vec![memchr(b'>', &body[from..]).map_or(n, |k| from + k + 1)];
        if ctx.foreign() && lowered[start..].starts_with(b"<![cdata[") {
            let cdata = ends.next(Key::CdataEnd, start + 9);
            stops.push((cdata + 3).min(n));
        }
        return (
            stops.into_iter().map(|stop| (stop, ctx.clone())).collect(),
            None,
        );
    }
    let (first, end) = read_tag(body, start);
    let cut = first.filter(|&f| end > f).map(|f| (f, end));
    let name = tag_name(lowered, start);
    let end_tag = body[start + 1] == b'/';
    let after = if ctx.islands != 0 || contains(CONTEXT_NAMES, name) {
        next_context(&ctx, name, end_tag, self_closing(body, end), ends.caps)
    } else {
        ctx.clone()
    };
    let raw = RAW_TEXT_NAMES.iter().position(|r| *r == name);
    let Some(raw) = raw.filter(|_| !end_tag) else {
        return (vec![(end, after)], cut);
    };
    let raw_end = if raw == 0 {
        ends.script(end)
    } else {
        ends.next(Key::Raw(raw), end)
    };
    if ctx.foreign() {
        (vec![(raw_end, after.clone()), (end, after)], cut)
    } else {
        (vec![(raw_end, after)], cut)
    }
}

/// The three `_opener_re` patterns.
#[derive(Clone, Copy, PartialEq)]
enum Opener {
    Island,
    Any,
    Html,
}

/// `_opener_re` (counting the island tags read).
fn opener_kind(ctx: &Ctx, ends: &mut Ends) -> Opener {
    if ctx.islands != 0 && ctx.held != HELD && ends.island_tags < ends.caps.island_tags {
        ends.island_tags += 1;
        return Opener::Island;
    }
    if ctx.foreign() {
        Opener::Any
    } else {
        Opener::Html
    }
}

/// Whether *kind*'s pattern matches at *p* of *s* (the string ending at *hi*).
fn opener_at(s: &[u8], p: usize, hi: usize, kind: Opener) -> bool {
    let rest = &s[p..hi];
    if rest.starts_with(b"<!--") {
        return true;
    }
    if kind != Opener::Html && rest.starts_with(b"<![cdata[") {
        return true;
    }
    match kind {
        Opener::Island => tag_start_lower(s, p, hi),
        Opener::Html => {
            word_in(s, p + 1, hi, &RAW_TEXT_SET).is_some()
                || word_in(s, p + 1, hi, &HTML_CONTEXT_SET).is_some()
        }
        Opener::Any => {
            word_in(s, p + 1, hi, &RAW_TEXT_SET).is_some()
                || (rest.get(1) == Some(&b'/') && word_in(s, p + 2, hi, &CONTEXT_SET).is_some())
                || word_in(s, p + 1, hi, &CONTEXT_SET).is_some()
        }
    }
}

/// `</?[a-z]` at *p* of the lowercased *s*, the string ending at *hi*.
fn tag_start_lower(s: &[u8], p: usize, hi: usize) -> bool {
    let letter = |k: usize| k < hi && s[k].is_ascii_lowercase();
    letter(p + 1) || (p + 1 < hi && s[p + 1] == b'/' && letter(p + 2))
}

/// `_read_to`.
fn read_to(
    body: &[u8],
    lowered: &[u8],
    reading: Reading,
    at: usize,
    ends: &mut Ends,
) -> (Option<Vec<Reading>>, Cut) {
    let (last, mut ctx) = reading;
    let kind = opener_kind(&ctx, ends);
    let opener = lts_from(ends.lts, last)
        .iter()
        .copied()
        .take_while(|&p| p < at)
        .find(|&p| opener_at(lowered, p, at, kind));
    let point = opener.unwrap_or(at);
    let lo = memrchr(b'>', &body[last..point]).map_or(last, |k| last + k + 1);
    let hi = (point + 2).min(body.len());
    let markup = if lo < hi {
        memchr_iter(b'<', &body[lo..hi]).map(|k| lo + k).find(|&p| {
            p + 1 < hi && matches!(body[p + 1], b'!' | b'/' | b'?' | b'a'..=b'z' | b'A'..=b'Z')
        })
    } else {
        None
    };
    let Some(start) = markup else {
        return (None, None);
    };
    if ctx.islands != 0 && tag_start_in(body, last, start).is_some() {
        ctx.held = HELD.to_vec();
    }
    let stop = at.min(start + 2 * MAX_ATTRS_PER_TAG);
    let end = if start < stop {
        memchr(b'>', &body[start..stop]).map(|k| start + k)
    } else {
        None
    };
    let name = tag_name(lowered, start);
    if let Some(end) = end {
        if end > 0 && body[end - 1] != b'/' && is_context_only(name) {
            let after = next_context(&ctx, name, body[start + 1] == b'/', false, ends.caps);
            return (Some(vec![(end, after)]), None);
        }
    }
    let (readings, cut) = read_markup(body, lowered, start, ctx, ends);
    (Some(readings), cut)
}

/// `_readings_past`.
fn readings_past(
    body: &[u8],
    lowered: &[u8],
    readings: Vec<Reading>,
    at: usize,
    cuts: &mut BTreeSet<(usize, usize)>,
    ends: &mut Ends,
) -> Vec<Reading> {
    let mut todo = readings;
    let mut past: BTreeSet<Reading> = BTreeSet::new();
    loop {
        let Some(k) = (0..todo.len()).min_by(|&a, &b| todo[a].cmp(&todo[b])) else {
            break;
        };
        if todo[k].0 > at {
            break;
        }
        if todo.len() + past.len() > ends.caps.readings {
            let all: BTreeSet<Reading> = past.iter().cloned().chain(todo.iter().cloned()).collect();
            let unsure: BTreeSet<Reading> = all.iter().map(|(p, _)| (*p, Ctx::unsure())).collect();
            if unsure.len() > ends.caps.readings || unsure == all {
                let first = unsure.iter().next().map_or(body.len(), |r| r.0);
                cuts.insert((first, body.len()));
                return Vec::new();
            }
            todo = unsure.iter().filter(|r| r.0 <= at).cloned().collect();
            past = unsure.into_iter().filter(|r| r.0 > at).collect();
            continue;
        }
        let reading = todo.swap_remove(k);
        let position = reading.0;
        let ctx = reading.1.clone();
        let (found, cut) = read_to(body, lowered, reading, at, ends);
        if let Some(cut) = cut {
            cuts.insert(cut);
        }
        match found {
            None => {
                past.insert((at, ctx));
            }
            Some(found) => {
                for end in found {
                    if end.0 > at {
                        past.insert(end);
                    } else if end.0 > position && !todo.contains(&end) {
                        todo.push(end); // (each step moves on: a guard, never hit)
                    }
                }
            }
        }
    }
    past.extend(todo);
    past.into_iter().collect()
}

/// Where `_LONG_TAG_RE` matches (a tag's `<` then 2 x MAX_ATTRS_PER_TAG bytes and more
/// without a `>`), as finditer gives them.
fn long_tags(body: &[u8], marks: &Marks) -> Vec<usize> {
    let mut gap = 0;
    let mut out = Vec::new();
    let mut pos = 0;
    for &p in &marks.lts {
        if p < pos {
            continue; // inside the long tag found last
        }
        pos = p + 1;
        let Some(letter) = tag_letter(body, p) else {
            continue;
        };
        if let Some(g) = marks.far_gt(letter + 1, LONG_GAP, &mut gap) {
            out.push(p);
            pos = g.max(pos);
        }
    }
    out
}

/// `_disjoint`.
fn disjoint(spans: &BTreeSet<(usize, usize)>) -> Vec<(usize, usize)> {
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for &(start, end) in spans {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// `_limit_attributes(body, quoted)`: the body cut, or None (no cut).
pub fn limit_attributes(
    body: &[u8],
    quoted: Option<Vec<usize>>,
    caps: Caps,
    marks: &Marks,
) -> Option<Vec<u8>> {
    let long = long_tags(body, marks);
    let quoted = quoted.unwrap_or_else(|| quoted_gts(body));
    if long.is_empty() && quoted.is_empty() {
        return None;
    }
    let lowered = body.to_ascii_lowercase();
    let mut ends = Ends::new(&lowered, caps, &marks.lts);
    let mut cuts = BTreeSet::new();
    let mut readings = vec![(0usize, Ctx::html())];
    let mut next_lt: Option<usize> = None; // None: -1
    let (mut i, mut j) = (0, 0);
    while i < long.len() || j < quoted.len() {
        let at = if j >= quoted.len() || (i < long.len() && long[i] <= quoted[j]) {
            i += 1;
            long[i - 1]
        } else {
            j += 1;
            quoted[j - 1]
        };
        if next_lt.is_some_and(|lt| at < lt) {
            continue;
        }
        readings = readings_past(body, &lowered, readings, at, &mut cuts, &mut ends);
        let Some(first) = readings.first() else {
            break;
        };
        let from = first.0.min(body.len());
        next_lt = Some(memchr(b'<', &body[from..]).map_or(body.len(), |k| from + k));
    }
    if cuts.is_empty() {
        return None;
    }
    Some(cut_spans(body, &disjoint(&cuts)))
}

/// `_links_may_nest`.
fn links_may_nest(body: &[u8], max_depth: usize, lts: &[usize]) -> bool {
    let n = body.len();
    let (mut links, mut names) = (0usize, 0usize);
    for &p in lts {
        if let Some(d) = word_in(body, p + 1, n, &NESTING_LINK_SET) {
            names += 1;
            links += usize::from(d == p + 2);
        }
    }
    2 * links.min(names - links) > max_depth
}

/// The bounds Python may change at run time (tests lower them), read by Python at each call:
/// extract.py's MAX_PARSE_BYTES, MAX_TAGS, MAX_REOPENED, _NESTING_CHECK_TAGS, MAX_DOM_DEPTH
/// and those of the attribute bound.
pub struct Limits {
    pub max_parse_bytes: usize,
    pub max_tags: usize,
    pub max_reopened: i64,
    pub nesting_check_tags: usize,
    pub max_dom_depth: usize,
    pub caps: Caps,
}

/// The attribute bound's caps: extract.py MAX_READINGS, MAX_ISLAND_TAGS, MAX_ROOTS, MAX_HELD.
#[derive(Clone, Copy)]
pub struct Caps {
    pub readings: usize,
    pub island_tags: usize,
    pub roots: usize,
    pub held: usize,
}

impl Default for Caps {
    /// extract.py's values at import.
    fn default() -> Self {
        Caps {
            readings: MAX_READINGS,
            island_tags: MAX_ISLAND_TAGS,
            roots: MAX_ROOTS,
            held: MAX_HELD,
        }
    }
}

/// `bound_body`'s answer: the bytes (None: the body's), the bounds hit, whether the page may
/// nest deep, whether its nesting was flattened.
pub struct Bounded {
    pub body: Option<Vec<u8>>,
    pub limits: Vec<&'static str>,
    pub many_tags: bool,
    pub deep: bool,
}

/// extract.py `bound_body`.
pub fn bound_body(body: &[u8], limits: &Limits) -> Bounded {
    let mut hit = Vec::new();
    let mut cur: &[u8] = body;
    if cur.len() > limits.max_parse_bytes {
        cur = &cur[..limits.max_parse_bytes];
        hit.push("parse_bytes");
    }
    let tags = memchr::memchr_iter(b'<', cur).count();
    if tags > limits.max_tags {
        // body[: _nth_tag(MAX_TAGS).match(body).end() - 1]
        let end = match limits.max_tags {
            0 => cur.len() - 1,
            k => memchr_iter(b'<', cur).nth(k - 1).unwrap_or(cur.len()),
        };
        cur = &cur[..end];
        hit.push("dom_nodes");
    }
    // Each `<` of the bytes the scanners read: *cur*'s, found again if a bound cuts it.
    let mut marks = Marks::of(cur);
    let mut owned: Option<Vec<u8>> = None;
    let half = (tags / 2 + 1) as u128;
    let gate = half * half * (1 + (cur.len() / REOPEN_UNIT_BYTES) as u128);
    let mut quoted = None;
    if gate > limits.max_reopened.max(0) as u128 {
        let found = quoted_gts(cur);
        match limit_reopened(
            cur,
            tags.min(limits.max_tags),
            limits.max_reopened,
            &found,
            &marks.lts,
        ) {
            Some(kept) => {
                hit.push("formatting");
                marks = Marks::of(&kept);
                owned = Some(kept);
            }
            None => quoted = Some(found),
        }
    }
    let cur_now: &[u8] = owned.as_deref().unwrap_or(cur);
    if let Some(kept) = limit_attributes(cur_now, quoted, limits.caps, &marks) {
        hit.push("attributes");
        marks = Marks::of(&kept);
        owned = Some(kept);
    }
    let cur_now: &[u8] = owned.as_deref().unwrap_or(cur);
    let many_tags = tags > limits.nesting_check_tags;
    let mut deep = false;
    let mut flat = None;
    if many_tags {
        let nested = bounds::limit_nesting(cur_now, MAX_BLOCK_DEPTH);
        let open =
            bounds::limit_open_elements(nested.as_deref().unwrap_or(cur_now), MAX_BLOCK_DEPTH);
        flat = open.or(nested);
        deep = flat.is_some();
    }
    if flat.is_some() {
        owned = flat; // (then many_tags: the positions are not read again)
    }
    let cur_now: &[u8] = owned.as_deref().unwrap_or(cur);
    let nest = many_tags
        || (tags > limits.max_dom_depth
            && links_may_nest(cur_now, limits.max_dom_depth, &marks.lts));
    let out = match owned {
        Some(bytes) => Some(bytes),
        None if cur.len() != body.len() => Some(cur.to_vec()),
        None => None,
    };
    Bounded {
        body: out,
        limits: hit,
        many_tags: nest,
        deep,
    }
}

/// The position of the first letter of the tag name after the `<` at *p* (`</` too), or
/// None when no ASCII letter follows (no tag).
fn tag_letter(body: &[u8], p: usize) -> Option<usize> {
    let letter = if body.get(p + 1) == Some(&b'/') {
        p + 2
    } else {
        p + 1
    };
    body.get(letter)
        .is_some_and(u8::is_ascii_alphabetic)
        .then_some(letter)
}
