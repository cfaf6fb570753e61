//! What an element's tag and attributes say for placement (pipelines/placement.py `_facts`,
//! `_classify`, `_value_facts`, `_word_facts`, `_tokens`, `_token_label`, `_names_body`, the
//! reference): its label, whether it names the article's body, its bits. The word tables are
//! Python's, passed in once (`set_tables`); the steps are ported one for one, and
//! tests/test_native.py holds them to Python's on every kind of element of its pages and on
//! random names.
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use crate::walk::py_strip;

/// placement.py's tables (`_TAG_LABELS`, `_ROLE_LABELS`, `_ITEMPROP_LABELS`, `_TOKEN_LABELS`,
/// `_COMPOUND`, `_WEAK_CONTENT`, `_WORD_BITS`, `_TAG_BITS`, `_LABEL_BITS`, `_BODY_ITEMPROPS`)
/// and its comment and content labels.
pub struct Tables {
    pub tag_labels: WordMap<String>,
    pub role_labels: WordMap<String>,
    pub itemprop_labels: WordMap<String>,
    pub token_labels: WordMap<String>,
    pub compound: Vec<(String, String)>,
    pub weak_content: WordSet,
    pub word_bits: WordMap<u64>,
    pub tag_bits: WordMap<u64>,
    pub label_bits: WordMap<u64>,
    pub body_itemprops: WordSet,
    pub comment: String,
    pub content: String,
    /// What `set_tables` reads from the tables above once, for the words of new kinds.
    pub derived: Derived,
}

/// The tables as a new kind's words read them (filled by `Tables::derive`): one lookup a token
/// for its bits, label and weakness (there were two or three), labels as indexes.
#[derive(Default)]
pub struct Derived {
    /// The labels a class word can take (`token_labels`' and `compound`'s values): a word's
    /// label is its index here.
    region_labels: Vec<String>,
    /// By token in `word_bits` or `token_labels`: its bits, label and weakness.
    tokens: WordMap<TokenFacts>,
    /// `compound`, its labels as indexes.
    compound: Vec<(Box<[u8]>, u16)>,
    /// The indexes of the comment and content labels (None: no token has them).
    comment: Option<u16>,
    content: Option<u16>,
    /// A bit per `token_slot` of the tokens of `tokens`: most tokens are in no table (~72%),
    /// and a clear bit says so without a hash or a probe.
    token_slots: Vec<u64>,
    /// By tag in `tag_labels` or `tag_bits`: its label and bits (one lookup, were three).
    tags: WordMap<(Option<String>, u64)>,
}

/// The bit of `Derived::token_slots` a token of this length and first and last bytes takes.
fn token_slot(token: &[u8]) -> usize {
    let (first, last) = (token.first(), token.last());
    let key = (token.len() as u32).wrapping_mul(0x9e37_79b1)
        ^ (*first.unwrap_or(&0) as u32).wrapping_mul(0x85eb_ca6b)
        ^ (*last.unwrap_or(&0) as u32).wrapping_mul(0xc2b2_ae35);
    (key >> 20) as usize // (12 bits: 4,096 slots)
}

/// What a token of `Derived::tokens` says: its `word_bits`, its `token_labels` label's index,
/// whether it is in `weak_content`.
#[derive(Clone, Copy, Default)]
struct TokenFacts {
    bits: u64,
    label: Option<u16>,
    weak: bool,
}

impl Tables {
    /// `derived` filled from the tables (`set_tables` calls it).
    pub fn derive(&mut self) {
        let mut labels: Vec<String> = self.token_labels.values().cloned().collect();
        labels.extend(self.compound.iter().map(|(_, label)| label.clone()));
        labels.sort();
        labels.dedup();
        let index = |label: &str| labels.iter().position(|l| l == label).map(|at| at as u16);
        let mut tokens: WordMap<TokenFacts> = WordMap::default();
        for (token, &bits) in &self.word_bits {
            tokens.entry(token.clone()).or_default().bits = bits;
        }
        for (token, label) in &self.token_labels {
            let facts = tokens.entry(token.clone()).or_default();
            facts.label = index(label);
            facts.weak = self.weak_content.contains(token);
        }
        // (an empty word matched every value before; the first-byte check matches none)
        debug_assert!(self.compound.iter().all(|(word, _)| !word.is_empty()));
        let compound = self.compound.iter();
        let compound = compound.filter_map(|(word, label)| {
            Some((word.as_bytes().into(), index(label)?)) // (every label is in `labels`)
        });
        let mut token_slots = vec![0u64; 64];
        for token in tokens.keys() {
            let slot = token_slot(token.as_bytes());
            token_slots[slot / 64] |= 1 << (slot % 64);
        }
        let mut tags: WordMap<(Option<String>, u64)> = WordMap::default();
        for (tag, label) in &self.tag_labels {
            tags.entry(tag.clone()).or_default().0 = Some(label.clone());
        }
        for (tag, &bits) in &self.tag_bits {
            tags.entry(tag.clone()).or_default().1 = bits;
        }
        self.derived = Derived {
            token_slots,
            tags,
            tokens,
            compound: compound.collect(),
            comment: index(&self.comment),
            content: index(&self.content),
            region_labels: labels,
        };
    }
}

/// FNV-1a over a word's bytes: the tables' keys are Python's fixed words (a page only looks
/// words up, it adds none: no collisions to craft), and SipHash cost more than the lookup.
#[derive(Clone, Copy)]
pub struct WordHasher(u64);

impl Default for WordHasher {
    fn default() -> Self {
        WordHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for WordHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// A table of placement's words (PyO3 takes a dict into it).
pub type WordMap<V> = HashMap<String, V, std::hash::BuildHasherDefault<WordHasher>>;
/// A set of placement's words.
pub type WordSet = HashSet<String, std::hash::BuildHasherDefault<WordHasher>>;

static TABLES: RwLock<Option<Arc<Tables>>> = RwLock::new(None);

/// Keep *tables* for the scans that follow (the last set wins).
pub fn set_tables(mut tables: Tables) {
    tables.derive();
    if let Ok(mut slot) = TABLES.write() {
        *slot = Some(Arc::new(tables));
    }
    if let Ok(mut memo) = MEMO.lock() {
        *memo = None; // facts of the tables before
    }
}

/// What an element's facts depend on: its tag, class, id, role and itemprop.
#[cfg(test)]
type FactsKey = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Facts by element kind across pages (placement.py's `_FACTS` memo: markup repeats across a
/// site's pages), bounded as Python's (pipelines/memo.py) in the characters of the keys it
/// holds plus `ENTRY_CHARS` an entry (a page chooses them; millions of tiny keys held ~1 GB):
/// started afresh, its table freed, past `MEMO_CHARS`. Emptied when the tables change.
#[derive(Default)]
pub struct FactsMemo {
    /// By the kind's bytes (`kind_bytes`): looked up without a String made or five hashed.
    map: foldhash::HashMap<Box<[u8]>, Facts>,
    chars: usize,
    /// The bytes of the kind looked up last.
    key: Vec<u8>,
    /// The facts of the class and id words of the kinds computed (placement.py's
    /// `_WORD_FACTS`): words repeat across kinds and sites.
    words: WordMemo,
}

/// `_word_facts` by word, bounded as placement.py's `_WORD_FACTS` (`WORD_MEMO_CHARS`
/// characters of words held plus `ENTRY_CHARS` a word; then started afresh).
#[derive(Default)]
pub struct WordMemo {
    map: foldhash::HashMap<Box<str>, WordFacts>,
    chars: usize,
}

/// A word's facts as the memo keeps them: comment, its region label's index in
/// `Derived::region_labels`, article, bits.
#[derive(Clone, Copy)]
struct WordFacts(bool, Option<u16>, bool, u64);

pub(crate) const WORD_MEMO_CHARS: usize = 4 << 20; // placement.py's _WORD_FACTS budget

impl WordMemo {
    /// `tables.word_facts(word)`, memoized.
    fn word_facts<'t>(
        &mut self,
        tables: &'t Tables,
        word: &str,
    ) -> (bool, Option<&'t str>, bool, u64) {
        let (comment, region, article, bits) = self.word_facts_at(tables, word);
        (comment, tables.derived.label(region), article, bits)
    }

    /// `tables.word_facts_at(word)`, memoized.
    fn word_facts_at(&mut self, tables: &Tables, word: &str) -> (bool, Option<u16>, bool, u64) {
        if let Some(&WordFacts(comment, region, article, bits)) = self.map.get(word) {
            return (comment, region, article, bits);
        }
        let facts = tables.word_facts_at(word);
        let (comment, region, article, bits) = facts;
        let size = word.chars().count() + ENTRY_CHARS;
        if self.chars + size > WORD_MEMO_CHARS {
            self.map = Default::default(); // its table freed
            self.chars = 0;
            if size > WORD_MEMO_CHARS {
                return facts;
            }
        }
        self.chars += size;
        self.map
            .insert(word.into(), WordFacts(comment, region, article, bits));
        facts
    }
}

/// *key* set to the bytes of a kind, one for one: the tag's length and bytes, then per value
/// a flag byte (0xFF: absent) and its length and bytes.
pub(crate) fn kind_bytes<'s>(
    key: &mut Vec<u8>,
    tag: &str,
    values: impl IntoIterator<Item = Option<&'s str>>,
) {
    key.clear();
    key.extend_from_slice(&tag.len().to_le_bytes());
    key.extend_from_slice(tag.as_bytes());
    for value in values {
        match value {
            None => key.push(0xFF),
            Some(v) => {
                key.push(0);
                key.extend_from_slice(&v.len().to_le_bytes());
                key.extend_from_slice(v.as_bytes());
            }
        }
    }
}

pub(crate) const MEMO_CHARS: usize = 8 << 20; // placement.py's _FACTS budget
pub(crate) const ENTRY_CHARS: usize = 64; // pipelines/memo.py's ENTRY_CHARS

static MEMO: Mutex<Option<FactsMemo>> = Mutex::new(None);

impl FactsMemo {
    fn clear(&mut self) {
        self.map = Default::default(); // not map.clear(): that keeps the table's allocation
        self.chars = 0;
    }

    /// `tables.facts(...)` of a kind, memoized.
    #[cfg(test)]
    fn facts(&mut self, tables: &Tables, key: FactsKey) -> Facts {
        let (tag, cls, id, role, itemprop) = &key;
        self.facts_of(tables, tag, cls, id, role, itemprop)
    }

    /// `tables.facts(...)` of the kind (tag, class, id, role, itemprop), memoized.
    fn facts_of(
        &mut self,
        tables: &Tables,
        tag: &str,
        cls: &Option<String>,
        id: &Option<String>,
        role: &Option<String>,
        itemprop: &Option<String>,
    ) -> Facts {
        let mut key = std::mem::take(&mut self.key);
        kind_bytes(
            &mut key,
            tag,
            [cls, id, role, itemprop].map(|v| v.as_deref()),
        );
        let facts = self.facts_keyed(tables, &key, (tag, cls, id, role, itemprop));
        self.key = key;
        facts
    }

    fn facts_keyed(
        &mut self,
        tables: &Tables,
        key: &[u8],
        kind: (
            &str,
            &Option<String>,
            &Option<String>,
            &Option<String>,
            &Option<String>,
        ),
    ) -> Facts {
        if let Some(found) = self.map.get(key) {
            return found.clone();
        }
        let (tag, cls, id, role, itemprop) = kind;
        let facts = tables.facts_with(tag, cls, id, role, itemprop, Some(&mut self.words));
        let len = |v: &Option<String>| v.as_ref().map_or(0, |v| v.chars().count());
        let size =
            tag.chars().count() + len(cls) + len(id) + len(role) + len(itemprop) + ENTRY_CHARS;
        if self.chars + size > MEMO_CHARS {
            self.clear();
            if size > MEMO_CHARS {
                return facts; // too big to hold
            }
        }
        self.chars += size;
        self.map.insert(key.into(), facts.clone());
        facts
    }
}

/// The facts of each of *kinds* ((tag, class, id, role, itemprop)), by *tables*, through the
/// memo (computed afresh if a panic left it poisoned). Not inlined: one call a page, which
/// callgrind can then count apart (`--toggle-collect`).
#[inline(never)]
pub fn memoized<'k>(
    tables: &Tables,
    kinds: impl Iterator<
        Item = (
            &'k str,
            &'k Option<String>,
            &'k Option<String>,
            &'k Option<String>,
            &'k Option<String>,
        ),
    >,
) -> Vec<Facts> {
    let mut guard = MEMO.lock().ok();
    let memo = guard
        .as_mut()
        .map(|slot| slot.get_or_insert_with(FactsMemo::default));
    match memo {
        Some(memo) => kinds
            .map(|(tag, cls, id, role, itemprop)| {
                memo.facts_of(tables, tag, cls, id, role, itemprop)
            })
            .collect(),
        None => kinds
            .map(|(tag, cls, id, role, itemprop)| tables.facts(tag, cls, id, role, itemprop))
            .collect(),
    }
}

/// The tables set, if any.
pub fn tables() -> Option<Arc<Tables>> {
    TABLES.read().ok()?.clone()
}

/// An element's facts: its label, whether it names the article's body, its bits.
pub type Facts = (Option<String>, bool, u64);

/// What one class or id value says (`_value_facts`): a comment word, the first region word,
/// an article word, a name of the article's body, the word groups' bits.
struct ValueFacts<'t> {
    comment: bool,
    region: Option<&'t str>,
    article: bool,
    body: bool,
    bits: u64,
}

fn truthy(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

impl Tables {
    /// `_facts(tag, cls, id, role, itemprop, align)` less the fingerprint part (scan.rs's).
    pub fn facts(
        &self,
        tag: &str,
        cls: &Option<String>,
        id: &Option<String>,
        role: &Option<String>,
        itemprop: &Option<String>,
    ) -> Facts {
        self.facts_with(tag, cls, id, role, itemprop, None)
    }

    /// `facts`, the words' facts through *words* when given.
    fn facts_with(
        &self,
        tag: &str,
        cls: &Option<String>,
        id: &Option<String>,
        role: &Option<String>,
        itemprop: &Option<String>,
        mut words: Option<&mut WordMemo>,
    ) -> Facts {
        // (tables made without `derive` would classify nothing: review16-f16 1)
        debug_assert!(
            (self.token_labels.is_empty() && self.tag_labels.is_empty())
                || !(self.derived.tokens.is_empty() && self.derived.tags.is_empty()),
            "tables not derived"
        );
        let (cls, id, role, itemprop) = (truthy(cls), truthy(id), truthy(role), truthy(itemprop));
        // (id first, as `_classify` reads them; no Vec)
        let values = [id, cls].map(|v| v.map(|v| self.value_facts(v, words.as_deref_mut())));
        let (tag_label, tag_bits) = match self.derived.tags.get(tag) {
            Some((label, bits)) => (label.as_deref(), *bits),
            None => (None, 0),
        };
        let label = if tag_label.is_none()
            && cls.is_none()
            && id.is_none()
            && role.is_none()
            && itemprop.is_none()
        {
            None
        } else {
            self.classify(tag_label, role, itemprop, &values)
        };
        let mut bits = tag_bits
            | label
                .and_then(|l| self.label_bits.get(l))
                .copied()
                .unwrap_or(0);
        let mut body =
            itemprop.is_some_and(|p| self.body_itemprops.contains(&py_strip(p).to_lowercase()));
        for value in values.iter().flatten() {
            body = body || value.body;
            bits |= value.bits;
        }
        (label.map(str::to_string), body, bits)
    }

    /// `_classify`, with the tag's label (*tag_label*) and the id's and class's value facts
    /// (*values*, id first) read already.
    fn classify<'s>(
        &'s self,
        tag_label: Option<&'s str>,
        role: Option<&str>,
        itemprop: Option<&str>,
        values: &[Option<ValueFacts<'s>>; 2],
    ) -> Option<&'s str> {
        if let Some(label) = tag_label {
            return Some(label);
        }
        let lookup = |table: &'s WordMap<String>, v: Option<&str>| {
            v.and_then(|v| table.get(&py_strip(v).to_lowercase()))
        };
        if let Some(label) = lookup(&self.role_labels, role) {
            return Some(label);
        }
        if let Some(label) = lookup(&self.itemprop_labels, itemprop) {
            return Some(label);
        }
        let mut found: Option<&str> = None;
        let mut content = false;
        for value in values.iter().flatten() {
            if value.comment {
                return Some(&self.comment);
            }
            found = found.or(value.region);
            content = content || value.article;
        }
        if content {
            return if found.is_some() {
                None
            } else {
                Some(&self.content)
            };
        }
        found
    }

    /// `_value_facts`.
    fn value_facts(&self, value: &str, mut words: Option<&mut WordMemo>) -> ValueFacts<'_> {
        let mut facts = ValueFacts {
            comment: false,
            region: None,
            article: false,
            body: false, // (below)
            bits: 0,
        };
        let mut step = |word: &str| {
            let (comment, region, article, bits) = match words.as_deref_mut() {
                Some(memo) => memo.word_facts(self, word),
                None => self.word_facts(word),
            };
            facts.bits |= bits;
            if facts.comment {
                return;
            }
            if comment {
                facts.comment = true;
            } else if region.is_some() {
                facts.region = facts.region.or(region);
            } else if article {
                facts.article = true;
            }
        };
        // `value.split()`'s words and `names_body(value)`: an ASCII value (most) in one pass
        // over its bytes, split on its ASCII spaces (Python's whitespace among ASCII: the same
        // words) and searched at each byte that may start a head (`ascii_words_body`); any
        // other char by char, through its lowercased copy.
        let body = if value.is_ascii() {
            // SAFETY: a run of an ASCII value's bytes is ASCII, so UTF-8.
            ascii_words_body(value.as_bytes(), |w| {
                step(unsafe { std::str::from_utf8_unchecked(w) })
            })
        } else {
            value
                .split(crate::walk::py_space)
                .filter(|w| !w.is_empty())
                .for_each(&mut step);
            names_body_lowered(value)
        };
        facts.body = body;
        if facts.comment {
            facts.region = None;
            facts.article = false;
        }
        facts
    }

    /// `_WORD_FACTS[word][1]`: the first region word's label of one class name, if any.
    pub(crate) fn word_region(&self, word: &str) -> Option<&str> {
        self.word_facts(word).1
    }

    /// `_word_facts`: (a comment word, the first region word, an article word, bits). An
    /// ASCII word's tokens are read from its bytes as they come (`ascii_tokens`), each looked
    /// up once in `Derived::tokens`.
    fn word_facts(&self, word: &str) -> (bool, Option<&str>, bool, u64) {
        let (comment, region, article, bits) = self.word_facts_at(word);
        (comment, self.derived.label(region), article, bits)
    }

    /// `word_facts`, the region label as its index in `Derived::region_labels`.
    fn word_facts_at(&self, word: &str) -> (bool, Option<u16>, bool, u64) {
        let derived = &self.derived;
        let mut region: Option<u16> = None;
        let (mut article, mut comment, mut bits) = (false, false, 0);
        let mut step = |token: &str| {
            let slot = token_slot(token.as_bytes());
            let facts = match derived.token_slots.get(slot / 64) {
                Some(slots) if slots >> (slot % 64) & 1 == 1 => derived.tokens.get(token),
                _ => None, // (in no table)
            };
            bits |= facts.map_or(0, |f| f.bits);
            if comment {
                return;
            }
            // `_token_label`: a whole word, or a strong word heading or ending a long compound.
            let label = match facts.and_then(|f| f.label.map(|label| (label, f.weak))) {
                Some(found) => Some(found),
                None if token.len() >= 7 && (token.is_ascii() || token.chars().count() >= 7) => {
                    derived.compound_label(token).map(|label| {
                        let weak =
                            derived.content == Some(label) && self.weak_content.contains(token);
                        (label, weak)
                    })
                }
                None => None,
            };
            match label {
                Some((label, _)) if derived.comment == Some(label) => comment = true,
                Some((label, weak)) if derived.content == Some(label) => article = article || !weak,
                Some((label, _)) if region.is_none() => region = Some(label),
                _ => {}
            }
        };
        if word.is_ascii() {
            ascii_tokens(word.as_bytes(), &mut step);
        } else {
            tokens(word).iter().for_each(|token| step(token));
        }
        if comment {
            return (true, None, false, bits);
        }
        (false, region, article, bits)
    }
}

impl Derived {
    /// The label at index *at* of `region_labels`.
    fn label(&self, at: Option<u16>) -> Option<&str> {
        at.map(|at| self.region_labels[at as usize].as_str())
    }

    /// `_token_label`'s compound step: the label of the first compound word *token* starts or
    /// ends with (first and last bytes compared before the rest).
    fn compound_label(&self, token: &str) -> Option<u16> {
        let token = token.as_bytes();
        let (first, last) = (token.first()?, token.last()?);
        self.compound
            .iter()
            .find(|(word, _)| {
                let fits = word.len() <= token.len();
                (fits && word.first() == Some(first) && token.starts_with(word))
                    || (fits && word.last() == Some(last) && token.ends_with(word))
            })
            .map(|&(_, label)| label)
    }
}

/// `_tokens(word)` of an ASCII *word*, each passed to *step* as it is read: the matches of
/// `[A-Z]?[a-z]+|[A-Z]+(?![a-z])` (`_TOKEN_RE` on ASCII), lowercased (a token with a capital
/// is lowercased into a buffer, the others borrowed): no Vec of chars, no String a token.
fn ascii_tokens(word: &[u8], mut step: impl FnMut(&str)) {
    let lower_run = |from: usize| {
        from + word[from..]
            .iter()
            .take_while(|b| b.is_ascii_lowercase())
            .count()
    };
    let mut buffer = [0u8; 64];
    let mut long = Vec::new(); // (a token longer than the buffer: rare)
    let mut i = 0;
    while i < word.len() {
        let byte = word[i];
        let end = if byte.is_ascii_lowercase() {
            lower_run(i + 1)
        } else if !byte.is_ascii_uppercase() {
            i += 1;
            continue;
        } else if word.get(i + 1).is_some_and(u8::is_ascii_lowercase) {
            lower_run(i + 2) // [A-Z][a-z]+
        } else {
            // [A-Z]+(?![a-z]): the capitals, less the last when a-z follows (it heads a word)
            let caps = i + word[i..]
                .iter()
                .take_while(|b| b.is_ascii_uppercase())
                .count();
            if word.get(caps).is_some_and(u8::is_ascii_lowercase) {
                caps - 1
            } else {
                caps
            }
        };
        let token = &word[i..end];
        let lowered = if !byte.is_ascii_uppercase() {
            token // (no capital: a run of a-z)
        } else if let Some(buffer) = buffer.get_mut(..token.len()) {
            buffer.copy_from_slice(token);
            buffer.make_ascii_lowercase();
            &*buffer
        } else {
            long.clear();
            long.extend(token.iter().map(u8::to_ascii_lowercase));
            &long
        };
        // SAFETY: bytes of an ASCII word, lowercased, are ASCII, so UTF-8.
        step(unsafe { std::str::from_utf8_unchecked(lowered) });
        i = end;
    }
}

/// A lowercase letter of `_TOKEN_RE`'s class `[a-z\u00e0-\u024f]`.
fn lower_letter(c: char) -> bool {
    c.is_ascii_lowercase() || ('\u{e0}'..='\u{24f}').contains(&c)
}

/// `tokens(value)` when *value* is ASCII without a capital (Python's fast path: the runs of
/// a-z), borrowed as they come; None for any other value.
fn plain_runs(value: &str) -> Option<impl Iterator<Item = &str>> {
    let plain = value
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase());
    let runs = value.split(|c: char| !c.is_ascii_lowercase());
    plain.then(|| runs.filter(|t| !t.is_empty()))
}

/// `_tokens`: `_TOKEN_RE`'s matches, `[A-Z]?[a-z\u00e0-\u024f]+|[A-Z]+(?![a-z])`, lowercased
/// (its ASCII fast path gives the same tokens).
pub fn tokens(value: &str) -> Vec<Cow<'_, str>> {
    if let Some(runs) = plain_runs(value) {
        // Python's fast path: no capital, so the tokens are the runs of a-z (borrowed).
        return runs.map(Cow::Borrowed).collect();
    }
    let chars: Vec<char> = value.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let upper = chars[i].is_ascii_uppercase();
        let run_from = |start: usize| {
            let mut end = start;
            while end < chars.len() && lower_letter(chars[end]) {
                end += 1;
            }
            end
        };
        // [A-Z]?[a-z...]+
        let start = if upper { i + 1 } else { i };
        let end = run_from(start);
        if end > start {
            out.push(Cow::Owned(
                chars[i..end].iter().collect::<String>().to_lowercase(),
            ));
            i = end;
            continue;
        }
        if upper {
            // [A-Z]+(?![a-z]): the longest run of capitals not followed by a-z.
            let mut end = i;
            while end < chars.len() && chars[end].is_ascii_uppercase() {
                end += 1;
            }
            while end > i && chars.get(end).is_some_and(char::is_ascii_lowercase) {
                end -= 1;
            }
            if end > i {
                out.push(Cow::Owned(
                    chars[i..end].iter().collect::<String>().to_lowercase(),
                ));
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// `_names_body`: `(?:article|story|entry|post|blog|news)[-_]?(?:body|content|text)` in the
/// lowercased value. An ASCII value (most) is searched as it is, ignoring ASCII case: no
/// lowercased copy, one pass (the copy and three substring tests were ~19% of a new kind's
/// facts); any other through its lowercased copy (`names_body_lowered`).
#[cfg(test)] // (the core reads it through `ascii_words_body`; the tests hold both to it)
pub fn names_body(value: &str) -> bool {
    if !value.is_ascii() {
        return names_body_lowered(value);
    }
    let bytes = value.as_bytes();
    (0..bytes.len()).any(|at| body_at(bytes, at, BODY_HEAD[bytes[at] as usize]))
}

/// Whether a match of `_BODY_RE` starts at *at* of the ASCII *bytes*, whose byte there is
/// in class *class* of `BODY_HEAD`.
#[inline(always)]
fn body_at(bytes: &[u8], at: usize, class: u8) -> bool {
    let (head, len) = match class {
        0 | SPACE => return false, // (most bytes)
        i => BODY_HEADS[i as usize - 1],
    };
    if folded8(&bytes[at..]) & mask(len) != head {
        return false;
    }
    let mut tail = at + len;
    if matches!(bytes.get(tail), Some(b'-' | b'_')) {
        tail += 1; // (a tail starts with neither: `[-_]?` need not try without)
    }
    let next = folded8(&bytes[tail..]);
    BODY_TAILS
        .iter()
        .any(|&(word, len)| next & mask(len) == word)
}

/// The words of the ASCII *value* (`value.split()`), each passed to *step* in order, and
/// `names_body(value)`, in one pass over its bytes (`BODY_HEAD` gives each byte's class).
fn ascii_words_body<'v>(value: &'v [u8], mut step: impl FnMut(&'v [u8])) -> bool {
    let mut body = false;
    let mut start = 0;
    for (at, &byte) in value.iter().enumerate() {
        match BODY_HEAD[byte as usize] {
            0 => {}
            SPACE => {
                if at > start {
                    step(&value[start..at]);
                }
                start = at + 1;
            }
            class => body = body || body_at(value, at, class),
        }
    }
    if value.len() > start {
        step(&value[start..]);
    }
    body
}

/// `BODY_HEAD`'s class of Python's whitespace among ASCII bytes.
const SPACE: u8 = 0xFF;

/// A word of up to 8 ASCII bytes as `folded8` reads it, and its length.
const fn word8(word: &[u8]) -> (u64, usize) {
    let mut bytes = [0u8; 8];
    let mut i = 0;
    while i < word.len() {
        bytes[i] = word[i];
        i += 1;
    }
    (u64::from_le_bytes(bytes), word.len())
}

/// `_BODY_RE`'s heads and tails (lowercase), as `word8` gives them.
const BODY_HEADS: [(u64, usize); 6] = [
    word8(b"article"),
    word8(b"story"),
    word8(b"entry"),
    word8(b"post"),
    word8(b"blog"),
    word8(b"news"),
];
const BODY_TAILS: [(u64, usize); 3] = [word8(b"body"), word8(b"content"), word8(b"text")];

/// The head of `BODY_HEADS` (its index plus one) a byte may start, either case; `SPACE` for
/// Python's whitespace among ASCII bytes; 0: neither (the heads' first letters differ).
static BODY_HEAD: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut space = 0;
    while space < 128 {
        if matches!(space as u8, b'\t'..=b'\r' | b'\x1c'..=b'\x1f' | b' ') {
            table[space] = SPACE;
        }
        space += 1;
    }
    let heads: [u8; 6] = *b"asepbn";
    let mut i = 0;
    while i < heads.len() {
        table[heads[i] as usize] = i as u8 + 1;
        table[heads[i].to_ascii_uppercase() as usize] = i as u8 + 1;
        i += 1;
    }
    table
};

/// The first 8 bytes of *bytes* (0 past its end), each ASCII letter lowercased and each other
/// byte changed to one that is no letter: among ASCII bytes, `b | 0x20` is a lowercase letter
/// only if *b* is that letter in either case (and 0 becomes a space).
fn folded8(bytes: &[u8]) -> u64 {
    let word = match bytes.first_chunk::<8>() {
        Some(first) => u64::from_le_bytes(*first),
        None => {
            let mut word = [0u8; 8];
            word[..bytes.len()].copy_from_slice(bytes);
            u64::from_le_bytes(word)
        }
    };
    word | 0x2020_2020_2020_2020
}

/// The mask of a little-endian word's first *len* (1 to 8) bytes.
fn mask(len: usize) -> u64 {
    u64::MAX >> (64 - 8 * len)
}

/// `names_body` through the lowercased copy (Python's steps): what a value with a non-ASCII
/// char takes (`str::to_lowercase` as Python's `lower`, so the same matches).
fn names_body_lowered(value: &str) -> bool {
    let low = value.to_lowercase();
    if !low.contains("body") && !low.contains("content") && !low.contains("text") {
        return false;
    }
    const HEADS: [&str; 6] = ["article", "story", "entry", "post", "blog", "news"];
    const TAILS: [&str; 3] = ["body", "content", "text"];
    HEADS.iter().any(|head| {
        low.match_indices(head).any(|(at, _)| {
            let rest = &low[at + head.len()..];
            let rest = rest
                .strip_prefix('-')
                .or_else(|| rest.strip_prefix('_'))
                .unwrap_or(rest);
            TAILS.iter().any(|tail| rest.starts_with(tail))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_as_the_regex() {
        assert_eq!(
            tokens("site-footer__link mainNav css-1x9f2k AD_2"),
            ["site", "footer", "link", "main", "nav", "css", "x", "f", "k", "ad"]
        );
        assert_eq!(tokens("ABCdef"), ["ab", "cdef"]);
        assert_eq!(tokens("AÉé"), ["a", "é"]);
        assert_eq!(tokens("Aé"), ["aé"]);
        assert!(plain_runs("Ab").is_none() && plain_runs("é").is_none());
        let runs: Vec<&str> = plain_runs("-site-footer__1x").unwrap().collect();
        assert_eq!(runs, ["site", "footer", "x"]);
    }

    #[test]
    fn the_memo_holds_a_bounded_number_of_entries() {
        let tables = Tables {
            tag_labels: WordMap::default(),
            role_labels: WordMap::default(),
            itemprop_labels: WordMap::default(),
            token_labels: WordMap::default(),
            compound: Vec::new(),
            weak_content: WordSet::default(),
            word_bits: WordMap::default(),
            tag_bits: WordMap::default(),
            label_bits: WordMap::default(),
            body_itemprops: WordSet::default(),
            comment: String::new(),
            content: String::new(),
            derived: Derived::default(),
        };
        let mut memo = FactsMemo::default();
        let most = MEMO_CHARS / (ENTRY_CHARS + 4);
        for i in 0..most + 10 {
            memo.facts(
                &tables,
                ("p".to_string(), Some(format!("c{i}")), None, None, None),
            );
            assert!(memo.chars <= MEMO_CHARS);
        }
        // Tiny keys are charged ENTRY_CHARS each: started afresh once, not millions held.
        assert!(memo.map.len() < MEMO_CHARS / ENTRY_CHARS);
        assert!(memo.map.len() < most);
    }

    #[test]
    fn the_word_memo_answers_as_word_facts() {
        let mut token_labels = WordMap::default();
        token_labels.insert("footer".to_string(), "footer".to_string());
        token_labels.insert("comments".to_string(), "comment".to_string());
        let mut word_bits = WordMap::default();
        word_bits.insert("nav".to_string(), 4);
        let mut tables = Tables {
            tag_labels: WordMap::default(),
            role_labels: WordMap::default(),
            itemprop_labels: WordMap::default(),
            token_labels,
            compound: vec![("sidebar".to_string(), "sidebar".to_string())],
            weak_content: WordSet::default(),
            word_bits,
            tag_bits: WordMap::default(),
            label_bits: WordMap::default(),
            body_itemprops: WordSet::default(),
            comment: "comment".to_string(),
            content: "content".to_string(),
            derived: Derived::default(),
        };
        tables.derive();
        let mut memo = WordMemo::default();
        let words = [
            "site-footer",
            "leftsidebarx",
            "nav-comments",
            "Footer",
            "x",
            "nav",
        ];
        for _ in 0..2 {
            for word in words {
                assert_eq!(
                    memo.word_facts(&tables, word),
                    tables.word_facts(word),
                    "{word}"
                );
            }
        }
        assert_eq!(memo.map.len(), words.len());
        // Bounded: tiny words are charged ENTRY_CHARS each, and the map starts afresh.
        for i in 0..WORD_MEMO_CHARS / ENTRY_CHARS + 10 {
            memo.word_facts(&tables, &format!("w{i}"));
            assert!(memo.chars <= WORD_MEMO_CHARS);
        }
        assert!(memo.map.len() <= WORD_MEMO_CHARS / ENTRY_CHARS);
    }

    /// `_word_facts` as it was ported first (`tokens`, then `_token_label`'s steps on the
    /// tables as Python gives them): what `word_facts` must answer.
    fn word_facts_reference<'t>(
        tables: &'t Tables,
        word: &str,
    ) -> (bool, Option<&'t str>, bool, u64) {
        let token_label = |token: &str| {
            let label = tables.token_labels.get(token);
            if label.is_some() || token.chars().count() < 7 {
                return label.map(String::as_str);
            }
            let mut compound = tables.compound.iter();
            compound
                .find(|(word, _)| {
                    token.starts_with(word.as_str()) || token.ends_with(word.as_str())
                })
                .map(|(_, label)| label.as_str())
        };
        let mut region: Option<&str> = None;
        let (mut article, mut comment, mut bits) = (false, false, 0);
        for token in tokens(word) {
            bits |= tables.word_bits.get(&*token).copied().unwrap_or(0);
            if comment {
                continue;
            }
            match token_label(&token) {
                Some(label) if label == tables.comment => comment = true,
                Some(label) if label == tables.content => {
                    article = article || !tables.weak_content.contains(&*token)
                }
                Some(label) if region.is_none() => region = Some(label),
                _ => {}
            }
        }
        if comment {
            return (true, None, false, bits);
        }
        (false, region, article, bits)
    }

    /// Tables like placement.py's, small: labels by token and by compound (a content one
    /// too), weak content words, bits.
    fn small_tables() -> Tables {
        let pairs = |pairs: &[(&str, &str)]| -> WordMap<String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let mut tables = Tables {
            tag_labels: pairs(&[("nav", "nav"), ("footer", "footer"), ("aside", "sidebar")]),
            role_labels: pairs(&[("navigation", "nav"), ("main", "content")]),
            itemprop_labels: pairs(&[("articlebody", "content")]),
            token_labels: pairs(&[
                ("footer", "footer"),
                ("comments", "comment"),
                ("comment", "comment"),
                ("nav", "nav"),
                ("menu", "nav"),
                ("article", "content"),
                ("content", "content"),
                ("post", "content"),
                ("main", "content"),
                ("sidebar", "sidebar"),
                ("related", "sidebar"),
                ("é", "sidebar"),
            ]),
            compound: [
                ("comment", "comment"),
                ("footer", "footer"),
                ("sidebar", "sidebar"),
                ("navbar", "nav"),
                ("menu", "nav"),
                ("stories", "content"),
                ("widget", "sidebar"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            weak_content: ["main", "post", "content", "topstories"]
                .iter()
                .map(|w| w.to_string())
                .collect(),
            word_bits: [
                ("nav", 1),
                ("menu", 2),
                ("product", 4),
                ("card", 8),
                ("item", 16),
            ]
            .iter()
            .map(|&(k, v)| (k.to_string(), v))
            .collect(),
            tag_bits: [("li", 32), ("nav", 64)]
                .iter()
                .map(|&(k, v)| (k.to_string(), v))
                .collect(),
            label_bits: [("nav", 128), ("content", 256)]
                .iter()
                .map(|&(k, v)| (k.to_string(), v))
                .collect(),
            body_itemprops: ["articlebody", "reviewbody"]
                .iter()
                .map(|w| w.to_string())
                .collect(),
            comment: "comment".to_string(),
            content: "content".to_string(),
            derived: Derived::default(),
        };
        tables.derive();
        tables
    }

    /// Pieces of class words: the tables' words in either case and their parts, separators,
    /// digits, capitals and runs of them, non-ASCII letters (some in `_TOKEN_RE`'s
    /// `\u00e0-\u024f`, some not).
    const WORD_PIECES: [&str; 44] = [
        "footer",
        "Footer",
        "FOOTER",
        "comments",
        "Comment",
        "nav",
        "Nav",
        "NAV",
        "menu",
        "article",
        "Article",
        "content",
        "post",
        "main",
        "sidebar",
        "related",
        "stories",
        "topstories",
        "widget",
        "navbar",
        "product",
        "card",
        "item",
        "-",
        "_",
        "--",
        "1",
        "9",
        " ",
        "A",
        "B",
        "Z",
        "x",
        "q",
        "ABC",
        "é",
        "É",
        "\u{24f}",
        "\u{250}",
        "\u{130}",
        "\u{212a}",
        "ß",
        "Σ",
        "xyzzyq",
    ];

    #[test]
    fn word_facts_as_the_first_port() {
        let tables = small_tables();
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut memo = WordMemo::default();
        for n in 0..300_000 {
            let word = rng.string(&WORD_PIECES, if n % 10 == 0 { 12 } else { 5 });
            let want = word_facts_reference(&tables, &word);
            assert_eq!(tables.word_facts(&word), want, "{word:?}");
            assert_eq!(memo.word_facts(&tables, &word), want, "{word:?}");
        }
        for word in [
            String::new(),
            "x".repeat(100_000),
            format!("{}Footer", "Q".repeat(70)),
            format!("{}sidebar", "Q".repeat(70)),
            format!("{}", "NavBar".repeat(20_000)),
        ] {
            assert_eq!(
                tables.word_facts(&word),
                word_facts_reference(&tables, &word)
            );
        }
    }

    #[test]
    fn ascii_tokens_are_tokens() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let pieces = [
            "a", "b", "z", "A", "B", "Z", "AB", "Ab", "aB", "abc", "ABC", "-", "_", "0", "9", " ",
            "@", "[", "`", "{", "\0", "\x7f",
        ];
        let check = |word: &str| {
            let mut got: Vec<String> = Vec::new();
            ascii_tokens(word.as_bytes(), |t| got.push(t.to_string()));
            assert_eq!(got, tokens(word), "{word:?}");
        };
        for _ in 0..300_000 {
            check(&rng.string(&pieces, 10));
        }
        // Tokens longer than the buffer, of each kind.
        for word in [
            "A".repeat(65),
            "A".repeat(200) + "bc",
            "B".to_string() + &"c".repeat(300),
            "c".repeat(64),
            "X".repeat(64) + "-" + &"Y".repeat(63),
            String::new(),
        ] {
            check(&word);
        }
    }

    #[test]
    fn ascii_space_is_py_space_among_ascii() {
        for b in 0u8..128 {
            let ascii_space = matches!(b, b'\t'..=b'\r' | b'\x1c'..=b'\x1f' | b' ');
            assert_eq!(ascii_space, crate::walk::py_space(b as char), "{b}");
            // the table the fused pass reads (review16-f16 2)
            let table = BODY_HEAD[b as usize] == SPACE;
            assert_eq!(table, crate::walk::py_space(b as char), "{b}");
        }
    }

    #[test]
    fn body_names() {
        assert!(names_body("entry-content clearfix"));
        assert!(names_body("ArticleBody"));
        assert!(!names_body("css-53u6y8"));
        assert!(!names_body("post--body"));
        assert!(names_body("x NEWS_Text") && names_body("blogbody") && names_body("Post-TEXT"));
        assert!(!names_body("articl-body") && !names_body("stor") && !names_body(""));
    }

    /// A small xorshift generator: the random inputs of the tests (no dependency).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        /// A string of up to *most* pieces of *pieces*.
        fn string(&mut self, pieces: &[&str], most: usize) -> String {
            let n = self.below(most + 1);
            (0..n).map(|_| pieces[self.below(pieces.len())]).collect()
        }
    }

    /// Pieces of class names: the heads and tails of `_names_body`, either case, and their
    /// starts, separators, digits, bytes next to letters (`| 0x20` makes none a letter),
    /// non-ASCII letters whose lowercase is ASCII or longer (U+0130, the Kelvin sign), others.
    const PIECES: [&str; 47] = [
        "article", "ARTICLE", "Article", "story", "Story", "entry", "ENTRY", "post", "Post",
        "blog", "news", "NeWs", "body", "Body", "content", "CONTENT", "text", "Text", "-", "_",
        "--", " ", "\t", "a", "B", "x", "1", "9", "\u{130}", "\u{212a}", "\u{e9}", "\u{c9}",
        "\u{3a3}", "\u{3000}", "\u{a0}", "\u{24f}", "\u{250}", "arti", "cle", "tex", "@", "[", "`",
        "{", "\0", "bod", "CON",
    ];

    #[test]
    fn ascii_words_body_is_split_and_names_body() {
        let mut rng = Rng(0xbb67_ae85_84ca_a73b);
        let mut pieces: Vec<&str> = PIECES.iter().copied().filter(|p| p.is_ascii()).collect();
        pieces.extend(["\x0b", "\x0c", "\r", "\n", "\x1c", "\x1f", "  "]);
        for n in 0..200_000 {
            let value = rng.string(&pieces, if n % 10 == 0 { 30 } else { 8 });
            let mut words: Vec<&[u8]> = Vec::new();
            let body = ascii_words_body(value.as_bytes(), |w| words.push(w));
            let want: Vec<&[u8]> = value
                .split(crate::walk::py_space)
                .filter(|w| !w.is_empty())
                .map(str::as_bytes)
                .collect();
            assert_eq!(words, want, "{value:?}");
            assert_eq!(body, names_body_lowered(&value), "{value:?}");
        }
    }

    #[test]
    fn names_body_as_through_the_lowercased_copy() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..200_000 {
            let value = rng.string(&PIECES, 6);
            assert_eq!(names_body(&value), names_body_lowered(&value), "{value:?}");
        }
        // Very long values, either side of a match.
        let long = "x".repeat(100_000);
        for value in [
            format!("{long}article-body"),
            format!("article{long}body"),
            format!("{long}ARTICLE_TEXT{long}"),
            long.clone(),
        ] {
            assert_eq!(names_body(&value), names_body_lowered(&value));
        }
    }
}
