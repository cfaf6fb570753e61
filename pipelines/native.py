"""The native core (the Rust crate in ``native/``, module ``linkcrawl_native``) when it is built.

``pip install`` builds it when cargo is on the machine; without Rust the package installs the
Python path, which gives the same rows, and says so once per process. ``LINKCRAWL_NATIVE=0``
chooses the Python path even when the core is built (to compare the two).
"""

from __future__ import annotations

import logging
import os
import threading
import types
from array import array
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from functools import cache, lru_cache
from itertools import islice
from operator import attrgetter
from types import ModuleType
from typing import Any, NamedTuple

from selectolax.lexbor import LexborHTMLParser, LexborNode

import pipelines.extract as extract_module
import pipelines.page_type as page_type_module
import pipelines.placement as placement_module
import pipelines.placement_model as placement_model
from pipelines.budget import PageBudgetExceeded
from pipelines.encoding import decode, encoding_of_meta, sniff_encoding
from pipelines.extract import (
    MAX_BLOCK_DEPTH,
    Link,
    LinkRows,
    PageLinks,
    RawLink,
    WalkedPage,
    _is_legacy_encoding,
    bound_body,
    collapse_ws,
    extract_page,
    page_fields,
    stage_links,
)
from pipelines.page_type import PageMarkup
from pipelines.placement import SCAN_BLOCKS, Placed, Scanned, Scanner

log = logging.getLogger(__name__)

#: The environment variable that turns the native core off ("0").
NATIVE_ENV = "LINKCRAWL_NATIVE"
#: The core this Python code speaks to: native/Cargo.toml's version and the interface number
#: (native/src/lib.rs ``core_version``; bumped with any change of a function's signature or
#: return shape).
CORE_VERSION = "0.1.0+api22"
#: The core's functions this module calls.
CORE_FUNCTIONS = (
    "extract_links", "extract_decoded", "lexbor_page", "lexbor_scan", "limit_depth",
    "placement_tables", "bound_body", "tree_sums", "placement_model", "placement_links",
    "link_objects",
)  # fmt: skip


@cache
def core() -> ModuleType | None:
    """The ``linkcrawl_native`` module, or None when it is not built, turned off, of another
    version (a stale build) or not ours; the reason is logged once.

    >>> core() is None or core().core_version() == CORE_VERSION
    True
    """
    if os.environ.get(NATIVE_ENV, "1") == "0":
        return None
    try:
        import linkcrawl_native  # loaded on first use, not at import

        version = linkcrawl_native.core_version()
    except PageBudgetExceeded:  # the page's budget, not the core: not cached, tried again
        raise
    except Exception as exc:  # not built, or a foreign module of that name: not ours
        log.warning("linkcrawl: native core not built or not ours (%r); using the Python path", exc)
        return None
    missing = [
        name for name in CORE_FUNCTIONS if not callable(getattr(linkcrawl_native, name, None))
    ]
    if version != CORE_VERSION or missing:
        log.warning(
            "linkcrawl: native core %r is not %s (a stale build; lacks %s); using the Python path",
            version, CORE_VERSION, missing,
        )  # fmt: skip
        return None
    return linkcrawl_native


# Python codec names (what pipelines/encoding.py decides) that encoding_rs spells otherwise;
# any other name is passed as it is, and one encoding_rs does not know is decoded by Python.
# The one map: the core's decode and encode_query take these labels (tests/test_native_urls.py
# sweeps every codec sniff_encoding may return).
_WHATWG_LABELS = {
    "cp932": "shift_jis",
    "big5hkscs": "big5",
    "cp949": "euc-kr",
    "euc_jp": "euc-jp",
    "utf-16-le": "utf-16le",
    "utf-16-be": "utf-16be",
    "cp874": "windows-874",
    "mac-roman": "macintosh",
    "mac-cyrillic": "x-mac-cyrillic",
    "iso2022_jp": "iso-2022-jp",
    "iso8859-16": "iso-8859-16",
    "hz": "replacement",
    "iso2022_kr": "replacement",
}
# No placement from the native core yet: its port waits on issue 15 (README).
_NO_PLACEMENT = Placed("", None, None)


def whatwg_label(codec: str) -> str:
    """The encoding_rs label of a Python codec name.

    >>> whatwg_label("cp932"), whatwg_label("cp1251")
    ('shift_jis', 'cp1251')
    """
    return _WHATWG_LABELS.get(codec, codec)


class _Walk(NamedTuple):
    """What the core's walk returns (native/src/extract.rs ``PageRow``)."""

    title: str | None
    base_href: str | None
    canonical_href: str | None
    robots: list[str]
    alternates: list[tuple[str, str]]
    truncated: bool
    head_metas: list[str]
    flattened: bool
    links: list[tuple[str, str, str | None, str | None, str, bool, list[str]]]


def _walk(native: ModuleType, data: bytes, encoding: str, flatten: bool) -> _Walk:
    """The core's walk of *data* decoded with *encoding* (a Python codec name)."""
    try:
        return _Walk(*native.extract_links(data, whatwg_label(encoding), flatten))
    except LookupError:  # a codec encoding_rs does not have (UTF-32, IBM code pages)
        # Decoded from the bytes bound_body cut: its UTF-8 may be longer, and is not cut again.
        text = decode(data, encoding).encode("utf-8", "replace")
        return _Walk(*native.extract_decoded(text, flatten))


def extract_links(
    body: bytes, url: str, *, content_type: str | None = None, x_robots_tag: str | None = None
) -> PageLinks | None:
    """:func:`pipelines.extract.extract_page` by the native core, or None when it is not built:
    the same page fields and link columns, but no placement yet (``placement`` is "",
    ``placement_score`` and ``placement_block`` None), no ``page_type``, ``lang`` or
    ``country`` (they still walk lexbor's tree; their port comes later). The body is bounded,
    and its encoding sniffed, by the Python path's own functions.

    >>> page = extract_links(b'<a href="/x" rel=UGC>A<img alt=B></a>', "http://s.test/p")
    >>> page is None or [(k.target_url, k.anchor_text, k.rel, k.is_image) for k in page.links]
    [('http://s.test/x', 'A', ['ugc'], True)]
    """
    return _or_python(_native_page, core(), body, url, content_type, x_robots_tag)


def _or_python(
    build: Callable[..., PageLinks], native: ModuleType | None, body: bytes, url: str,
    content_type: str | None, x_robots_tag: str | None,
) -> PageLinks | None:  # fmt: skip
    """*build*'s page by the core *native* (None without one); a panic in the core (a bug)
    logs one line and gives this page by the Python path."""
    if native is None:
        return None
    try:
        return build(native, body, url, content_type, x_robots_tag)
    except RuntimeError as exc:
        _failed(url, exc)
        return extract_page(body, url, content_type=content_type, x_robots_tag=x_robots_tag)


def limit_depth(body: bytes) -> bytes | None:
    """``bound_body``'s nesting bounds of a page with many tags (extract.py
    ``_limit_open_elements(_limit_nesting(body))``) by the core: the same bytes (*body* itself
    when nothing is dropped); None without the core, or if it failed (then logged).

    >>> page = b"<div>" * 600 + b"<a href=/x>x</a>"
    >>> flat = limit_depth(page)
    >>> flat is None or (len(flat), flat.endswith(b"<a href=/x>x</a>"))
    (2576, True)
    """
    native = core()
    if native is None:
        return None
    try:
        flat = native.limit_depth(body, MAX_BLOCK_DEPTH)
    except RuntimeError as exc:
        _failed("a page's nesting bounds", exc)
        return None
    return body if flat is None else flat


#: extract.py's bounds that bound_body reads at each call (tests lower them), in the order the
#: core takes them (native/src/extract.rs ``bound_body``); MAX_REOPENED is signed.
BOUND_BODY_BOUNDS = (
    "MAX_PARSE_BYTES", "MAX_TAGS", "MAX_REOPENED", "_NESTING_CHECK_TAGS", "MAX_DOM_DEPTH",
    "MAX_READINGS", "MAX_ISLAND_TAGS", "MAX_ROOTS", "MAX_HELD",
)  # fmt: skip
_I64 = 2**63
_read_bounds = attrgetter(*BOUND_BODY_BOUNDS)
#: The bounds last read and what the core was given for them (checked once per change).
_last_bounds: list[tuple | None] = [None, None]


def _core_bounds() -> tuple[int, ...] | None:
    """extract.py's :data:`BOUND_BODY_BOUNDS` now, or None if one is not an int the core holds
    (``float("inf")``, past 2**63, negative but MAX_REOPENED): then the Python path answers.

    >>> len(_core_bounds())
    9
    """
    bounds = _read_bounds(extract_module)
    if bounds == _last_bounds[0]:  # (an equal value is the same bound: 1.0 is 1)
        return _last_bounds[1]
    checked = bounds
    for position, value in enumerate(bounds):
        if type(value) is not int or not (-_I64 if position == 2 else 0) <= value < _I64:
            checked = None
    _last_bounds[:] = [bounds, checked]
    return checked


def bounded_body(body: bytes, url: str = "a page") -> tuple[bytes, list[str], bool, bool] | None:
    """extract.py ``bound_body`` by the core, whole (its bounds read from extract.py at each
    call, :func:`_core_bounds`): the same bytes (*body* itself when nothing is cut), the bounds
    hit, whether the page may nest deep and whether its nesting was flattened; None without
    the core, with bounds it cannot hold, or if it failed (then logged with *url*).

    >>> page = b"<div>" * 600 + b"<a href=/x>x</a>" + b"<p>" * 8000
    >>> bounded = bounded_body(page)
    >>> bounded is None or (len(bounded[0]), bounded[1:])
    (2576, ([], True, True))
    """
    native = core()
    bounds = _core_bounds()
    if native is None or bounds is None:
        return None
    try:
        kept, limits, many_tags, deep = native.bound_body(body, bounds)
    except RuntimeError as exc:
        _failed(url, exc)
        return None
    return (body if kept is None else kept), limits, many_tags, deep


#: The reasons a page fell back to the Python path, logged once each (a process's first
#: MAX_FAILURE_REASONS of them: a systematic failure is one line, not one a page).
_logged_failures: set[str] = set()
MAX_FAILURE_REASONS = 16


def _failed(url: str, exc: Exception) -> None:
    """Log a panic of the core (a bug) on the page at *url*, once per reason and process; the
    Python path takes the page."""
    reason = str(exc)
    if reason in _logged_failures or len(_logged_failures) >= MAX_FAILURE_REASONS:
        return
    _logged_failures.add(reason)
    log.error("linkcrawl: native core failed on %s (%s); using the Python path (logged once)",
              url, exc)  # fmt: skip


def _native_page(
    native: ModuleType, body: bytes, url: str, content_type: str | None, x_robots_tag: str | None
) -> PageLinks:
    """:func:`extract_links` by the core *native*."""
    limits: list[str] = []
    body, many_tags, deep = bound_body(body, limits, url=url)
    encoding, tentative, start = sniff_encoding(body, content_type)
    walk = _walk(native, body[start:] if start else body, encoding, many_tags)
    if tentative:
        # A guess is revised by a charset <meta> of the head, as a browser re-decodes.
        declared = next(filter(None, map(encoding_of_meta, walk.head_metas)), None)
        if declared is not None and declared != encoding:
            encoding = declared
            walk = _walk(native, body, encoding, many_tags)
    if deep or walk.flattened:
        limits.append("dom_depth")
    return _page_links(walk, url, encoding, limits, x_robots_tag)


def _page_links(
    walk: _Walk, url: str, encoding: str, limits: list[str], x_robots_tag: str | None
) -> PageLinks:
    """The page's fields and link rows from the html5ever walk (rows built in Python)."""
    page, base, long = _page_of(walk[:6], url, encoding, limits, x_robots_tag)  # type: ignore[arg-type]
    links = walk.links
    hrefs = [link[0] for link in links]
    raw_link = _raw_links(links, [None] * len(links))
    walked = stage_links(page, base, walk.alternates, PageMarkup(), long, (hrefs, raw_link),
                         encoding, url)  # fmt: skip
    if walked.add_links([_NO_PLACEMENT] * len(walked.texts)) or walked.long:
        page.limits_hit.append("long_strings")
    return page


# selectolax releases whose lexbor's struct layout native/src/layout.rs was written for and
# tested on: the core probes that layout and reads lexbor's structs in place. Any other
# release is walked through lexbor's functions (slower, same rows): the probe itself reads
# those offsets, which is only safe on a layout known to hold them.
# Exact releases: a patch release may bundle another lexbor (the probe follows a pointer it
# reads: on another layout it could read an unmapped address).
KNOWN_LAYOUTS = frozenset({"1.0.2"})


def _known_layout(version: str) -> bool:
    """Whether selectolax *version* bundles a lexbor of a known layout.

    >>> _known_layout("1.0.2"), _known_layout("1.0.3"), _known_layout("1.1.0")
    (True, False, False)
    """
    return version in KNOWN_LAYOUTS


@cache
def lexbor_core() -> ModuleType | None:
    """The core with lexbor's C functions resolved from selectolax's extension module (which
    links lexbor in and exports its API), or None when the core is not built or that module
    lacks one of them (another selectolax build); the reason is logged once.

    >>> lexbor_core() is None or lexbor_core() is core()
    True
    """
    native = core()
    if native is None:
        return None
    import selectolax.lexbor

    try:
        native.lexbor_load(selectolax.lexbor.__file__, _known_layout(selectolax.__version__))
        tree = LexborHTMLParser(_PROBE)  # alive during the call
        fields, markup, _, probe, _ = native.lexbor_page(tree, "", False, False, 8)
    except RuntimeError as exc:
        log.warning("linkcrawl: lexbor's C API not usable (%s); using the Python path", exc)
        return None
    if (fields, markup, probe) != _PROBE_WALK:  # same names, another ABI: a selectolax unknown
        log.warning("linkcrawl: lexbor's C API answers otherwise; using the Python path")
        return None
    try:  # once: @cache keeps the None, not an exception (else every extraction would raise)
        native.placement_tables(*placement_tables())
    except (TypeError, ValueError, OverflowError) as exc:
        log.warning("linkcrawl: placement's tables do not convert (%s); using the Python path", exc)
        return None
    return native


def placement_tables() -> tuple[Any, ...]:
    """Placement's word tables, as the core takes them (native/src/facts.rs ``Tables``): the
    one copy is Python's."""
    p = placement_module
    return (p._TAG_LABELS, p._ROLE_LABELS, p._ITEMPROP_LABELS, p._TOKEN_LABELS, p._COMPOUND,
            p._WEAK_CONTENT, p._WORD_BITS, p._TAG_BITS, p._LABEL_BITS, p._BODY_ITEMPROPS,
            (p.COMMENT, p.CONTENT))  # fmt: skip


#: Whether the core builds the rows (hrefs resolved, every column but placement) or only walks
#: (Python builds them, as on a legacy page whose hrefs need encode_query): tests run both.
ROWS_IN_RUST = True

# A page walked once at load: the lexbor binding must see what selectolax sees.
_PROBE = ("<title>T</title><svg><a href=/s>S</a></svg><a href=/x rel=ugc title>A<img alt=B></a>"
          "<p itemtype=http://schema.org/Thing>")  # fmt: skip
_PROBE_WALK = (("T", None, None, [], [], False), [("itemtype", "http://schema.org/Thing")],
               [("/x", "a", "ugc", None, "A", True, ["B"])])  # fmt: skip


def walk_page(
    tree: LexborHTMLParser, url: str, encoding: str, limits: list[str] | None,
    x_robots_tag: str | None,
) -> WalkedPage | None:  # fmt: skip
    """:func:`pipelines.extract._walk` by the core: the walk of *tree* (the one ``parse_page``
    built) in Rust through lexbor's C API, and the rows built in Rust (but on a page in a
    legacy encoding whose hrefs have non-ASCII queries: Python encodes those, as browsers and
    the Python path do; README); None without the core, or if it failed (then logged).

    >>> tree = LexborHTMLParser('<a href="/x" rel=UGC>A<img alt=B></a>')
    >>> walked = walk_page(tree, "http://s.test/p", "utf-8", [], None)
    >>> walked is None or (walked.texts, walked.rels, walked.nodes[0].tag)
    (['A'], [('ugc',)], 'a')
    >>> walked is None or walked.add_links([Placed("content", 1.0, 0)]) or walked.page.links[0]
    ... # doctest: +ELLIPSIS
    Link(target_url='http://s.test/x', anchor_text='A', ..., placement='content', ...)
    """
    native, root = lexbor_core(), tree.root
    if native is None or root is None:  # lexbor always makes <html>: else not ours to walk
        return None
    legacy = _is_legacy_encoding(encoding)
    try:
        # `tree` holds the document: it stays alive (and unchanged) during the call.
        # The bound read at each call (tests lower it).
        max_links = extract_module.MAX_LINKS_PER_PAGE
        root = tree.body or root  # placement's root: scanned in the same call (fused.rs)
        (fields, events, addresses, raw, columns), scan = native.lexbor_page_scan(
            tree, url, legacy, ROWS_IN_RUST, max_links, root, SCAN_BLOCKS, _CONTAINERS,
            placement_module._MIN_PARA,
        )  # fmt: skip
    except UnicodeEncodeError:  # a lone surrogate in the URL (no Rust str holds it): Python's
        return None
    except RuntimeError as exc:
        _failed(url, exc)
        return None
    # The scan made with the walk found every link's element: the nodes are found when a rule
    # reads one (most pages: none); else now, all (a link not in the tree is a bug: logged).
    nodes: Sequence[LexborNode] | None = _lazy_nodes(tree, addresses, columns, scan)
    if nodes is None:
        nodes = _nodes(tree, addresses)
    if nodes is None:
        _failed(url, RuntimeError("a link the core found is not an element of the tree"))
        return None
    page, base, long = _page_of(fields, url, encoding, limits, x_robots_tag, native.resolve_link)
    markup = _markup(events)
    alternates = fields[4]
    if columns is None:
        raw_link = _raw_links(raw, nodes)
        hrefs = [link[0] for link in raw]
        walked = stage_links(page, base, alternates, markup, long, (hrefs, raw_link), encoding,
                             url)  # fmt: skip
        walked.scanner = _scanner(None)  # its links: those the rows kept
    else:
        walked = _columns_page(WalkedPage(page, base, alternates, markup, nodes, (), (), None,
                                          _no_links, long), columns)  # fmt: skip
        walked.scanner = _walk_scanner(native, addresses, root, scan)
    walked.link_signals = link_signals
    walked.resolve = native.resolve_link  # the rows' (tests/test_native_urls.py: Python's)
    walked.langid_visits = langid_visits
    walked.page_type_scores = page_type_scores
    return walked


# What placement's scan measures (pipelines/placement.py _scan), for the core's.
_CONTAINERS = tuple(sorted(placement_module._CONTAINERS))


def scan_page(
    tree: LexborHTMLParser, root: LexborNode, links: Sequence[LexborNode],
    addresses: Sequence[int] | None = None,
) -> Scanned | None:  # fmt: skip
    """Placement's fact gathering (``pipelines.placement._scan``) by the core over *tree*
    under *root* for the elements *links* (at *addresses*, their ``mem_id``, if the caller has
    them): the walk's links, HTML ``a``/``area`` with an ``href`` (an SVG ``<a xlink:href>``,
    which ``css("a[href]")`` matches, is not reached: logged). None without the core, for a
    root outside the document (a ``<body>`` a late ``<frameset>`` detached), or if it failed
    (then logged): placement then scans.

    >>> tree = LexborHTMLParser("<div><p>" + "Running text. " * 3 + "<a href=/x>x</a></p></div>")
    >>> scanned = scan_page(tree, tree.body, tree.css("a"))
    >>> scanned is None or (scanned.parent, scanned.link_keys, scanned.paras, scanned.seq)
    ([-1, 0, 1, 2], [3], [(2, 42)], [2, 3])
    """
    native = lexbor_core()
    if native is None:
        return None
    if addresses is None:
        addresses = [node.mem_id for node in links]
    try:
        row = native.lexbor_scan(tree, root, addresses, SCAN_BLOCKS, _CONTAINERS,
                                 placement_module._MIN_PARA)  # fmt: skip
    except RuntimeError as exc:
        _failed("a page's placement scan", exc)
        return None
    return _scanned(native, row)


def _scanned(native: ModuleType, row: tuple[Any, ...] | None) -> Scanned | None:
    """The core's scan *row* as placement takes it; None for a detached root (Python's
    scan, no bug: not logged) or a link the scan did not reach (the walks disagree: a bug,
    logged)."""
    if row is None:
        return None
    # The core's per-element lists with the ancestry, and its arrays kept in Rust (the later
    # calls read them in place of the lists: native/src/scan_object.rs).
    *head, (ancestry, lists, arrays) = row
    scanned = Scanned(*head, ancestry, native.tree_sums, lists, arrays)
    if -1 in scanned.link_keys:
        _failed("a page's placement scan", RuntimeError("a link is not in the scan"))
        return None
    return scanned


def _scanner(addresses: Sequence[int] | None) -> Scanner:
    """:func:`scan_page` for the links at *addresses* (the rows' elements), else read."""
    return lambda tree, root, links: scan_page(tree, root, links, addresses)


def _lazy_nodes(
    tree: LexborHTMLParser, addresses: Sequence[int], columns: tuple[Any, ...] | None,
    scan: tuple[tuple[Any, ...] | None, str | None],
) -> placement_module.LinkNodes | None:  # fmt: skip
    """The links' elements found when first read (with the hrefs of the rows' *columns*),
    when the *scan* made with the walk found each of them (the core checked each is at its
    address: else its scan failed); else None."""
    row, failure = scan
    if columns is None or row is None or failure is not None:
        return None
    link_keys = row[_SCAN_LINK_KEYS]
    if len(link_keys) != len(addresses) or -1 in link_keys:
        return None
    return placement_module.LinkNodes(tree, addresses, columns[-1])


_SCAN_LINK_KEYS = Scanned._fields.index("link_keys")


def _nodes(tree: LexborHTMLParser, addresses: Sequence[int]) -> list[LexborNode] | None:
    """The link elements at *addresses* (``mem_id``), by one ``css()`` traversal; None if one
    is not found (the walks disagree: a bug)."""
    if not addresses:
        return []
    nodes = tree.css("a[href], area[href]")
    by_address = dict(zip(map(attrgetter("mem_id"), nodes), nodes, strict=True))  # (in C)
    found = list(map(by_address.get, addresses))
    return None if None in found else found  # type: ignore[return-value]


def _page_of(
    fields: tuple[str | None, str | None, str | None, list[str], list[tuple[str, str]], bool],
    url: str, encoding: str, limits: list[str] | None, x_robots_tag: str | None,
    resolve: extract_module.Resolve = extract_module.resolve_link,
) -> tuple[PageLinks, str, bool]:  # fmt: skip
    """:func:`page_fields` of a core's walk: title, base href, canonical href (resolved by
    *resolve*), robots contents, alternates (not read here), links cut."""
    title, base_href, canonical_href, robots, _, truncated = fields
    return page_fields(
        url, encoding, limits, x_robots_tag, base_href=base_href,
        title=None if title is None else collapse_ws(title),
        canonical_href=canonical_href, robots=robots, truncated=truncated, resolve=resolve,
    )  # fmt: skip


def _markup(events: list[tuple[str, str]]) -> PageMarkup:
    """The page type's signals from the core's markup events, replayed in document order."""
    markup = PageMarkup()
    for kind, value in events:
        if kind == "itemtype":
            markup.add_itemtype(value)
        elif kind == "jsonld":
            markup.add_jsonld(value)
        else:  # "generator" or "og:type"
            markup.add_meta(kind, value)
    return markup


def _raw_links(
    raw: list[tuple[str, str, str | None, str | None, str, bool, list[str]]],
    nodes: Sequence[LexborNode | None],
) -> Callable[[int], RawLink]:
    """:func:`stage_links`'s raw link by index, from a core's raw rows and their elements."""
    return lambda index: (nodes[index], *raw[index][1:], None)  # type: ignore[return-value]


def _no_links(placements: list[Placed]) -> bool:
    """A walked page's ``add_links`` until :func:`_columns_page` sets the columns' own."""
    return False


# What placement reads of a link's rel: whether it has "ugc" (the core gives the flag).
_UGC: tuple[str, ...] = ("ugc",)


def _columns_page(walked: WalkedPage, columns: tuple[Any, ...]) -> WalkedPage:
    """*walked* with the links of the core's columns (native/src/rows.rs ``Columns``): what
    placement reads of them, and the rows' builder."""
    targets, anchors, titles, rels, nofollow, sponsored, ugc, is_image, tags, texts = columns[:10]
    cut = columns[10]  # (then the hrefs: for LinkNodes)
    page = walked.page
    placement_texts = list(anchors) if texts else anchors
    for index, text in texts:  # an image's alt text taken as anchor, or a text cut
        placement_texts[index] = text
    if page.nofollow_page:  # robots nofollow: every link is
        nofollow = [True] * len(targets)

    def add_links(placements: Sequence[Placed]) -> bool:
        if isinstance(placements, placement_module.PlacedColumns):  # the core's rules' own
            kinds, scores, blocks = placements.columns()
        else:
            kinds, scores, blocks = zip(*placements, strict=True) if placements else ((), (), ())
        rows = [targets, anchors, titles, rels, nofollow, sponsored, ugc, is_image, tags]
        n = min(len(targets), len(kinds))
        if page.links or n < len(targets):  # (never from place_links_scored): as a row each
            rows[3] = extract_module.own_rels(rels)
            page.links.extend(map(Link, *rows, kinds, range(n), scores, blocks))
            return False
        # The rows as the core's columns: no Link per row unless a caller asks (LinkRows).
        page.links = LinkRows((*rows, list(kinds), list(range(n)), list(scores), list(blocks)))
        return False

    walked.rels = [_UGC if flag else () for flag in ugc]
    walked.texts, walked.add_links, walked.long = placement_texts, add_links, walked.long or cut
    return walked


# The core's functions for page type's link signals, main-block scoring and the deep-nesting
# search (below): a build without them (api15 before them) is not used.
CORE_FUNCTIONS = (*CORE_FUNCTIONS, "link_signal_tables", "link_signals", "best_block",
                  "nests_deeper")  # fmt: skip

# Page type's link signals (pipelines/page_type.py ``_link_signals``) by the core.

_LINK_COLUMNS = ("target_url", "anchor_text", "placement", "ugc", "is_image")


@cache
def _signals_core() -> ModuleType | None:
    """The core with page type's tables given (once), or None without the core or if they
    do not convert (logged once): then Python's signals."""
    p = page_type_module
    return _core_given(
        "page type's tables",
        lambda native: native.link_signal_tables(
            tuple(p._ANCHOR_PHRASES.values()), p._PRODUCT_PATHS, p._FORUM_PATHS, p._ANCHOR_CHARS
        ),
    )


def _core_given(what: str, give: Callable[[ModuleType], object]) -> ModuleType | None:
    """The core once *give* has handed it *what* (tables, weights: constants of the Python
    path), or None without the core or if they do not convert (logged): Python's path."""
    native = core()
    if native is None:
        return None
    try:
        give(native)
    except (AttributeError, TypeError, ValueError, OverflowError) as exc:
        log.warning("linkcrawl: %s not taken by the core (%r); using the Python path", what, exc)
        return None
    return native


def link_signals(url: str, links: Sequence[Any]) -> list[float] | None:
    """Page type's link signals (``page_type.LINK_SIGNALS``' values) of the page at *url*
    with *links* (its first ``MAX_SIGNAL_LINKS``) by the core: Python's very floats; None
    without the core, on a string no Rust str holds (a lone surrogate: Python's, unlogged),
    or if it failed (then logged once).

    >>> from pipelines.extract import Link
    >>> link = Link("https://a.test/p/1", "Read more", None, [], False, False, False, False,
    ...             "a", "content", 0)
    >>> got = link_signals("https://a.test/", [link])
    >>> got is None or dict(zip(page_type_module.LINK_SIGNALS, got))["a_more"] > 0
    True
    """
    native = _signals_core()
    if native is None:
        return None
    most = page_type_module.MAX_SIGNAL_LINKS
    try:
        if isinstance(links, LinkRows):  # the core's columns, read as they are
            columns = [links.column(name) for name in _LINK_COLUMNS]
            columns = columns if len(links) <= most else [c[:most] for c in columns]
        else:  # any iterable, as Python's
            links = list(islice(links, most))
            columns = [list(map(attrgetter(name), links)) for name in _LINK_COLUMNS]
        values = native.link_signals(url, *columns)
    except UnicodeEncodeError:  # a lone surrogate: Python's signals
        return None
    except (RuntimeError, TypeError, ValueError, OverflowError) as exc:
        _failed(url, exc)
        return None
    want = len(page_type_module.LINK_SIGNALS)
    if len(values) != want:  # a core built for other signals
        _failed(url, ValueError(f"{len(values)} link signals from the core, not {want}"))
        return None
    return values


# Placement's main-block scoring (pipelines/placement.py ``_best_block``) by the core.


def best_block(
    page: placement_module._Page, text: placement_module._Text, link_keys: list[int],
    anchor_len: list[int], hub: bool,
) -> int | None:  # fmt: skip
    """``_best_block`` of a natively scanned *page* by the core: the same element; None
    without the core, where Python's loop answers (arrays that are no tree, a NaN), or if the
    core failed (then logged once).

    >>> tree = LexborHTMLParser("<div><p>" + "Running text. " * 3 + "<a href=/x>x</a></p></div>")
    >>> scanned = scan_page(tree, tree.body, tree.css("a"))
    >>> page = placement_module._Page(tree.body)
    >>> page.adopt(scanned, tree.css("a"), None) if scanned else None
    >>> text = scanned and placement_module._Text(page, dict(scanned.paras), [3], [1])
    >>> scanned is None or best_block(page, text, [3], [1], False)
    2
    """
    native = core()
    if native is None:
        return None
    p = placement_module
    try:
        return native.best_block(
            page.parent, page.depth, page.label, tuple(p.BOILERPLATE),
            text.own if hub else text.good, text.good, text.links,
            (link_keys, anchor_len, text.link_para), hub,
            (p._BOILER_WEIGHT, p._LINK_WEIGHT, p._DECAY), page.arrays,
        )  # fmt: skip
    except (RuntimeError, TypeError, ValueError, OverflowError) as exc:
        _failed("a page's main block", exc)
        return None


# extract.py ``_flatten_deep``'s search by the core.


def nests_deeper(tree: LexborHTMLParser, max_depth: int) -> bool | None:
    """Whether *tree* nests deeper than *max_depth* below its root (``_flatten_deep`` would
    flatten something) by the core's walk; None without the core, without a root, or if it
    failed (then logged once): then Python's walk answers.

    >>> nests_deeper(LexborHTMLParser("<i><b><u>x</u></b></i>"), 4) in (None, True)
    True
    >>> nests_deeper(LexborHTMLParser("<i><b><u>x</u></b></i>"), 5) in (None, False)
    True
    """
    native = lexbor_core()
    if native is None or tree.root is None:
        return None
    try:
        return native.nests_deeper(tree, max_depth)
    except (RuntimeError, OverflowError, TypeError) as exc:
        _failed("a page's nesting depth", exc)
        return None


# ---------------------------------------------------------------------------------------------
# Placement's per-link stage (issue 18): the links' facts (placement.py ``_link_facts``), the
# model's scores and decisions (placement_model.py ``scores``, ``decide``) by the core
# (native/src/model.rs), with Python's floats; Python's stays the reference and the fallback.
# ---------------------------------------------------------------------------------------------

#: The weights and thresholds the core was last given (placement_weights.py's): passed again
#: when they change (a test's, a trainer's).
_model_given: list[tuple[Any, ...] | None] = [None]
#: Pages whose per-link stage the core did (tests check it did, not Python silently).
STAGE_PAGES = [0]


class _NoModel(Exception):
    """Thresholds that are no probabilities: Python's ``decide`` answers (or raises) alone."""


def _logits(w: ModuleType) -> tuple[float, float, float, float]:
    """The thresholds as ``_logit`` makes them; :class:`_NoModel` if one is not strictly
    between 0 and 1 (Python's decide reads only those a page needs: it may still answer)."""
    probabilities = (w.THRESHOLD, w.DEMOTE, w.DEMOTE_ARTICLE, w.PROMOTE)
    if not all(0.0 < p < 1.0 for p in probabilities):
        raise _NoModel
    return tuple(placement_model._logit(p) for p in probabilities)  # type: ignore[return-value]


def _model_config(native: ModuleType, decide: bool) -> None:
    """Give the core the model (placement_model.py ``_Weights``' split, the thresholds as
    ``_logit`` makes them), once and again when placement_weights.py's change."""
    w = placement_model.weights
    p, m = placement_module, placement_model
    constants = (
        (m._MARKUP_ARTICLE, m._MARKUP_FORUM), (m._SURE, m._OVERRULED),
        (p.CONTENT, p.NAV, p.SIDEBAR, p.FOOTER, p.COMMENT), p._PARAGRAPHS,
    )  # fmt: skip
    given = (decide, w.WEIGHTS, w.BIAS, w.THRESHOLD, w.DEMOTE, w.DEMOTE_ARTICLE, w.PROMOTE,
             constants)  # fmt: skip
    if given == _model_given[0]:
        return
    weights = tuple(w.WEIGHTS)
    n_own, n_page = len(p.LINK_FEATURES), len(p.PAGE_FEATURES)
    native.placement_model(
        weights[:n_own], weights[n_own : n_own + n_page],
        weights[n_own + n_page : n_own + n_page + 3] if weights else (0.0, 0.0, 0.0),
        weights[n_own + n_page + 3 :], w.BIAS,
        _logits(w) if decide else (0.0, 0.0, 0.0, 0.0), *constants,
    )  # fmt: skip
    _model_given[0] = given


#: The core's model is given and used under it: another thread's weights never slip between.
#: Not reentrant, and held while the core's rules call Python back (place_rules): nothing
#: those callbacks reach may give or use the model.
_model_lock = threading.Lock()


def place_stage(
    stage: Any, facts: bool, decide: bool = True
) -> tuple[list[Placed], placement_model.LinkFacts | None] | None:
    """Placement's per-link stage of *stage* (placement.py ``_Stage``) by the core: the
    model's placements (the rules' where it agrees), and, if *facts*, the links' facts
    (``LinkFacts``, as ``_link_facts`` gives them); not *decide*: the rules' placements
    (the trainer's facts). None without the core, with thresholds that are no probabilities,
    or if it failed (then logged): Python's stage then runs.
    """
    native = lexbor_core()
    if native is None:
        return None
    rules = stage.rules
    decide = decide and bool(placement_model.weights.WEIGHTS)
    try:
        with _model_lock:
            _model_config(native, decide)
            overruled, parts, _ = native.placement_links(
                *placement_module._stage_inputs(stage), (decide, facts)
            )
    except _NoModel:
        return None
    except (RuntimeError, TypeError, ValueError, KeyError, IndexError, ArithmeticError) as exc:
        _failed("a page's placement model", exc)
        return None
    placed = list(rules)
    for index, content, score in overruled or ():
        region = placement_module.CONTENT if content else placement_module.SIDEBAR
        placed[index] = placed[index]._replace(placement=region, score=score)
    STAGE_PAGES[0] += 1
    return placed, None if parts is None else placement_model.LinkFacts(*parts)


# ---------------------------------------------------------------------------------------------
# The walk and placement's scan in one call (native/src/fused.rs ``lexbor_page_scan``): the
# scan reads the tree right after the walk, while it is in the CPU's caches.
# ---------------------------------------------------------------------------------------------

CORE_FUNCTIONS = (*CORE_FUNCTIONS, "lexbor_page_scan")


def _walk_scanner(
    native: ModuleType, addresses: Sequence[int], root: LexborNode,
    scan: tuple[tuple[Any, ...] | None, str | None],
) -> Scanner:  # fmt: skip
    """Placement's scanner of a walked page: the scan made with the walk (*scan*: its row,
    or the message of its failure, then logged: placement scans) when placement asks for the
    same *root*; :func:`scan_page` for another."""
    row, failure = scan
    if failure is not None:
        _failed("a page's placement scan", RuntimeError(failure))
        scanned = None
    else:
        scanned = _scanned(native, row) if row is not None else None
    at = root.mem_id

    def scanner(
        tree: LexborHTMLParser, root: LexborNode, links: Sequence[LexborNode]
    ) -> Scanned | None:
        if root.mem_id == at and (row is not None or failure is not None):
            return scanned
        return scan_page(tree, root, links, addresses)

    return scanner


# ---------------------------------------------------------------------------------------------
# Placement's rules per link (issue 18): placement.py ``_Where``, ``_article``, ``_copy_blocks``
# and ``_place_each`` by the core (native/src/rules.rs) over a natively scanned page; the rules
# that read the tree, a link's attributes or the site, and ``_PAGER``, called back. Python's
# stay the reference and the fallback.
# ---------------------------------------------------------------------------------------------

CORE_FUNCTIONS = (*CORE_FUNCTIONS, "placement_rules", "void_labels", "page_text", "is_thread",
                  "child_steps", "past_faq")  # fmt: skip
#: Pages whose rules the core applied (tests check it did, not Python silently).
RULES_PAGES = [0]
_LABELS = (placement_module.CONTENT, placement_module.NAV, placement_module.SIDEBAR,
           placement_module.FOOTER, placement_module.COMMENT)  # fmt: skip


def _tag_flags(tag: str) -> int:
    """What the rules read of a tag, as bits (native/src/rules.rs ``BLOCK``...): placement's
    sets are the one copy.

    >>> _tag_flags("p"), _tag_flags("td"), _tag_flags("pre"), _tag_flags("main")
    (3, 5, 19, 33)
    """
    p = placement_module
    return ((tag in p._BLOCK_TAGS) | (tag in p._PARAGRAPHS) << 1 | (tag in p._CELL_TAGS) << 2
            | (tag in p._LIST_ITEM_TAGS) << 3 | (tag == "pre") << 4
            | (tag in ("main", "article")) << 5 | (tag in p._LIST_TAGS) << 6)  # fmt: skip


#: The flags of every tag that has some (another tag: none), as the core reads them.
_TAG_FLAGS = {
    tag: _tag_flags(tag)
    for tag in (*placement_module._BLOCK_TAGS, *placement_module._PARAGRAPHS,
                *placement_module._CELL_TAGS, *placement_module._LIST_ITEM_TAGS, "main")
}  # fmt: skip


#: place_rules' answer: the rules' placements, the article, the copy blocks, the links' entries
#: of where.of (without the model) and the model's placements (with it).
_Ruled = tuple[
    placement_module.PlacedColumns, Any, frozenset[int], list[Any] | None,
    placement_module.PlacedColumns | None,
]  # fmt: skip


# What a core call after the scan raises when it refuses its input (the core's refusal, a
# caught panic, arrays that do not fit): logged once, and Python's path answers.
# LookupError: IndexError's and KeyError's base, which a lazily found node raises (review14-r14 3)
CORE_FAILURES = (RuntimeError, TypeError, ValueError, OverflowError, LookupError)


def place_rules(
    page: placement_module._Page, text: placement_module._Text, main: placement_module._Main,
    seq: list[int], link_keys: list[int], rels: Sequence[Sequence[str]], anchors: Sequence[str],
    landmark: int, calls: tuple[Callable[..., Any], ...], model: tuple[Any, ...] | None = None,
) -> _Ruled | None:  # fmt: skip
    """placement.py ``_native_rules``' work by the core: each link's placement by the rules,
    main's ``_Article``, the blocks of copy beside main, and ``where.of``'s entries of the
    links (what the per-link stage reads); with *model* (the stage's other inputs:
    ``_native_rules`` names them), not those entries but the model's placements (the rules'
    where it agrees), as ``place_stage`` gives them. None without the core, or if it failed
    (then logged once): Python's rules run. *calls*: ``_PAGER.fullmatch``, ``_place_tail``,
    ``_in_landmark``, ``_in_link_list`` and ``_internal`` as placement.py closes them over
    the page, and ``_BUTTON_WORDS`` (None: ``_place_tail`` is called whole); ``_side`` is
    the core's, over the scan's parents."""
    native = lexbor_core()
    if native is None:
        return None
    p = placement_module
    use_model = model is not None and bool(placement_model.weights.WEIGHTS)
    with _model_lock if use_model else nullcontext():
        if use_model:
            try:
                _model_config(native, True)
            except _NoModel:  # Python's decide answers (or raises) alone: the stage after
                use_model = False
        try:
            placements, scores, blocks, article, copy, located, overruled = native.placement_rules(
                (page.parent, page.depth, page.kind_of, (page.kinds, _TAG_FLAGS), page.label,
                 page.nearest, page.block),
                (main.key, main.path, bool(main.weak), bool(main.listing), bool(main.thread),
                 bool(main.sections), main.good),
                (text.own, text.good, text.links), seq, link_keys, rels, anchors, landmark,
                _LABELS, calls, model if use_model else None, page.arrays,
            )  # fmt: skip
        except CORE_FAILURES as exc:
            _failed("a page's placement rules", exc)
            return None
    RULES_PAGES[0] += 1
    # As columns: a Placed per link only if one is read (extraction's rows take the columns).
    results = p.PlacedColumns(placements, scores, blocks)
    placed = None
    if overruled is not None:
        placements, scores = list(placements), list(scores)
        for index, content, score in overruled:
            placements[index] = p.CONTENT if content else p.SIDEBAR
            scores[index] = score
        placed = p.PlacedColumns(placements, scores, blocks)
        STAGE_PAGES[0] += 1
    return results, p._Article(*article), frozenset(copy), located, placed


#: Pages whose labels the core voided (placement.py ``_void_wrapper_labels``; tests check).
VOID_PAGES = [0]


def void_labels(page: placement_module._Page, good: dict[int, int]) -> list[float] | None:
    """placement.py ``_void_wrapper_labels`` of a natively scanned *page* (its names its
    kinds') by the core: each element's raw good text, the dropped labels set None on *page*;
    None without the core, or if it failed (then logged once): Python's answers.

    >>> tree = LexborHTMLParser('<div class="sidebar"><p>' + "Running text. " * 40 + "</p></div>")
    >>> scanned = scan_page(tree, tree.body, [])
    >>> page = placement_module._Page(tree.body)
    >>> page.adopt(scanned, [], None) if scanned else None
    >>> scanned is None or (void_labels(page, {2: 559})[:3], page.label[1])
    ([559.0, 559.0, 559.0], None)
    """
    native = lexbor_core()
    if native is None:
        return None
    p = placement_module
    try:
        raw, dropped = native.void_labels(
            page.parent, page.kind_of, page.kinds, _TAG_FLAGS, page.label, good,
            (p._MIN_ARTICLE, p._WRAPPER_SHARE, p._BUILDER_NESTED), _LABELS, page.arrays,
        )  # fmt: skip
    except CORE_FAILURES as exc:
        _failed("a page's voided labels", exc)
        return None
    label = page.label
    for key in dropped:
        label[key] = None
    VOID_PAGES[0] += 1
    return raw


#: Pages whose running text the core measured (placement.py ``_Text``; tests check).
TEXT_PAGES = [0]


def page_text(
    page: placement_module._Page, paras: dict[int, int], link_keys: list[int],
    anchor_len: list[int],
) -> tuple[dict[int, int], list[int], dict[int, int], dict[int, int]] | None:  # fmt: skip
    """placement.py ``_Text`` of a natively scanned *page* by the core: each block's own
    text, each link's block, the link text per block and the blocks of running text (the
    same dicts in the same order); None without the core, or if it failed (then logged
    once): Python's answers.

    >>> tree = LexborHTMLParser("<div><p>" + "Running text. " * 3 + "<a href=/x>x</a></p></div>")
    >>> scanned = scan_page(tree, tree.body, tree.css("a"))
    >>> page = placement_module._Page(tree.body)
    >>> page.adopt(scanned, tree.css("a"), None) if scanned else None
    >>> scanned is None or page_text(page, dict(scanned.paras), [3], [1])
    ({2: 42}, [2], {2: 1}, {2: 42})
    """
    native = core()
    if native is None:
        return None
    p = placement_module
    try:
        made = native.page_text(page.parent, page.nearest, paras, link_keys, anchor_len,
                                p._MIN_PARA, p._MAX_DENSITY, page.arrays)  # fmt: skip
    except CORE_FAILURES as exc:
        _failed("a page's running text", exc)
        return None
    TEXT_PAGES[0] += 1
    return made


#: Pages the core told a thread or not (placement.py ``_is_thread``; tests check).
THREAD_PAGES = [0]


def is_thread(page: placement_module._Page, good: dict[int, int], main: int) -> bool | None:
    """placement.py ``_is_thread`` of a natively scanned *page* (one with a comment label) by
    the core; None without the core, or if it failed (then logged once): Python's answers.

    >>> tree = LexborHTMLParser('<div class="comment"><p>' + "Running text. " * 9 + "</p></div>")
    >>> scanned = scan_page(tree, tree.body, [])
    >>> page = placement_module._Page(tree.body)
    >>> page.adopt(scanned, [], None) if scanned else None
    >>> scanned is None or (page.label, is_thread(page, {2: 125}, 2))
    ([None, 'comment', None], True)
    """
    native = core()
    if native is None:
        return None
    p = placement_module
    try:
        thread = native.is_thread(page.parent, page.depth, page.label, good, page.body, main,
                                  (p._THREAD_SHARE, p._THREAD_OTHER), _LABELS,
                                  page.arrays)  # fmt: skip
    except CORE_FAILURES as exc:
        _failed("a page's thread", exc)
        return None
    THREAD_PAGES[0] += 1
    return thread


#: Ways down the tree the core found (placement.py ``_Nodes``; tests check).
STEPS = [0]


def child_steps(start: LexborNode, addresses: Sequence[int]) -> list[int] | None:
    """The way from *start* down to the elements at *addresses* (each a child of the one
    before): each one's position among its parent's child nodes, by the core; None without
    the core, if one is not found there (no log: Python reads the children), or if the core
    failed (then logged once).

    >>> tree = LexborHTMLParser("<div>x<p>y</p><p><b>z</b></p></div>")
    >>> p = tree.css("p")[1]
    >>> child_steps(tree.body, [tree.css_first("div").mem_id, p.mem_id, p.child.mem_id])
    [0, 2, 0]
    """
    native = lexbor_core()
    if native is None:
        return None
    try:
        steps = native.child_steps(start, addresses)
    except (RuntimeError, TypeError, ValueError, OverflowError) as exc:
        _failed("a page's way down its tree", exc)
        return None
    STEPS[0] += steps is not None
    return steps


#: Pages whose FAQ the core looked for (placement.py ``_past_faq``; tests check).
FAQ_PAGES = [0]


def past_faq(page: placement_module._Page, path: list[int], words: frozenset[str]) -> int | None:
    """placement.py ``_past_faq`` of a natively scanned *page* (its names its kinds') by the
    core, *path* main and its ancestors: the page's ``<main>`` around an FAQ holding main, or
    main; None without the core, or if it failed (then logged once): Python's answers.

    >>> tree = LexborHTMLParser('<main><div class="faq"><p>' + "Text. " * 9 + "</p></div></main>")
    >>> scanned = scan_page(tree, tree.body, [])
    >>> page = placement_module._Page(tree.body)
    >>> page.adopt(scanned, [], None) if scanned else None
    >>> scanned is None or past_faq(page, [3, 2, 1, 0], placement_module._FOLDS)
    1
    """
    native = core()
    if native is None:
        return None
    p = placement_module
    try:
        wide = native.past_faq(path, page.kind_of, page.kinds, page.label, sorted(words),
                               list(p._TAXONOMY), _LABELS)  # fmt: skip
    except CORE_FAILURES as exc:
        _failed("a page's FAQ", exc)
        return None
    FAQ_PAGES[0] += wide is not None  # None: a name that is not ASCII, Python's to lower
    return wide


#: Pages whose listing the core read (placement.py ``_listing``; tests check).
LISTING_PAGES = [0]
CORE_FUNCTIONS = (*CORE_FUNCTIONS, "main_listing")


def main_listing(page: placement_module._Page, main: int, levels: int) -> tuple[int, bool] | None:
    """placement.py ``_listing`` of a natively scanned *page* by the core (native/src/lists.rs:
    ``_whole_list`` *levels* up from *main*, then ``_has_items``), its nodes found down from
    the root by address in the same call; None without the core, if an element is not where
    the scan put it (no log: Python's ``_Nodes`` finds it), or if the core failed (then
    logged once).

    >>> tree = LexborHTMLParser("<ul>" + "<li class=i><a href=/x>x</a></li>" * 3 + "</ul>")
    >>> links = tree.css("a")
    >>> scanned = scan_page(tree, tree.body, links)
    >>> page = placement_module._Page(tree.body)
    >>> page.adopt(scanned, links, None) if scanned else None
    >>> scanned is None or main_listing(page, page.parent[scanned.link_keys[0]], 3)
    (1, True)
    """
    native = lexbor_core()
    if native is None:
        return None
    path = page.up(main, set())  # main, its ancestors, the root
    addresses = page.index_addresses
    try:
        found = native.main_listing(
            page.nodes[0], [addresses[k] for k in reversed(path[:-1])], levels, _LIST_RULES
        )
    except CORE_FAILURES as exc:
        _failed("a page's listing", exc)
        return None
    if found is None:
        return None
    LISTING_PAGES[0] += 1
    at, listing = found
    return path[len(path) - 1 - at], listing


#: Pages whose own URLs the core found (placement.py ``_site_of``; tests check).
SITE_PAGES = [0]
CORE_FUNCTIONS = (*CORE_FUNCTIONS, "self_urls")


def self_urls(tree: LexborHTMLParser) -> list[str] | None:
    """placement.py ``_SELF_URLS``' values in *tree* by the core (native/src/site.rs): each
    selector's first element's attribute, "" for none (or no value), in one walk that stops
    at the first selector's element (then its value alone: the others are not read); None
    without the core, without a root, on a case only lexbor's selectors tell (a ``rel``
    that is "canonical" in another case: no log), or if the core failed (then logged once).

    >>> tree = LexborHTMLParser('<base href=/b><meta property="og:url" content="//a.test/">')
    >>> got = self_urls(tree)
    >>> got is None or got
    ['', '//a.test/', '/b']
    >>> self_urls(LexborHTMLParser("<link rel=canonical href=/c><base href=/b>")) in (None, ["/c"])
    True
    """
    native = lexbor_core()
    root = tree.root
    if native is None or root is None:
        return None
    try:
        found = native.self_urls(root)
    except CORE_FAILURES as exc:
        _failed("a page's own URLs", exc)
        return None
    if found is None:
        return None
    SITE_PAGES[0] += 1
    return [url or "" for url in found]


#: What ``main_listing`` reads of placement's constants.
_LIST_RULES = (
    sorted(placement_module._ITEM_TAGS), sorted(placement_module._LAYOUT_TAGS),
    placement_module._MAX_SIBLINGS, placement_module._LIST_ITEMS,
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The language detector's feature counts (pipelines/pagelang.py ``detect``): py3langid's
# ``visit_counts`` (its byte automaton over the sample) by the core (native/src/langid.rs);
# the scores stay py3langid's (numpy). tests/test_native_langid.py holds them equal.
# ---------------------------------------------------------------------------------------------

CORE_FUNCTIONS = (*CORE_FUNCTIONS, "langid_visits")

#: py3langid's tables as the core reads them, for the one identifier of the process:
#: (identifier, (automaton, row bases, outputs)).
_LANGID_TABLES: list[tuple[Any, tuple[array, array, array]]] = []


def langid_visits(identifier: Any, text: bytes) -> dict[int, int] | None:
    """py3langid's ``visit_counts`` of *identifier* (a ``LanguageIdentifier``) over *text*
    (its encoded sample) by the core: feature -> count, in the order first reached (the order
    py3langid's ``Counter`` keeps); None without the core or if it failed (then logged once):
    py3langid counts.

    >>> from pipelines.pagelang import _identifier
    >>> from py3langid.langid import visit_counts
    >>> lid, text = _identifier(), "Ein ganz gewöhnlicher Satz.".encode()
    >>> got = langid_visits(lid, text)
    >>> got is None or list(got.items()) == list(
    ...     visit_counts(lid.tk_nextmove, lid._rowbase, lid.tk_output, text).items())
    True
    """
    native = core()
    if native is None:
        return None
    if not _LANGID_TABLES or _LANGID_TABLES[0][0] is not identifier:
        try:  # the two small tables as arrays, once (the automaton is one already)
            tables = (identifier.tk_nextmove, array("q", identifier._rowbase),
                      array("q", identifier.tk_output))  # fmt: skip
        except (AttributeError, TypeError, OverflowError) as exc:
            _failed("the language detector's tables", exc)
            return None
        _LANGID_TABLES[:] = [(identifier, tables)]
    try:
        return native.langid_visits(*_LANGID_TABLES[0][1], text)
    except (RuntimeError, TypeError, ValueError, OverflowError) as exc:
        _failed("the language detector's counts", exc)
        return None


# ---------------------------------------------------------------------------------------------
# Page type's scores (pipelines/page_type.py ``classify_signals``: bias plus each signal times
# its weights, in the signals' order) by the core (native/src/classify.rs).
# ---------------------------------------------------------------------------------------------

CORE_FUNCTIONS = (*CORE_FUNCTIONS, "page_type_weights", "page_type_scores")


@cache
def _scores_core() -> ModuleType | None:
    """The core with page type's weights given (once), or None without the core or if they
    do not convert (logged once): then Python's scores."""
    from pipelines.page_type_weights import BIAS, WEIGHTS

    return _core_given(
        "page type's weights",
        lambda native: native.page_type_weights(list(BIAS), dict(WEIGHTS)),
    )


def page_type_scores(signals: dict[str, float]) -> list[float] | None:
    """``classify_signals``' scores of *signals* by the core: Python's very floats, one per
    type; None without the core or if it failed (then logged once): Python's.

    >>> got = page_type_scores({"s_product": 1.0, "u_product": 1.0, "l_links": 3.0})
    >>> got is None or page_type_module.classify_signals({"l_links": 3.0}, lambda s: got)[0]
    'product'
    """
    native = _scores_core()
    if native is None:
        return None
    try:
        return native.page_type_scores(signals)
    except (RuntimeError, TypeError, ValueError, OverflowError) as exc:
        _failed("a page's type scores", exc)
        return None


# ---------------------------------------------------------------------------------------------
# A page's Link objects (extract.py ``LinkRows.rows``) by the core (native/src/link_objects.rs):
# allocated and their slots set in one call, without a Python frame per row.
# ---------------------------------------------------------------------------------------------


def _link_slots() -> tuple[Any, ...] | None:
    """``Link``'s member descriptors in ``LINK_FIELDS``' order, or None if its ``__init__``
    may do more than set them (a ``__post_init__``, an ``__init__`` not the dataclass's, a
    ``__setattr__`` or ``__new__`` of its own, other slots): then Python calls it."""
    fields = tuple(Link.__dict__.get(name) for name in extract_module.LINK_FIELDS)
    what = (Link.__dict__.get("__init__"), getattr(Link, "__post_init__", None),
            Link.__setattr__, Link.__new__, type(Link), getattr(Link, "__slots__", ()),
            fields)  # fmt: skip
    return None if core() is None else _slots_of(what)  # (no answer kept while it is off)


@lru_cache(maxsize=4)
def _slots_of(what: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """:func:`_link_slots` for what ``Link`` is now (checked again when any part changes)."""
    init, post_init, setattr_, new, meta, slots, descriptors = what
    fields = extract_module.LINK_FIELDS
    params = getattr(Link, "__dataclass_params__", None)
    if (params is None or not params.init or post_init is not None or meta is not type
            or not _generated_init(init) or setattr_ is not object.__setattr__
            or new is not object.__new__ or sorted(slots) != sorted(fields)
            or not all(type(d) is _MEMBER for d in descriptors)):  # fmt: skip
        return None  # a field made a property (review16-e16 3) is set by __init__
    # One row both ways: an __init__ written in the class body (dataclass keeps it) that sets
    # other values than it is given shows here (review15-sp15 3).
    probe = [["http://a.test/"], ["an Anchor"], ["t"], [["r"]], [True], [False], [True],
             [False], ["a"], ["content"], [3], [0.5], [7]]  # fmt: skip
    try:
        made = core().link_objects(Link, descriptors, tuple(probe), _REL)
    except CORE_FAILURES:
        return None
    by_init = Link(*(column[0] for column in probe))
    if not made or [getattr(made[0], f) for f in fields] != [getattr(by_init, f) for f in fields]:
        return None
    return descriptors


def _generated_init(init: Any) -> bool:
    """Whether *init* may be the ``__init__`` that ``@dataclass`` wrote for ``Link`` (made from
    a string, named for the class), not a function assigned to it later."""
    code = getattr(init, "__code__", None)
    return (code is not None and code.co_filename == "<string>"
            and init.__qualname__ == f"{Link.__qualname__}.__init__")  # fmt: skip


def link_objects(columns: Sequence[list[object]]) -> list[Link] | None:
    """The ``Link`` of each row of *columns* (one list per ``LINK_FIELDS`` name), each empty
    rel a list of its own (as ``own_rels`` makes them), as ``list(map(Link, *columns))``;
    None without the core or if it failed (then logged once): Python makes them.

    >>> columns = (["http://a.test/"], ["A"], [None], [[]], [False], [False], [False],
    ...            [False], ["a"], ["content"], [0], [1.0], [2])
    >>> made = link_objects(columns)
    >>> made is None or (made == [Link(*(c[0] for c in columns))], made[0].rel is not columns[3][0])
    (True, True)
    """
    native = core()
    slots = None if native is None else _link_slots()
    if native is None or slots is None:
        return None
    try:
        return native.link_objects(Link, slots, tuple(columns), _REL)
    except CORE_FAILURES as exc:
        _failed("a page's link objects", exc)
        return None


_REL = extract_module._REL  # the rel column's index in LINK_FIELDS
_MEMBER = types.MemberDescriptorType  # what __slots__ makes of a field
