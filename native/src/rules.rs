//! Placement's rules per link (pipelines/placement.py `_Where`, `_article`, `_copy_blocks`,
//! `_place_each` with `_place_link`, and `_place_outside`) over a natively scanned page's
//! arrays: where each element sits relative to main, main's running text, the blocks of copy
//! beside it, then each link's placement and confidence by the first rule that applies.
//! Python's functions stay the reference and the fallback; the rules that read the tree, a
//! link's attributes or the page's site (`_place_tail`, `_in_landmark`) and the
//! pagination regex (`_PAGER`, on the non-ASCII anchors that could match it) are called back, so the
//! answers are Python's by construction there. tests/test_native*.py hold the two equal.
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PySet, PyString, PyTuple};

use crate::extract::guarded;
use crate::model;
use crate::scan_object::{self, ScanArrays};

/// A hasher for element indices and keys (small integers the scan numbered, not a page's
/// choice): one multiply a key, where SipHash was about a tenth of `placement_rules`' time.
#[derive(Default, Clone, Copy)]
pub struct IndexHasher(u64);

impl Hasher for IndexHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// Maps and sets keyed by element indices (their order is never read: answers are sorted).
pub type IndexMap<K, V> = HashMap<K, V, BuildHasherDefault<IndexHasher>>;
pub type IndexSet<K> = HashSet<K, BuildHasherDefault<IndexHasher>>;

/// Label codes: the order of the names Python passes (CONTENT, NAV, SIDEBAR, FOOTER,
/// COMMENT), after "none".
pub const NONE: u8 = 0;
pub const CONTENT: u8 = 1;
pub const NAV: u8 = 2;
pub const SIDEBAR: u8 = 3;
pub const FOOTER: u8 = 4;
pub const COMMENT: u8 = 5;

/// A kind's tag, as placement.py's sets name it (pipelines/native.py `_tag_flags`).
pub const BLOCK: u32 = 1; // _BLOCK_TAGS
pub const PARAGRAPH: u32 = 2; // _PARAGRAPHS
pub const CELL: u32 = 4; // _CELL_TAGS
pub const LIST_ITEM: u32 = 8; // _LIST_ITEM_TAGS
pub const PRE: u32 = 16; // "pre"
pub const MAIN_OR_ARTICLE: u32 = 32; // "main", "article"
pub const LIST: u32 = 64; // "ul", "ol"

/// Each kind's flags: *table*'s entry for its tag (the kind's first item), else 0.
pub(crate) fn kind_flags(
    kinds: &Bound<'_, PyList>,
    table: &Bound<'_, PyDict>,
) -> PyResult<Vec<u32>> {
    let mut flags = Vec::with_capacity(kinds.len());
    for kind in kinds.iter() {
        let tag = kind.get_item(0)?;
        flags.push(match table.get_item(tag)? {
            Some(value) => value.extract()?,
            None => 0,
        });
    }
    Ok(flags)
}

// placement.py's constants of these rules.
const MIN_ARTICLE: i64 = 400;
const EDGE_TEXT: i64 = 150;
const EDGE_LINKS: f64 = 0.2;
const COPY_SHARE: f64 = 0.3;
const COPY_BLOCKS: usize = 8;
const ITEM_LEVELS: usize = 3;
const SMALL_BRANCH: usize = 5;

/// The labels from an element up to the child of its common ancestor with main (a tuple in
/// Python, innermost first), as far as `_resolve` and `COMMENT in labels` read them.
#[derive(Clone, Copy, Default, Debug, PartialEq)]
pub struct Labels {
    any: bool,
    comment: bool,
    /// The innermost label but content (0: none).
    first: u8,
    /// The first footer or sidebar among the labels outside `first` (0: none).
    outer: u8,
}

impl Labels {
    /// The labels with *lab* inside them (Python's `(lab, *labels)`).
    pub fn inside(self, lab: u8) -> Labels {
        let mut s = self;
        s.any = true;
        if lab == COMMENT {
            s.comment = true;
        }
        if lab != CONTENT {
            s.outer = if self.first == FOOTER || self.first == SIDEBAR {
                self.first
            } else {
                self.outer
            };
            s.first = lab;
        }
        s
    }

    /// placement.py `_resolve`.
    pub fn resolve(self) -> u8 {
        if !self.any {
            NONE
        } else if self.comment {
            COMMENT
        } else if self.first == NONE {
            CONTENT
        } else if self.first == NAV && self.outer != NONE {
            self.outer
        } else {
            self.first
        }
    }
}

/// (common ancestor with main, its child that holds the element, the labels below it).
type Loc = (usize, usize, Labels);

/// A page's arrays as the rules read them; checked to be a tree (an element after its
/// parent) by [`Page::new`], so every walk up ends.
pub struct Page {
    pub parent: Vec<i64>,
    pub depth: Vec<i64>,
    pub flags: Vec<u32>,
    pub label: Vec<u8>,
    /// Each element's nearest block of running text (-1: none), and a last -1 (the root's
    /// parent's).
    pub nearest: Vec<i64>,
    pub own: IndexMap<i64, i64>,
    pub good: IndexMap<i64, i64>,
    pub links: IndexMap<i64, i64>,
    pub seq: Vec<i64>,
}

/// The main block and what the rules read of it (placement.py `_Main`).
pub struct Main {
    pub key: usize,
    pub path: Vec<usize>,
    pub weak: bool,
    pub listing: bool,
    pub thread: bool,
    pub sections: bool,
    pub good: f64,
}

/// placement.py `_Article`.
#[derive(Debug, PartialEq)]
pub struct Article {
    pub first: i64,
    pub last: i64,
    pub is_article: bool,
    pub edges: IndexSet<usize>,
    pub technical: bool,
}

/// The rules Python answers for (see the module's comment): each link's index in its list.
pub trait Calls {
    /// `anchor and _PAGER.fullmatch(anchor)` of link *i*'s anchor.
    fn pager(&mut self, i: usize) -> PyResult<bool>;
    /// `_place_tail`.
    fn tail(
        &mut self,
        i: usize,
        key: usize,
        is_article: bool,
        technical: bool,
    ) -> PyResult<(u8, f64)>;
    /// `_in_landmark(facts, top)`.
    fn in_landmark(&mut self, top: usize) -> PyResult<bool>;
}

/// `_side` over the scan's arrays, with `facts.order` as its memo: -1 if subtree *branch*
/// (a child of *top*, an element on main's path) comes before main in document order, else 1.
/// The scan records each element with its ancestors, in document order, so the recorded
/// children of *top* are the keys whose parent it is, in key order: the ones Python meets
/// among the node's children by address (a text node or an unrecorded element has no key).
struct Sides<'a> {
    parent: &'a [i64],
    path: &'a [usize],
    /// Each path element's recorded children in key order, made on the first call.
    children: Option<Vec<Vec<usize>>>,
    /// `facts.order`: a child of a path element -> -1 before main's branch, 1 after it.
    order: IndexMap<usize, i64>,
    /// The path elements whose children are in `order`.
    filled: IndexSet<usize>,
}

impl<'a> Sides<'a> {
    fn new(parent: &'a [i64], path: &'a [usize]) -> Self {
        Sides {
            parent,
            path,
            children: None,
            order: IndexMap::default(),
            filled: IndexSet::default(),
        }
    }

    /// `facts.order.get(branch)`, else `_side(page, top, branch, main.path, facts.order)`
    /// (which raises when *top* is not on main's path: an error here too).
    fn side(&mut self, top: usize, branch: usize) -> PyResult<i64> {
        if let Some(&side) = self.order.get(&branch) {
            return Ok(side);
        }
        let index = self
            .path
            .iter()
            .position(|&k| k == top)
            .ok_or_else(|| bad("a common ancestor off main's path"))?;
        if self.filled.insert(top) {
            let path = self.path;
            let parent = self.parent;
            let children = self.children.get_or_insert_with(|| {
                // One pass over the page for every path element's children (not one a call).
                let at: IndexMap<usize, usize> =
                    path.iter().enumerate().map(|(i, &k)| (k, i)).collect();
                let mut children = vec![Vec::new(); path.len()];
                for (k, &up) in parent.iter().enumerate().skip(1) {
                    if let Some(&i) = usize::try_from(up).ok().and_then(|up| at.get(&up)) {
                        children[i].push(k);
                    }
                }
                children
            });
            let main_branch = if index > 0 { path[index - 1] } else { top };
            let mut side = -1;
            for &k in &children[index] {
                if k == main_branch {
                    side = 1;
                } else {
                    self.order.insert(k, side);
                }
            }
        }
        Ok(self.order.get(&branch).copied().unwrap_or(1))
    }
}

fn bad(what: &str) -> PyErr {
    PyValueError::new_err(format!("placement rules: {what}"))
}

fn index(key: i64, n: usize) -> PyResult<usize> {
    usize::try_from(key)
        .ok()
        .filter(|&k| k < n)
        .ok_or_else(|| bad("a key past the page"))
}

impl Page {
    /// Checks what the walks rely on: the root first, each element after its parent, every
    /// array as long, every key an element.
    pub fn check(&self) -> PyResult<()> {
        let n = self.parent.len();
        if n == 0 || self.parent[0] != -1 {
            return Err(bad("no root"));
        }
        if self.depth.len() != n || self.flags.len() != n || self.label.len() != n {
            return Err(bad("arrays of other lengths"));
        }
        if self.nearest.len() != n + 1 || self.nearest[n] != -1 {
            return Err(bad("nearest is not the scan's"));
        }
        for (k, &up) in self.parent.iter().enumerate().skip(1) {
            if up < 0 || up as usize >= k {
                return Err(bad("an element before its parent"));
            }
        }
        for &p in &self.nearest {
            if p < -1 || p >= n as i64 {
                return Err(bad("a nearest block past the page"));
            }
        }
        for map in [&self.own, &self.good, &self.links] {
            for &key in map.keys() {
                index(key, n)?;
            }
        }
        for &key in &self.seq {
            index(key, n)?;
        }
        Ok(())
    }

    fn up(&self, key: usize) -> i64 {
        self.parent[key]
    }

    fn tag_is(&self, key: usize, flag: u32) -> bool {
        self.flags[key] & flag != 0
    }

    /// `_Where.of`: None for main and its ancestors.
    pub fn locate_all(&self, around: &IndexSet<usize>) -> PyResult<Vec<Option<Loc>>> {
        let n = self.parent.len();
        let mut of: Vec<Option<Loc>> = vec![None; n];
        for k in 1..n {
            if around.contains(&k) {
                continue;
            }
            let up = self.parent[k] as usize;
            let lab = self.label[k];
            of[k] = if around.contains(&up) {
                let none = Labels::default();
                Some((up, k, if lab != NONE { none.inside(lab) } else { none }))
            } else if lab == NONE {
                of[up]
            } else {
                // Python unpacks of[up]: an element not around main has a parent that is
                // (handled above) or has an entry.
                let (top, branch, labels) = of[up].ok_or_else(|| bad("an unlocated parent"))?;
                Some((top, branch, labels.inside(lab)))
            };
        }
        Ok(of)
    }

    /// `_block_of`: the nearest block-level ancestor of a link, or -1.
    fn block_of(&self, key: usize) -> i64 {
        let mut cur = self.up(key);
        while cur >= 0 {
            if self.tag_is(cur as usize, BLOCK) {
                return cur;
            }
            cur = self.parent[cur as usize];
        }
        -1
    }

    /// `_text_para`: the block of running text a link lies straight in, or -1.
    fn text_para(&self, key: usize) -> i64 {
        let up = self.up(key);
        let p = if up < 0 {
            self.nearest[self.nearest.len() - 1]
        } else {
            self.nearest[up as usize]
        };
        if p < 0 || !self.good.contains_key(&p) || self.block_of(key) != p {
            return -1;
        }
        p
    }

    /// `_in_item`: a paragraph is (in) a list item, 3 levels up at most.
    fn in_item(&self, key: usize) -> bool {
        let mut cur = key as i64;
        for _ in 0..ITEM_LEVELS {
            if cur <= 0 {
                return false;
            }
            if self.tag_is(cur as usize, LIST_ITEM) {
                return true;
            }
            cur = self.parent[cur as usize];
        }
        false
    }
}

/// Where each element is, main's running text, the blocks of copy beside it.
pub struct Facts {
    pub of: Vec<Option<Loc>>,
    pub around: IndexSet<usize>,
    pub seq_index: IndexMap<usize, i64>,
    pub article: Article,
    pub copy: IndexSet<usize>,
}

fn in_main(of: &[Option<Loc>], main: usize, key: usize) -> bool {
    key == main || of[key].map_or(key, |loc| loc.0) == main
}

/// `_article`.
pub fn article(page: &Page, main: &Main, of: &[Option<Loc>]) -> Article {
    let (mut first, mut last) = (-1i64, -1i64);
    let mut prose = 0i64;
    let mut technical = false;
    let mut texts = Vec::new();
    if !main.listing {
        for (i, &key) in page.seq.iter().enumerate() {
            let Some(&good) = page.good.get(&key) else {
                continue;
            };
            let k = key as usize;
            if !page.tag_is(k, PARAGRAPH) || !in_main(of, main.key, k) {
                continue;
            }
            technical = technical || page.tag_is(k, PRE);
            if first < 0 {
                first = i as i64;
            }
            last = i as i64;
            texts.push(k);
            if !page.in_item(k) {
                prose += good;
            }
        }
    }
    let is_article = prose >= MIN_ARTICLE && !main.sections;
    let mut edges = IndexSet::default();
    if is_article {
        let ends = [
            texts.iter().take(2).copied().collect::<Vec<_>>(),
            texts.iter().rev().take(2).copied().collect(),
        ];
        for end in ends {
            for key in end {
                let own = page.own.get(&(key as i64)).copied().unwrap_or(0);
                let links = page.links.get(&(key as i64)).copied().unwrap_or(0);
                if own >= EDGE_TEXT || (links as f64) < EDGE_LINKS * own as f64 {
                    break;
                }
                edges.insert(key);
            }
        }
    }
    Article {
        first,
        last,
        is_article,
        edges,
        technical,
    }
}

/// `_copy_blocks`.
pub fn copy_blocks(page: &Page, main: &Main, of: &[Option<Loc>]) -> IndexSet<usize> {
    if main.weak || main.listing || main.thread {
        return IndexSet::default();
    }
    let mut per_block: IndexMap<usize, i64> = IndexMap::default();
    for (&key, &length) in &page.good {
        if let Some((top, branch, labels)) = of[key as usize] {
            let resolved = labels.resolve();
            if top != main.key && (resolved == NONE || resolved == CONTENT) {
                *per_block.entry(branch).or_insert(0) += length;
            }
        }
    }
    let floor = COPY_SHARE * main.good;
    let mut blocks: Vec<(i64, usize)> = per_block
        .into_iter()
        .filter(|&(_, length)| length as f64 >= floor)
        .map(|(b, length)| (length, b))
        .collect();
    blocks.sort_unstable();
    let skip = blocks.len().saturating_sub(COPY_BLOCKS);
    blocks[skip..].iter().map(|&(_, b)| b).collect()
}

/// `_Where`, `_article`, `_copy_blocks` and the sequence's index (`_Facts`).
pub fn facts(page: &Page, main: &Main) -> PyResult<Facts> {
    let around: IndexSet<usize> = main.path.iter().copied().collect();
    let of = page.locate_all(&around)?;
    let mut seq_index = IndexMap::with_capacity_and_hasher(page.seq.len(), Default::default());
    for (i, &key) in page.seq.iter().enumerate() {
        seq_index.insert(key as usize, i as i64); // the last wins, as in dict(zip(...))
    }
    let article = article(page, main, &of);
    let copy = copy_blocks(page, main, &of);
    Ok(Facts {
        of,
        around,
        seq_index,
        article,
        copy,
    })
}

/// `_in_running_text`.
fn in_running_text(page: &Page, main: &Main, f: &Facts, key: usize, at: i64) -> Option<(u8, f64)> {
    let p = page.text_para(key);
    if p < 0 {
        return None;
    }
    let art = &f.article;
    if art.edges.contains(&(p as usize)) {
        return Some((SIDEBAR, 0.55));
    }
    if page.tag_is(p as usize, PARAGRAPH) {
        return Some((CONTENT, 0.95));
    }
    if page.good[&p] as f64 >= 0.5 * main.good {
        return Some((CONTENT, 0.9));
    }
    if (art.first <= at && at <= art.last) || art.first < 0 {
        return Some((CONTENT, 0.85));
    }
    None
}

/// `_place_link`: None for a link outside main without a label.
#[allow(clippy::too_many_arguments)]
fn place_link(
    page: &Page,
    main: &Main,
    f: &Facts,
    landmark: i64,
    i: usize,
    key: usize,
    ugc: bool,
    calls: &mut impl Calls,
) -> PyResult<Option<(u8, f64)>> {
    if f.around.contains(&key) {
        return Ok(Some((CONTENT, 1.0)));
    }
    let (top, branch, labels) = f.of[key].unwrap_or((key, key, Labels::default()));
    if ugc || labels.comment {
        if main.thread && page.text_para(key) >= 0 && !calls.pager(i)? {
            return Ok(Some((CONTENT, 0.7)));
        }
        return Ok(Some((COMMENT, if ugc { 1.0 } else { 0.9 })));
    }
    let resolved = labels.resolve();
    if resolved != NONE && resolved != CONTENT {
        return Ok(Some((resolved, 0.9)));
    }
    let inside = top == main.key;
    let art = &f.article;
    let at = f.seq_index.get(&key).copied().unwrap_or(-1);
    if inside {
        if let Some(in_text) = in_running_text(page, main, f, key, at) {
            return Ok(Some(in_text));
        }
    } else if f.copy.contains(&branch) && page.text_para(key) >= 0 {
        return Ok(Some((CONTENT, 0.8)));
    } else if landmark >= 0 && page.text_para(key) >= 0 && calls.in_landmark(top)? {
        // (both pure: Python's order of the two tests changes nothing)
        return Ok(Some((CONTENT, 0.7)));
    }
    if calls.pager(i)? {
        return Ok(Some((NAV, 0.8)));
    }
    if main.weak {
        return Ok(Some((CONTENT, 0.55)));
    }
    if !inside {
        return Ok(None);
    }
    if at > art.last && art.last >= 0 {
        return Ok(Some((SIDEBAR, 0.6)));
    }
    if 0 <= at && at < art.first {
        return Ok(Some((NAV, 0.6)));
    }
    calls.tail(i, key, art.is_article, art.technical).map(Some)
}

/// `_place_each` (but the fingerprints): each link's (label code, confidence).
pub fn place(
    page: &Page,
    main: &Main,
    f: &Facts,
    landmark: i64,
    link_keys: &[usize],
    ugc: &[bool],
    calls: &mut impl Calls,
) -> PyResult<Vec<(u8, f64)>> {
    let mut results = Vec::with_capacity(link_keys.len());
    let mut outside: Vec<(usize, usize, usize, i64)> = Vec::new();
    let mut sides = Sides::new(&page.parent, &main.path);
    for (i, (&key, &ugc)) in link_keys.iter().zip(ugc).enumerate() {
        let decided = place_link(page, main, f, landmark, i, key, ugc, calls)?;
        let decided = match decided {
            Some(decided) => decided,
            None => {
                let (top, branch, _) = f.of[key].unwrap_or((key, key, Labels::default()));
                let side = sides.side(top, branch)?;
                outside.push((i, top, branch, side));
                (SIDEBAR, 0.6)
            }
        };
        results.push(decided);
    }
    if !outside.is_empty() {
        place_outside(page, &main.path, &outside, &mut results);
    }
    Ok(results)
}

/// `_place_outside`.
fn place_outside(
    page: &Page,
    main_path: &[usize],
    outside: &[(usize, usize, usize, i64)],
    results: &mut [(u8, f64)],
) {
    let depth = &page.depth;
    let shallowest = |before: bool| {
        outside
            .iter()
            .filter(|o| if before { o.3 < 0 } else { o.3 > 0 })
            .map(|o| depth[o.1])
            .min()
            .unwrap_or(-1)
    };
    let (first_before, first_after) = (shallowest(true), shallowest(false));
    let mut per_branch: IndexMap<usize, usize> = IndexMap::default();
    for o in outside {
        *per_branch.entry(o.2).or_insert(0) += 1;
    }
    let main_parent = main_path[1.min(main_path.len() - 1)];
    for &(i, top, branch, side) in outside {
        let placement = if top == main_parent {
            let small = per_branch[&branch] < SMALL_BRANCH && !page.tag_is(branch, CELL);
            if side < 0 && small {
                NAV
            } else {
                SIDEBAR
            }
        } else if side < 0 {
            if depth[top] == first_before {
                NAV
            } else {
                SIDEBAR
            }
        } else if depth[top] == first_after {
            FOOTER
        } else {
            SIDEBAR
        };
        results[i].0 = placement;
    }
}

/// Could `_PAGER.fullmatch` match *anchor*? False only where it cannot: more than 5
/// characters (its digit runs' bound) and more than `PAGER_LETTERS` characters that are
/// neither whitespace (Python's, a superset of it) nor one of its arrows and dots (its words
/// match one character each).
pub fn maybe_pager(anchor: &str) -> bool {
    let mut chars = 0usize;
    let mut letters = 0usize;
    for c in anchor.chars() {
        chars += 1;
        let filler = c.is_whitespace()
            || ('\x1c'..='\x1f').contains(&c)
            || matches!(c, '«' | '»' | '‹' | '›' | '<' | '>' | '←' | '→' | '.');
        if !filler {
            letters += 1;
            if letters > PAGER_LETTERS && chars > PAGER_DIGITS {
                return false;
            }
        }
    }
    chars <= PAGER_DIGITS || letters <= PAGER_LETTERS
}

/// `_PAGER.fullmatch(anchor)` of an ASCII *anchor*; None for another: Python's regex answers.
/// On ASCII its classes are `\d` = `[0-9]`, `\s` = Python's `[\t\n\v\f\r\x1c-\x1f ]`, and its
/// arrows and dots = `[<>.]` with `\s`; of its words, the ASCII ones (IGNORECASE folds no ASCII
/// letter onto an accented or Cyrillic one). A match is 1-5 digits and spaces, or arrows and
/// dots around a pager word, a pager word then a page word after whitespace, or a page word
/// after whitespace.
pub fn ascii_pager(anchor: &str) -> Option<bool> {
    if !anchor.is_ascii() {
        return None;
    }
    let b = anchor.as_bytes();
    let space = |c: u8| matches!(c, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0x1c..=0x1f | b' ');
    if !b.is_empty() && b.len() <= PAGER_DIGITS && b.iter().all(|&c| c.is_ascii_digit() || space(c))
    {
        return Some(true);
    }
    let filler = |c: u8| space(c) || matches!(c, b'<' | b'>' | b'.');
    let Some(start) = b.iter().position(|&c| !filler(c)) else {
        return Some(true); // arrows, dots and spaces alone
    };
    let end = b.iter().rposition(|&c| !filler(c)).map_or(start, |e| e + 1);
    let word = |w: &str, list: &[&str]| list.iter().any(|l| l.eq_ignore_ascii_case(w));
    let mut words = anchor[start..end]
        .split(|c: char| space(c as u8))
        .filter(|w| !w.is_empty());
    let found = match (words.next(), words.next(), words.next()) {
        (Some(w), None, None) => {
            word(w, PAGER_WORDS) || (word(w, PAGE_WORDS) && start > 0 && space(b[start - 1]))
        }
        (Some(w), Some(page), None) => word(w, PAGER_WORDS) && word(page, PAGE_WORDS),
        _ => false,
    };
    Some(found)
}

/// `_PAGER`'s ASCII words: the pagers, then what may follow them after whitespace.
const PAGER_WORDS: &[&str] = &[
    "next",
    "prev",
    "previous",
    "older",
    "newer",
    "more",
    "suivant",
    "weiter",
    "siguiente",
    "anterior",
    "avanti",
    "indietro",
    "volgende",
    "vorige",
];
const PAGE_WORDS: &[&str] = &[
    "post", "posts", "page", "entries", "articles", "articoli", "seite",
];

/// `_PAGER`'s bounds: its longest words ("предыдущая", then "articoli") with room to spare;
/// its runs of digits and spaces.
const PAGER_LETTERS: usize = 24;
const PAGER_DIGITS: usize = 5;

/// What the model reads besides the rules' facts (placement.py `_native_rules`' *model*):
/// each link's anchor length, each element's ancestry bits, main's listing, thread and weak
/// flags and its share of the text (`_page_parts`' head but the article's two), the page's
/// facts after page_links (its tail).
type ModelInputs<'py> = (Vec<i64>, Bound<'py, PyList>, (f64, f64, f64, f64), Vec<f64>);

/// placement.py `_link_facts`' inputs for the model (model.rs `gather`'s, read from the
/// rules' own arrays): per link its placement, paragraph, anchor, grandparent, place in the
/// sequence, in main or not, ancestry bits; per distinct paragraph its text facts.
#[allow(clippy::too_many_arguments)]
fn gather(
    page: &Page,
    main: &Main,
    f: &Facts,
    keys: &[usize],
    placed: &[(u8, f64)],
    fingerprints: &[u32],
    anchors: &Bound<'_, PyAny>,
    inputs: &ModelInputs<'_>,
) -> PyResult<(model::Gathered, Vec<u64>)> {
    let (anchor_len, ancestry, (listing, thread, weak, share), tail) = inputs;
    let m = keys.len();
    if anchor_len.len() != m || ancestry.len() != page.parent.len() {
        return Err(bad("the model's arrays differ in length"));
    }
    let space = PyString::intern(anchors.py(), " ");
    let mut para_index: IndexMap<i64, usize> = IndexMap::default();
    let mut paras = Vec::new();
    let mut links = Vec::with_capacity(m);
    let mut bits = Vec::with_capacity(m);
    for (i, &key) in keys.iter().enumerate() {
        let up = page.parent[key];
        let p = if up < 0 {
            -1
        } else {
            page.nearest[up as usize]
        };
        let para_at = *para_index.entry(p).or_insert_with(|| {
            paras.push(model::Para {
                own: page.own.get(&p).copied().unwrap_or(0),
                good: page.good.contains_key(&p),
                paragraph: p >= 0 && page.tag_is(p as usize, PARAGRAPH),
                links: page.links.get(&p).copied().unwrap_or(0),
            });
            paras.len() - 1
        });
        let grand = if up > 0 { page.parent[up as usize] } else { 0 };
        let (code, score) = placed[i];
        links.push(model::Link {
            code: code as usize - 1,
            score,
            block: fingerprints[i] as i64,
            para_at,
            anchor_len: anchor_len[i],
            spaces: model::spaces(&anchors.get_item(i)?, &space)?,
            grand,
            at: f.seq_index.get(&key).copied().unwrap_or(-1),
            in_main: f.around.contains(&key) || f.of[key].map_or(key, |loc| loc.0) == main.key,
        });
        bits.push(ancestry.get_item(key)?.extract::<u64>()?);
    }
    let art = &f.article;
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    let gathered = model::Gathered {
        links,
        paras,
        n_seq: f.seq_index.len() as i64,
        first: art.first,
        last: art.last,
        head: vec![
            *listing,
            *thread,
            *weak,
            flag(art.is_article),
            flag(art.technical),
            *share,
        ],
        tail: tail.clone(),
    };
    Ok((gathered, bits))
}

/// The Python side of [`Calls`]: placement.py's callbacks and the links' anchors.
struct PyCalls<'a, 'py> {
    anchors: &'a Bound<'py, PyAny>,
    pager: &'a Bound<'py, PyAny>,
    tail: &'a Bound<'py, PyAny>,
    in_landmark: &'a Bound<'py, PyAny>,
    names: &'a [Bound<'py, PyString>; 5],
    split: Option<Split<'a, 'py>>,
}

/// `_place_tail` split (a page whose names are its kinds'): `_is_button` here, over the
/// kinds; `_in_link_list` (near a list) and `_internal` called back.
struct Split<'a, 'py> {
    kinds: &'a Bound<'py, PyList>,
    kind_of: &'a [usize],
    parent: &'a [i64],
    flags: &'a [u32],
    /// placement.py `_BUTTON_WORDS`.
    words: Vec<String>,
    in_link_list: &'a Bound<'py, PyAny>,
    internal: &'a Bound<'py, PyAny>,
}

const LIST_LEVELS: usize = 4; // `_in_link_list`'s list lies this many levels up at most

impl Split<'_, '_> {
    /// An element's kind's attribute at *at* (1 class, 3 role), None if absent or valueless.
    fn kind_attr(&self, key: usize, at: usize) -> PyResult<Option<String>> {
        let kind = self.kinds.get_item(
            *self
                .kind_of
                .get(key)
                .ok_or_else(|| bad("a key past the kinds"))?,
        )?;
        let value = kind.get_item(at)?;
        if value.is_none() {
            return Ok(None);
        }
        Ok(Some(value.extract()?))
    }

    /// `_nearest(page, page.parent[key], ("ul", "ol"), 4) >= 0`.
    fn near_list(&self, key: usize) -> bool {
        let mut cur = self.parent[key];
        for _ in 0..LIST_LEVELS {
            if cur <= 0 {
                return false;
            }
            if self.flags[cur as usize] & LIST != 0 {
                return true;
            }
            cur = self.parent[cur as usize];
        }
        false
    }

    /// `_is_button`: role=button, or its parent's class names a button.
    fn is_button(&self, key: usize) -> PyResult<bool> {
        let role = self.kind_attr(key, 3)?.unwrap_or_default();
        if crate::walk::py_strip(&role).to_lowercase() == "button" {
            return Ok(true);
        }
        let up = self.parent[key];
        if up < 0 {
            return Err(bad("a link without a parent"));
        }
        Ok(match self.kind_attr(up as usize, 1)? {
            Some(cls) if !cls.is_empty() => crate::facts::tokens(&cls)
                .iter()
                .any(|t| self.words.iter().any(|w| w.as_str() == t.as_ref())),
            _ => false,
        })
    }

    /// `_place_tail`, in its order.
    fn tail(&self, i: usize, key: usize, is_article: bool, technical: bool) -> PyResult<(u8, f64)> {
        if is_article && self.near_list(key) && self.in_link_list.call1((key,))?.is_truthy()? {
            return Ok((SIDEBAR, 0.55));
        }
        if self.is_button(key)? {
            return Ok((SIDEBAR, 0.6));
        }
        if is_article && !technical && self.internal.call1((i,))?.is_truthy()? {
            return Ok((SIDEBAR, 0.55));
        }
        Ok((CONTENT, 0.75))
    }
}

fn label_names(names: &[Bound<'_, PyString>; 5]) -> PyResult<[String; 5]> {
    let mut out: [String; 5] = Default::default();
    for (slot, name) in out.iter_mut().zip(names) {
        *slot = name.to_str()?.to_string();
    }
    Ok(out)
}

pub(crate) fn code_of(names: &[Bound<'_, PyString>; 5], label: &Bound<'_, PyAny>) -> PyResult<u8> {
    if label.is_none() {
        return Ok(NONE);
    }
    for (i, name) in names.iter().enumerate() {
        if label.is(name) {
            return Ok(i as u8 + 1);
        }
    }
    let text = label.cast::<PyString>()?.to_cow()?;
    for (i, name) in names.iter().enumerate() {
        if name.to_cow()? == text {
            return Ok(i as u8 + 1);
        }
    }
    Err(bad("an unknown label"))
}

impl Calls for PyCalls<'_, '_> {
    fn pager(&mut self, i: usize) -> PyResult<bool> {
        let anchor = self.anchors.get_item(i)?;
        let text = anchor.cast::<PyString>()?;
        let Ok(s) = text.to_str() else {
            return Ok(!self.pager.call1((anchor,))?.is_none()); // a lone surrogate: Python's
        };
        if s.is_empty() || !maybe_pager(s) {
            return Ok(false);
        }
        if let Some(found) = ascii_pager(s) {
            return Ok(found);
        }
        Ok(!self.pager.call1((anchor,))?.is_none())
    }

    fn tail(
        &mut self,
        i: usize,
        key: usize,
        is_article: bool,
        technical: bool,
    ) -> PyResult<(u8, f64)> {
        if let Some(split) = &self.split {
            return split.tail(i, key, is_article, technical);
        }
        let answer = self.tail.call1((i, key, is_article, technical))?;
        let (label, score): (Bound<'_, PyAny>, f64) = answer.extract()?;
        let code = code_of(self.names, &label)?;
        if code == NONE {
            return Err(bad("no placement from the last rules"));
        }
        Ok((code, score))
    }

    fn in_landmark(&mut self, top: usize) -> PyResult<bool> {
        self.in_landmark.call1((top,))?.is_truthy()
    }
}

type Arrays<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    (Bound<'py, PyList>, Bound<'py, PyDict>),
    Bound<'py, PyList>,
    Bound<'py, PyAny>,
    Bound<'py, PyList>,
);
type MainTuple = (i64, Vec<i64>, bool, bool, bool, bool, f64);
type Texts = (IndexMap<i64, i64>, IndexMap<i64, i64>, IndexMap<i64, i64>);
type Callbacks<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Option<Vec<String>>,
);
type Answer<'py> = (
    Bound<'py, PyList>,
    Vec<f64>,
    Vec<u32>,
    Bound<'py, PyTuple>,
    Vec<usize>,
    Option<Bound<'py, PyList>>,
    Option<Vec<(usize, bool, f64)>>,
);

/// placement.py `_native_rules`' core: *arrays* (each element's parent, depth, kind, then
/// the kinds and the flags by tag, each element's label, nearest block and fingerprint), *main*
/// (`_Main`'s key, path, weak, listing, thread, sections, good), *texts* (`_Text`'s own, good,
/// links), the scan's sequence, the links' keys, rel tokens and anchors, the landmark (-1:
/// none), the five label names and the callbacks (`_PAGER.fullmatch`, `_place_tail`,
/// `_in_landmark`, `_in_link_list`, `_internal`, and the button words or None). Answers each link's placement (one of the names), confidence
/// and fingerprint; `_Article`'s fields (edges a set); the copy blocks; and a list whose entry
/// at each link's key is `where.of`'s first element in a tuple (None around main). *scan*: the
/// scan's arrays (scan_object.rs), read in place of the parents, depths, kinds and nearest.
#[pyfunction]
#[pyo3(signature = (arrays, main, texts, seq, link_keys, rels, anchors, landmark, names, callbacks, model_inputs, scan=None))]
#[allow(clippy::too_many_arguments)]
fn placement_rules<'py>(
    py: Python<'py>,
    arrays: Arrays<'py>,
    main: MainTuple,
    texts: Texts,
    seq: Vec<i64>,
    link_keys: Vec<i64>,
    rels: Bound<'py, PyAny>,
    anchors: Bound<'py, PyAny>,
    landmark: i64,
    names: [Bound<'py, PyString>; 5],
    callbacks: Callbacks<'py>,
    model_inputs: Option<ModelInputs<'py>>,
    scan: Option<Bound<'py, ScanArrays>>,
) -> PyResult<Answer<'py>> {
    let (parent, depth, kind_of, (kinds, tag_flags), labels, nearest, blocks) = arrays;
    let scan = scan_object::with_kinds(scan.as_ref().map(Bound::get), kinds.as_any());
    let parent = scan_object::parent(scan, &parent)?.into_owned();
    let depth = scan_object::depth(scan, &depth)?.into_owned();
    let kind_of = scan_object::kind_of(scan, &kind_of)?;
    let nearest = scan_object::nearest(scan, &nearest)?.into_owned();
    let kind_flags = match scan {
        Some(scan) => scan.kind_flags(&tag_flags)?,
        None => kind_flags(&kinds, &tag_flags)?,
    };
    let n = parent.len();
    if kind_of.len() != n || labels.len() != n || blocks.len() != n {
        return Err(bad("arrays of other lengths"));
    }
    let mut flags = Vec::with_capacity(n);
    for &kind in kind_of.iter() {
        flags.push(
            *kind_flags
                .get(kind)
                .ok_or_else(|| bad("a kind past the kinds"))?,
        );
    }
    let mut label = Vec::with_capacity(n);
    for item in labels.iter() {
        label.push(code_of(&names, &item)?);
    }
    let (own, good, links) = texts;
    let page = Page {
        parent,
        depth,
        flags,
        label,
        nearest,
        own,
        good,
        links,
        seq,
    };
    page.check()?;
    let (key, path, weak, listing, thread, sections, main_good) = main;
    let mut main_path = Vec::with_capacity(path.len());
    for &k in &path {
        main_path.push(index(k, n)?);
    }
    if main_path.is_empty() || main_path[0] != index(key, n)? {
        return Err(bad("main's path is not main's"));
    }
    let main = Main {
        key: main_path[0],
        path: main_path,
        weak,
        listing,
        thread,
        sections,
        good: main_good,
    };
    let m = link_keys.len();
    if anchors.len()? != m || rels.len()? != m {
        return Err(bad("the links' arrays differ in length"));
    }
    let mut keys = Vec::with_capacity(m);
    let mut ugc = Vec::with_capacity(m);
    let ugc_name = PyString::intern(py, "ugc");
    for (i, &k) in link_keys.iter().enumerate() {
        keys.push(index(k, n)?);
        ugc.push(rels.get_item(i)?.contains(&ugc_name)?);
    }
    let (pager, tail, in_landmark, in_link_list, internal, button_words) = callbacks;
    let split = button_words.map(|words| Split {
        kinds: &kinds,
        kind_of: &kind_of,
        parent: &page.parent,
        flags: &page.flags,
        words,
        in_link_list: &in_link_list,
        internal: &internal,
    });
    let mut calls = PyCalls {
        anchors: &anchors,
        pager: &pager,
        tail: &tail,
        in_landmark: &in_landmark,
        names: &names,
        split,
    };
    let (f, placed) = guarded(|| -> PyResult<_> {
        let f = facts(&page, &main)?;
        let placed = place(&page, &main, &f, landmark, &keys, &ugc, &mut calls)?;
        Ok((f, placed))
    })??;
    let mut fingerprints = Vec::with_capacity(m);
    for &k in &keys {
        let up = page.parent[k];
        let at = if up >= 0 { up as usize } else { k };
        let block: u64 = blocks.get_item(at)?.extract()?;
        fingerprints.push((block & 0x7FFF_FFFF) as u32);
    }
    let placements = PyList::new(
        py,
        placed.iter().map(|&(code, _)| &names[code as usize - 1]),
    )?;
    let scores = placed.iter().map(|&(_, score)| score).collect();
    let art = &f.article;
    let edges = PySet::new(py, art.edges.iter())?;
    let article = PyTuple::new(
        py,
        [
            art.first.into_pyobject(py)?.into_any(),
            art.last.into_pyobject(py)?.into_any(),
            pyo3::types::PyBool::new(py, art.is_article)
                .to_owned()
                .into_any(),
            edges.into_any(),
            pyo3::types::PyBool::new(py, art.technical)
                .to_owned()
                .into_any(),
        ],
    )?;
    let (located, overruled) = match &model_inputs {
        Some(inputs) => {
            let (gathered, bits) = gather(
                &page,
                &main,
                &f,
                &keys,
                &placed,
                &fingerprints,
                &anchors,
                inputs,
            )?;
            let labels = label_names(&names)?;
            let overruled = guarded(|| model::overrule(&gathered, &bits, &labels))??;
            (None, Some(overruled))
        }
        None => {
            let located = PyList::new(py, (0..n).map(|_| py.None()))?;
            for &k in &keys {
                if let Some((top, _, _)) = f.of[k] {
                    located.set_item(k, PyTuple::new(py, [top])?)?;
                }
            }
            (Some(located), None)
        }
    };
    let mut copy: Vec<usize> = f.copy.into_iter().collect();
    copy.sort_unstable();
    Ok((
        placements,
        scores,
        fingerprints,
        article,
        copy,
        located,
        overruled,
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(placement_rules, m)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(inner_first: &[u8]) -> Labels {
        inner_first
            .iter()
            .rev()
            .fold(Labels::default(), |l, &lab| l.inside(lab))
    }

    #[test]
    fn resolve_is_pythons() {
        assert_eq!(labels(&[]).resolve(), NONE);
        assert_eq!(labels(&[NAV, FOOTER]).resolve(), FOOTER);
        assert_eq!(labels(&[CONTENT, SIDEBAR]).resolve(), SIDEBAR);
        assert_eq!(labels(&[CONTENT]).resolve(), CONTENT);
        assert_eq!(labels(&[NAV, CONTENT, NAV, SIDEBAR]).resolve(), SIDEBAR);
        assert_eq!(labels(&[NAV, NAV]).resolve(), NAV);
        assert_eq!(labels(&[SIDEBAR, NAV, COMMENT]).resolve(), COMMENT);
        assert_eq!(labels(&[FOOTER, SIDEBAR]).resolve(), FOOTER);
        assert!(labels(&[NAV, COMMENT]).comment);
    }

    #[test]
    fn pager_candidates() {
        for yes in [
            "2",
            "12345",
            "Next »",
            "« Older posts",
            "...",
            "предыдущая entries",
        ] {
            assert!(maybe_pager(yes), "{yes}");
        }
        for no in [
            "1234567890123456789012345",
            "Read the whole story of the day",
            "abcdefghijklmnopqrstuvwxyz",
        ] {
            assert!(!maybe_pager(no), "{no}");
        }
    }

    /// `_PAGER.fullmatch`'s answers (Python's, on these strings) on ASCII anchors; None on
    /// another (Python's regex answers).
    #[test]
    fn ascii_pager_is_pythons() {
        for (anchor, python) in [
            ("1", true),
            ("12345", true),
            ("123456", false),
            (" 1 2 ", true),
            ("\x1c3", true),
            ("1.", false),
            ("...", true),
            ("<<", true),
            (" \t ", true),
            ("next", true),
            ("Next >", true),
            ("< Prev", true),
            (">>Older posts<<", true),
            ("older  posts", true),
            ("older\tposts", true),
            ("older.posts", false),
            ("next page", true),
            ("page", false),
            (" page", true),
            ("<page", false),
            ("> page", true),
            ("posts next", false),
            ("next page page", false),
            ("nextpage", false),
            ("more entries ", true),
            ("Weiter seite", true),
            ("Suivant", true),
            ("pages", false),
            ("vorige articoli", true),
            ("x", false),
            ("2 of 5", false),
            ("prev.", true),
            (". next .", true),
            ("next-page", false),
        ] {
            assert_eq!(ascii_pager(anchor), Some(python), "{anchor:?}");
        }
        assert_eq!(ascii_pager("NEXT »"), None);
        assert_eq!(ascii_pager("zurück"), None);
    }
}
