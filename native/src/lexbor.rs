//! The link walk over a tree lexbor already built: the one selectolax parsed for the Python
//! path (`pipelines/extract.py` `parse_page`), so the same tree by construction.
//!
//! There is no lexbor crate; selectolax's extension module links lexbor in and exports its C
//! API. We declare the few functions we call (their signatures from lexbor's public headers,
//! `lexbor/dom/interfaces/{node,element,attr,document}.h`) and resolve them at run time from
//! that file with dlopen + dlsym: every symbol is looked up at load, a missing one is an error
//! for Python (which then uses another path), never a crash later.
//!
//! A separate walk from `src/walk.rs` (that one walks our arena): it mirrors the same rules
//! (`_extract`, `anchor_parts`, `_foreign_links` in Python) and shares walk.rs's helpers.
use std::borrow::Cow;
use std::cell::{Cell, OnceCell, RefCell};
#[cfg(unix)]
use std::ffi::{c_char, CString};
use std::ffi::{c_int, c_void};
use std::sync::OnceLock;

use crate::layout;
use crate::scan::{Elements, NO_ELEMENT};
use crate::walk::{
    anchor_parts, py_strip, rel_has, scope_under, Dom, Fields, LinkRow, Scope, MAX_ALTERNATES,
    OUTSIDE, TOP,
};

/// `lxb_dom_node_t *` (an element, a text, the document: all start with the node struct).
pub(crate) type Node = *mut c_void;
/// `lxb_dom_attr_t *`.
type Attr = *mut c_void;

/// lexbor's `lxb_dom_node_type_t` values we tell apart.
pub(crate) const ELEMENT: c_int = 1;
pub(crate) const TEXT: c_int = 3;
pub(crate) const DOCUMENT: c_int = 9;
/// Parents climbed at most from the root element to its document.
const MAX_CLIMB: usize = 64;

type NodeFn = unsafe extern "C" fn(Node) -> Node;
type NameFn = unsafe extern "C" fn(*mut c_void, *mut usize) -> *const u8;

/// The lexbor functions the walk calls, resolved from selectolax's extension.
pub(crate) struct Api {
    pub(crate) first_child: NodeFn,
    pub(crate) next: NodeFn,
    pub(crate) parent: NodeFn,
    pub(crate) node_type: unsafe extern "C" fn(Node) -> c_int,
    /// `lxb_dom_element_qualified_name`: the tag as selectolax's `node.tag` gives it.
    pub(crate) element_name: NameFn,
    pub(crate) first_attr: unsafe extern "C" fn(Node) -> Attr,
    pub(crate) next_attr: unsafe extern "C" fn(Attr) -> Attr,
    /// `lxb_dom_attr_qualified_name`: the key of selectolax's `node.attributes`.
    pub(crate) attr_name: NameFn,
    /// NULL for an attribute without a value (None in `node.attributes`).
    pub(crate) attr_value: NameFn,
    /// A copy of the text (owned by the document until `destroy_text`).
    pub(crate) text_content: unsafe extern "C" fn(Node, *mut usize) -> *mut u8,
    pub(crate) destroy_text: unsafe extern "C" fn(Node, *mut u8) -> *mut u8,
    /// Whether the probe verified src/layout.rs's reads on this lexbor (`DIRECT` follows it).
    pub(crate) verified: bool,
}

pub(crate) static API: OnceLock<Api> = OnceLock::new();

/// Resolve lexbor's functions from the shared object at *path* (already loaded by Python:
/// RTLD_NOLOAD takes it without loading anything; the handle is kept, never closed). The
/// first success is kept: later calls only check their file. *layout*: probe the structs'
/// layout (src/layout.rs) and read them in place if it holds; only for a lexbor whose
/// layout is known (the probe itself reads those offsets).
#[cfg(unix)]
pub fn load(path: &str, layout: bool) -> Result<(), String> {
    let cpath = CString::new(path).map_err(|_| "a NUL in the path".to_string())?;
    // SAFETY: dlopen with RTLD_NOLOAD only returns a library already in the process.
    let handle = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
    if handle.is_null() {
        return Err(format!("{path} is not loaded"));
    }
    // SAFETY: each symbol is lexbor's function of that name, whose C signature is the field's.
    let api = unsafe {
        Api {
            first_child: resolve(handle, path, "lxb_dom_node_first_child_noi")?,
            next: resolve(handle, path, "lxb_dom_node_next_noi")?,
            parent: resolve(handle, path, "lxb_dom_node_parent_noi")?,
            node_type: resolve(handle, path, "lxb_dom_node_type_noi")?,
            element_name: resolve(handle, path, "lxb_dom_element_qualified_name")?,
            first_attr: resolve(handle, path, "lxb_dom_element_first_attribute_noi")?,
            next_attr: resolve(handle, path, "lxb_dom_element_next_attribute_noi")?,
            attr_name: resolve(handle, path, "lxb_dom_attr_qualified_name")?,
            attr_value: resolve(handle, path, "lxb_dom_attr_value_noi")?,
            text_content: resolve(handle, path, "lxb_dom_node_text_content")?,
            destroy_text: resolve(handle, path, "lxb_dom_document_destroy_text_noi")?,
            verified: false,
        }
    };
    // The probe's functions: without them (or on any difference) the calls stay.
    let probe = unsafe {
        (
            resolve(handle, path, "lxb_html_document_create"),
            resolve(handle, path, "lxb_html_document_parse"),
            resolve(handle, path, "lxb_html_document_destroy"),
        )
    };
    let direct = match probe {
        _ if !layout => false,
        // SAFETY: lexbor's functions of those names, with those C signatures.
        (Ok(create), Ok(parse), Ok(destroy)) => unsafe {
            crate::layout::verified(&api, create, parse, destroy)
        },
        _ => false,
    };
    let api = Api {
        verified: direct,
        ..api
    };
    if API.set(api).is_ok() {
        crate::layout::DIRECT.store(direct, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(())
}

/// No dlopen here (Windows: a `.pyd` exports only its `PyInit_`): the caller falls back.
#[cfg(not(unix))]
pub fn load(_path: &str, _layout: bool) -> Result<(), String> {
    Err("lexbor's C API is resolved on Unix only".to_string())
}

/// The function *name* of the library *handle* (of file *path*) as a `T`.
///
/// # Safety
/// *handle* is dlopen's; `T` is the function pointer type of that symbol's C signature.
#[cfg(unix)]
unsafe fn resolve<T: Copy>(handle: *mut c_void, path: &str, name: &str) -> Result<T, String> {
    let cname = CString::new(name).map_err(|_| format!("a NUL in {name}"))?;
    let found = libc::dlsym(handle, cname.as_ptr() as *const c_char);
    if found.is_null() {
        return Err(format!("{path} does not export {name}"));
    }
    assert_eq!(std::mem::size_of::<T>(), std::mem::size_of::<*mut c_void>());
    Ok(std::mem::transmute_copy(&found))
}

/// Whether `load` succeeded.
pub fn loaded() -> bool {
    API.get().is_some()
}

/// Bytes lexbor owns as text (lexbor keeps UTF-8; a bad sequence would be replaced).
///
/// # Safety
/// *data* is NULL or points to *len* bytes alive for `'a`.
unsafe fn utf8<'a>(data: *const u8, len: usize) -> Option<Cow<'a, str>> {
    if data.is_null() {
        return None;
    }
    Some(lossy(std::slice::from_raw_parts(data, len)))
}

/// `String::from_utf8_lossy`, with the check of valid UTF-8 (lexbor's text and names, nearly
/// always) by `str::from_utf8`: its ASCII fast path reads a word at a time, where the lossy
/// chunk iterator reads a byte at a time (it was the walks' first cost). The same string.
pub(crate) fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    if bytes.is_ascii() {
        // SAFETY: ASCII is UTF-8 (the check inlined: most values are short and ASCII).
        return Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// The characters of text *bytes* (lexbor's UTF-8) stripped as `str.strip()` strips, in one
/// pass over most texts: the ASCII spaces at both ends skipped (the spaces between tags are
/// nothing else); when both ends are then ASCII (no Unicode space left to strip), the
/// characters between (its bytes on ASCII; else counted once checked as UTF-8: outside them
/// are ASCII spaces only, so the text is valid exactly when they are). Else, `py_strip` of
/// the text read as `lossy` reads it.
fn stripped_chars(bytes: &[u8]) -> usize {
    let Some(start) = first_non_space(bytes) else {
        return 0; // spaces only (or empty)
    };
    let end = last_non_space(bytes).map_or(start, |at| at + 1);
    let inner = &bytes[start..end];
    if inner[0] < 0x80 && inner[inner.len() - 1] < 0x80 {
        if inner.is_ascii() {
            return inner.len();
        }
        if let Ok(text) = std::str::from_utf8(inner) {
            return text.chars().count();
        }
    }
    py_strip(&lossy(bytes)).chars().count()
}

/// Whether *b* is one of the ASCII characters `str.strip()` strips.
fn ascii_space(b: u8) -> bool {
    matches!(b, b'\t'..=b'\r' | b'\x1c'..=b'\x1f' | b' ')
}

/// The bits of the 16 bytes at *chunk* that are ASCII spaces (`ascii_space`), bit i for
/// byte i: the two runs of them, 9..=13 and 28..=32, each told by one subtraction (SSE2:
/// every x86-64 has it). The space between tags ("\n    ") is most text nodes' bytes.
#[cfg(target_arch = "x86_64")]
#[inline]
fn space_bits(chunk: &[u8; 16]) -> u32 {
    use std::arch::x86_64::*;
    // SAFETY: an unaligned 16-byte load of the array; SSE2 is part of x86-64.
    unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr() as *const __m128i);
        // b - first (wrapping), less 4 saturating: 0 exactly when b is in first..=first + 4.
        let run =
            |first: i8| _mm_subs_epu8(_mm_sub_epi8(v, _mm_set1_epi8(first)), _mm_set1_epi8(4));
        let zero = _mm_setzero_si128();
        let spaces = _mm_or_si128(_mm_cmpeq_epi8(run(9), zero), _mm_cmpeq_epi8(run(28), zero));
        _mm_movemask_epi8(spaces) as u32
    }
}

/// The index of the first byte of *bytes* that is not an ASCII space (None: all are):
/// 16 bytes at a time, then byte by byte.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))] // (only SSE2 moves it)
fn first_non_space(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    #[cfg(target_arch = "x86_64")]
    while let Some(chunk) = bytes.get(at..at + 16) {
        let bits = space_bits(chunk.try_into().expect("16 bytes"));
        if bits != 0xFFFF {
            return Some(at + (!bits).trailing_zeros() as usize);
        }
        at += 16;
    }
    bytes[at..]
        .iter()
        .position(|&b| !ascii_space(b))
        .map(|i| at + i)
}

/// The index of the last byte of *bytes* that is not an ASCII space (None: all are).
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))] // (only SSE2 moves it)
fn last_non_space(bytes: &[u8]) -> Option<usize> {
    let mut end = bytes.len();
    #[cfg(target_arch = "x86_64")]
    while end >= 16 {
        let chunk = &bytes[end - 16..end];
        let bits = space_bits(chunk.try_into().expect("16 bytes"));
        if bits != 0xFFFF {
            let last = 31 - (!bits & 0xFFFF).leading_zeros() as usize;
            return Some(end - 16 + last);
        }
        end -= 16;
    }
    bytes[..end].iter().rposition(|&b| !ascii_space(b))
}

/// One lexbor tree, alive (its Python parser referenced) while the walk runs, under the GIL.
/// With `direct` (src/layout.rs), its structs are read in place and the names of elements
/// and attributes are looked up once per id (the id is the key lexbor's own lookup uses).
pub(crate) struct Tree<'a> {
    pub(crate) api: &'a Api,
    pub(crate) document: Node,
    direct: bool,
    /// Element names by id (ids below `NAMED_IDS`: the tags lexbor knows), as looked up.
    names: RefCell<Vec<Option<&'a str>>>,
    /// Attribute names by id, the same way (bytes: only compared).
    attr_names: RefCell<Vec<Option<&'a [u8]>>>,
    /// Each attribute id's code (`KEYS`), once its name was looked up (0: not yet): an
    /// attribute is then matched by one byte, not its name's bytes.
    attr_codes: OnceCell<Box<[Cell<u8>]>>,
    /// The codes of the attribute ids past `NAMED_IDS` met last, (id, code) by slot.
    far_codes: OnceCell<Box<[FarSlot]>>,
}

/// A slot of `Tree::far_codes`: an attribute id and its code (id 0: empty).
type FarSlot = Cell<(usize, u8)>;

/// Slots of `Tree::far_codes`.
const FAR_SLOTS: usize = 256;

/// The attribute names the walk and the scan read; an attribute's code is its name's index
/// here plus one (`NO_KEY`: none of these).
const KEYS: [&str; 18] = [
    "href", "itemtype", "hidden", "class", "id", "role", "itemprop", "align", "rel", "title",
    "alt", "type", "encoding", "name", "content", "property", "hreflang", "open",
];
const NO_KEY: u8 = u8::MAX;

/// The code of attribute name *key* (0: not one of `KEYS`).
const fn key_code(key: &[u8]) -> u8 {
    let mut i = 0;
    while i < KEYS.len() {
        let name = KEYS[i].as_bytes();
        if name.len() == key.len() {
            let mut j = 0;
            while j < key.len() && name[j] == key[j] {
                j += 1;
            }
            if j == key.len() {
                return i as u8 + 1;
            }
        }
        i += 1;
    }
    0
}

/// An attribute name the core looks up, with its code (`KEYS`; 0: none) worked out once:
/// the walks' keys are constants (`Key::new` at compile time).
#[derive(Clone, Copy)]
pub(crate) struct Key<'k> {
    name: &'k str,
    code: u8,
}

impl<'k> Key<'k> {
    pub(crate) const fn new(name: &'k str) -> Self {
        Key {
            name,
            code: key_code(name.as_bytes()),
        }
    }
}

pub(crate) const HREF: Key = Key::new("href");
const ITEMTYPE: Key = Key::new("itemtype");
const HIDDEN: Key = Key::new("hidden");
const REL: Key = Key::new("rel");
const TITLE: Key = Key::new("title");
const ALT: Key = Key::new("alt");
const TYPE: Key = Key::new("type");
const ENCODING: Key = Key::new("encoding");
const NAME: Key = Key::new("name");
const CONTENT: Key = Key::new("content");
const PROPERTY: Key = Key::new("property");
const HREFLANG: Key = Key::new("hreflang");
/// What an element's kind reads (scan.rs).
pub(crate) const KIND_KEYS: [Key; 5] = [
    Key::new("class"),
    Key::new("id"),
    Key::new("role"),
    Key::new("itemprop"),
    Key::new("align"),
];

/// A set of `KEYS` (bit `code - 1`): the attribute names an element has among them.
pub(crate) type KeyMask = u32;

impl Key<'_> {
    /// The bit of this key in a `KeyMask` (0: a key not in `KEYS`, never in one).
    pub(crate) const fn bit(self) -> KeyMask {
        match self.code {
            0 => 0,
            code => 1 << (code - 1),
        }
    }
}

/// The bits of `KIND_KEYS`.
pub(crate) const KIND_MASK: KeyMask = {
    let mut mask = 0;
    let mut i = 0;
    while i < KIND_KEYS.len() {
        mask |= KIND_KEYS[i].bit();
        i += 1;
    }
    mask
};

/// Ids below this are lexbor's tables' (its known tags and attributes: a few hundred); the
/// others are addresses of a document's own entries, looked up by the calls.
const NAMED_IDS: usize = 2048;

impl<'a> Tree<'a> {
    pub(crate) fn new(api: &'a Api, document: Node) -> Self {
        Tree {
            api,
            document,
            direct: api.verified
                && crate::layout::DIRECT.load(std::sync::atomic::Ordering::Relaxed),
            names: RefCell::new(Vec::new()),
            attr_names: RefCell::new(Vec::new()),
            attr_codes: OnceCell::new(),
            far_codes: OnceCell::new(),
        }
    }

    pub(crate) fn first_child(&self, node: Node) -> Option<Node> {
        // SAFETY (all methods): *node* is a live node of this tree (never NULL: checked here);
        // the reads in place only when the layout was verified.
        let child = match self.direct {
            true => unsafe { layout::first_child(node) },
            false => unsafe { (self.api.first_child)(node) },
        };
        (!child.is_null()).then_some(child)
    }

    pub(crate) fn next(&self, node: Node) -> Option<Node> {
        let next = match self.direct {
            true => unsafe { layout::next(node) },
            false => unsafe { (self.api.next)(node) },
        };
        (!next.is_null()).then_some(next)
    }

    pub(crate) fn kind(&self, node: Node) -> c_int {
        match self.direct {
            true => unsafe { layout::node_type(node) },
            false => unsafe { (self.api.node_type)(node) },
        }
    }

    /// The tag of an element (`node.tag`), "" for any other node.
    pub(crate) fn name(&self, node: Node) -> Cow<'a, str> {
        if self.kind(node) != ELEMENT {
            return Cow::Borrowed("");
        }
        self.element_name(node)
    }

    /// An element's id for its name when the names are looked up by id (the same id, the
    /// same name, in this tree): callers keep what they derive from a name by it.
    pub(crate) fn name_id(&self, node: Node) -> Option<usize> {
        if !self.direct {
            return None;
        }
        let id = unsafe { layout::element_name_id(node) };
        (id < NAMED_IDS).then_some(id)
    }

    /// The name of element *node*.
    fn element_name(&self, node: Node) -> Cow<'a, str> {
        let Some(id) = self.name_id(node) else {
            return self.called_name(node);
        };
        let mut names = self.names.borrow_mut();
        if let Some(Some(name)) = names.get(id) {
            return Cow::Borrowed(*name);
        }
        let name = self.called_name(node);
        if let Cow::Borrowed(valid) = name {
            if names.len() <= id {
                names.resize(id + 1, None);
            }
            names[id] = Some(valid);
        }
        name
    }

    fn called_name(&self, node: Node) -> Cow<'a, str> {
        let mut len = 0;
        let name = unsafe { (self.api.element_name)(node, &mut len) };
        unsafe { utf8(name, len) }.unwrap_or_default()
    }

    fn first_attr(&self, node: Node) -> Attr {
        match self.direct {
            true => unsafe { layout::first_attr(node) },
            false => unsafe { (self.api.first_attr)(node) },
        }
    }

    fn next_attr(&self, attr: Attr) -> Attr {
        match self.direct {
            true => unsafe { layout::next_attr(attr) },
            false => unsafe { (self.api.next_attr)(attr) },
        }
    }

    /// An attribute's name (None: lexbor gave none).
    fn attr_name(&self, attr: Attr) -> Option<&'a [u8]> {
        let called = || {
            let mut len = 0;
            let name = unsafe { (self.api.attr_name)(attr, &mut len) };
            (!name.is_null()).then(|| unsafe { std::slice::from_raw_parts(name, len) })
        };
        if !self.direct {
            return called();
        }
        let id = unsafe { layout::attr_name_id(attr) };
        if id >= NAMED_IDS {
            return called();
        }
        let mut names = self.attr_names.borrow_mut();
        if let Some(Some(name)) = names.get(id) {
            return Some(*name);
        }
        let name = called()?;
        if names.len() <= id {
            names.resize(id + 1, None);
        }
        names[id] = Some(name);
        Some(name)
    }

    /// An attribute's value (None: it has none).
    fn attr_value_of(&self, attr: Attr) -> Option<Cow<'a, str>> {
        let (value, len) = match self.direct {
            true => unsafe { layout::attr_value(attr) },
            false => {
                let mut len = 0;
                let value = unsafe { (self.api.attr_value)(attr, &mut len) };
                (value, len)
            }
        };
        unsafe { utf8(value, len) }
    }

    /// The code (`KEYS`) of attribute *attr*'s name, when the reads are in place (its id
    /// names it); None: compare its name.
    #[inline(always)] // (per attribute of every element: `key_mask`'s loop)
    fn attr_code(&self, attr: Attr) -> Option<u8> {
        if !self.direct {
            return None;
        }
        let id = unsafe { layout::attr_name_id(attr) };
        if id >= NAMED_IDS {
            return Some(self.far_code(attr, id));
        }
        let codes = self
            .attr_codes
            .get_or_init(|| vec![Cell::new(0); NAMED_IDS].into_boxed_slice());
        let cell = &codes[id];
        if cell.get() == 0 {
            cell.set(self.looked_up_code(attr));
        }
        Some(cell.get())
    }

    /// The code of attribute *attr*'s name, looked up (`NO_KEY`: none of `KEYS`).
    fn looked_up_code(&self, attr: Attr) -> u8 {
        match self.attr_name(attr).map_or(0, key_code) {
            0 => NO_KEY,
            code => code,
        }
    }

    /// The code of attribute *attr* of id *id*, one of the document's own names (`data-*`,
    /// `aria-*`: ids that are addresses): kept in a small cache slot by id (a slot holds the
    /// last id met there: bounded, whatever a page's names), else looked up.
    fn far_code(&self, attr: Attr, id: usize) -> u8 {
        let slots = self
            .far_codes
            .get_or_init(|| vec![Cell::new((0, 0)); FAR_SLOTS].into_boxed_slice());
        let slot = &slots[((id >> 4) ^ (id >> 12)) % FAR_SLOTS];
        match slot.get() {
            (held, code) if held == id => code,
            _ => {
                let code = self.looked_up_code(attr);
                slot.set((id, code));
                code
            }
        }
    }

    /// Whether attribute *attr* is named *key*.
    #[inline]
    fn attr_is(&self, attr: Attr, key: Key) -> bool {
        match self.attr_code(attr) {
            Some(own) if key.code != 0 => own == key.code,
            _ => self.attr_name(attr) == Some(key.name.as_bytes()),
        }
    }

    /// The first attribute of *node* named *key* (NULL: none).
    fn find_attr(&self, node: Node, key: Key) -> Attr {
        let mut attr = self.first_attr(node);
        while !attr.is_null() && !self.attr_is(attr, key) {
            attr = self.next_attr(attr);
        }
        attr
    }

    /// Which of `KEYS` element *node* has (one pass over its attributes): a key whose bit is
    /// not set is not there (`find_attr` would find nothing); a set one is (its value read
    /// as `attr`/`attrs_ref` read it).
    pub(crate) fn key_mask(&self, node: Node) -> KeyMask {
        let mut mask = 0;
        let mut attr = self.first_attr(node);
        while !attr.is_null() {
            let code = match self.attr_code(attr) {
                Some(code) => code,
                None => self.attr_name(attr).map_or(0, key_code),
            };
            if code != 0 && code != NO_KEY {
                mask |= 1 << (code - 1);
            }
            attr = self.next_attr(attr);
        }
        mask
    }

    /// `node.attributes.get(key)`: None if absent, Some(None) if it has no value.
    pub(crate) fn attr(&self, node: Node, key: Key) -> Option<Option<Cow<'a, str>>> {
        let attr = self.find_attr(node, key);
        (!attr.is_null()).then(|| self.attr_value_of(attr))
    }

    /// `key in node.attributes` (its value not read).
    pub(crate) fn has(&self, node: Node, key: Key) -> bool {
        !self.find_attr(node, key).is_null()
    }

    /// `[node.attributes.get(key) for key in keys]` (no value: None), in one pass over the
    /// attributes (a later one of a name wins, as in the dict), borrowed from lexbor's tree.
    pub(crate) fn attrs_ref<const N: usize>(
        &self,
        node: Node,
        keys: &[Key; N],
    ) -> [Option<Cow<'a, str>>; N] {
        let mut found: [Option<Cow<'a, str>>; N] = std::array::from_fn(|_| None);
        let coded = keys.iter().all(|k| k.code != 0);
        let mut attr = self.first_attr(node);
        while !attr.is_null() {
            let at = match self.attr_code(attr) {
                // (NO_KEY, or a code none of *keys* has: no match; a key without a code is
                // matched by name)
                Some(own) if coded => keys.iter().position(|k| k.code == own),
                _ => self
                    .attr_name(attr)
                    .and_then(|name| keys.iter().position(|k| k.name.as_bytes() == name)),
            };
            if let Some(at) = at {
                found[at] = self.attr_value_of(attr);
            }
            attr = self.next_attr(attr);
        }
        found
    }

    /// `attrs.get(key)` with no value as None.
    pub(crate) fn value(&self, node: Node, key: Key) -> Option<Cow<'a, str>> {
        self.attr(node, key).flatten()
    }

    /// lexbor's text content (of a text node: its text; of an element: its descendants').
    fn text(&self, node: Node) -> String {
        let mut len = 0;
        let text = unsafe { (self.api.text_content)(node, &mut len) };
        let out = unsafe { utf8(text, len) }
            .map(Cow::into_owned)
            .unwrap_or_default();
        if !text.is_null() {
            unsafe { (self.api.destroy_text)(self.document, text) };
        }
        out
    }

    /// A text node's text, in place when the layout allows (no copy), else copied.
    fn text_of_text(&self, node: Node) -> Cow<'a, str> {
        if !self.direct {
            return Cow::Owned(self.text(node));
        }
        let (data, len) = unsafe { layout::char_data(node) };
        match len {
            0 => Cow::Borrowed(""),
            _ => unsafe { utf8(data, len) }.unwrap_or_default(),
        }
    }

    pub(crate) fn parent(&self, node: Node) -> Option<Node> {
        let parent = match self.direct {
            true => unsafe { layout::parent(node) },
            false => unsafe { (self.api.parent)(node) },
        };
        (!parent.is_null()).then_some(parent)
    }

    /// The characters of a text node's text stripped as Python's `str.strip()` strips (what
    /// selectolax's `text(strip=True)` adds of it), without keeping the text.
    pub(crate) fn stripped_len(&self, node: Node) -> usize {
        if self.direct {
            let (data, len) = unsafe { layout::char_data(node) };
            if data.is_null() || len == 0 {
                return 0;
            }
            return stripped_chars(unsafe { std::slice::from_raw_parts(data, len) });
        }
        let mut len = 0;
        let text = unsafe { (self.api.text_content)(node, &mut len) };
        if text.is_null() {
            return 0;
        }
        let count = unsafe { utf8(text, len) }.map_or(0, |t| py_strip(&t).chars().count());
        unsafe { (self.api.destroy_text)(self.document, text) };
        count
    }

    fn is_hidden(&self, node: Node) -> bool {
        match self.attr(node, HIDDEN) {
            None => false,
            Some(v) => v.unwrap_or_default().to_lowercase() != "until-found",
        }
    }
}

impl Dom for Tree<'_> {
    type Node = Node;

    fn first_child(&self, node: Node) -> Option<Node> {
        Tree::first_child(self, node)
    }

    fn next(&self, node: Node) -> Option<Node> {
        Tree::next(self, node)
    }

    fn text_of_node(&self, node: Node) -> Option<Cow<'_, str>> {
        (self.kind(node) == TEXT).then(|| self.text_of_text(node))
    }

    fn tag(&self, node: Node) -> Option<Cow<'_, str>> {
        (self.kind(node) == ELEMENT).then(|| self.name(node))
    }

    fn has_attr(&self, node: Node, key: &str) -> bool {
        self.has(node, Key::new(key))
    }

    fn attr_value(&self, node: Node, key: &str) -> Option<Cow<'_, str>> {
        self.value(node, Key::new(key))
    }

    fn hidden(&self, node: Node) -> bool {
        self.is_hidden(node)
    }
}

/// The document of element *root* (selectolax's `tree.root`).
pub(crate) fn document_of(api: &Api, root: Node) -> Option<Node> {
    let mut cur = root;
    for _ in 0..MAX_CLIMB {
        if cur.is_null() {
            return None;
        }
        // SAFETY: a live node of the tree (the caller's root, then its parents).
        if unsafe { (api.node_type)(cur) } == DOCUMENT {
            return Some(cur);
        }
        cur = unsafe { (api.parent)(cur) };
    }
    None
}

/// What the page type reads of the markup, in document order (page_type.py `PageMarkup`'s
/// calls): ("itemtype" | "jsonld" | "generator" | "og:type", the value or script text).
pub type Markup = Vec<(&'static str, String)>;

/// One walk of a lexbor tree: the page's fields, its markup, and its links each with its
/// element's address (selectolax's `node.mem_id`: placement finds the node by it).
pub struct Walked {
    pub fields: Fields,
    pub markup: Markup,
    pub links: Vec<(usize, LinkRow)>,
}

/// JSON-LD scripts read at most (page_type.py MAX_JSONLD_SCRIPTS: it ignores the others).
const MAX_JSONLD_SCRIPTS: usize = 16;
/// A JSON-LD script's characters read (page_type.py MAX_JSONLD_CHARS).
const MAX_JSONLD_CHARS: usize = 65_536;
/// An itemtype's characters read (page_type.py `add_itemtype`'s cut).
const MAX_ITEMTYPE_CHARS: usize = 400;
/// Schema names kept (page_type.py MAX_SCHEMA_TYPES): an itemtype with a name adds at least
/// one, so after that many the page type reads no more of them.
const MAX_SCHEMA_TYPES: usize = 64;

/// The walk of the lexbor tree whose root element is *root* (no head `<meta>` tags and not
/// flattened: `parse_page` did both), keeping its first *max_links* links. None if the API is
/// not loaded or *root* is not in a document.
///
/// # Safety
/// *root* is a live `lxb_dom_node_t *` whose tree no one changes during the call.
///
/// With *elements*, the walk gathers into them the document's elements and text lengths for
/// placement's scan as it meets them (scan.rs `Elements`, for the caller to finish): one
/// walk of the tree for both, while its nodes are in the caches.
pub(crate) unsafe fn walk_gathering(
    root: usize,
    max_links: usize,
    elements: Option<&mut Elements>,
) -> Option<Walked> {
    let api = API.get()?;
    let document = document_of(api, root as Node)?;
    let tree = Tree::new(api, document);
    let head = tree
        .first_child(root as Node)
        .into_iter()
        .flat_map(|first| std::iter::successors(Some(first), |n| tree.next(*n)))
        .find(|n| tree.name(*n) == "head");
    Some(walk(&tree, head, max_links, elements))
}

/// What the walk gathers as it goes.
#[derive(Default)]
struct Found {
    title: Option<String>,
    base: Option<String>,
    canonical: Option<String>,
    robots: Vec<String>,
    alternates: Vec<(String, String)>,
    markup: Markup,
    jsonld: usize,
    /// Itemtypes kept that name a type (each adds a schema name).
    itemtypes: usize,
    links: Vec<(Node, &'static str)>,
    /// Links kept at most (extract.py MAX_LINKS_PER_PAGE, from Python: the one value).
    max_links: usize,
    truncated: bool,
}

/// extract.py `_extract`'s walk (walk.rs `walk`), in one preorder pass over lexbor's tree.
/// An element counts where `_PAGE_SELECTOR` reaches it: its `[hidden]` and `[itemtype]` reach
/// any element, so a hidden `<script>` is read as JSON-LD, as the Python path reads it.
fn walk(
    tree: &Tree,
    head: Option<Node>,
    max_links: usize,
    mut elements: Option<&mut Elements>,
) -> Walked {
    let mut found = Found {
        max_links,
        ..Found::default()
    };
    // (node, its scope, the index in *elements* of its parent element)
    let mut stack: Vec<(Option<Node>, Scope, usize)> =
        vec![(tree.first_child(tree.document), TOP, NO_ELEMENT)];
    while let Some((cur, scope, up)) = stack.pop() {
        let Some(node) = cur else { continue };
        stack.push((tree.next(node), scope, up));
        let kind = tree.kind(node);
        if kind != ELEMENT {
            if let (TEXT, Some(gathered)) = (kind, elements.as_deref_mut()) {
                gathered.text(tree, node, up);
            }
            continue;
        }
        // Which of the keys read it has, in one pass (most elements: none of them).
        let mask = tree.key_mask(node);
        let at = elements
            .as_deref_mut()
            .map_or(NO_ELEMENT, |gathered| gathered.element(node, up, mask));
        let name = tree.name(node);
        element(tree, node, mask, &name, scope, &mut found);
        if let Some(child) = tree.first_child(node) {
            let encoding = (name == "annotation-xml")
                .then(|| tree.value(node, ENCODING))
                .flatten();
            let under = scope_under(scope, Some(node) == head, &name, || encoding.as_deref());
            stack.push((Some(child), under, at));
        }
    }
    let links = found
        .links
        .into_iter()
        .map(|(node, tag)| (node as usize, link_row(tree, node, tag)))
        .collect();
    let fields = (
        found.title,
        found.base,
        found.canonical,
        found.robots,
        found.alternates,
        found.truncated,
    );
    Walked {
        fields,
        markup: found.markup,
        links,
    }
}

/// What one element of tag *name* (with the keys *mask*) adds to *found*.
fn element(tree: &Tree, node: Node, mask: KeyMask, name: &str, scope: Scope, found: &mut Found) {
    let itemtype = (mask & ITEMTYPE.bit() != 0)
        .then(|| tree.attr(node, ITEMTYPE))
        .flatten();
    if let Some(value) = &itemtype {
        if found.itemtypes < MAX_SCHEMA_TYPES {
            // Cut as Python reads it: the copies stay bounded (formatting tags are cloned).
            let value = cut_chars(value.as_deref().unwrap_or(""), MAX_ITEMTYPE_CHARS);
            found.itemtypes += usize::from(!py_strip(value).is_empty());
            found.markup.push(("itemtype", value.to_string()));
        }
    }
    let marked = || itemtype.is_some() || mask & HIDDEN.bit() != 0;
    match name {
        tag @ ("a" | "area") => {
            let foreign = tag == "a" && scope.kind != OUTSIDE && !scope.html_again;
            if !foreign && mask & HREF.bit() != 0 {
                if found.links.len() < found.max_links {
                    found
                        .links
                        .push((node, if tag == "a" { "a" } else { "area" }));
                } else {
                    found.truncated = true;
                }
            }
        }
        "title" if found.title.is_none() && scope.kind == OUTSIDE => {
            found.title = Some(tree.text(node))
        }
        "base" if found.base.is_none() => found.base = tree.attr(node, HREF).map(owned),
        "link" => link_element(tree, node, marked, found),
        "meta" => meta_element(tree, node, marked, found),
        "script" if found.jsonld < MAX_JSONLD_SCRIPTS => {
            let ld = tree.value(node, TYPE);
            // The selector's value matches any case on an HTML element, exactly on a foreign
            // one (SVG, MathML), as lexbor's css() does.
            let html = scope.kind == OUTSIDE || scope.html_again;
            let is_ld = |t: &str| match html {
                true => t.eq_ignore_ascii_case("application/ld+json"),
                false => t == "application/ld+json",
            };
            if ld.is_some_and(|t| is_ld(&t)) || marked() {
                found.jsonld += 1;
                let mut text = tree.text(node);
                text.truncate(cut_chars(&text, MAX_JSONLD_CHARS).len());
                found.markup.push(("jsonld", text));
            }
        }
        _ => {}
    }
}

/// The first *max* characters of *s*.
fn cut_chars(s: &str, max: usize) -> &str {
    s.char_indices().nth(max).map_or(s, |(end, _)| &s[..end])
}

/// A possibly valueless attribute's value ("" for none: the DOM's value).
fn owned(value: Option<Cow<'_, str>>) -> String {
    value.unwrap_or_default().into_owned()
}

/// A `<link>`: the first canonical, the hreflang alternates (`link[rel][href]` reaches it).
fn link_element(tree: &Tree, node: Node, marked: impl Fn() -> bool, found: &mut Found) {
    let rel = tree.value(node, REL).unwrap_or_default();
    let href = tree.attr(node, HREF);
    if found.canonical.is_none() && rel_has(&rel, "canonical") {
        found.canonical = href.clone().map(owned);
    }
    let reached = (href.is_some() && tree.has(node, REL)) || marked();
    if let Some(lang) = tree.attr(node, HREFLANG) {
        if reached && rel_has(&rel, "alternate") && found.alternates.len() < MAX_ALTERNATES {
            let href = href.flatten().unwrap_or_default().into_owned();
            found.alternates.push((owned(lang), href));
        }
    }
}

/// A `<meta>`: robots directives, the generator and `og:type` (`meta[name][content]` and
/// `meta[property="og:type"]` reach it).
fn meta_element(tree: &Tree, node: Node, marked: impl Fn() -> bool, found: &mut Found) {
    let name_attr = tree.attr(node, NAME);
    let content = tree.attr(node, CONTENT);
    let name = py_strip(name_attr.clone().flatten().as_deref().unwrap_or("")).to_lowercase();
    if name == "robots" || name == "googlebot" {
        if let Some(content) = content.flatten().filter(|c| !c.is_empty()) {
            found.robots.push(py_strip(&content).to_string());
        }
        return;
    }
    let og = tree.value(node, PROPERTY).is_some_and(|p| p == "og:type");
    let reached = (name_attr.is_some() && content.is_some()) || og || marked();
    if (name == "generator" || og) && reached {
        let key = if name == "generator" {
            "generator"
        } else {
            "og:type"
        };
        found.markup.push((key, owned(content.flatten())));
    }
}

/// The raw row of link *node* (an `<a>` or `<area>`).
fn link_row(tree: &Tree, node: Node, tag: &'static str) -> LinkRow {
    let owned = |key| tree.value(node, key).map(Cow::into_owned);
    let (text, is_image, alts) = if tag == "area" {
        (String::new(), false, vec![owned(ALT).unwrap_or_default()])
    } else {
        anchor_parts(tree, node)
    };
    (
        owned(HREF).unwrap_or_default(),
        tag,
        owned(REL),
        owned(TITLE),
        text,
        is_image,
        alts,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_space_ends_are_positions() {
        // Crafted: each length to 40 of spaces with one other byte at each place, and
        // random bytes drawn from the spaces, their neighbours, ASCII and non-ASCII.
        let reference = |b: &[u8]| {
            (
                b.iter().position(|&c| !ascii_space(c)),
                b.iter().rposition(|&c| !ascii_space(c)),
            )
        };
        for len in 0..40 {
            for at in 0..=len {
                for other in [b'x', 8, 14, 0x1b, 0x21, 0x80, 0xff, 0] {
                    let mut b = vec![b' '; len];
                    if at < len {
                        b[at] = other;
                    }
                    assert_eq!((first_non_space(&b), last_non_space(&b)), reference(&b));
                }
            }
        }
        let pool = [
            9u8, 10, 11, 12, 13, 28, 29, 30, 31, 32, 8, 14, 27, 33, 0, b'a', 0x80, 0xc3, 0xff,
        ];
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as usize
        };
        for _ in 0..20_000 {
            let len = next() % 70;
            let spacey = next() % 2 == 0; // half of them: mostly spaces
            let b: Vec<u8> = (0..len)
                .map(|_| match next() {
                    r if spacey && r % 8 != 0 => pool[(r >> 3) % 10],
                    r => pool[(r >> 3) % pool.len()],
                })
                .collect();
            assert_eq!(
                (first_non_space(&b), last_non_space(&b)),
                reference(&b),
                "{b:?}"
            );
        }
        #[cfg(target_arch = "x86_64")]
        for byte in 0..=255u8 {
            let spaces = space_bits(&[byte; 16]);
            assert_eq!(spaces == 0xFFFF, ascii_space(byte), "{byte}");
            assert!(spaces == 0 || spaces == 0xFFFF);
        }
    }

    #[test]
    fn key_bits_are_distinct_and_kind_mask_is_the_kind_keys() {
        // Each key's bit is its own (a mask bit stands for one name), none for a name not
        // in KEYS (`find_attr` by name: never skipped by a mask).
        let mut seen = 0;
        for name in KEYS {
            let bit = Key::new(name).bit();
            assert_eq!(bit.count_ones(), 1, "{name}");
            assert_eq!(seen & bit, 0, "{name}");
            seen |= bit;
        }
        assert_eq!(Key::new("data-x").bit(), 0);
        let kind = KIND_KEYS.iter().fold(0, |m, k| m | k.bit());
        assert_eq!(KIND_MASK, kind);
        assert_eq!(KIND_MASK.count_ones(), 5);
        assert_eq!(KIND_MASK & (HREF.bit() | ITEMTYPE.bit() | HIDDEN.bit()), 0);
        // a key read through the mask has a bit (one outside KEYS would read as absent)
        for key in [HREF, ITEMTYPE, HIDDEN] {
            assert_ne!(key.bit(), 0, "{}", key.name);
        }
    }

    #[test]
    fn stripped_chars_is_py_strip_of_lossy() {
        // Every sequence of up to 4 of these pieces: ASCII spaces and separators, letters,
        // Unicode spaces Python strips (NBSP, NEL, ideographic), other non-ASCII, and bytes
        // that are not UTF-8 (a lone continuation, a cut sequence).
        let pieces: [&[u8]; 12] = [
            b" ",
            b"\n",
            b"\x0b",
            b"\x1f",
            b"a",
            "é".as_bytes(),
            "\u{a0}".as_bytes(),
            "\u{85}".as_bytes(),
            "\u{3000}".as_bytes(),
            "字".as_bytes(),
            b"\x80",
            b"\xe5\xad",
        ];
        let mut texts: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..4 {
            let longer: Vec<Vec<u8>> = texts
                .iter()
                .flat_map(|t| pieces.iter().map(move |p| [t.as_slice(), p].concat()))
                .collect();
            for text in &longer {
                let reference = py_strip(&lossy(text)).chars().count();
                assert_eq!(stripped_chars(text), reference, "{text:?}");
            }
            texts = longer;
        }
        assert_eq!(stripped_chars(b""), 0);
    }
}
