//! The core's Python functions (registered by lib.rs): `src/walk.rs` does the work.
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::exceptions::{PyLookupError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};

use crate::bound;
use crate::bounds;
use crate::element_lists::{element_lists, kind_tuples, ElementLists};
use crate::facts;
use crate::lexbor;
use crate::rows::link_rows;
use crate::scan;
use crate::scan_arrays;
use crate::scan_object::{int_list, u64_array, ScanArrays, Strings};
use crate::urls::non_ascii_query;
use crate::walk::{self, LinkRow, PageRow};

/// The core's allocator (Cargo.toml says why): every Rust allocation of this library.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Run *f* so that a panic in it becomes a Python RuntimeError (not PanicException, a
/// BaseException that `except Exception` would let through and stop a crawl).
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> PyResult<T> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|panic| {
        let msg = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        PyRuntimeError::new_err(format!("linkcrawl_native panicked: {msg}"))
    })
}

/// The page's fields and its links, for `pipelines/native.py`. *body*: the bytes Python
/// bounded (and stripped of a byte-order mark); *encoding*: a WHATWG label (LookupError if
/// encoding_rs does not know it); *flatten*: flatten what nests deeper than MAX_DOM_DEPTH
/// (Python asks for it on pages with many tags, as `parse_page` does).
#[pyfunction]
fn extract_links(py: Python<'_>, body: &[u8], encoding: &str, flatten: bool) -> PyResult<PageRow> {
    py.detach(|| guarded(|| walk::extract(body, encoding, flatten)))?
        .ok_or_else(|| unknown(encoding))
}

/// `extract_links` of a page Python decoded (a codec encoding_rs lacks) from the bytes it
/// bounded: *text* is its UTF-8, not cut at MAX_PARSE_BYTES again (it may be longer).
#[pyfunction]
fn extract_decoded(py: Python<'_>, text: &[u8], flatten: bool) -> PyResult<PageRow> {
    py.detach(|| guarded(|| walk::extract_decoded(text, flatten)))
}

/// Resolve lexbor's C functions from selectolax's extension module at *path* (already
/// imported): RuntimeError if it is not loaded or lacks one of them (the caller falls back).
/// *layout*: the caller knows this selectolax's lexbor (src/layout.rs's offsets): only then
/// is the layout probed and its structs read in place; else every read is a call.
#[pyfunction]
#[pyo3(signature = (path, layout = false))]
fn lexbor_load(path: &str, layout: bool) -> PyResult<()> {
    guarded(|| lexbor::load(path, layout))?.map_err(PyRuntimeError::new_err)
}

/// The rows' columns as Python takes them (native/src/rows.rs `Columns`): targets, anchors,
/// titles, rels (the empty ones one shared empty list: no caller changes a row's rel), nofollow
/// (by rel), sponsored, ugc, is_image, tags, the texts placement reads where they differ from
/// the anchors, whether a string was cut ("long_strings"), and the links' hrefs as read
/// (`Strings`: each made when read).
type ColumnsRow = (
    Vec<String>,
    Vec<String>,
    Vec<Option<String>>,
    Py<PyList>,
    Vec<bool>,
    Vec<bool>,
    Vec<bool>,
    Vec<bool>,
    Py<PyList>,
    Vec<(usize, String)>,
    bool,
    Py<Strings>,
);
/// `lexbor_page`'s answer: the page's fields, its markup, each link's element address (an
/// `array('Q')`: Python reads them only when a rule needs a link's node), and either the raw
/// links (`extract_links`'s shape) or the rows' columns.
pub(crate) type LexborPage = (
    walk::Fields,
    lexbor::Markup,
    Py<PyAny>,
    Option<Vec<LinkRow>>,
    Option<ColumnsRow>,
);

/// `LexborPage` before it crosses to Python: the addresses as Rust's (the scan reads them).
pub(crate) type PageParts = (
    walk::Fields,
    lexbor::Markup,
    Vec<usize>,
    Option<Vec<LinkRow>>,
    Option<ColumnsRow>,
);

/// *parts* as Python takes them: the addresses one array.
pub(crate) fn page_out(py: Python<'_>, parts: PageParts) -> PyResult<LexborPage> {
    let (fields, markup, nodes, raw, columns) = parts;
    let nodes = u64_array(py, nodes.iter().map(|&a| a as u64))?.unbind();
    Ok((fields, markup, nodes, raw, columns))
}

/// The walk of *tree* (a selectolax `LexborHTMLParser`), under the GIL: the page's fields and markup, and its links. With
/// *rows*, the rows of the page at *page_url* (hrefs resolved and normalized: every column but
/// placement); else, or when a rel is not ASCII (Python lowercases it) or the page is in a
/// legacy encoding (*legacy*) and an href has a non-ASCII query (Python encodes those), the
/// raw links. *max_links*: links kept
/// (MAX_LINKS_PER_PAGE).
#[pyfunction]
pub(crate) fn lexbor_page(
    tree: &Bound<'_, PyAny>,
    page_url: &str,
    legacy: bool,
    rows: bool,
    max_links: usize,
) -> PyResult<LexborPage> {
    let parts = lexbor_page_gathering(tree, page_url, legacy, rows, max_links, None)?;
    page_out(tree.py(), parts)
}

/// `lexbor_page`, its walk gathering placement's *elements* as it goes (fused.rs).
pub(crate) fn lexbor_page_gathering(
    tree: &Bound<'_, PyAny>,
    page_url: &str,
    legacy: bool,
    rows: bool,
    max_links: usize,
    elements: Option<&mut scan::Elements>,
) -> PyResult<PageParts> {
    let root = element_of(tree, &tree.getattr("root")?)?;
    // SAFETY: the contract above; a panic in the walk becomes a RuntimeError.
    let walked = guarded(|| unsafe { lexbor::walk_gathering(root, max_links, elements) })?
        .ok_or_else(|| PyRuntimeError::new_err("the root is not in a lexbor document"))?;
    let encodes = |(_, link): &(usize, LinkRow)| non_ascii_query(&link.0).is_some();
    // Python lowercases a rel with its own Unicode tables (3.11: 14; Rust's: 16).
    let unicode_rel = |(_, link): &(usize, LinkRow)| link.2.as_ref().is_some_and(|r| !r.is_ascii());
    let links = &walked.links;
    if !rows || links.iter().any(unicode_rel) || (legacy && links.iter().any(encodes)) {
        let (nodes, raw) = walked.links.into_iter().unzip();
        return Ok((walked.fields, walked.markup, nodes, Some(raw), None));
    }
    let base_href = walked.fields.1.as_deref();
    let (nodes, c) = guarded(|| link_rows(walked.links, base_href, page_url))?;
    // Each row's tag, "a" or "area": one string object each, referenced by every row.
    let py = tree.py();
    let (a, area) = (pyo3::intern!(py, "a"), pyo3::intern!(py, "area"));
    let tags = PyList::new(
        py,
        c.tags.iter().map(|&tag| match tag {
            "a" => a.clone(),
            "area" => area.clone(),
            other => PyString::new(py, other),
        }),
    )?
    .unbind();
    let rels = rel_lists(py, c.rels)?;
    let hrefs = Py::new(py, Strings(c.hrefs))?;
    let columns = (
        c.targets,
        c.anchors,
        c.titles,
        rels,
        c.nofollow,
        c.sponsored,
        c.ugc,
        c.is_image,
        tags,
        c.texts,
        c.long,
        hrefs,
    );
    Ok((walked.fields, walked.markup, nodes, None, Some(columns)))
}

/// The rows' rels as Python's lists: each empty one (most links) the same empty list.
fn rel_lists(py: Python<'_>, rels: Vec<Vec<String>>) -> PyResult<Py<PyList>> {
    let empty = PyList::empty(py);
    let mut lists = Vec::with_capacity(rels.len());
    for rel in rels {
        lists.push(if rel.is_empty() {
            empty.clone()
        } else {
            PyList::new(py, rel)?
        });
    }
    Ok(PyList::new(py, lists)?.unbind())
}

/// The address of *node*, an element of *tree* (a selectolax `LexborHTMLParser` and a
/// `LexborNode` it made): no raw address crosses from Python, and the reference held for the
/// call keeps the parser, so its document, alive (its nodes are never removed by us).
/// RuntimeError if they are not those types, or the node is another parser's.
pub(crate) fn element_of(tree: &Bound<'_, PyAny>, node: &Bound<'_, PyAny>) -> PyResult<usize> {
    let py = tree.py();
    // The two classes, looked up once (an import and two lookups were ~70% of a small call).
    static TYPES: pyo3::sync::PyOnceLock<(Py<PyAny>, Py<PyAny>)> = pyo3::sync::PyOnceLock::new();
    let (parser_type, node_type) = TYPES.get_or_try_init(py, || -> PyResult<_> {
        let module = py.import("selectolax.lexbor")?;
        Ok((
            module.getattr("LexborHTMLParser")?.unbind(),
            module.getattr("LexborNode")?.unbind(),
        ))
    })?;
    // Exactly those types: a subclass could answer any `mem_id`.
    let ours = tree.is_exact_instance(parser_type.bind(py))
        && node.is_exact_instance(node_type.bind(py))
        && node.getattr(pyo3::intern!(py, "parser"))?.is(tree);
    let address: usize = if ours {
        node.getattr(pyo3::intern!(py, "mem_id"))?.extract()?
    } else {
        0
    };
    if address == 0 || !lexbor::loaded() {
        return Err(PyRuntimeError::new_err(
            "lexbor not loaded, or not a node of a selectolax lexbor tree",
        ));
    }
    Ok(address)
}

/// placement.py `_scan`'s facts (native/src/scan.rs `Scan`, in that order, its kinds with
/// them, then the arrays of src/scan_arrays.rs: each element's nearest block of running text
/// and its ancestry's bits) of *tree* (a selectolax `LexborHTMLParser`) under *root* (its `<body>` or `<html>`),
/// for the link elements at the addresses *links* (compared, never read); *blocks*,
/// *containers*, *min_para*: placement's tags and threshold. Under the GIL (the tree holds).
/// None if *root* is not an element in the document (a `<body>` a late `<frameset>`
/// detached; the document node or a text node).
#[pyfunction]
pub(crate) fn lexbor_scan(
    tree: &Bound<'_, PyAny>,
    root: &Bound<'_, PyAny>,
    links: Vec<usize>,
    blocks: Vec<String>,
    containers: Vec<String>,
    min_para: usize,
) -> PyResult<Option<ScanRow>> {
    lexbor_scan_with(tree, root, &links, blocks, containers, min_para, None)
}

/// `lexbor_scan`, with the document's *elements* when the page's walk gathered them.
pub(crate) fn lexbor_scan_with(
    tree: &Bound<'_, PyAny>,
    root: &Bound<'_, PyAny>,
    links: &[usize],
    blocks: Vec<String>,
    containers: Vec<String>,
    min_para: usize,
    elements: Option<scan::Elements>,
) -> PyResult<Option<ScanRow>> {
    let root = element_of(tree, root)?;
    let rules = scan::Rules {
        blocks: &blocks,
        containers: &containers,
        min_para,
    };
    // SAFETY: element_of's contract; a panic in the scan becomes a RuntimeError.
    let Some(mut s) = guarded(|| unsafe { scan::scan_of(root, links, &rules, elements) })? else {
        return Ok(None);
    };
    // Each link the scan found is recorded at the caller's address (never not: `register`
    // keeps the node it is given); checked once here, so Python takes the keys as they are.
    let misplaced =
        s.link_keys.iter().zip(links).any(|(&key, &at)| {
            usize::try_from(key).is_ok_and(|key| s.addresses.get(key) != Some(&at))
        });
    if misplaced {
        return Err(PyRuntimeError::new_err("a link's key is not its element"));
    }
    // The kinds made Python's tuples from a borrow, then moved into the arrays (no copy).
    let (kind_tuples, tags) = kind_tuples(tree.py(), &s.kinds)?;
    let lists = element_lists(tree.py(), &tags, &s.kind_of, s.facts.as_deref())?;
    drop(tags);
    let kinds = std::mem::take(&mut s.kinds);
    let kind_tuples = kind_tuples.unbind();
    let (nearest, ancestry) = guarded(|| {
        let nearest = scan_arrays::nearest(&s.parent, &s.paras);
        let ancestry = s
            .facts
            .as_ref()
            .map(|f| scan_arrays::ancestry(&s.parent, &s.kind_of, f));
        (nearest, ancestry)
    })?;
    // The arrays the later calls read, kept in Rust (scan_object.rs).
    let arrays = ScanArrays::of(&s, &nearest, kinds);
    let arrays = Py::new(tree.py(), arrays)?;
    // Python reads these once (the address index) or a few (a node's way down): an array,
    // no int per element. (Not the fingerprints and the ancestry: the rules read one per
    // link, ~3x the instructions from an array; the model takes the ancestry as a list.)
    let py = tree.py();
    let addresses = u64_array(py, s.addresses.iter().map(|&a| a as u64))?.unbind();
    // The int columns whose values repeat: an int object per value met (scan_object.rs).
    let ints = |values: &[i64]| int_list(py, values.iter().copied()).map(Bound::unbind);
    let small = |values: &[u32]| int_list(py, values.iter().copied()).map(Bound::unbind);
    let ancestry = match ancestry {
        Some(bits) => Some(int_list(py, bits.into_iter())?.unbind()),
        None => None,
    };
    Ok(Some((
        s.facts,
        ints(&s.parent)?,
        small(&s.depth)?,
        small(&s.block)?,
        addresses,
        small(&s.kind_of)?,
        kind_tuples,
        s.link_keys,
        s.paras,
        s.seq,
        ints(&nearest)?,
        (ancestry, lists, arrays),
    )))
}

/// Placement's word tables (placement.py's, named as there), kept for the scans that follow:
/// each kind of element a scan meets is then classified in Rust (src/facts.rs).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn placement_tables(
    tag_labels: facts::WordMap<String>,
    role_labels: facts::WordMap<String>,
    itemprop_labels: facts::WordMap<String>,
    token_labels: facts::WordMap<String>,
    compound: Vec<(String, String)>,
    weak_content: facts::WordSet,
    word_bits: facts::WordMap<u64>,
    tag_bits: facts::WordMap<u64>,
    label_bits: facts::WordMap<u64>,
    body_itemprops: facts::WordSet,
    labels: (String, String),
) {
    let (comment, content) = labels;
    facts::set_tables(facts::Tables {
        tag_labels,
        role_labels,
        itemprop_labels,
        token_labels,
        compound,
        weak_content,
        word_bits,
        tag_bits,
        label_bits,
        body_itemprops,
        comment,
        content,
        derived: Default::default(), // (set_tables fills it)
    });
}

/// src/facts.rs's facts of one kind of element (tag, class, id, role, itemprop): what
/// tests/test_native.py compares with placement.py `_facts`; None before `placement_tables`.
#[pyfunction]
fn element_facts(
    tag: &str,
    cls: Option<String>,
    id: Option<String>,
    role: Option<String>,
    itemprop: Option<String>,
) -> PyResult<Option<facts::Facts>> {
    guarded(|| facts::tables().map(|t| t.facts(tag, &cls, &id, &role, &itemprop)))
}

/// `lexbor_scan`'s answer (scan.rs `Scan`'s fields, then scan_arrays.rs's `nearest`, and
/// `ancestry` with element_lists.rs's lists and scan_object.rs's arrays). The addresses are
/// an `array('Q')` (Python indexes them: no int object per element made until read); the
/// other columns lists (parent, depth, block, kind_of, nearest and the ancestry made with an
/// int per value met: scan_object.rs `int_list`).
pub(crate) type ScanRow = (
    Option<Vec<facts::Facts>>,
    Py<PyList>,
    Py<PyList>,
    Py<PyList>,
    Py<PyAny>,
    Py<PyList>,
    Py<PyList>,
    Vec<i64>,
    Vec<(usize, usize)>,
    Vec<usize>,
    Py<PyList>,
    (Option<Py<PyList>>, Option<ElementLists>, Py<ScanArrays>),
);

/// extract.py `_limit_open_elements(_limit_nesting(body, max_depth), max_depth)` (bound_body,
/// on a page with many tags, at MAX_BLOCK_DEPTH): the bytes, or None when they are the body's.
#[pyfunction]
fn limit_depth<'py>(
    py: Python<'py>,
    body: &[u8],
    max_depth: usize,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let flat = py.detach(|| {
        guarded(|| {
            let nested = bounds::limit_nesting(body, max_depth);
            let open = bounds::limit_open_elements(nested.as_deref().unwrap_or(body), max_depth);
            open.or(nested)
        })
    })?;
    Ok(flat.map(|bytes| PyBytes::new(py, &bytes)))
}

/// The bounds of `bound_body` as Python passes them (pipelines/native.py `_core_bounds`).
type BoundsTuple = (usize, usize, i64, usize, usize, usize, usize, usize, usize);

/// extract.py `bound_body(body)` whole, with its *bounds* (read by Python at each call: tests
/// lower them): MAX_PARSE_BYTES, MAX_TAGS, MAX_REOPENED, _NESTING_CHECK_TAGS, MAX_DOM_DEPTH,
/// MAX_READINGS, MAX_ISLAND_TAGS, MAX_ROOTS, MAX_HELD. (the bytes, or None when they are the
/// body's; the bounds hit; whether the page may nest deep; whether it was flattened).
#[pyfunction]
fn bound_body<'py>(
    py: Python<'py>,
    body: &[u8],
    bounds: BoundsTuple,
) -> PyResult<(Option<Bound<'py, PyBytes>>, Vec<&'static str>, bool, bool)> {
    let (max_parse_bytes, max_tags, max_reopened, nesting_check_tags, max_dom_depth) =
        (bounds.0, bounds.1, bounds.2, bounds.3, bounds.4);
    let (readings, island_tags, roots, held) = (bounds.5, bounds.6, bounds.7, bounds.8);
    let limits = bound::Limits {
        max_parse_bytes,
        max_tags,
        max_reopened,
        nesting_check_tags,
        max_dom_depth,
        caps: bound::Caps {
            readings,
            island_tags,
            roots,
            held,
        },
    };
    let bounded = py.detach(|| guarded(|| bound::bound_body(body, &limits)))?;
    let bytes = bounded.body.map(|bytes| PyBytes::new(py, &bytes));
    Ok((bytes, bounded.limits, bounded.many_tags, bounded.deep))
}

/// extract.py `_limit_reopened(body, tags, max_reopened)` (tests compare its parts).
#[pyfunction]
fn limit_reopened<'py>(
    py: Python<'py>,
    body: &[u8],
    tags: usize,
    max_reopened: i64,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let kept = py.detach(|| {
        guarded(|| {
            let marks = bound::Marks::of(body);
            let quoted = bound::quoted_gts(body);
            bound::limit_reopened(body, tags, max_reopened, &quoted, &marks.lts)
        })
    })?;
    Ok(kept.map(|bytes| PyBytes::new(py, &bytes)))
}

/// extract.py `_limit_attributes(body)` (tests compare its parts).
#[pyfunction]
fn limit_attributes<'py>(py: Python<'py>, body: &[u8]) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let kept = py.detach(|| {
        guarded(|| {
            let marks = bound::Marks::of(body);
            bound::limit_attributes(body, None, bound::Caps::default(), &marks)
        })
    })?;
    Ok(kept.map(|bytes| PyBytes::new(py, &bytes)))
}

/// extract.py `_quoted_gts(body)` (tests compare its parts).
#[pyfunction]
fn quoted_gts(py: Python<'_>, body: &[u8]) -> PyResult<Vec<usize>> {
    py.detach(|| guarded(|| bound::quoted_gts(body)))
}

/// The parse alone (UTF-8 bytes into the arena): the node count. The benchmark's floor.
#[pyfunction]
fn parse_only(py: Python<'_>, body: &[u8]) -> PyResult<usize> {
    py.detach(|| guarded(|| walk::parse_only(body)))
}

/// *body* decoded as the core decodes a page (encoding_rs, a WHATWG label; a bad byte is
/// U+FFFD): tests/test_native.py compares it with Python's decoders.
#[pyfunction]
#[pyo3(name = "decode")]
fn decode_py(body: &[u8], encoding: &str) -> PyResult<String> {
    walk::decode(body, encoding)
        .map(|text| text.to_string())
        .ok_or_else(|| unknown(encoding))
}

fn unknown(encoding: &str) -> PyErr {
    PyLookupError::new_err(format!("unknown encoding: {encoding}"))
}

/// Panics inside the guard: tests/test_native.py checks that Python gets a RuntimeError.
#[pyfunction]
fn _panic_for_test() -> PyResult<()> {
    guarded(|| panic!("on purpose"))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(extract_links, m)?)?;
    m.add_function(wrap_pyfunction!(extract_decoded, m)?)?;
    m.add_function(wrap_pyfunction!(parse_only, m)?)?;
    m.add_function(wrap_pyfunction!(lexbor_load, m)?)?;
    m.add_function(wrap_pyfunction!(lexbor_page, m)?)?;
    m.add_function(wrap_pyfunction!(lexbor_scan, m)?)?;
    m.add_function(wrap_pyfunction!(placement_tables, m)?)?;
    m.add_function(wrap_pyfunction!(element_facts, m)?)?;
    m.add_function(wrap_pyfunction!(limit_depth, m)?)?;
    m.add_function(wrap_pyfunction!(bound_body, m)?)?;
    m.add_function(wrap_pyfunction!(limit_reopened, m)?)?;
    m.add_function(wrap_pyfunction!(limit_attributes, m)?)?;
    m.add_function(wrap_pyfunction!(quoted_gts, m)?)?;
    m.add_function(wrap_pyfunction!(decode_py, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_test, m)?)?;
    Ok(())
}
