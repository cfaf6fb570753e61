"""The native core (the Rust crate in ``native/``, module ``linkcrawl_native``) when it is built.

``pip install`` builds it when cargo is on the machine; without Rust the package installs the
Python path, which gives the same rows, and says so once per process. ``LINKCRAWL_NATIVE=0``
chooses the Python path even when the core is built (to compare the two).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from functools import cache
from types import ModuleType
from typing import NamedTuple

from pipelines.encoding import decode, encoding_of_meta, sniff_encoding
from pipelines.extract import (
    PageLinks,
    append_links,
    bound_body,
    collapse_ws,
    extract_page,
    link_targets,
    page_fields,
    parse_page,
    split_rel,
)
from pipelines.placement import Placed

log = logging.getLogger(__name__)

#: The environment variable that turns the native core off ("0").
NATIVE_ENV = "LINKCRAWL_NATIVE"
#: The core this Python code speaks to: native/Cargo.toml's version and the interface number
#: (native/src/lib.rs ``core_version``; bumped with any change of a function's signature or
#: return shape).
CORE_VERSION = "0.1.0+api5"
#: The core's functions this module calls.
CORE_FUNCTIONS = ("extract_links", "extract_decoded")


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
        log.error("linkcrawl: native core failed on %s (%s); using the Python path", url, exc)
        return extract_page(body, url, content_type=content_type, x_robots_tag=x_robots_tag)


def _native_page(
    native: ModuleType, body: bytes, url: str, content_type: str | None, x_robots_tag: str | None
) -> PageLinks:
    """:func:`extract_links` by the core *native*."""
    limits: list[str] = []
    body, many_tags, deep = bound_body(body, limits)
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
        native.lexbor_load(selectolax.lexbor.__file__)
        tree = selectolax.lexbor.LexborHTMLParser(_PROBE)  # alive during the call
        probe = native.lexbor_links(tree.root.mem_id)
    except RuntimeError as exc:
        log.warning("linkcrawl: lexbor's C API not usable (%s); using html5ever", exc)
        return None
    if tuple(probe) != _PROBE_WALK:  # same names, another ABI (a selectolax we do not know)
        log.warning("linkcrawl: lexbor's C API answers otherwise; using html5ever")
        return None
    return native


# A page walked once at load: the lexbor binding must see what selectolax sees.
_PROBE = "<title>T</title><svg><a href=/s>S</a></svg><a href=/x rel=ugc title>A<img alt=B></a>"
_PROBE_WALK = ("T", None, None, [], [], False, [], False,
               [("/x", "a", "ugc", None, "A", True, ["B"])])  # fmt: skip


def extract_links_lexbor(
    body: bytes, url: str, *, content_type: str | None = None, x_robots_tag: str | None = None
) -> PageLinks | None:
    """:func:`extract_links` over the tree the Python path parses (:func:`parse_page`:
    selectolax's lexbor, same bounds, same flattening), walked in Rust through lexbor's C API;
    None when that is not available.

    >>> page = extract_links_lexbor(b'<a href="/x" rel=UGC>A<img alt=B></a>', "http://s.test/p")
    >>> page is None or [(k.target_url, k.anchor_text, k.rel, k.is_image) for k in page.links]
    [('http://s.test/x', 'A', ['ugc'], True)]
    """
    return _or_python(_lexbor_page, lexbor_core(), body, url, content_type, x_robots_tag)


def _lexbor_page(
    native: ModuleType, body: bytes, url: str, content_type: str | None, x_robots_tag: str | None
) -> PageLinks:
    """:func:`extract_links_lexbor` by the core *native*."""
    limits: list[str] = []
    tree, encoding = parse_page(body, content_type, limits=limits)
    root = tree.root
    if root is None:  # lexbor always makes <html>; a tree without it is not ours to walk
        return extract_page(body, url, content_type=content_type, x_robots_tag=x_robots_tag)
    # `tree` holds the document: it stays alive (and unchanged) during the call.
    walk = _Walk(*native.lexbor_links(root.mem_id))
    return _page_links(walk, url, encoding, limits, x_robots_tag)


def _page_links(
    walk: _Walk, url: str, encoding: str, limits: list[str], x_robots_tag: str | None
) -> PageLinks:
    """The page's fields and link rows from a core's walk (hrefs resolved in Python)."""
    page, base, long = page_fields(
        url, encoding, limits, x_robots_tag, base_href=walk.base_href,
        title=None if walk.title is None else collapse_ws(walk.title),
        canonical_href=walk.canonical_href, robots=walk.robots, truncated=walk.truncated,
    )  # fmt: skip
    links = walk.links
    targets, too_long = link_targets((link[0] for link in links), base, encoding, url)
    staged: list[tuple[str, str, bool, list[str]]] = []
    rels: list[list[str]] = []
    texts: list[str] = []
    titles: list[str | None] = []
    for index, target in targets:
        _, tag, rel, title, text, is_image, alts = links[index]
        staged.append((target, tag, is_image, alts))
        rels.append(split_rel(rel))
        texts.append(collapse_ws(text))
        titles.append(title)
    placements = [_NO_PLACEMENT] * len(staged)
    if append_links(page, staged, rels, texts, titles, placements) or long or too_long:
        page.limits_hit.append("long_strings")
    return page
