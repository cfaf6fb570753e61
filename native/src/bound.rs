//! pipelines/extract.py `bound_body`, whole: the byte cuts (MAX_PARSE_BYTES, MAX_TAGS), the
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

use crate::bounds::{self, cut_spans, ends_name, lowered_or};

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
/// `_HTML_OPENER_RE`'s context tags (in HTML_OPENERS; the tests check the union).
#[cfg(test)]
const HTML_CONTEXT: &[&[u8]] = &[b"svg", b"math", b"frameset"];
/// `_HTML_OPENER_RE`'s start tags: the raw text names and the context tags (one look-up for
/// both: `<span` was two).
const HTML_OPENERS: &[&[u8]] = &[
    b"script",
    b"style",
    b"textarea",
    b"title",
    b"xmp",
    b"iframe",
    b"noembed",
    b"noframes",
    b"svg",
    b"math",
    b"frameset",
];
/// `_OPENER_RE`'s start tags: the raw text names and the context names (`title` is both).
const ANY_OPENERS: &[&[u8]] = &[
    b"script",
    b"style",
    b"textarea",
    b"title",
    b"xmp",
    b"iframe",
    b"noembed",
    b"noframes",
    b"svg",
    b"math",
    b"foreignobject",
    b"desc",
    b"mi",
    b"mo",
    b"mn",
    b"ms",
    b"mtext",
    b"annotation-xml",
    b"frameset",
];
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
    names.contains(&name)
}

/// extract.py `_CONTEXT_ONLY_NAMES`: the context names that are not raw text.
fn is_context_only(name: &[u8]) -> bool {
    contains(CONTEXT_NAMES, name) && !contains(RAW_TEXT_NAMES, name)
}

/// A set of tag names (at most 128), with the first bytes they start with (either case) and
/// their longest length: most `<` are rejected by one table look-up.
struct Names {
    list: &'static [&'static [u8]],
    first: [bool; 256],
    longest: usize,
    /// By a first byte (either case): the names that start with it, as bits of *list*'s
    /// indices (a name is compared with the few of its first byte, no lookup built at run time).
    /// (In two halves: indices 0-63, 64-127; u128 masks cost ~20 instructions a look-up.)
    by_first: [[u64; 2]; 256],
    /// By a length (< 16): the names that long, as bits of *list*'s indices (with `by_first`,
    /// a word is compared with one name at most, most often none).
    by_len: [[u64; 2]; 16],
    /// The halves in use (2: more than 64 names).
    halves: usize,
}

const fn names(list: &'static [&'static [u8]]) -> Names {
    assert!(list.len() <= 128, "by_first holds 128 names");
    let mut first = [false; 256];
    let mut by_first = [[0u64; 2]; 256];
    let mut by_len = [[0u64; 2]; 16];
    let mut longest = 0;
    let mut i = 0;
    while i < list.len() {
        let c = list[i][0];
        let (lower, upper) = (
            c.to_ascii_lowercase() as usize,
            c.to_ascii_uppercase() as usize,
        );
        first[lower] = true;
        first[upper] = true;
        let (half, bit) = (i / 64, 1u64 << (i % 64));
        by_first[lower][half] |= bit;
        by_first[upper][half] |= bit;
        assert!(list[i].len() < 16, "by_len holds names shorter than 16");
        by_len[list[i].len()][half] |= bit;
        if list[i].len() > longest {
            longest = list[i].len();
        }
        i += 1;
    }
    Names {
        list,
        first,
        longest,
        by_first,
        by_len,
        halves: list.len().div_ceil(64),
    }
}

static FORMATTING_SET: Names = names(FORMATTING);
static FORMATTING_A_SET: Names = names(FORMATTING_A);
#[cfg(test)] // (links_may_nest, the check of start_names)
static NESTING_LINK_SET: Names = names(NESTING_LINK);
static RAW_TEXT_SET: Names = names(RAW_TEXT_NAMES);
static CONTEXT_SET: Names = names(CONTEXT_NAMES);
static HTML_OPENERS_SET: Names = names(HTML_OPENERS);
static ANY_OPENERS_SET: Names = names(ANY_OPENERS);

/// POPPING then FORMATTING_A: `reopening` reads a `<`'s name once (its index says which).
const REOPEN_NAMES: [&[u8]; POPPING.len() + FORMATTING_A.len()] = {
    let mut out: [&[u8]; POPPING.len() + FORMATTING_A.len()] =
        [b""; POPPING.len() + FORMATTING_A.len()];
    let mut i = 0;
    while i < POPPING.len() {
        out[i] = POPPING[i];
        i += 1;
    }
    while i < out.len() {
        out[i] = FORMATTING_A[i - POPPING.len()];
        i += 1;
    }
    out
};
static REOPEN_SET: Names = names(&REOPEN_NAMES);
// (`reopening` reads REOPEN_NAMES' last index as `a`.)
const _: () = assert!(matches!(REOPEN_NAMES[REOPEN_NAMES.len() - 1], b"a"));

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
#[inline(always)]
fn word_at(s: &[u8], at: usize, lim: usize, set: &Names) -> Option<usize> {
    name_at(s, at, lim, set).map(|(d, _)| d)
}

/// `word_in`, and the index in *set*'s list of the name read.
#[inline(always)]
fn name_in(s: &[u8], at: usize, lim: usize, set: &Names) -> Option<(usize, usize)> {
    let lim = lim.min(s.len());
    if at >= lim || !set.first[s[at] as usize] {
        return None;
    }
    name_at(s, at, lim, set)
}

/// `name_in` past its first byte's look-up.
#[inline(never)]
fn name_at(s: &[u8], at: usize, lim: usize, set: &Names) -> Option<(usize, usize)> {
    let stop = lim.min(at + set.longest + 1);
    let mut d = at + 1;
    while d < stop && !ends_name(s[d]) {
        d += 1;
    }
    if d >= stop {
        return None;
    }
    let word = &s[at..d];
    // (d - at <= longest < 16: the word is no longer than the longest name.)
    let (first, len) = (&set.by_first[s[at] as usize], &set.by_len[d - at]);
    for half in 0..set.halves {
        let mut candidates = first[half] & len[half];
        while candidates != 0 {
            let i = 64 * half + candidates.trailing_zeros() as usize;
            candidates &= candidates - 1;
            if set.list[i].eq_ignore_ascii_case(word) {
                return Some((d, i));
            }
        }
    }
    None
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
        cached(&mut self.seen, from, || find2(s, from, a, b))
    }
}

/// The first index >= *from* of *a* or *b* in *s*, or `s.len()` (memchr2).
fn find2(s: &[u8], from: usize, a: u8, b: u8) -> usize {
    let Some(rest) = s.get(from..) else {
        return s.len();
    };
    memchr2(a, b, rest).map_or(s.len(), |i| from + i)
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
    /// `quoted_gts` of the body.
    pub quoted: Vec<usize>,
}

/// The shortest stretch without a `>` that `Marks` keeps: `_LONG_TAG_RE`'s 2 x
/// MAX_ATTRS_PER_TAG bytes (the longest distance the scanners ask about is 1,021).
const LONG_GAP: usize = 2 * MAX_ATTRS_PER_TAG;

impl Marks {
    /// The marks of *s*.
    pub fn of(s: &[u8]) -> Marks {
        Marks::of_capped(s, usize::MAX).expect("no cap")
    }

    /// The marks of *s*, or None if it has more than *cap* `<` (the list is not made longer
    /// than that: a body of 8 MiB of `<` is cut to MAX_TAGS first). One pass over the bytes
    /// finds the `<`, the long gaps and the quoted `>` (`quoted_gts`) together.
    pub fn of_capped(s: &[u8], cap: usize) -> Option<Marks> {
        Marks::of_capped_by(s, cap, Lanes::Best, None)
    }

    /// `of_capped`, and *s* lowercased (ASCII) into *lowered* in the same pass (when Some is
    /// returned; a bound's scanners read the lowercased body: a second pass and a copy).
    fn of_lowering(s: &[u8], cap: usize, lowered: &mut Vec<u8>) -> Option<Marks> {
        Marks::of_capped_by(s, cap, Lanes::Best, Some(lowered))
    }

    /// `of_capped`, with SIMD or by the byte loop alone (*lanes*: the tests check each),
    /// lowercasing *s* into *lowered* if given.
    fn of_capped_by(
        s: &[u8],
        cap: usize,
        lanes: Lanes,
        mut lowered: Option<&mut Vec<u8>>,
    ) -> Option<Marks> {
        if let Some(lowered) = lowered.as_deref_mut() {
            lowered.clear();
            if lowered.capacity() < s.len() {
                // A new buffer, not `reserve`: its realloc copied the old bytes, all dead
                // (~2% of bound_body over the 121 pages, each larger page grew it).
                *lowered = Vec::with_capacity(s.len());
            }
        }
        let mut marks = Marks {
            lts: Vec::with_capacity((s.len() / 64).min(cap.saturating_add(1))),
            gaps: Vec::new(),
            quoted: Vec::new(),
        };
        let mut from = 0; // the first byte after the last `>`
        let done = simd_marks(s, &mut marks, &mut from, cap, lowered.as_deref_mut(), lanes)?;
        if let Some(lowered) = lowered {
            // (The SIMD pass wrote the first *done* bytes in place: the length is set here.)
            // SAFETY: *done* <= s.len() bytes were written within the capacity reserved.
            unsafe { lowered.set_len(done) };
            lowered.extend(s[done..].iter().map(u8::to_ascii_lowercase));
        }
        let tail = &s[done..];
        for (k, &byte) in tail.iter().enumerate() {
            let at = done + k;
            match byte {
                b'<' => {
                    marks.lts.push(at);
                    if marks.lts.len() > cap {
                        return None;
                    }
                }
                b'>' => {
                    if at - from >= LONG_GAP {
                        marks.gaps.push((from, at));
                    }
                    from = at + 1;
                }
                b'"' | b'\'' => {
                    if let Some(eq) = opening_eq(s, at) {
                        let stop = find2(s, at + 1, byte, b'>');
                        if stop < s.len() && s[stop] == b'>' {
                            marks.quoted.push(eq);
                        }
                    }
                }
                _ => {}
            }
        }
        if s.len() - from.min(s.len()) >= LONG_GAP {
            marks.gaps.push((from, s.len()));
        }
        Some(marks)
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

/// How the marks pass reads the bytes: one by one, or 64 at a time with SSE2 (every x86_64
/// CPU) or the best the CPU has (AVX2, else SSE2). The same marks (tests: each against the
/// byte loop).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lanes {
    #[cfg_attr(not(test), allow(dead_code))] // (the tests' checks; and elsewhere than x86_64)
    Bytes,
    #[cfg_attr(not(test), allow(dead_code))]
    Sse2,
    Best,
}

/// The marks of the whole 64-byte chunks of *s* with SIMD (AVX2 when the CPU has it, else
/// SSE2; the byte loop elsewhere), *from*: the first byte after the last `>` (kept up);
/// the bytes read, or None past *cap* `<`.
#[cfg(target_arch = "x86_64")]
fn simd_marks(
    s: &[u8],
    marks: &mut Marks,
    from: &mut usize,
    cap: usize,
    lowered: Option<&mut Vec<u8>>,
    lanes: Lanes,
) -> Option<usize> {
    let out = lowered.map(|l| l.as_mut_ptr());
    match lanes {
        Lanes::Bytes => Some(0),
        // SAFETY: the CPU has AVX2, POPCNT, BMI1 and LZCNT (checked); *out* has room for
        // s.len() bytes (reserved by the caller).
        Lanes::Best if avx2_cpu() => unsafe { avx2_marks(s, marks, from, cap, out) },
        // SAFETY: every x86_64 CPU has SSE2; *out* as above.
        _ => unsafe { sse2_marks(s, marks, from, cap, out) },
    }
}

/// Whether the CPU has AVX2 and the bit instructions every AVX2 CPU has (POPCNT, BMI1's
/// TZCNT, LZCNT): without them a chunk's `<` count was a dozen instructions of bit tricks.
#[cfg(target_arch = "x86_64")]
fn avx2_cpu() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("popcnt")
        && std::arch::is_x86_feature_detected!("bmi1")
        && std::arch::is_x86_feature_detected!("lzcnt")
}

/// (Elsewhere: the bytes are read one by one.)
#[cfg(not(target_arch = "x86_64"))]
fn simd_marks(
    _s: &[u8],
    _marks: &mut Marks,
    _from: &mut usize,
    _cap: usize,
    _lowered: Option<&mut Vec<u8>>,
    _lanes: Lanes,
) -> Option<usize> {
    Some(0)
}

/// A 64-byte chunk's bytes of interest, as bit masks (bit k: the chunk's byte k): `<`, `>`,
/// `"`, `'`, and `=` or a byte <= 0x20.
#[derive(Clone, Copy)]
struct ChunkMasks {
    lt: u64,
    gt: u64,
    dq: u64,
    sq: u64,
    eq_ws: u64,
}

/// What the chunk pass carries from one chunk to the next.
#[derive(Default)]
struct ChunkCarry {
    /// The last chunk's last byte was `=` or <= 0x20.
    after_eq_ws: u64,
    /// The `=` of a value open (no quote of its kind or `>` since), by quote.
    open_dq: Option<usize>,
    open_sq: Option<usize>,
}

/// `simd_marks` of one chunk at *at*, from its masks *m* (shared by the AVX2 and SSE2
/// passes, inlined in each):
/// - A chunk's `<` are written 8 at a time whether there are 8 or not (few branches to
///   mispredict; the list keeps its true length).
/// - Its `>` are read by its first and last only: two `>` of one chunk are less than
///   `LONG_GAP` apart.
/// - A quote after `=` or a byte <= 0x20 may open a value: its `=` is looked for backwards
///   past spaces (`opening_eq`), then its end (the first same quote or `>` after it) in the
///   chunk's masks, or by a search past the chunk (each search ends at the next same quote:
///   no byte is searched twice by quotes of one kind).
///
/// None past *cap* `<`.
#[inline(always)]
fn chunk_marks(
    s: &[u8],
    marks: &mut Marks,
    from: &mut usize,
    cap: usize,
    at: usize,
    m: ChunkMasks,
    carry: &mut ChunkCarry,
) -> Option<()> {
    let (m_lt, m_gt, m_dq, m_sq, eq_ws) = (m.lt, m.gt, m.dq, m.sq, m.eq_ws);
    let mut lts = m_lt;
    let count = lts.count_ones() as usize;
    if count != 0 {
        marks.lts.reserve(count.next_multiple_of(8));
        let len = marks.lts.len();
        // SAFETY: *count* rounded up to 8 slots past *len* are within the capacity
        // reserved (written 8 at a time); the first *count* of them are the `<`, in order.
        unsafe {
            let out = marks.lts.as_mut_ptr().add(len);
            let mut k = 0;
            while k < count {
                for j in 0..8 {
                    *out.add(k + j) = at + lts.trailing_zeros() as usize;
                    lts &= lts.wrapping_sub(1);
                }
                k += 8;
            }
            marks.lts.set_len(len + count);
        }
        if marks.lts.len() > cap {
            return None;
        }
    }
    if m_gt != 0 {
        let first = at + m_gt.trailing_zeros() as usize;
        if first - *from >= LONG_GAP {
            marks.gaps.push((*from, first));
        }
        *from = at + 64 - m_gt.leading_zeros() as usize;
    }
    // The values open past the last chunk end at this chunk's first same quote or `>`.
    for (open, same) in [(&mut carry.open_dq, m_dq), (&mut carry.open_sq, m_sq)] {
        let stops = same | m_gt;
        if stops != 0 {
            if let Some(eq) = open.take() {
                if m_gt >> stops.trailing_zeros() & 1 == 1 {
                    marks.quoted.push(eq);
                }
            }
        }
    }
    let mut opens = (m_dq | m_sq) & ((eq_ws << 1) | carry.after_eq_ws);
    carry.after_eq_ws = eq_ws >> 63;
    while opens != 0 {
        let i = opens.trailing_zeros();
        opens &= opens - 1;
        let q = at + i as usize;
        let Some(eq) = opening_eq(s, q) else {
            continue;
        };
        let (same, open) = if s[q] == b'"' {
            (m_dq, &mut carry.open_dq)
        } else {
            (m_sq, &mut carry.open_sq)
        };
        let stops = (same | m_gt) & (u64::MAX << i << 1);
        if stops == 0 {
            *open = Some(eq); // (one a kind: a later quote of its kind would end it)
        } else if m_gt >> stops.trailing_zeros() & 1 == 1 {
            marks.quoted.push(eq);
        }
    }
    Some(())
}

/// The end of a chunk pass over *chunks* chunks: the values still open end in the bytes
/// after the chunks, or never; the bytes read.
#[inline(always)]
fn chunks_done(s: &[u8], marks: &mut Marks, chunks: usize, carry: ChunkCarry) -> usize {
    for (open, quote) in [(carry.open_dq, b'"'), (carry.open_sq, b'\'')] {
        if let Some(eq) = open {
            let stop = find2(s, chunks * 64, quote, b'>');
            if stop < s.len() && s[stop] == b'>' {
                marks.quoted.push(eq);
            }
        }
    }
    // (A value open over chunks may be found after one opened later: in order again.)
    if !marks.quoted.is_sorted() {
        marks.quoted.sort_unstable();
    }
    chunks * 64
}

/// `simd_marks` with AVX2 (two 32-byte lanes a chunk; see `chunk_marks`).
/// - *lowered*: where the chunks are written lowercased (ASCII), if given.
///
/// # Safety
/// The CPU has AVX2, POPCNT, BMI1 and LZCNT (`avx2_cpu`); *lowered* has room for s.len()
/// bytes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt,bmi1,lzcnt")]
unsafe fn avx2_marks(
    s: &[u8],
    marks: &mut Marks,
    from: &mut usize,
    cap: usize,
    lowered: Option<*mut u8>,
) -> Option<usize> {
    use std::arch::x86_64::{__m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_max_epu8};
    use std::arch::x86_64::{_mm256_and_si256, _mm256_cmpgt_epi8, _mm256_storeu_si256};
    use std::arch::x86_64::{_mm256_movemask_epi8, _mm256_or_si256, _mm256_set1_epi8};
    let set = |b: u8| _mm256_set1_epi8(b as i8);
    let (lt, gt, dq, sq, eq, space) = (
        set(b'<'),
        set(b'>'),
        set(b'"'),
        set(b'\''),
        set(b'='),
        set(b' '),
    );
    let bits = |v: __m256i| _mm256_movemask_epi8(v) as u32 as u64;
    let chunks = s.len() / 64;
    let mut carry = ChunkCarry::default();
    for chunk in 0..chunks {
        let at = chunk * 64;
        // SAFETY: two loads of 32 bytes inside *s* (at + 64 <= s.len()).
        let (v0, v1) = unsafe {
            (
                _mm256_loadu_si256(s.as_ptr().add(at) as *const __m256i),
                _mm256_loadu_si256(s.as_ptr().add(at + 32) as *const __m256i),
            )
        };
        if let Some(out) = lowered {
            // A-Z (signed compares: bytes >= 0x80 are negative, not letters) | 0x20.
            let (above, below, case) = (set(b'A' - 1), set(b'Z' + 1), set(0x20));
            for (k, v) in [(0, v0), (32, v1)] {
                let upper =
                    _mm256_and_si256(_mm256_cmpgt_epi8(v, above), _mm256_cmpgt_epi8(below, v));
                let low = _mm256_or_si256(v, _mm256_and_si256(upper, case));
                // SAFETY: at + 64 <= s.len(): within the room the caller reserved.
                unsafe { _mm256_storeu_si256(out.add(at + k) as *mut __m256i, low) };
            }
        }
        let mask =
            |c: __m256i| bits(_mm256_cmpeq_epi8(v0, c)) | bits(_mm256_cmpeq_epi8(v1, c)) << 32;
        // `=`, or a byte <= 0x20 (max(b, 0x20) == 0x20): the spaces and a few more.
        let low = |v: __m256i| {
            _mm256_or_si256(
                _mm256_cmpeq_epi8(v, eq),
                _mm256_cmpeq_epi8(_mm256_max_epu8(v, space), space),
            )
        };
        let m = ChunkMasks {
            lt: mask(lt),
            gt: mask(gt),
            dq: mask(dq),
            sq: mask(sq),
            eq_ws: bits(low(v0)) | bits(low(v1)) << 32,
        };
        chunk_marks(s, marks, from, cap, at, m, &mut carry)?;
    }
    Some(chunks_done(s, marks, chunks, carry))
}

/// `simd_marks` with SSE2 (four 16-byte lanes a chunk; see `chunk_marks`): for a CPU
/// without AVX2, which read the bytes one by one before (~1.35x slower than session 12).
///
/// # Safety
/// *lowered* has room for s.len() bytes.
#[cfg(target_arch = "x86_64")]
unsafe fn sse2_marks(
    s: &[u8],
    marks: &mut Marks,
    from: &mut usize,
    cap: usize,
    lowered: Option<*mut u8>,
) -> Option<usize> {
    use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8};
    use std::arch::x86_64::{_mm_and_si128, _mm_cmpgt_epi8, _mm_storeu_si128};
    use std::arch::x86_64::{_mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8};
    // SAFETY (all intrinsics here): SSE2 is part of every x86_64 CPU.
    let set = |b: u8| unsafe { _mm_set1_epi8(b as i8) };
    let (lt, gt, dq, sq, eq, space) = (
        set(b'<'),
        set(b'>'),
        set(b'"'),
        set(b'\''),
        set(b'='),
        set(b' '),
    );
    let (above, below, case) = (set(b'A' - 1), set(b'Z' + 1), set(0x20));
    let chunks = s.len() / 64;
    let mut carry = ChunkCarry::default();
    for chunk in 0..chunks {
        let at = chunk * 64;
        // SAFETY: four loads of 16 bytes inside *s* (at + 64 <= s.len()).
        let v: [__m128i; 4] = unsafe {
            std::array::from_fn(|k| _mm_loadu_si128(s.as_ptr().add(at + 16 * k) as *const __m128i))
        };
        if let Some(out) = lowered {
            for (k, &lane) in v.iter().enumerate() {
                // SAFETY: at + 64 <= s.len(): within the room the caller reserved.
                unsafe {
                    let upper =
                        _mm_and_si128(_mm_cmpgt_epi8(lane, above), _mm_cmpgt_epi8(below, lane));
                    let low = _mm_or_si128(lane, _mm_and_si128(upper, case));
                    _mm_storeu_si128(out.add(at + 16 * k) as *mut __m128i, low);
                }
            }
        }
        // The four lanes' bits of *f*'s answer, as one 64-bit mask.
        let bits = |f: &dyn Fn(__m128i) -> __m128i| {
            v.iter().enumerate().fold(0u64, |acc, (k, &lane)| {
                // SAFETY: SSE2.
                acc | (unsafe { _mm_movemask_epi8(f(lane)) } as u32 as u64) << (16 * k)
            })
        };
        // SAFETY (the closures): SSE2.
        let m = ChunkMasks {
            lt: bits(&|x| unsafe { _mm_cmpeq_epi8(x, lt) }),
            gt: bits(&|x| unsafe { _mm_cmpeq_epi8(x, gt) }),
            dq: bits(&|x| unsafe { _mm_cmpeq_epi8(x, dq) }),
            sq: bits(&|x| unsafe { _mm_cmpeq_epi8(x, sq) }),
            // `=`, or a byte <= 0x20 (max(b, 0x20) == 0x20).
            eq_ws: bits(&|x| unsafe {
                _mm_or_si128(
                    _mm_cmpeq_epi8(x, eq),
                    _mm_cmpeq_epi8(_mm_max_epu8(x, space), space),
                )
            }),
        };
        chunk_marks(s, marks, from, cap, at, m, &mut carry)?;
    }
    Some(chunks_done(s, marks, chunks, carry))
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
/// `>` before its closing quote (found by `Marks`, with the `<`).
pub fn quoted_gts(body: &[u8]) -> Vec<usize> {
    Marks::of(body).quoted
}

/// The `=` before the quote at *at*, past spaces, if there is one: it opens a value.
#[inline(always)]
fn opening_eq(body: &[u8], at: usize) -> Option<usize> {
    let mut k = at;
    while k > 0 {
        k -= 1;
        match body[k] {
            b'=' => return Some(k),
            b if is_ws(b) => {}
            _ => return None,
        }
    }
    None
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

#[inline]
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
    heavy_quoted(body, quoted)
}

/// `_heavy_formatting`'s second half: a formatting tag with a quoted `>` of
/// REOPEN_UNIT_BYTES or more.
fn heavy_quoted(body: &[u8], quoted: &[usize]) -> bool {
    let n = body.len();
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

/// FORMATTING (not `a`), then `a`, then the rest of NESTING_LINK: `start_names` reads a
/// `<`'s name once for both of its counts (its index says which).
const START_NAMES: [&[u8]; FORMATTING.len() + NESTING_LINK.len()] = {
    let mut out: [&[u8]; FORMATTING.len() + NESTING_LINK.len()] =
        [b"a"; FORMATTING.len() + NESTING_LINK.len()];
    let mut i = 0;
    while i < FORMATTING.len() {
        out[i] = FORMATTING[i];
        i += 1;
    }
    // out[FORMATTING.len()] is `a`; then NESTING_LINK but its `a` (its first).
    let mut k = 1;
    while k < NESTING_LINK.len() {
        out[FORMATTING.len() + k] = NESTING_LINK[k];
        k += 1;
    }
    out
};
static START_SET: Names = names(&START_NAMES);
const _: () = assert!(matches!(NESTING_LINK[0], b"a"));
/// START_NAMES' index of `a`.
const START_A: usize = FORMATTING.len();

/// What `bound_body` reads of the start tags' names in one visit of the `<` (a visit each
/// cost more than the reads).
#[derive(Debug, PartialEq)]
struct StartNames {
    /// `formatting_starts`.
    starts: usize,
    /// The first half of `_heavy_formatting`: a formatting tag or `<a` whose name is
    /// REOPEN_UNIT_BYTES - 3 bytes or more from the next `>` (by the marks' long gaps, not a
    /// search a tag).
    heavy: bool,
    /// `_links_may_nest`'s counts: the `<a` and the NESTING_LINK names.
    links: usize,
    nesting: usize,
}

/// The `StartNames` of *body* and its *marks*.
fn start_names(body: &[u8], marks: &Marks) -> StartNames {
    let n = body.len();
    let mut out = StartNames {
        starts: 0,
        heavy: false,
        links: 0,
        nesting: 0,
    };
    let mut gap = 0;
    for &p in &marks.lts {
        // (A word is a name of FORMATTING_A or of NESTING_LINK iff of their union.)
        if let Some((d, i)) = name_in(body, p + 1, n, &START_SET) {
            if i <= START_A {
                out.starts += usize::from(i != START_A);
                out.heavy = out.heavy || marks.far_gt(d, REOPEN_UNIT_BYTES - 3, &mut gap).is_some();
            }
            out.links += usize::from(i == START_A);
            out.nesting += usize::from(i >= START_A);
        }
    }
    out
}

/// `_links_may_nest` from *names*' counts.
fn links_nest(names: &StartNames, max_depth: usize) -> bool {
    2 * names.links.min(names.nesting - names.links) > max_depth
}

/// What `reopened_past_gate` reads of the `<` of the lowercased body, in one walk (a walk
/// each cost more than the reads).
struct Reopening {
    /// `_pop_positions`.
    pops: Vec<usize>,
    /// The matches of `_FORMATTING_WHOLE_RE`, as finditer gives them.
    ftags: Vec<FormattingTag>,
    /// The `<a` start tags (`reopen_bound`'s links).
    links: usize,
}

/// The `Reopening` of *lowered* and its `<` *lts*.
fn reopening(lowered: &[u8], lts: &[usize]) -> Reopening {
    let n = lowered.len();
    let mut out = Reopening {
        pops: Vec::new(),
        ftags: Vec::new(),
        links: 0,
    };
    let mut pos = 0; // past the formatting tag matched last
    for &p in lts {
        if lowered.get(p + 1) == Some(&b'/') {
            out.pops.push(p);
            // (Its name's first byte first, here: most `<` are not a formatting tag's.)
            let letter = lowered.get(p + 2);
            if p >= pos && letter.is_some_and(|&b| FORMATTING_A_SET.first[b as usize]) {
                if let Some(tag) = formatting_tag(lowered, p, n) {
                    pos = tag.end;
                    out.ftags.push(tag);
                }
            }
            continue;
        }
        // A start tag's name, read once: a popping name or a formatting one (`a` too).
        let Some((d, i)) = name_in(lowered, p + 1, n, &REOPEN_SET) else {
            continue;
        };
        if i < POPPING.len() {
            out.pops.push(p);
            continue;
        }
        let link = i == REOPEN_NAMES.len() - 1;
        out.links += usize::from(link);
        if p >= pos {
            // (formatting_tag at p: the name read above, then its attributes.)
            let tag = FormattingTag {
                end: formatting_attrs(lowered, d, n),
                closing: false,
                name: (p + 1, d),
            };
            pos = tag.end;
            out.ftags.push(tag);
        }
    }
    out
}

fn units(len: usize) -> i64 {
    1 + (len / REOPEN_UNIT_BYTES) as i64
}

/// Formatting tags counted by their whole text (lowercased). foldhash, seeded per process and
/// per table: the keys are the page's, and no page can pick tags that collide on every
/// machine (std's SipHash was ~12% of bound_body with the nesting bounds' table).
type Alike<'a> = HashMap<&'a [u8], i64, foldhash::fast::RandomState>;

/// Slots reserved for `Alike` up front: honest pages have few distinct formatting tags, and one
/// slot a tag on 500k alike `<b>` was ~26 MB of table (review15-b15 1); past it, it grows.
const ALIKE_RESERVE: usize = 4096;

/// `_reopen_bound`, over the formatting tags of the lowercased body.
fn reopen_bound(
    lowered: &[u8],
    tags: &[FormattingTag],
    pops: usize,
    links: usize,
    starts: usize,
) -> i64 {
    let mut alike: Alike =
        HashMap::with_capacity_and_hasher(tags.len().min(ALIKE_RESERVE), Default::default());
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
    let mut alike: Alike =
        HashMap::with_capacity_and_hasher(ftags.len().min(ALIKE_RESERVE), Default::default());
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
    reopened_past_gate(body, None, tags, budget, lts, starts)
}

/// `limit_reopened` of a body, its *marks* and *names* (bound_body's: the formatting tags'
/// first visit by `start_names`).
fn limit_reopened_marked(
    body: &[u8],
    lowered: Option<&[u8]>,
    tags: usize,
    budget: i64,
    marks: &Marks,
    names: &StartNames,
) -> Option<Vec<u8>> {
    let (starts, heavy) = (names.starts, names.heavy);
    if ((starts as i64 + 1).saturating_mul(tags as i64) <= budget)
        && !heavy
        && !heavy_quoted(body, &marks.quoted)
    {
        return None;
    }
    reopened_past_gate(body, lowered, tags, budget, &marks.lts, starts)
}

/// `limit_reopened` past its first gate (the formatting start tags *starts*).
fn reopened_past_gate(
    body: &[u8],
    lowered: Option<&[u8]>,
    tags: usize,
    budget: i64,
    lts: &[usize],
    starts: usize,
) -> Option<Vec<u8>> {
    // (Lowercasing keeps every `<` where it was: the body's positions are the lowered's.)
    lowered_or(body, lowered, |lowered| {
        let Reopening { pops, ftags, links } = reopening(lowered, lts);
        if reopen_bound(lowered, &ftags, pops.len(), links, starts) <= budget {
            return None;
        }
        let tags = tags as i64;
        if reopen_cost(lowered, lts, &ftags, tags, &pops, budget, None) <= budget {
            return None;
        }
        let mut drop = Vec::new();
        reopen_cost(lowered, lts, &ftags, tags, &pops, budget, Some(&mut drop));
        (!drop.is_empty()).then(|| cut_spans(body, &drop))
    })
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
#[derive(Clone, Copy, Debug)]
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
    /// Where each raw text end tag and `<!--` starts, by `Key::slot`: found at first use in
    /// one walk over the `<` (a memmem search per reading scanned the raw text again).
    at_lt: Option<Vec<Vec<usize>>>,
    escaped: HashMap<usize, usize>,
    island_tags: usize,
    caps: Caps,
}

/// Whether *pair* (lowercased) can begin a raw text name: sc(ript), st(yle), te(xtarea),
/// ti(tle), xm(p), if(rame), no(embed), no(frames).
fn raw_text_pair(pair: &[u8]) -> bool {
    matches!(pair, b"sc" | b"st" | b"te" | b"ti" | b"xm" | b"if" | b"no")
}

/// The keys whose ends start with a `<` (`Ends::at_lt`): the raw text end tags and `<!--`.
const LT_KEYS: usize = RAW_TEXT_NAMES.len() + 1;

impl<'a> Ends<'a> {
    fn new(lowered: &'a [u8], caps: Caps, lts: &'a [usize]) -> Self {
        Ends {
            lowered,
            lts,
            found: [(1, 0); RAW_TEXT_NAMES.len() + 4],
            at_lt: None,
            escaped: HashMap::new(),
            island_tags: 0,
            caps,
        }
    }

    /// `Ends::at_lt`, made from *lts* (the `<` of *lowered*, in order): `</name` followed by
    /// a name's end (`[\t\n\f\r />]`) for each raw text name, and `<!--`.
    fn ends_at_lts(lowered: &[u8], lts: &[usize]) -> Vec<Vec<usize>> {
        #[cfg(test)]
        tests::LT_WALKS.with(|walks| walks.set(walks.get() + lts.len()));
        let n = lowered.len();
        let mut at_lt = vec![Vec::new(); LT_KEYS];
        for &p in lts {
            match lowered.get(p + 1) {
                // (The first two letters of a raw text name first: most end tags are not.)
                Some(b'/') if lowered.get(p + 2..p + 4).is_some_and(raw_text_pair) => {
                    if let Some(d) = word_in(lowered, p + 2, n, &RAW_TEXT_SET) {
                        let name = &lowered[p + 2..d];
                        if let Some(i) = RAW_TEXT_NAMES.iter().position(|r| *r == name) {
                            at_lt[i].push(p);
                        }
                    }
                }
                Some(b'!') if lowered[p..].starts_with(b"<!--") => {
                    at_lt[Key::CommentOpen.slot()].push(p);
                }
                _ => {}
            }
        }
        at_lt
    }

    fn search(&mut self, key: Key, at: usize) -> usize {
        let s = self.lowered;
        let n = s.len();
        if at > n {
            return n;
        }
        let slot = key.slot();
        if slot < LT_KEYS {
            let lts = self.lts;
            let ends = &self.at_lt.get_or_insert_with(|| Ends::ends_at_lts(s, lts))[slot];
            return ends
                .get(ends.partition_point(|&p| p < at))
                .map_or(n, |&p| p);
        }
        finders()[slot - LT_KEYS]
            .find(&s[at..])
            .map_or(n, |k| at + k)
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

/// The searchers of `Ends::search` for the ends that do not start with a `<` (by
/// `Key::slot` - `LT_KEYS`; built once a process: a searcher costs more to build than most
/// searches).
fn finders() -> &'static [memmem::Finder<'static>] {
    static FINDERS: std::sync::OnceLock<Vec<memmem::Finder<'static>>> = std::sync::OnceLock::new();
    FINDERS.get_or_init(|| {
        let literals: [&[u8]; 3] = [b"-->", b"--!>", b"]]>"];
        literals
            .iter()
            .map(|needle| memmem::Finder::new(needle).into_owned())
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
        // (A word is a name of one of two sets iff a name of their union.)
        Opener::Html => word_in(s, p + 1, hi, &HTML_OPENERS_SET).is_some(),
        Opener::Any => {
            (rest.get(1) == Some(&b'/') && word_in(s, p + 2, hi, &CONTEXT_SET).is_some())
                || word_in(s, p + 1, hi, &ANY_OPENERS_SET).is_some()
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
    while let Some(k) = (0..todo.len()).min_by(|&a, &b| todo[a].cmp(&todo[b])) {
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
/// without a `>`), as finditer gives them. Only a `<` in a long gap (or two bytes before
/// one) can start one: the `<` of each gap are visited, not all.
fn long_tags(body: &[u8], marks: &Marks) -> Vec<usize> {
    let mut gap = 0;
    let mut out = Vec::new();
    let mut pos = 0;
    for &(first, end) in &marks.gaps {
        // A match's name letter is at p + 1 or p + 2, and the bytes after it (>= LONG_GAP
        // of them) are the gap's (from p >= first - 3; in fact - 2: the byte before a gap
        // is a `>`).
        let lo = first.saturating_sub(3).max(pos);
        for &p in lts_from(&marks.lts, lo) {
            if p >= end {
                break;
            }
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
    }
    out
}

/// `long_tags` by every `<` (the tests' check of the gaps' visit).
#[cfg(test)]
fn long_tags_by_every_lt(body: &[u8], marks: &Marks) -> Vec<usize> {
    let mut gap = 0;
    let mut out = Vec::new();
    let mut pos = 0;
    for &p in &marks.lts {
        if p < pos {
            continue;
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
    limit_attributes_in(body, None, quoted, caps, marks)
}

/// `limit_attributes`, with *body* lowercased if the caller has it.
fn limit_attributes_in(
    body: &[u8],
    lowered: Option<&[u8]>,
    quoted: Option<Vec<usize>>,
    caps: Caps,
    marks: &Marks,
) -> Option<Vec<u8>> {
    let long = long_tags(body, marks);
    let quoted: &[usize] = quoted.as_deref().unwrap_or(&marks.quoted);
    if long.is_empty() && quoted.is_empty() {
        return None;
    }
    lowered_or(body, lowered, |lowered| {
        let mut ends = Ends::new(lowered, caps, &marks.lts);
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
            readings = readings_past(body, lowered, readings, at, &mut cuts, &mut ends);
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
    })
}

/// `_links_may_nest` (the tests' check of `start_names`).
#[cfg(test)]
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
    // The lowercased bytes the scanners read, made with the marks (in a buffer the thread
    // keeps unless it grew past KEPT_BUFFER_BYTES).
    let mut lowered = LOWERED.with(|cell| cell.take());
    let bounded = bound_lowering(body, cur, hit, limits, &mut lowered);
    if lowered.capacity() <= crate::bounds::KEPT_BUFFER_BYTES {
        LOWERED.with(|cell| cell.replace(lowered));
    }
    bounded
}

thread_local! {
    /// `bound_body`'s lowercased bytes (the buffer kept between pages).
    static LOWERED: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// `bound_body` past the parse bytes' cut (*cur*), *lowered*: the buffer of the lowercased
/// bytes.
fn bound_lowering(
    body: &[u8],
    mut cur: &[u8],
    mut hit: Vec<&'static str>,
    limits: &Limits,
    lowered: &mut Vec<u8>,
) -> Bounded {
    // Each `<` of the bytes the scanners read (and the quoted `>`...): *cur*'s, found again
    // if a bound cuts it. Past MAX_TAGS the list stops growing: the tags are counted.
    let (tags, mut marks) = match Marks::of_lowering(cur, limits.max_tags, lowered) {
        Some(marks) => (marks.lts.len(), marks),
        None => {
            let tags = memchr_iter(b'<', cur).count();
            // body[: _nth_tag(MAX_TAGS).match(body).end() - 1]
            let end = match limits.max_tags {
                0 => cur.len() - 1,
                k => memchr_iter(b'<', cur).nth(k - 1).unwrap_or(cur.len()),
            };
            cur = &cur[..end];
            hit.push("dom_nodes");
            (
                tags,
                Marks::of_lowering(cur, usize::MAX, lowered).expect("no cap"),
            )
        }
    };
    let mut owned: Option<Vec<u8>> = None;
    let mut cur_names: Option<StartNames> = None; // (start_names of *cur*, if read)
    let half = (tags / 2 + 1) as u128;
    let gate = half * half * (1 + (cur.len() / REOPEN_UNIT_BYTES) as u128);
    if gate > limits.max_reopened.max(0) as u128 {
        let tags = tags.min(limits.max_tags);
        let low = Some(lowered.as_slice());
        let names = cur_names.insert(start_names(cur, &marks));
        if let Some(kept) =
            limit_reopened_marked(cur, low, tags, limits.max_reopened, &marks, names)
        {
            hit.push("formatting");
            marks = Marks::of_lowering(&kept, usize::MAX, lowered).expect("no cap");
            owned = Some(kept);
        }
    }
    let cur_now: &[u8] = owned.as_deref().unwrap_or(cur);
    let low = Some(lowered.as_slice());
    if let Some(kept) = limit_attributes_in(cur_now, low, None, limits.caps, &marks) {
        hit.push("attributes");
        marks = Marks::of_lowering(&kept, usize::MAX, lowered).expect("no cap");
        owned = Some(kept);
    }
    let cur_now: &[u8] = owned.as_deref().unwrap_or(cur);
    let many_tags = tags > limits.nesting_check_tags;
    let mut deep = false;
    let mut flat = None;
    if many_tags {
        let nested = bounds::limit_nesting_in(cur_now, Some(lowered), &marks.lts, MAX_BLOCK_DEPTH);
        let open = match nested.as_deref() {
            Some(nested) => bounds::limit_open_elements(nested, MAX_BLOCK_DEPTH),
            None => {
                bounds::limit_open_elements_in(cur_now, Some(lowered), &marks.lts, MAX_BLOCK_DEPTH)
            }
        };
        flat = open.or(nested);
        deep = flat.is_some();
    }
    if flat.is_some() {
        owned = flat; // (then many_tags: the positions are not read again)
    }
    let cur_now: &[u8] = owned.as_deref().unwrap_or(cur);
    let nest = many_tags
        || (tags > limits.max_dom_depth
            && links_nest(
                // (*cur*'s names read again only if a bound cut it: then its marks are new.)
                &match (owned.is_none(), cur_names) {
                    (true, Some(names)) => names,
                    _ => start_names(cur_now, &marks),
                },
                limits.max_dom_depth,
            ));
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

/// The implementation before the fast path (6619e60), kept as the tests' reference.
#[cfg(test)]
#[path = "bound_ref.rs"]
mod reference;

#[cfg(test)]
mod tests {
    use super::*;

    /// `long_tags` as it was, a `>` search per tag (the reference of `Marks`).
    fn long_tags_searched(body: &[u8]) -> Vec<usize> {
        let mut gt = NextOf::new(b'>', b'>');
        let (mut out, mut pos) = (Vec::new(), 0);
        while let Some(i) = memchr(b'<', &body[pos..]) {
            let p = pos + i;
            pos = p + 1;
            let Some(letter) = tag_letter(body, p) else {
                continue;
            };
            let g = gt.at(body, letter + 1);
            if g - (letter + 1) >= 2 * MAX_ATTRS_PER_TAG {
                out.push(p);
                pos = g.max(pos);
            }
        }
        out
    }

    #[test]
    fn marks_find_what_searches_find() {
        // A seeded xorshift: bodies of `<`, `>`, `/`, a letter and runs of filler, around the
        // 16-byte blocks and the long-gap length.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..3000 {
            let mut body = Vec::new();
            let parts = next() % 40;
            for _ in 0..parts {
                match next() % 6 {
                    0 => body.push(b'<'),
                    1 => body.push(b'>'),
                    2 => body.push(b'/'),
                    3 => body.push(b'a'),
                    _ => {
                        let run =
                            [1, 15, 16, 17, 200, 510, 511, 512, 513, 1100][next() as usize % 10];
                        body.extend(std::iter::repeat(b'x').take(run));
                    }
                }
            }
            let marks = Marks::of(&body);
            assert_eq!(marks.lts, memchr_iter(b'<', &body).collect::<Vec<_>>());
            assert_eq!(
                long_tags(&body, &marks),
                long_tags_searched(&body),
                "{body:?}"
            );
            assert_eq!(
                long_tags(&body, &marks),
                long_tags_by_every_lt(&body, &marks)
            );
        }
    }

    #[test]
    fn opener_sets_are_the_unions() {
        let sorted = |names: &[&[u8]]| -> Vec<Vec<u8>> {
            let mut v: Vec<Vec<u8>> = names.iter().map(|n| n.to_vec()).collect();
            v.sort();
            v.dedup();
            v
        };
        let html: Vec<&[u8]> = RAW_TEXT_NAMES.iter().chain(HTML_CONTEXT).copied().collect();
        assert_eq!(sorted(HTML_OPENERS), sorted(&html));
        assert_eq!(HTML_OPENERS.len(), html.len());
        let any: Vec<&[u8]> = RAW_TEXT_NAMES
            .iter()
            .chain(CONTEXT_NAMES)
            .copied()
            .collect();
        assert_eq!(sorted(ANY_OPENERS), sorted(&any));
        assert_eq!(ANY_OPENERS.len(), sorted(&any).len());
        // A word is in the union iff in one of the two (word_in's early stop is the longest
        // name's: every name and its one-byte changes, at the end of a string and not).
        for name in html.iter().chain(&any) {
            let mut words = vec![name.to_vec(), name[..name.len() - 1].to_vec()];
            words.push([*name, b"x".as_slice()].concat());
            words.push(name.to_ascii_uppercase());
            for word in words {
                for tail in [b"".as_slice(), b">", b" x", b"/"] {
                    let s = [word.as_slice(), tail].concat();
                    let lim = s.len();
                    let one = |set: &Names| word_in(&s, 0, lim, set).is_some();
                    assert_eq!(
                        one(&HTML_OPENERS_SET),
                        one(&RAW_TEXT_SET) || one(&names(HTML_CONTEXT)),
                        "{s:?}"
                    );
                    assert_eq!(
                        one(&ANY_OPENERS_SET),
                        one(&RAW_TEXT_SET) || one(&CONTEXT_SET),
                        "{s:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn context_names_are_the_roots_the_islands_and_frameset() {
        let derived: Vec<&[u8]> = [FOREIGN_ROOTS, ISLANDS, &[b"frameset".as_slice()]].concat();
        assert_eq!(CONTEXT_NAMES, derived.as_slice());
        assert!(is_context_only(b"svg") && is_context_only(b"frameset"));
        assert!(!is_context_only(b"title") && !is_context_only(b"div"));
    }

    /// Hostile pieces of a page for the soups below: tags the bounds read, quotes and `>`
    /// in values, raw text, comments, CDATA, foreign content, runs around the chunk and gap
    /// lengths, NULs and non-ASCII bytes, both cases.
    const PIECES: &[&[u8]] = &[
        b"<",
        b">",
        b"\"",
        b"'",
        b"=",
        b" ",
        b"\n",
        b"/",
        b"= \"",
        b"='",
        b"=\"",
        b"x",
        b"\0",
        b"\xff",
        b"\xc3\xa9",
        b"<b>",
        b"<B>",
        b"</b>",
        b"<i>",
        b"</i>",
        b"<b class=x>",
        b"<i title='a>b'>",
        b"<a href=/x>",
        b"</a>",
        b"<A HREF=\"/y\">",
        b"<p>",
        b"</p>",
        b"<div>",
        b"</div>",
        b"<DIV>",
        b"<li>",
        b"<td>",
        b"<table>",
        b"<nobr>",
        b"<font>",
        b"<svg>",
        b"</svg>",
        b"<math>",
        b"</math>",
        b"<SVG/>",
        b"<frameset>",
        b"<title>",
        b"</title>",
        b"<desc>",
        b"<mi>",
        b"<foreignObject>",
        b"<script>",
        b"</script>",
        b"<SCRIPT>",
        b"<style>",
        b"</style>",
        b"<textarea>",
        b"<xmp>",
        b"<!--",
        b"-->",
        b"--!>",
        b"<!-->",
        b"<![CDATA[",
        b"]]>",
        b"<!doctype html>",
        b"<?x>",
        b"</ x>",
        b"x=\"<b>\"",
        b"y='>'",
        b"<b x=\"",
        b"<a b=\">\" c='>' d=e>",
        b"<object>",
        b"<td>",
        b"<marquee>",
        b"<template>",
        b"<h1>",
        b"<h2>",
        b"<ul>",
        b"<section>",
        b"<br>",
    ];

    /// A seeded xorshift.
    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut state = seed | 1;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    /// A soup of *PIECES*, long runs and tags of many attributes.
    fn soup(next: &mut impl FnMut() -> u64) -> Vec<u8> {
        let mut body = Vec::new();
        let parts = next() % 300;
        for _ in 0..parts {
            match next() % 20 {
                0 => {
                    let run = [
                        1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 511, 512, 513, 1100, 2100,
                    ];
                    let byte = [b'x', b' ', b'<', b'>', b'"', b'='][next() as usize % 6];
                    let n = run[next() as usize % run.len()];
                    body.extend(std::iter::repeat_n(byte, n));
                }
                1 => {
                    body.extend_from_slice(b"<a href=/x");
                    for k in 0..(250 + next() % 20) {
                        let sep: &[u8] =
                            [b" ".as_slice(), b"/", b"\n", b"\"\""][next() as usize % 4];
                        body.extend_from_slice(sep);
                        body.extend_from_slice(format!("a{k}").as_bytes());
                        if next() % 8 == 0 {
                            body.extend_from_slice(b"=\">\"");
                        }
                    }
                }
                4 => {
                    // Any bytes (case folding is ASCII only).
                    for _ in 0..(next() % 80) {
                        body.push(next() as u8);
                    }
                }
                3 => {
                    // A formatting tag of a long value (a heavy one), maybe with a `>` in it.
                    let name = [b"b".as_slice(), b"a", b"I", b"font"][next() as usize % 4];
                    body.extend_from_slice(b"<");
                    body.extend_from_slice(name);
                    body.extend_from_slice(b" title='");
                    let long = 1000 + (next() % 60) as usize;
                    body.extend(std::iter::repeat_n(b'x', long));
                    if next() % 2 == 0 {
                        body.extend_from_slice(b">");
                    }
                    body.extend_from_slice(b"'><p>t</p><p>");
                }
                2 if next() % 8 == 0 => {
                    let tag: &[u8] =
                        [b"<div>".as_slice(), b"<span>", b"<b>", b"<ul><li>"][next() as usize % 4];
                    for _ in 0..(500 + next() % 40) {
                        body.extend_from_slice(tag);
                    }
                }
                _ => body.extend_from_slice(PIECES[next() as usize % PIECES.len()]),
            }
        }
        body
    }

    fn limits_of(next: &mut impl FnMut() -> u64, lowered: bool) -> (Limits, reference::Limits) {
        let pick = |next: &mut dyn FnMut() -> u64, low: &[usize], default: usize| {
            if lowered {
                low[next() as usize % low.len()]
            } else {
                default
            }
        };
        let parse = pick(next, &[0, 1, 100, 5000, 8 << 20], 8 << 20);
        let tags = pick(next, &[0, 1, 3, 40, 500_000], 500_000);
        let reopened = pick(next, &[0, 3, 10, 40, 100_000], 100_000) as i64;
        let check = pick(next, &[0, 5, 50, 8192], 8192);
        let depth = pick(next, &[0, 2, 8, 256], 256);
        let readings = pick(next, &[0, 1, 2, 8], 8);
        let island = pick(next, &[0, 1, 4096], 4096);
        let roots = pick(next, &[0, 1, 16], 16);
        let held = pick(next, &[0, 1, 16], 16);
        (
            Limits {
                max_parse_bytes: parse,
                max_tags: tags,
                max_reopened: reopened,
                nesting_check_tags: check,
                max_dom_depth: depth,
                caps: Caps {
                    readings,
                    island_tags: island,
                    roots,
                    held,
                },
            },
            reference::Limits {
                max_parse_bytes: parse,
                max_tags: tags,
                max_reopened: reopened,
                nesting_check_tags: check,
                max_dom_depth: depth,
                caps: reference::Caps {
                    readings,
                    island_tags: island,
                    roots,
                    held,
                },
            },
        )
    }

    thread_local! {
        /// The `<` visited by `Ends::ends_at_lts` (the tests' count of its work).
        pub(super) static LT_WALKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// `Ends::search` as it was: a memmem search from *at*, then the name's end checked.
    fn ends_searched(lowered: &[u8], key: Key, at: usize) -> usize {
        let n = lowered.len();
        let needle: Vec<u8> = match key {
            Key::Raw(i) => [b"</", RAW_TEXT_NAMES[i]].concat(),
            Key::CommentOpen => b"<!--".to_vec(),
            Key::CommentEnd => b"-->".to_vec(),
            Key::BangEnd => b"--!>".to_vec(),
            Key::CdataEnd => b"]]>".to_vec(),
        };
        let mut from = at;
        while from <= n {
            let Some(k) = memmem::find(&lowered[from..], &needle) else {
                break;
            };
            let p = from + k;
            let raw = matches!(key, Key::Raw(_));
            if !raw || lowered.get(p + needle.len()).is_some_and(|&b| ends_name(b)) {
                return p;
            }
            from = p + 1;
        }
        n
    }

    /// Pages around the raw text ends that `Ends` finds from the `<` of the marks pass: an
    /// end in an attribute value, `</script` at the very end (no byte after the name) or
    /// without its `>`, `<!--` in a script, comments in comments, CRLF, NUL and other bytes
    /// after a name, upper case, names that only begin like one.
    const END_PAGES: &[&[u8]] = &[
        b"<script>x</script>",
        b"<a title=\"</script>\">t</a><script>1</script >",
        b"<i title='a>b'><script>var s = '</scr' + 'ipt>';</script\r\n><p>",
        b"<script>x</script",
        b"<script>x</script/",
        b"<script>x</script\x00><b>y</b></script\t>",
        b"<SCRIPT>x</SCRIPT>z</Script\x0c>",
        b"<script><!-- a </script> --></script>",
        b"<script><!--<script>a</script>--></script><!-- <!-- c --> -->",
        b"<!---->x<!--->y<!-->z<!-- a --!> b -->",
        b"<style>p{}</styles></style><style></style>",
        b"<textarea></textareax></textarea\r></TITLE ><title></title>",
        b"<xmp></xmp\n><iframe></iframe/><noembed></noembed ><noframes></noframes>",
        b"</s</sc</scr</scri</scrip</script</script>",
        b"<svg><![CDATA[</style>]]></svg><math><mi><style>a</style></mi></math>",
        b"<i title='>'>\r\n<script>a\r\n</script\r\n>\r\n<!--\r\n-->",
    ];

    /// `Ends::search` from the `<` of the marks pass (the raw text end tags and `<!--`)
    /// finds what a memmem search finds, from every start of the pages above and of soups,
    /// for every key; and it walks the `<` once an `Ends` (not once a search).
    #[test]
    fn ends_from_the_marks_are_the_searched_ones() {
        let mut next = rng(0xE4D5);
        let soups: Vec<Vec<u8>> = (0..300).map(|_| soup(&mut next)).collect();
        let pages = END_PAGES.iter().map(|p| p.to_vec()).chain(soups);
        let keys: Vec<Key> = (0..RAW_TEXT_NAMES.len())
            .map(Key::Raw)
            .chain([
                Key::CommentOpen,
                Key::CommentEnd,
                Key::BangEnd,
                Key::CdataEnd,
            ])
            .collect();
        let mut found = 0;
        for page in pages {
            let lowered = page.to_ascii_lowercase();
            let lts = Marks::of(&lowered).lts;
            let mut ends = Ends::new(&lowered, Caps::default(), &lts);
            LT_WALKS.with(|walks| walks.set(0));
            for &key in &keys {
                // (Every start of a short page; of a long one, a spread and each `<`.)
                let step = 1 + lowered.len() / 1500;
                let starts = (0..=lowered.len() + 1)
                    .step_by(step)
                    .chain(lts.iter().copied());
                for at in starts {
                    let want = ends_searched(&lowered, key, at);
                    assert_eq!(ends.search(key, at), want, "{key:?} {at}: {page:?}");
                    found += usize::from(want < lowered.len());
                }
            }
            assert_eq!(LT_WALKS.with(|walks| walks.get()), lts.len());
        }
        assert!(found > 10_000, "{found}");
    }

    /// A page of many raw text openers that no end tag closes, each after a quoted `>` (a
    /// reading each): the ends are found by one walk of the `<`, not a search from each
    /// opener to the page's end (quadratic), and the bound is the reference's.
    #[test]
    fn unclosed_raw_text_openers_are_read_in_one_walk() {
        let mut page = b"<svg>".to_vec(); // (foreign: raw text is read as markup too)
        for k in 0..3000 {
            let name = ["script", "style", "title", "textarea"][k % 4];
            page.extend_from_slice(format!("<i title='a>{k}'><{name}>x<!-- ").as_bytes());
        }
        let marks = Marks::of(&page);
        let mut cut = 0;
        for readings in [1, 2, 8] {
            let caps = Caps {
                readings,
                ..Caps::default()
            };
            LT_WALKS.with(|walks| walks.set(0));
            let got = limit_attributes(&page, None, caps, &marks);
            // One walk over the `<`: not none (the ends were looked up), nor one a reading.
            assert_eq!(LT_WALKS.with(|walks| walks.get()), marks.lts.len());
            let old_caps = reference::Caps {
                readings,
                island_tags: caps.island_tags,
                roots: caps.roots,
                held: caps.held,
            };
            let old =
                reference::limit_attributes(&page, None, old_caps, &reference::Marks::of(&page));
            cut += usize::from(got.is_some());
            assert_eq!(got, old);
        }
        assert!(
            cut > 0,
            "no reading count cut the page: the comparison saw only None"
        );
    }

    /// The nesting bounds read the `<` of the marks pass (not a memchr search each): the same
    /// cuts as the reference's searches, at depths that cut the soups, over the marks of the
    /// body lowercased (the positions bound_body hands them).
    #[test]
    fn nesting_bounds_over_the_marks_are_the_searched_ones() {
        let mut next = rng(0x0B0D_1E5);
        let mut cut = 0;
        for _ in 0..4000 {
            let body = soup(&mut next);
            let lowered = body.to_ascii_lowercase();
            let lts = Marks::of(&lowered).lts;
            for depth in [0, 1, 2, 8, 64] {
                let nested = bounds::limit_nesting_in(&body, Some(&lowered), &lts, depth);
                assert_eq!(
                    nested,
                    reference::bounds::limit_nesting(&body, depth),
                    "{depth}: {body:?}"
                );
                let open = bounds::limit_open_elements_in(&body, Some(&lowered), &lts, depth);
                assert_eq!(
                    open,
                    reference::bounds::limit_open_elements(&body, depth),
                    "{depth}: {body:?}"
                );
                cut += usize::from(nested.is_some()) + usize::from(open.is_some());
            }
        }
        assert!(cut > 1000, "the soups cut: {cut}");
    }

    /// `bound_body` and its marks give the reference's answers (the implementation before
    /// the fast path) on 20,000 seeded soups, half at lowered bounds.
    #[test]
    fn bound_body_is_the_references_on_soups() {
        let mut next = rng(0x5EED_B0D1);
        let mut hits: HashMap<&str, usize> = HashMap::new();
        for case in 0..20_000 {
            let body = soup(&mut next);
            let marks = Marks::of(&body);
            let old = reference::Marks::of(&body);
            assert_eq!(marks.lts, old.lts, "{body:?}");
            assert_eq!(marks.quoted, reference::quoted_gts(&body), "{body:?}");
            let mut lowered = vec![b'?'; next() as usize % 100];
            let lowering = Marks::of_lowering(&body, usize::MAX, &mut lowered).expect("no cap");
            assert_eq!(lowered, body.to_ascii_lowercase());
            assert_eq!(
                (&lowering.lts, &lowering.quoted),
                (&marks.lts, &marks.quoted)
            );
            for lanes in [Lanes::Bytes, Lanes::Sse2] {
                let other =
                    Marks::of_capped_by(&body, usize::MAX, lanes, Some(&mut lowered)).expect("");
                assert_eq!(lowered, body.to_ascii_lowercase(), "{lanes:?}");
                assert_eq!(
                    (&other.lts, &other.gaps),
                    (&marks.lts, &marks.gaps),
                    "{lanes:?}"
                );
                assert_eq!(other.quoted, marks.quoted, "{lanes:?}");
                let cap = (next() % 64) as usize;
                let capped = Marks::of_capped_by(&body, cap, lanes, None).map(|m| m.lts);
                assert_eq!(capped, (marks.lts.len() <= cap).then(|| marks.lts.clone()));
            }
            let names = start_names(&body, &marks);
            let (starts, heavy) = (names.starts, names.heavy);
            assert_eq!(starts, formatting_starts(&body, &marks.lts));
            assert_eq!(heavy, heavy_formatting(&body, &[], &marks.lts), "{body:?}");
            for depth in [0, 1, 2, 3, 5, 8, 64] {
                assert_eq!(
                    links_nest(&names, depth),
                    links_may_nest(&body, depth, &marks.lts),
                    "{body:?}"
                );
            }
            *hits.entry("links nest").or_default() += usize::from(links_nest(&names, 2));
            *hits.entry("heavy").or_default() += usize::from(heavy);
            let cap = (next() % 64) as usize;
            let capped = Marks::of_capped(&body, cap).map(|m| m.lts);
            assert_eq!(capped, (marks.lts.len() <= cap).then(|| marks.lts.clone()));
            let (limits, old_limits) = limits_of(&mut next, case % 2 == 1);
            let (got, want) = (
                bound_body(&body, &limits),
                reference::bound_body(&body, &old_limits),
            );
            assert_eq!(
                (&got.body, &got.limits, got.many_tags, got.deep),
                (&want.body, &want.limits, want.many_tags, want.deep),
                "case {case}: {body:?}"
            );
            for limit in got.limits.iter().chain(got.deep.then_some(&"deep")) {
                *hits.entry(limit).or_default() += 1;
            }
            *hits.entry("quoted").or_default() += usize::from(!marks.quoted.is_empty());
        }
        // The soups reach every bound (else they would prove little).
        for bound in [
            "parse_bytes",
            "dom_nodes",
            "formatting",
            "attributes",
            "deep",
            "quoted",
            "heavy",
            "links nest",
        ] {
            assert!(
                hits.get(bound).copied().unwrap_or(0) >= 20,
                "{bound}: {hits:?}"
            );
        }
    }
}
