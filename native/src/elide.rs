//! What the parser is fed: a page's bytes with the text of its top-level `<script>` and
//! `<style>` elements elided (42% of the bytes of the Zyte + WCXB mix are script and style
//! text, ~14% of lexbor's parse), and the check, on the tree parsed from them, that the
//! elision changed nothing but that text.
//!
//! # Why the elision is exact
//!
//! [`elide_raw_text`] replaces the text of some script and style elements, each from right
//! after its start tag's `>` to right before its end tag's `<`, with one [`MARKER`] byte,
//! only on a page without that byte. [`elision_holds`] then counts, on the tree parsed from
//! those bytes, the `<script>`/`<style>` children of `<html>`, `<head>` and `<body>` whose
//! only child is a text node holding exactly the marker (and that no reader reads: no
//! `hidden`, no `itemtype`, no JSON-LD `type`). The caller keeps that tree only when the count
//! equals the regions elided; else it parses the page's own bytes.
//!
//! - Each counted element E owns one region: its text is the marker, which the page did not
//!   have, so it is one region's marker, and E's start tag ended right before it.
//! - So, by induction over the regions in order, the two parses agree up to each region:
//!   the same bytes before it, the same tokenizer and tree states at its start. E is an HTML
//!   script (in script data state) or style (RAWTEXT) there in both.
//! - From that state, [`script_end`] / [`raw_text_end`] find where the tokenizer ends E's text
//!   in the page's own bytes, as the HTML standard's script data states (escaped and double
//!   escaped by `<!--` and `<script`) and RAWTEXT state do. The elided bytes keep the end tag
//!   found, and E's text being the marker alone shows the tokenizer took it as E's end there
//!   too: an end we took too early (a delimiter lexbor does not take) leaves E longer text.
//! - Between the start tag and the end tag the parser is in "text" mode: characters append
//!   to E and change nothing else. So the trees differ only in the data of E's text node, one
//!   text node in both (the region elided is never empty).
//! - Nothing downstream reads that text: JSON-LD scripts (and `[hidden]`/`[itemtype]` ones,
//!   which the page type also reads) are not counted; the placement scan measures a block's
//!   text only for its blocks (`p`, `li`, `td`, `div`... never `html`, `head` or `body`); the
//!   visible text strips script and style; anchor texts, prose samples and flattened HTML
//!   read neither. The structure (nodes, depths, ids) is the same.
//!
//! Encodings: the caller elides only pages decoded as UTF-8 or an ASCII-compatible
//! single-byte encoding: there every ASCII byte is that character and no other byte decodes
//! to ASCII, so the tokenizer's states read on the bytes are its states on the text, and
//! removing bytes between two ASCII ones changes no other character.
use memchr::{memchr, memchr3, memchr_iter, memmem};
use std::sync::OnceLock;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::extract::{element_of, guarded};
use crate::lexbor::{document_of, Key, Node, Tree, API, ELEMENT, TEXT};
use crate::walk::Dom;

/// What an elided element's text becomes: a byte pages (almost) never hold.
pub const MARKER: u8 = 0x01;
/// Open elements the predictor follows (more: it stops eliding; a page that deep is rare).
const MAX_OPEN: usize = 512;

/// The searchers for `</`, `<!--`, `-->` and `]]>`, built once a process (a searcher costs
/// more to build than most searches).
fn finder(which: usize) -> &'static memmem::Finder<'static> {
    static FINDERS: OnceLock<[memmem::Finder<'static>; 4]> = OnceLock::new();
    &FINDERS.get_or_init(|| {
        [b"</" as &[u8], b"<!--", b"-->", b"]]>"].map(|n| memmem::Finder::new(n).into_owned())
    })[which]
}
const END_OPEN: usize = 0;
const COMMENT_OPEN: usize = 1;
const COMMENT_CLOSE: usize = 2;
const CDATA_CLOSE: usize = 3;

/// The HTML tokenizer's whitespace (a CR is a LF to it).
fn is_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

/// What ends a tag name: whitespace, `/`, `>`.
fn ends_name(b: u8) -> bool {
    is_space(b) || b == b'/' || b == b'>'
}

/// Whether `s[at..]` starts with the lowercase ASCII *name*, in any case.
fn has_name(s: &[u8], at: usize, name: &[u8]) -> bool {
    s.get(at..at + name.len())
        .is_some_and(|got| got.eq_ignore_ascii_case(name))
}

/// Where the RAWTEXT (or RCDATA) text of element *name* (lowercase) from *start* ends: the `<`
/// of the first `</name` followed by whitespace, `/` or `>`, in any case; None: at the end.
pub fn raw_text_end(s: &[u8], start: usize, name: &[u8]) -> Option<usize> {
    let from = start.min(s.len());
    for k in finder(END_OPEN).find_iter(&s[from..]) {
        let p = from + k;
        if has_name(s, p + 2, name) && s.get(p + 2 + name.len()).is_some_and(|&b| ends_name(b)) {
            return Some(p);
        }
    }
    None
}

/// The states of the HTML standard's script data tokenizer (13.2.5.4 to 13.2.5.29).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum St {
    Data,
    Lt,
    EndOpen,
    EndName,
    EscStart,
    EscStartDash,
    Esc,
    EscDash,
    EscDashDash,
    EscLt,
    EscEndOpen,
    EscEndName,
    DblStart,
    Dbl,
    DblDash,
    DblDashDash,
    DblLt,
    DblEnd,
}

/// A tag name read against "script": whether it is exactly that so far.
#[derive(Clone, Copy)]
struct Name {
    len: usize,
    same: bool,
}

impl Name {
    const EMPTY: Name = Name { len: 0, same: true };

    fn push(&mut self, b: u8) {
        self.same = self.same && b"script".get(self.len) == Some(&b.to_ascii_lowercase());
        self.len += 1;
    }

    fn is_script(&self) -> bool {
        self.same && self.len == 6
    }
}

/// Where a script's text from *start* (right after its start tag) ends: the `<` of the end
/// tag the tokenizer takes (not one inside a script escaped twice); None: at the end.
pub fn script_end(s: &[u8], start: usize) -> Option<usize> {
    // Without a "<!--" before the first "</script", the tokenizer never leaves script data
    // (only that sequence escapes): that is the end. Else the states, byte by byte.
    let first = raw_text_end(s, start, b"script");
    let upto = first.unwrap_or(s.len());
    if finder(COMMENT_OPEN)
        .find(&s[start.min(upto)..upto])
        .is_none()
    {
        return first;
    }
    script_states_end(s, start)
}

/// [`script_end`] by the standard's states, one byte at a time (linear).
fn script_states_end(s: &[u8], start: usize) -> Option<usize> {
    let mut st = St::Data;
    let mut name = Name::EMPTY;
    let mut lt = start; // the "<" of the end tag being read
    let mut i = start;
    while i < s.len() {
        let b = s[i];
        let alpha = b.is_ascii_alphabetic();
        // (next state, whether b is consumed: else it is read again in the next state)
        let (next, used) = match st {
            St::Data => (if b == b'<' { St::Lt } else { St::Data }, true),
            St::Lt => match b {
                b'/' => (St::EndOpen, true),
                b'!' => (St::EscStart, true),
                _ => (St::Data, false),
            },
            St::EndOpen if alpha => (St::EndName, false),
            St::EndOpen => (St::Data, false),
            St::EndName | St::EscEndName if ends_name(b) && name.is_script() => return Some(lt),
            St::EndName if alpha => (St::EndName, true),
            St::EndName => (St::Data, false),
            St::EscStart if b == b'-' => (St::EscStartDash, true),
            St::EscStartDash if b == b'-' => (St::EscDashDash, true),
            St::EscStart | St::EscStartDash => (St::Data, false),
            St::Esc | St::EscDash | St::EscDashDash => match b {
                b'-' if st == St::Esc => (St::EscDash, true),
                b'-' => (St::EscDashDash, true),
                b'<' => (St::EscLt, true),
                b'>' if st == St::EscDashDash => (St::Data, true),
                _ => (St::Esc, true),
            },
            St::EscLt if b == b'/' => (St::EscEndOpen, true),
            St::EscLt if alpha => (St::DblStart, false),
            St::EscLt => (St::Esc, false),
            St::EscEndOpen if alpha => (St::EscEndName, false),
            St::EscEndOpen => (St::Esc, false),
            St::EscEndName if alpha => (St::EscEndName, true),
            St::EscEndName => (St::Esc, false),
            St::DblStart if ends_name(b) => {
                (if name.is_script() { St::Dbl } else { St::Esc }, true)
            }
            St::DblStart if alpha => (St::DblStart, true),
            St::DblStart => (St::Esc, false),
            St::Dbl | St::DblDash | St::DblDashDash => match b {
                b'-' if st == St::Dbl => (St::DblDash, true),
                b'-' => (St::DblDashDash, true),
                b'<' => (St::DblLt, true),
                b'>' if st == St::DblDashDash => (St::Data, true),
                _ => (St::Dbl, true),
            },
            St::DblLt if b == b'/' => (St::DblEnd, true),
            St::DblLt => (St::Dbl, false),
            St::DblEnd if ends_name(b) => (if name.is_script() { St::Esc } else { St::Dbl }, true),
            St::DblEnd if alpha => (St::DblEnd, true),
            St::DblEnd => (St::Dbl, false),
        };
        // The temporary buffer / tag name: emptied on entering, one letter per letter read.
        match (st, next) {
            (St::Lt, St::EndOpen) | (St::EscLt, St::EscEndOpen) | (St::DblLt, St::DblEnd) => {
                name = Name::EMPTY;
                lt = i - 1;
            }
            (St::EscLt, St::DblStart) => name = Name::EMPTY,
            (St::EndName | St::EscEndName | St::DblStart | St::DblEnd, _) if used && alpha => {
                name.push(b)
            }
            _ => {}
        }
        st = next;
        i += usize::from(used);
    }
    None
}

/// Where a tag whose name ends at *at* ends (right after its `>`), reading its attributes
/// as the tokenizer does closely enough to find the `>` (a quoted value may hold one); and
/// whether it was self-closing. None: the page ends in it.
fn tag_end(s: &[u8], mut at: usize) -> Option<(usize, bool)> {
    loop {
        let p = at + memchr3(b'>', b'"', b'\'', &s[at.min(s.len())..])?;
        if s[p] == b'>' {
            return Some((p + 1, p > 0 && s[p - 1] == b'/'));
        }
        // A quote opens a value after an `=` (and spaces); elsewhere it is a name's.
        let before = s[..p].iter().rposition(|&b| !is_space(b));
        at = p + 1;
        if before.is_some_and(|k| s[k] == b'=') {
            at += memchr(s[p], &s[at..])? + 1;
        }
    }
}

/// A tag name as the predictor keeps it: its first 8 bytes lowercased, little-endian, and
/// its length (two names alike in both are one to it).
type Packed = (u64, usize);

/// `pack(b"name")` of a literal lowercase name.
const fn pack(name: &[u8]) -> Packed {
    let mut v = 0u64;
    let mut k = 0;
    while k < name.len() && k < 8 {
        v |= (name[k] as u64) << (8 * k);
        k += 1;
    }
    (v, name.len())
}

/// The packed name of the tag whose name starts at *at*, and where the name ends.
fn tag_name(s: &[u8], at: usize) -> (Packed, usize) {
    let mut v = 0u64;
    let mut end = at;
    while end < s.len() && !ends_name(s[end]) {
        if end - at < 8 {
            v |= (s[end].to_ascii_lowercase() as u64) << (8 * (end - at));
        }
        end += 1;
    }
    ((v, end - at), end)
}

/// What a tag is to the predictor.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Script,
    Style,
    /// `<svg>`, `<math>`: foreign content (no raw text in it).
    Foreign,
    /// An element whose text is raw text or RCDATA to its end tag (its name).
    Raw(&'static [u8]),
    /// `<plaintext>` (text to the end), `<frameset>`: no more elision.
    Stop,
    /// `<html>`, `<head>`, `<body>` and the void elements: nothing opened.
    Opens,
    Other,
}

/// The kind of the tag named *name* (one match on its packed bytes: most tags are not one
/// of these).
fn kind_of(name: Packed) -> Kind {
    const fn v(name: &[u8]) -> u64 {
        pack(name).0
    }
    const SCRIPT: u64 = v(b"script");
    const STYLE: u64 = v(b"style");
    const SVG: u64 = v(b"svg");
    const MATH: u64 = v(b"math");
    const TITLE: u64 = v(b"title");
    const TEXTAREA: u64 = v(b"textarea");
    const XMP: u64 = v(b"xmp");
    const IFRAME: u64 = v(b"iframe");
    const NOEMBED: u64 = v(b"noembed");
    const NOFRAMES: u64 = v(b"noframes");
    const FRAMESET: u64 = v(b"frameset");
    const PLAINTEX: u64 = v(b"plaintex");
    const HTML: u64 = v(b"html");
    const HEAD: u64 = v(b"head");
    const BODY: u64 = v(b"body");
    const AREA: u64 = v(b"area");
    const BASE: u64 = v(b"base");
    const BASEFONT: u64 = v(b"basefont");
    const BGSOUND: u64 = v(b"bgsound");
    const BR: u64 = v(b"br");
    const COL: u64 = v(b"col");
    const EMBED: u64 = v(b"embed");
    const FRAME: u64 = v(b"frame");
    const HR: u64 = v(b"hr");
    const IMG: u64 = v(b"img");
    const IMAGE: u64 = v(b"image");
    const INPUT: u64 = v(b"input");
    const KEYGEN: u64 = v(b"keygen");
    const LINK: u64 = v(b"link");
    const META: u64 = v(b"meta");
    const PARAM: u64 = v(b"param");
    const SOURCE: u64 = v(b"source");
    const TRACK: u64 = v(b"track");
    const WBR: u64 = v(b"wbr");
    let (value, len) = name;
    if len > 8 {
        return if len == 9 && value == PLAINTEX {
            Kind::Stop // (if its ninth letter is a "t": the caller reads it)
        } else {
            Kind::Other
        };
    }
    match value {
        SCRIPT => Kind::Script,
        STYLE => Kind::Style,
        SVG | MATH => Kind::Foreign,
        TITLE => Kind::Raw(b"title"),
        TEXTAREA => Kind::Raw(b"textarea"),
        XMP => Kind::Raw(b"xmp"),
        IFRAME => Kind::Raw(b"iframe"),
        NOEMBED => Kind::Raw(b"noembed"),
        NOFRAMES => Kind::Raw(b"noframes"),
        FRAMESET => Kind::Stop,
        HTML | HEAD | BODY => Kind::Opens,
        AREA | BASE | BASEFONT | BGSOUND | BR | COL | EMBED | FRAME | HR | IMG | IMAGE | INPUT
        | KEYGEN | LINK | META | PARAM | SOURCE | TRACK | WBR => Kind::Opens, // void
        _ => Kind::Other,
    }
}

/// Whether a script or style start tag may be read for its text downstream (JSON-LD,
/// `[hidden]`, `[itemtype]`; an `&` may spell any of those): then it is kept.
fn read_downstream(tag: &[u8]) -> bool {
    let has = |word: &[u8]| {
        tag.windows(word.len())
            .any(|w| w.eq_ignore_ascii_case(word))
    };
    memchr(b'&', tag).is_some() || has(b"ld+json") || has(b"hidden") || has(b"itemtype")
}

/// The regions to elide (each a script's or style's text: from, to) of *s*, predicted to be
/// children of `<html>`, `<head>` or `<body>` by a loose model of the open elements (a wrong
/// guess costs a second parse: [`elision_holds`] finds it; tags are read by name only, but
/// those whose end matters). Linear: each byte is read a bounded number of times (a raw text
/// element's text is searched once, from its start; a comment's, once).
#[cfg(test)]
pub fn regions(s: &[u8]) -> Vec<(usize, usize)> {
    regions_by(s, None)
}

/// `regions`, reading *s*'s `<` from *lts* (bound_body's marks: ascending positions; one
/// that is not a `<` of *s* is passed over) when given, else searching them. The regions
/// are found in *s* itself either way: *lts* only says where to look (a `<` missed is a
/// tag not followed: a guess, which [`elision_holds`] checks as any other).
pub fn regions_by(s: &[u8], lts: Option<&[usize]>) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    if memchr(MARKER, s).is_some() {
        return out;
    }
    let mut open = OpenNames::default();
    let mut foreign = 0usize; // <svg>/<math> open (no raw text in them)
    let n = s.len();
    let mut base = 0; // where `lts` searches from
    let mut searched = memchr_iter(b'<', if lts.is_some() { &[] } else { s });
    let mut given = lts.unwrap_or(&[]).iter();
    // The next `<` at or after *at* (the searcher is made again after a jump).
    let mut at = 0;
    'tags: loop {
        let lt = if lts.is_some() {
            loop {
                match given.next() {
                    Some(&k) if k >= at && s.get(k) == Some(&b'<') => break k,
                    Some(_) => continue,
                    None => break 'tags,
                }
            }
        } else {
            loop {
                match searched.next() {
                    Some(k) if base + k >= at => break base + k,
                    Some(_) => continue,
                    None => break 'tags,
                }
            }
        };
        let next = s.get(lt + 1).copied().unwrap_or(0);
        let mut jump = |to: Option<usize>, at: &mut usize| -> bool {
            let Some(to) = to else { return false };
            *at = to;
            if to > lt + 64 {
                if lts.is_some() {
                    let rest = given.as_slice();
                    given = rest[rest.partition_point(|&k| k < to)..].iter();
                } else {
                    base = to;
                    searched = memchr_iter(b'<', &s[to.min(n)..]);
                }
            }
            true
        };
        if next == b'!' {
            let end = if s[lt..].starts_with(b"<!--") {
                finder(COMMENT_CLOSE)
                    .find(&s[lt + 2..])
                    .map(|e| lt + 2 + e + 3)
            } else if foreign > 0 && s[lt..].starts_with(b"<![CDATA[") {
                finder(CDATA_CLOSE)
                    .find(&s[lt + 9..])
                    .map(|e| lt + 9 + e + 3)
            } else {
                memchr(b'>', &s[lt + 1..]).map(|e| lt + 2 + e)
            };
            if !jump(end, &mut at) {
                break;
            }
            continue;
        }
        let closing = next == b'/';
        let first = if closing {
            s.get(lt + 2).copied().unwrap_or(0)
        } else {
            next
        };
        if !first.is_ascii_alphabetic() {
            at = lt + 1;
            continue; // text, or a bogus comment (no tag in it as a rule)
        }
        let (name, name_end) = tag_name(s, lt + 1 + usize::from(closing));
        at = name_end;
        let kind = kind_of(name);
        if closing {
            if foreign > 0 {
                foreign -= usize::from(kind == Kind::Foreign);
            } else {
                open.close(name);
            }
            continue;
        }
        if foreign > 0 && kind != Kind::Foreign {
            continue;
        }
        match kind {
            Kind::Foreign | Kind::Script | Kind::Style => {
                let Some((end, self_closing)) = tag_end(s, name_end) else {
                    break;
                };
                at = end;
                if kind == Kind::Foreign {
                    foreign += usize::from(!self_closing);
                    continue;
                }
                let ends = if kind == Kind::Script {
                    script_end(s, end)
                } else {
                    raw_text_end(s, end, b"style")
                };
                if open.is_empty()
                    && ends.is_some_and(|to| to > end)
                    && !read_downstream(&s[lt..end])
                {
                    out.push((end, ends.unwrap_or(end)));
                }
                if !jump(ends, &mut at) {
                    break;
                }
            }
            Kind::Raw(raw) => {
                let ends = tag_end(s, name_end).and_then(|(end, _)| raw_text_end(s, end, raw));
                if !jump(ends, &mut at) {
                    break;
                }
            }
            Kind::Stop if name.1 != 9 || has_name(s, lt + 1, b"plaintext") => break,
            Kind::Opens => {}
            Kind::Stop | Kind::Other => {
                if open.len() >= MAX_OPEN {
                    break;
                }
                open.push(name);
            }
        }
    }
    out
}

/// The loose model's open elements: a stack, with a count per name so that an end tag of a
/// name not open costs one look-up (a scan of the stack for each would make `<div>` x 511
/// then `</y>` x 499k quadratic: review14-b14 1). Each push is popped at most once.
#[derive(Default)]
struct OpenNames {
    stack: Vec<Packed>,
    counts: foldhash::HashMap<Packed, u32>,
}

impl OpenNames {
    fn is_empty(&self) -> bool {
        self.stack.is_empty()
    }

    fn len(&self) -> usize {
        self.stack.len()
    }

    fn push(&mut self, name: Packed) {
        self.stack.push(name);
        *self.counts.entry(name).or_insert(0) += 1;
    }

    /// Pops up to and including the innermost *name*, if one is open.
    fn close(&mut self, name: Packed) {
        if self.counts.get(&name).is_none_or(|&n| n == 0) {
            return;
        }
        while let Some(top) = self.stack.pop() {
            if let Some(n) = self.counts.get_mut(&top) {
                *n -= 1;
            }
            if top == name {
                break;
            }
        }
    }
}

/// *s* with each region's text replaced by [`MARKER`], written at *out*, which has room
/// for *len* = [`elided_len`] bytes (checked: a panic, never a write past it).
///
/// # Safety
/// *out* is valid for writes of *len* bytes.
unsafe fn write_elided_to(s: &[u8], regions: &[(usize, usize)], out: *mut u8, len: usize) {
    assert_eq!(len, elided_len(s, regions));
    let (mut at, mut to) = (0, 0);
    for &(from, end) in regions {
        assert!(at <= from && from < end && end <= s.len());
        std::ptr::copy_nonoverlapping(s.as_ptr().add(at), out.add(to), from - at);
        to += from - at;
        *out.add(to) = MARKER;
        to += 1;
        at = end;
    }
    std::ptr::copy_nonoverlapping(s.as_ptr().add(at), out.add(to), s.len() - at);
}

/// The length of *s* with *regions* elided.
pub fn elided_len(s: &[u8], regions: &[(usize, usize)]) -> usize {
    s.len() + regions.len() - regions.iter().map(|(a, b)| b - a).sum::<usize>()
}

/// *s* with each region's text replaced by [`MARKER`].
#[cfg(test)]
pub fn elided(s: &[u8], regions: &[(usize, usize)]) -> Vec<u8> {
    let len = elided_len(s, regions);
    let mut out = Vec::with_capacity(len);
    // SAFETY: room for len bytes, all written before the length is set.
    unsafe {
        write_elided_to(s, regions, out.as_mut_ptr(), len);
        out.set_len(len);
    }
    out
}

const HIDDEN: Key = Key::new("hidden");
const ITEMTYPE: Key = Key::new("itemtype");
const TYPE: Key = Key::new("type");

/// The elided elements under the `<html>` element *root*: its, its `<head>`'s and its
/// `<body>`'s `<script>`/`<style>` children whose one child is a text node of the marker
/// alone, and which no reader reads (see the module docs). None if the API is not loaded.
///
/// # Safety
/// *root* is a live `lxb_dom_node_t *` whose tree no one changes during the call.
pub unsafe fn elided_elements(root: usize) -> Option<usize> {
    let api = API.get()?;
    let document = document_of(api, root as Node)?;
    let tree = Tree::new(api, document);
    let children = |node: Node| {
        std::iter::successors(tree.first_child(node), |&n| tree.next(n))
            .filter(|&n| tree.kind(n) == ELEMENT)
    };
    let mut found = 0;
    let mut parents = vec![root as Node];
    parents.extend(children(root as Node).filter(|&n| {
        let name = tree.name(n);
        name == "head" || name == "body"
    }));
    for parent in parents {
        for node in children(parent) {
            let name = tree.name(node);
            if name != "script" && name != "style" {
                continue;
            }
            let Some(text) = tree.first_child(node) else {
                continue;
            };
            if tree.next(text).is_some() || tree.kind(text) != TEXT {
                continue;
            }
            let marker = tree.text_of_node(text);
            if marker.as_deref() != Some("\u{1}")
                || tree.has(node, HIDDEN)
                || tree.has(node, ITEMTYPE)
            {
                continue;
            }
            let ld = tree.value(node, TYPE);
            if ld.is_some_and(|t| t.eq_ignore_ascii_case("application/ld+json")) {
                continue;
            }
            found += 1;
        }
    }
    Some(found)
}

/// `(bytes, regions)`: *body* with the text of its top-level script and style elements
/// elided (see the module docs), and how many were; None when none is.
#[pyfunction]
fn elide_raw_text<'py>(
    py: Python<'py>,
    body: &[u8],
) -> PyResult<Option<(Bound<'py, PyBytes>, usize)>> {
    let cut = guarded(|| regions_by(body, crate::bound::taken_lts(body).as_deref()))?;
    if cut.is_empty() {
        return Ok(None);
    }
    let len = elided_len(body, &cut);
    // A bytes object of *len* bytes, left unset by Python and written here whole (new_with
    // would zero it first: a tenth of the call).
    // SAFETY: PyBytes_FromStringAndSize(NULL, len) gives a new bytes object with room for len
    // bytes (or NULL and an exception); write_elided_to writes exactly len bytes in it before
    // Python sees it.
    let bytes = unsafe {
        let ptr =
            pyo3::ffi::PyBytes_FromStringAndSize(std::ptr::null(), len as pyo3::ffi::Py_ssize_t);
        let obj = Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked::<PyBytes>();
        let out = pyo3::ffi::PyBytes_AsString(obj.as_ptr()) as *mut u8;
        guarded(|| write_elided_to(body, &cut, out, len))?;
        obj
    };
    Ok(Some((bytes, cut.len())))
}

/// Whether *tree* (a selectolax `LexborHTMLParser` of bytes `elide_raw_text` gave with
/// *regions*) is the page's tree but for the elided text: each region is an elided element
/// (see the module docs). RuntimeError if it is not a lexbor tree, or on a panic.
#[pyfunction]
fn elision_holds(tree: &Bound<'_, PyAny>, regions: usize) -> PyResult<bool> {
    let root = element_of(tree, &tree.getattr("root")?)?;
    // SAFETY: the contract above (the tree is held, unchanged, under the GIL).
    let found = guarded(|| unsafe { elided_elements(root) })?
        .ok_or_else(|| PyRuntimeError::new_err("the root is not in a lexbor document"))?;
    Ok(found == regions)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(elide_raw_text, m)?)?;
    m.add_function(wrap_pyfunction!(elision_holds, m)?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn open_names_close_only_what_is_open() {
        let (div, p, y) = (pack(b"div"), pack(b"p"), pack(b"y"));
        let mut open = super::OpenNames::default();
        for name in [div, p, div, p] {
            open.push(name);
        }
        open.close(y); // never open: nothing popped
        assert_eq!(open.len(), 4);
        open.close(div); // the innermost div and what is above it
        assert_eq!(open.stack, vec![div, p]);
        open.close(div);
        assert!(open.is_empty());
        open.close(p); // its count is 0 now: a look-up, nothing popped
        assert!(open.is_empty() && open.counts.values().all(|&n| n == 0));
    }

    use super::*;

    #[test]
    fn script_ends_as_the_tokenizer_ends_it() {
        let end = |s: &[u8]| script_end(s, 0);
        assert_eq!(end(b"a</script>"), Some(1));
        assert_eq!(end(b"a</SCRIPT\nx>"), Some(1));
        assert_eq!(end(b"a</scripts></script/>"), Some(11));
        assert_eq!(end(b"<!--<script></script>--></script>"), Some(24));
        assert_eq!(end(b"<!--<script>--></script>"), Some(15));
        assert_eq!(end(b"<!--</script>-->"), Some(4));
        assert_eq!(end(b"<!-- <script></script --></script>"), Some(25));
        assert_eq!(end(b"a<!--b"), None);
        assert_eq!(end(b"a</script"), None);
    }

    #[test]
    fn regions_by_the_marks_are_the_regions_searched() {
        // Seeded soups of the pieces the predictor reads; the `<` from bound_body's marks
        // pass give the regions found by search; stale ones (shifted: not all a `<`) give
        // guesses (the tree check's to refute), never a panic.
        let pieces: [&[u8]; 16] = [
            b"<script>",
            b"</script>",
            b"<style>",
            b"</style>",
            b"<div>",
            b"</div>",
            b"<!--",
            b"-->",
            b"<svg>",
            b"</svg>",
            b"a<b",
            b"<script type=x>",
            b"<title>",
            b"</title>",
            b"<p>",
            b"x",
        ];
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut elided = 0;
        for _ in 0..5000 {
            let mut page = Vec::new();
            for _ in 0..next() % 60 {
                page.extend_from_slice(pieces[next() as usize % pieces.len()]);
            }
            let want = regions(&page);
            let lts = crate::bound::Marks::of(&page).lts;
            assert_eq!(regions_by(&page, Some(&lts)), want, "{page:?}");
            let stale: Vec<usize> = lts.iter().map(|&k| k + (next() % 2) as usize).collect();
            for (from, to) in regions_by(&page, Some(&stale)) {
                // (a guess as any: after a start tag's `>`, to an end tag's `<`)
                assert!(page[from - 1] == b'>' && page[to..].starts_with(b"</") && from < to);
            }
            elided += usize::from(!want.is_empty());
        }
        assert!(elided > 500, "{elided}");
    }

    #[test]
    fn regions_skip_what_is_not_top_level() {
        let page =
            b"<head><script>a</script><style>b</style></head><body><div><script>c</script></div>\
<script type=application/LD+JSON>{}</script><svg><style>d</style></svg><script>e</script>";
        let got: Vec<&[u8]> = regions(page).iter().map(|&(a, b)| &page[a..b]).collect();
        assert_eq!(got, vec![&b"a"[..], b"b", b"e"]);
        assert!(regions(b"<script>a\x01</script>").is_empty());
        assert_eq!(
            elided(b"<script>abc</script>x", &[(8, 11)]),
            b"<script>\x01</script>x"
        );
    }
}
