//! Placement's fact gathering over a lexbor tree (pipelines/placement.py `_scan` and
//! `_Page.read_facts`, the Python path's reference): the links and the blocks of running text
//! in document order, each recorded with its ancestors, and what each recorded element is
//! (its tag and the attributes its label and fingerprint read), as arrays. The rules stay
//! Python's, over these arrays.
use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::c_int;
use std::hash::{BuildHasher, BuildHasherDefault};

use crate::facts::{tables, Facts};
use crate::lexbor::{
    document_of, KeyMask, Node, Tree, API, DOCUMENT, ELEMENT, HREF, KIND_MASK, TEXT,
};
use crate::scan_arrays::AddressMap;

/// What one element's facts depend on (placement.py `_FACTS`' key): its tag, then its class,
/// id, role, itemprop and align (None: absent or valueless).
pub type Kind = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The scan of one page: the recorded elements numbered as `_Page.register` numbers them (the
/// root 0, an element after its parent), with per element its parent, depth, structural
/// fingerprint (`_Page.block`), address (`mem_id`) and kind (an index into `kinds`: markup
/// repeats); each link's key (-1: not found by the scan); the blocks of running text with
/// their text length; and the keys of blocks and links in document order.
pub struct Scan {
    pub parent: Vec<i64>,
    pub depth: Vec<u32>,
    pub block: Vec<u32>,
    pub addresses: Vec<usize>,
    pub kind_of: Vec<u32>,
    pub kinds: Vec<Kind>,
    pub link_keys: Vec<i64>,
    pub paras: Vec<(usize, usize)>,
    pub seq: Vec<usize>,
    /// Each kind's facts (label, names the body, bits) when placement's tables are set.
    pub facts: Option<Vec<Facts>>,
}

/// The tags the scan measures (placement.py `_SCAN_SELECTOR` less the links), the boxes among
/// them whose own text only counts (`_CONTAINERS`), and the characters of text from which a
/// block is running text (`_MIN_PARA`): Python's values, passed in.
pub struct Rules<'a> {
    pub blocks: &'a [String],
    pub containers: &'a [String],
    pub min_para: usize,
}

/// The scan of the tree of *root* (placement's root: `<body>`, else `<html>`) for the links
/// at *links* (addresses, only compared: never read). None if the API is not loaded or *root*
/// is not an element in a document (review16-w16 1: the document node or a text node as root
/// gave rows before; placement's roots are elements).
///
/// # Safety
/// *root* is a live `lxb_dom_node_t *` whose tree no one changes during the call.
///
/// With the document's *elements* (the page's walk gathered them: the same document, from
/// its first child in preorder), they are not gathered again.
pub(crate) unsafe fn scan_of(
    root: usize,
    links: &[usize],
    rules: &Rules,
    elements: Option<Elements>,
) -> Option<Scan> {
    let api = API.get()?;
    let root = root as Node;
    let document = document_of(api, root)?;
    let tree = Tree::new(api, document);
    let elements = elements.unwrap_or_else(|| Elements::of(&tree, document));
    // The root among the elements (else, a tree the walk did not gather: placement scans).
    let root_at = elements.nodes.iter().position(|&n| n == root)?;
    let mut page = Page::new(&tree, &elements, root_at, links.len());
    let link_index: AddressMap<usize> = links.iter().enumerate().map(|(i, a)| (*a, i)).collect();
    // In document order, as css() finds the selector's elements. What a tag is to the scan
    // is kept by its name's id (markup repeats a few dozen tags).
    let mut classes: Vec<TagClass> = Vec::new();
    for (at, &node) in elements.nodes.iter().enumerate() {
        let class = match tree.name_id(node) {
            Some(id) => match classes.get(id) {
                Some(&class) if class != TagClass::Unknown => class,
                _ => {
                    let class = TagClass::of(&tree.name(node), rules);
                    if classes.len() <= id {
                        classes.resize(id + 1, TagClass::Unknown);
                    }
                    classes[id] = class;
                    class
                }
            },
            None => TagClass::of(&tree.name(node), rules),
        };
        let deep = match class {
            TagClass::Link => {
                // `a[href], area[href]`: another link of the caller's is not reached.
                let reached = || elements.masks[at] & HREF.bit() != 0;
                if let Some(&i) = link_index.get(&(node as usize)).filter(|_| reached()) {
                    let key = page.register(at);
                    page.link_keys[i] = key as i64;
                    page.seq.push(key);
                }
                continue;
            }
            TagClass::Other | TagClass::Unknown => continue,
            TagClass::Deep => true,
            TagClass::Own => false,
        };
        let length = if deep {
            elements.deep[at]
        } else {
            elements.own[at]
        };
        if length >= rules.min_para {
            let key = page.register(at);
            page.paras.push((key, length));
            page.seq.push(key);
        }
    }
    Some(page.finish())
}

/// What a tag is to the scan: a link's (`a`, `area`), a block measured by all its text or by
/// its own (`_CONTAINERS`), or none of those.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TagClass {
    Unknown,
    Link,
    Deep,
    Own,
    Other,
}

impl TagClass {
    fn of(name: &str, rules: &Rules) -> Self {
        if name == "a" || name == "area" {
            TagClass::Link
        } else if !rules.blocks.iter().any(|b| *b == name) {
            TagClass::Other
        } else if rules.containers.iter().any(|c| *c == name) {
            TagClass::Own
        } else {
            TagClass::Deep
        }
    }
}

/// The document's elements in preorder, each with the text lengths selectolax's
/// `len(node.text(deep=..., strip=True))` gives: its text children's (`own`) and all its
/// text descendants' (`deep`), each text node stripped; every text node read once. Gathered
/// by its own walk, or by the page's walk as it goes (`lexbor_page_scan`: one walk).
#[derive(Default)]
pub(crate) struct Elements {
    nodes: Vec<Node>,
    own: Vec<usize>,
    deep: Vec<usize>,
    /// Each element's parent element (usize::MAX: none).
    parent_of: Vec<usize>,
    /// Each element's keys among those the walk and the scan read (lexbor.rs `key_mask`).
    masks: Vec<KeyMask>,
}

/// No element (a text node's parent is none: outside every element).
pub(crate) const NO_ELEMENT: usize = usize::MAX;

impl Elements {
    fn of(tree: &Tree, document: Node) -> Self {
        let mut elements = Elements::default();
        // (node, the index of the element it is a child of)
        let mut stack: Vec<(Node, usize)> = tree
            .first_child(document)
            .map(|n| (n, NO_ELEMENT))
            .into_iter()
            .collect();
        while let Some((node, up)) = stack.pop() {
            if let Some(next) = tree.next(node) {
                stack.push((next, up));
            }
            match tree.kind(node) {
                ELEMENT => {
                    let at = elements.element(node, up, tree.key_mask(node));
                    if let Some(child) = tree.first_child(node) {
                        stack.push((child, at));
                    }
                }
                TEXT => elements.text(tree, node, up),
                _ => {}
            }
        }
        elements.finish()
    }

    /// Element *node*, child of the element at *up*, with the keys *mask*, met next in
    /// preorder: its index.
    #[inline]
    pub(crate) fn element(&mut self, node: Node, up: usize, mask: KeyMask) -> usize {
        self.nodes.push(node);
        self.own.push(0);
        self.parent_of.push(up);
        self.masks.push(mask);
        self.nodes.len() - 1
    }

    /// Text node *node*, child of the element at *up*.
    pub(crate) fn text(&mut self, tree: &Tree, node: Node, up: usize) {
        if up != NO_ELEMENT {
            self.own[up] += tree.stripped_len(node);
        }
    }

    /// The deep lengths, once every node is met.
    pub(crate) fn finish(mut self) -> Self {
        // An element comes after its parent: sums from the last up.
        self.deep = self.own.clone();
        for at in (0..self.nodes.len()).rev() {
            let up = self.parent_of[at];
            if up != NO_ELEMENT {
                self.deep[up] += self.deep[at];
            }
        }
        self
    }
}

/// The recorded elements (placement.py `_Page`), as the scan records them.
struct Page<'t, 'a, 'e> {
    tree: &'t Tree<'a>,
    elements: &'e Elements,
    /// Each element's key (by its index in *elements*; `NOT_RECORDED`: none yet).
    key_of: Vec<u32>,
    /// The keys of recorded nodes that are not elements (the document, climbed past `<html>`).
    others: AddressMap<usize>,
    parent: Vec<i64>,
    nodes: Vec<Node>,
    /// Each recorded node's index in *elements* (`NO_ELEMENT`: not an element).
    at_of: Vec<usize>,
    link_keys: Vec<i64>,
    paras: Vec<(usize, usize)>,
    seq: Vec<usize>,
    /// `register`'s ancestors to record (kept between calls: no allocation per call).
    pending: Vec<(Node, usize)>,
}

/// An element not recorded (`Page::key_of`).
const NOT_RECORDED: u32 = u32::MAX;

impl<'t, 'a, 'e> Page<'t, 'a, 'e> {
    /// The page of the element at *root* of *elements*, for *links* links.
    fn new(tree: &'t Tree<'a>, elements: &'e Elements, root: usize, links: usize) -> Self {
        let mut key_of = vec![NOT_RECORDED; elements.nodes.len()];
        key_of[root] = 0;
        Page {
            tree,
            elements,
            key_of,
            others: AddressMap::default(),
            parent: vec![-1],
            nodes: vec![elements.nodes[root]],
            at_of: vec![root],
            link_keys: vec![-1; links],
            paras: Vec::new(),
            seq: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// `_Page.register`: record the element at *at* and its ancestors up to the root or a
    /// recorded one (past the top: hung under the root), numbered outermost first; its key.
    /// Climbed by the elements' parents (an element's parent is an element, or no element:
    /// then by the tree's parents, the document's, as Python climbs).
    fn register(&mut self, at: usize) -> usize {
        let known = self.key_of[at];
        if known != NOT_RECORDED {
            return known as usize;
        }
        let elements = self.elements;
        let mut pending = std::mem::take(&mut self.pending); // (one buffer for every call)
        pending.clear();
        pending.push((elements.nodes[at], at));
        let mut up = 0;
        let mut cur = elements.parent_of[at];
        let mut last = at;
        while cur != NO_ELEMENT {
            let k = self.key_of[cur];
            if k != NOT_RECORDED {
                up = k as usize;
                break;
            }
            pending.push((elements.nodes[cur], cur));
            last = cur;
            cur = elements.parent_of[cur];
        }
        if cur == NO_ELEMENT {
            // Above the top element: the tree's parents (no element: not in *key_of*).
            let mut above = self.tree.parent(elements.nodes[last]);
            while let Some(node) = above {
                if let Some(&k) = self.others.get(&(node as usize)) {
                    up = k;
                    break;
                }
                pending.push((node, NO_ELEMENT));
                above = self.tree.parent(node);
            }
        }
        let first = self.parent.len();
        for (offset, &(node, at)) in pending.iter().rev().enumerate() {
            let key = first + offset;
            match at {
                NO_ELEMENT => {
                    self.others.insert(node as usize, key);
                }
                at => self.key_of[at] = key as u32,
            }
            self.parent.push(if offset == 0 {
                up as i64
            } else {
                key as i64 - 1
            });
            self.nodes.push(node);
            self.at_of.push(at);
        }
        self.pending = pending;
        self.parent.len() - 1
    }

    /// Each recorded element's depth, fingerprint and kind (`_Page.read_facts`).
    fn finish(self) -> Scan {
        let n = self.nodes.len();
        let mut kinds: Vec<Kind> = Vec::new();
        // A kind by a hash of its borrowed parts (no key built): the first kind of each hash,
        // the others chained from it (`chain`), each compared part by part. Strings are made
        // for a new kind only (markup repeats: a page has a few hundred).
        let hasher = foldhash::fast::RandomState::default();
        let mut first: HashMap<u64, u32, BuildHasherDefault<Hashed>> =
            HashMap::with_capacity_and_hasher(n.min(1 << 12), Default::default());
        let mut chain: Vec<u32> = Vec::new();
        let mut kind_of = Vec::with_capacity(n);
        let mut depth = vec![0u32; n];
        let mut block = vec![0u32; n];
        let mut parts: Vec<u32> = Vec::new(); // each kind's fingerprint part: markup repeats
                                              // The kind of an element without any of the attributes read, by its name's id.
        let mut bare: Vec<u32> = Vec::new();
        for (k, (node, &at)) in self.nodes.iter().zip(&self.at_of).enumerate() {
            let mask = match at {
                NO_ELEMENT => 0,
                at => self.elements.masks[at],
            };
            let (tag, values, name_id) = kind_parts(self.tree, *node, mask);
            let bare_id = name_id.filter(|_| values.iter().all(Option::is_none));
            let known_bare = bare_id.and_then(|id| bare.get(id).copied());
            let at = match known_bare.filter(|&at| at != u32::MAX) {
                Some(at) => at,
                None => {
                    let borrowed = values.each_ref().map(|v| v.as_deref());
                    let hash = hasher.hash_one((&*tag, borrowed));
                    let mut found = first.get(&hash).copied().unwrap_or(u32::MAX);
                    while found != u32::MAX && !same_kind(&kinds[found as usize], &tag, &borrowed) {
                        found = chain[found as usize];
                    }
                    let at = match found {
                        u32::MAX => {
                            let next = kinds.len() as u32;
                            let [cls, id, role, itemprop, align] =
                                values.map(|v| v.map(Cow::into_owned));
                            let kind = (tag.into_owned(), cls, id, role, itemprop, align);
                            parts.push(part_hash(&kind));
                            chain.push(first.insert(hash, next).unwrap_or(u32::MAX));
                            kinds.push(kind);
                            next
                        }
                        found => found,
                    };
                    if let Some(id) = bare_id {
                        if bare.len() <= id {
                            bare.resize(id + 1, u32::MAX);
                        }
                        bare[id] = at;
                    }
                    at
                }
            };
            if k > 0 {
                let up = self.parent[k] as usize;
                depth[k] = depth[up] + 1;
                let part = parts[at as usize];
                block[k] = block[up].wrapping_mul(31).wrapping_add(part);
            }
            kind_of.push(at);
        }
        let facts = tables().map(|t| {
            let of = kinds.iter().map(|k| (k.0.as_str(), &k.1, &k.2, &k.3, &k.4));
            crate::facts::memoized(&t, of)
        });
        Scan {
            facts,
            parent: self.parent,
            depth,
            block,
            addresses: self.nodes.iter().map(|n| *n as usize).collect(),
            kind_of,
            kinds,
            link_keys: self.link_keys,
            paras: self.paras,
            seq: self.seq,
        }
    }
}

/// Whether *kind* is the kind of tag *tag* and attribute values *values*.
fn same_kind(kind: &Kind, tag: &str, values: &[Option<&str>; 5]) -> bool {
    let (own_tag, cls, id, role, itemprop, align) = kind;
    own_tag == tag
        && [cls, id, role, itemprop, align]
            .iter()
            .zip(values)
            .all(|(own, value)| own.as_deref() == *value)
}

/// A hasher for keys that are hashes already (foldhash's, seeded per process): passed on.
#[derive(Default)]
struct Hashed(u64);

impl std::hash::Hasher for Hashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The attributes a kind reads (class, id, role, itemprop, align), borrowed.
type KindValues<'a> = [Option<Cow<'a, str>>; 5];

/// An element's kind, borrowed from the tree: its tag (selectolax's `node.tag`: the
/// document's is "-document") and the attributes its facts read, in one pass over its
/// attributes (none when its keys *mask* has none of them); and its name's id when the tree
/// looks names up by id.
fn kind_parts<'a>(
    tree: &Tree<'a>,
    node: Node,
    mask: KeyMask,
) -> (Cow<'a, str>, KindValues<'a>, Option<usize>) {
    let kind: c_int = tree.kind(node);
    if kind != ELEMENT {
        let tag = if kind == DOCUMENT { "-document" } else { "" };
        return (Cow::Borrowed(tag), Default::default(), None);
    }
    let values = match mask & KIND_MASK {
        0 => Default::default(),
        _ => tree.attrs_ref(node, &crate::lexbor::KIND_KEYS),
    };
    (tree.name(node), values, tree.name_id(node))
}

/// placement.py `_part_hash`: CRC-32 (zlib's) of `tag.class#id@align` less its ASCII digits,
/// `align` read on unclassed elements only.
fn part_hash(kind: &Kind) -> u32 {
    let (tag, cls, id, _, _, align) = kind;
    let cls = cls.as_deref().unwrap_or("");
    let align = if cls.is_empty() {
        align.as_deref().unwrap_or("")
    } else {
        ""
    };
    let id = id.as_deref().unwrap_or("");
    let pieces = [tag.as_str(), ".", cls, "#", id, "@", align];
    crc32(
        pieces
            .iter()
            .flat_map(|p| p.bytes())
            .filter(|b| !b.is_ascii_digit()),
    )
}

/// zlib's CRC-32 (IEEE 802.3, reflected) of *bytes*.
fn crc32(bytes: impl Iterator<Item = u8>) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut table = [0u32; 256];
        for (i, entry) in table.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *entry = c;
        }
        table
    });
    !bytes.fold(!0u32, |c, b| {
        table[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_zlibs() {
        // zlib.crc32(b"div.menu#@") and zlib.crc32(b"")
        assert_eq!(crc32(b"123456789".iter().copied()), 0xCBF4_3926);
        assert_eq!(crc32(std::iter::empty()), 0);
    }

    #[test]
    fn part_hash_drops_digits_and_align_of_classed() {
        let some = |s: &str| Some(s.to_string());
        let classed = (
            "div".into(),
            some("post-12"),
            None,
            None,
            None,
            some("center"),
        );
        let plain = ("div".into(), some("post-"), None, None, None, None);
        assert_eq!(part_hash(&classed), part_hash(&plain));
    }
}
