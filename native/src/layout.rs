//! lexbor's structs read in place (src/lexbor.rs's fast path): a node's links and type, an
//! element's or attribute's name id, an attribute's value and a text node's characters are
//! fields of lexbor's public structs (`lexbor/dom/interfaces/{node,element,attr,
//! character_data}.h`), each behind a C function of one load (`lxb_dom_node_next_noi`:
//! `mov 0x28(%rdi),%rax`), a name lookup, or a copy (`lxb_dom_node_text_content`: an
//! allocation in the document, a copy, a free per text node). Measured on the 481 pages: the
//! calls, the copies and the per-name checks were most of the walk's and the scan's own time.
//!
//! The offsets are those of lexbor 2.x-3.x on 64-bit targets (selectolax 1.0.2 bundles 3.1).
//! They are never trusted: `verified` parses a probe document with lexbor's own functions at
//! load and compares every field read here with the function's answer on every node; any
//! difference (another selectolax build, another lexbor) keeps the calls (`Api::direct`
//! false).
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::prelude::*;

use crate::lexbor::{Api, Node, ELEMENT};

/// `lxb_dom_node_t`: `local_name` (the tag's or attribute's id, lowercase).
const NODE_LOCAL_NAME: usize = 0x08;
const NODE_NEXT: usize = 0x28;
const NODE_PARENT: usize = 0x38;
const NODE_FIRST_CHILD: usize = 0x40;
/// `lxb_dom_node_type_t type` (an int).
const NODE_TYPE: usize = 0x58;
/// `lxb_dom_element_t`: `qualified_name` (an id, 0 when it is the local name's).
const ELEMENT_QUALIFIED_NAME: usize = 0x68;
const ELEMENT_FIRST_ATTR: usize = 0x78;
/// `lxb_dom_attr_t`: `qualified_name` (an id, 0 when it is the local name's).
const ATTR_QUALIFIED_NAME: usize = 0x68;
/// `lexbor_str_t *value` (NULL: no value).
const ATTR_VALUE: usize = 0x70;
const ATTR_NEXT: usize = 0x80;
/// `lxb_dom_character_data_t`: `lexbor_str_t data` (`data`, then `length`).
const CHAR_DATA: usize = 0x60;
const CHAR_LENGTH: usize = 0x68;

/// The field of type `T` at *offset* in the struct at *at*.
///
/// # Safety
/// *at* is a live struct of lexbor whose layout `verified` checked, with that field there.
#[inline(always)]
unsafe fn field<T: Copy>(at: *mut c_void, offset: usize) -> T {
    std::ptr::read_unaligned((at as *const u8).add(offset) as *const T)
}

// SAFETY (the readers below): a live node (attribute) of a tree whose layout was verified.
#[inline(always)]
pub(crate) unsafe fn next(node: Node) -> Node {
    field(node, NODE_NEXT)
}

#[inline(always)]
pub(crate) unsafe fn parent(node: Node) -> Node {
    field(node, NODE_PARENT)
}

#[inline(always)]
pub(crate) unsafe fn first_child(node: Node) -> Node {
    field(node, NODE_FIRST_CHILD)
}

#[inline(always)]
pub(crate) unsafe fn node_type(node: Node) -> std::ffi::c_int {
    field(node, NODE_TYPE)
}

/// The id that names an element or attribute (`qualified_name`, else `local_name`): what
/// `lxb_dom_element_qualified_name` and `lxb_dom_attr_qualified_name` look their name up by,
/// so two of one id have one name (within one document).
#[inline(always)]
pub(crate) unsafe fn element_name_id(node: Node) -> usize {
    let qualified: usize = field(node, ELEMENT_QUALIFIED_NAME);
    if qualified != 0 {
        qualified
    } else {
        field(node, NODE_LOCAL_NAME)
    }
}

#[inline(always)]
pub(crate) unsafe fn attr_name_id(attr: *mut c_void) -> usize {
    let qualified: usize = field(attr, ATTR_QUALIFIED_NAME);
    if qualified != 0 {
        qualified
    } else {
        field(attr, NODE_LOCAL_NAME)
    }
}

#[inline(always)]
pub(crate) unsafe fn first_attr(node: Node) -> *mut c_void {
    field(node, ELEMENT_FIRST_ATTR)
}

#[inline(always)]
pub(crate) unsafe fn next_attr(attr: *mut c_void) -> *mut c_void {
    field(attr, ATTR_NEXT)
}

/// The attribute's value as (data, length); data NULL: no value.
#[inline(always)]
pub(crate) unsafe fn attr_value(attr: *mut c_void) -> (*const u8, usize) {
    let value: *const c_void = field(attr, ATTR_VALUE);
    if value.is_null() {
        return (std::ptr::null(), 0);
    }
    let value = value as *mut c_void;
    (field(value, 0), field(value, 8))
}

/// A text node's (comment's) characters in place, as (data, length).
#[inline(always)]
pub(crate) unsafe fn char_data(node: Node) -> (*const u8, usize) {
    (field(node, CHAR_DATA), field(node, CHAR_LENGTH))
}

/// The probe: what a page can hold that names or text could differ on. Tags and attributes
/// lexbor knows (small ids) and does not (ids that are pointers), SVG's and MathML's
/// adjusted names (`clipPath`, `viewBox`, `xlink:href`, `definitionURL`) next to the same
/// names in HTML, a valueless, an empty and a repeated attribute, upper case, text and
/// comments, non-ASCII text, a table's fostered text, a template, a long name.
const PROBE: &[u8] = br##"<!DOCTYPE html><html lang=en><head><title>T &amp; t</title>
<meta name=robots content="noindex"><base href="http://a.example/"></head>
<BODY CLASS="Body x" data-x=1><!-- a comment --><div id=main class="a b" hidden>text
<A HREF="/x" REL=nofollow title="">link <b>bold</b> caf&eacute; &#x1F600;</A>
<my-widget data-long-attribute-name-over-sixteen="v" x-y>custom</my-widget>
<a-very-long-custom-element-name-here>long</a-very-long-custom-element-name-here>
<input disabled value=""><input disabled=disabled><p align=center class=c class=d>para</p>
<svg viewBox="0 0 1 1"><clipPath id=c></clipPath><a xlink:href="#x" href=y><text>s</text></a>
<foreignObject><div>in</div></foreignObject></svg><clippath></clippath><div viewbox=v></div>
<math definitionURL=u><mi>x</mi><annotation-xml encoding="text/html"><p>h</p></annotation-xml></math>
<table>fostered<tr><td>cell</td></tr></table><template><li>t</li></template>
<script type="application/ld+json">{"@type": "Article"}</script><noscript>n</noscript>
<area href=/m alt=map><img alt="an image" src=i.png>caf&#233; &nbsp; end</div></BODY></html>"##;

type CreateFn = unsafe extern "C" fn() -> *mut c_void;
type ParseFn = unsafe extern "C" fn(*mut c_void, *const u8, usize) -> usize;
type DestroyFn = unsafe extern "C" fn(*mut c_void) -> *mut c_void;

/// Nodes of the probe compared at most (it has about 120: a bound on a wrong `next`).
const MAX_PROBE_NODES: usize = 10_000;

/// Whether every field read here equals lexbor's function's answer on every node of the
/// probe, parsed by lexbor's own `lxb_html_document_create`/`_parse`/`_destroy`.
///
/// # Safety
/// *api*'s functions are lexbor's; *create*, *parse*, *destroy* too.
pub(crate) unsafe fn verified(
    api: &Api,
    create: CreateFn,
    parse: ParseFn,
    destroy: DestroyFn,
) -> bool {
    let document = create();
    if document.is_null() {
        return false;
    }
    let ok = parse(document, PROBE.as_ptr(), PROBE.len()) == 0 && same_tree(api, document);
    destroy(document);
    ok
}

/// The comparison of `verified` over the tree of *document*, in preorder by the calls.
unsafe fn same_tree(api: &Api, document: Node) -> bool {
    let mut element_names: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut attr_names: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut stack = vec![document];
    let (mut seen, mut elements, mut attrs, mut texts) = (0, 0, 0, 0);
    while let Some(node) = stack.pop() {
        seen += 1;
        if seen > MAX_PROBE_NODES {
            return false;
        }
        let (next_call, child_call) = ((api.next)(node), (api.first_child)(node));
        if next(node) != next_call
            || first_child(node) != child_call
            || parent(node) != (api.parent)(node)
            || node_type(node) != (api.node_type)(node)
        {
            return false;
        }
        if !next_call.is_null() && node != document {
            stack.push(next_call);
        }
        if !child_call.is_null() {
            stack.push(child_call);
        }
        match (api.node_type)(node) {
            ELEMENT => {
                elements += 1;
                let mut len = 0;
                let name = (api.element_name)(node, &mut len);
                if name.is_null()
                    || !same_name(&mut element_names, element_name_id(node), name, len)
                {
                    return false;
                }
                let mut attr = (api.first_attr)(node);
                if first_attr(node) != attr {
                    return false;
                }
                while !attr.is_null() {
                    attrs += 1;
                    let name = (api.attr_name)(attr, &mut len);
                    if name.is_null() || !same_name(&mut attr_names, attr_name_id(attr), name, len)
                    {
                        return false;
                    }
                    let value = (api.attr_value)(attr, &mut len);
                    let (data, length) = attr_value(attr);
                    if data != value || (!value.is_null() && length != len) {
                        return false;
                    }
                    let next_call = (api.next_attr)(attr);
                    if next_attr(attr) != next_call {
                        return false;
                    }
                    attr = next_call;
                }
            }
            crate::lexbor::TEXT | COMMENT => {
                texts += 1;
                let mut len = 0;
                let text = (api.text_content)(node, &mut len);
                if text.is_null() {
                    return false;
                }
                let (data, length) = char_data(node);
                let same = length == len
                    && (len == 0
                        || (!data.is_null()
                            && std::slice::from_raw_parts(data, length)
                                == std::slice::from_raw_parts(text, len)));
                (api.destroy_text)(document, text);
                if !same {
                    return false;
                }
            }
            _ => {}
        }
    }
    // The probe was parsed as written (a parse that failed quietly proves nothing).
    elements >= 30 && attrs >= 25 && texts >= 20 && element_names.len() >= 25
}

/// `lxb_dom_node_type_t`'s comment.
const COMMENT: std::ffi::c_int = 8;

/// Whether *id* names *name* (its *len* bytes) as every earlier one of *names* did (the id
/// is the cache's key: one id, one name).
unsafe fn same_name(
    names: &mut Vec<(usize, Vec<u8>)>,
    id: usize,
    name: *const u8,
    len: usize,
) -> bool {
    let name = std::slice::from_raw_parts(name, len);
    match names.iter().find(|(known, _)| *known == id) {
        Some((_, known)) => known.as_slice() == name,
        None => {
            names.push((id, name.to_vec()));
            true
        }
    }
}

/// Whether the trees are read in place (set at load from the probe; tests turn it off).
pub(crate) static DIRECT: AtomicBool = AtomicBool::new(false);

/// Whether the walks read lexbor's structs in place. With *on*: turned on (only if the probe
/// verified the layout) or off first, for the trees that follow (tests compare the two ways).
#[pyfunction]
#[pyo3(signature = (on=None))]
fn lexbor_direct(on: Option<bool>) -> bool {
    let verified = crate::lexbor::API.get().is_some_and(|api| api.verified);
    if let Some(on) = on {
        DIRECT.store(on && verified, Ordering::Relaxed);
    }
    verified && DIRECT.load(Ordering::Relaxed)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(lexbor_direct, m)?)?;
    Ok(())
}
