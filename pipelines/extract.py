"""Link extraction: one HTML5 parse of a page, every link with its columns.

The parser is lexbor (through selectolax), a spec-conformant HTML5 parser: links inside
``<template>``, comments and scripts are not links; misnested ``<a>`` are split as a browser
splits them; content after an early ``</html>`` is kept. The crawler and ``linkcrawl extract``
both call :func:`extract_page`, so they give the same rows for the same bytes.
"""

from __future__ import annotations

import codecs
import heapq
import re
import unicodedata
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from html import escape as html_escape

from selectolax.lexbor import LexborHTMLParser, LexborNode

from pipelines.encoding import decode, encoding_of_meta, sniff_encoding
from pipelines.linktext import anchor_parts, collapse_ws, hidden_elements, is_hidden
from pipelines.page_type import LinkSignals, PageMarkup, Scores, classify_page
from pipelines.pagelang import (
    DETECT_SAMPLE_CHARS,
    Visits,
    first_language,
    page_country,
    page_lang,
    parse_lang,
)
from pipelines.placement import Placed, Scanner, place_links_scored
from pipelines.urls import (
    encode_query,
    is_same_document,
    is_skipped_href,
    resolve_href,
    resolve_link,
    url_host,
)

_ASCII_WS = re.compile(r"[\t\n\f\r ]+")
_ASCII_WS_BUT_SPACE = re.compile(r"[\t\n\f\r]")
_NOFOLLOW_DIRECTIVES = frozenset({"nofollow", "none"})

#: Bytes of a body that are parsed; the rest is cut (as the crawler cuts what it downloads).
MAX_PARSE_BYTES = 8 * 1024 * 1024
#: Tags (``<``) parsed per page: the body is cut before the next one. Each makes an element at
#: most, and every pass over the page is linear in them; no real page has this many.
MAX_TAGS = 500_000
#: Links kept per page, in document order; the rest are dropped.
MAX_LINKS_PER_PAGE = 100_000
#: Characters kept of each text a row stores (page title, meta robots, anchor text, link title,
#: rel): the rest is cut.
MAX_TEXT_CHARS = 4096
#: A link whose target URL is longer than this (4x the crawl's 2,083) is dropped, not cut (a
#: cut URL is another URL); so is a canonical URL (None).
MAX_URL_CHARS = 8192
#: A page's stored text (``texts/``, crawl --store-text) keeps its first 32 KiB of UTF-8: the
#: text of nine in ten article pages whole (Zyte benchmark: median 7 KB).
MAX_PAGE_TEXT_BYTES = 32 * 1024
#: hreflang alternates read per page (a page that lists every locale of a site lists ~50).
MAX_ALTERNATES = 200
#: Block elements nested deeper than this are flattened before parsing (see _limit_nesting).
MAX_BLOCK_DEPTH = 512
#: Elements nested deeper than this are flattened after parsing (see _flatten_deep), so that
#: every walk up or down the tree (anchors, placement) is bounded by it.
MAX_DOM_DEPTH = 256
# Pages with fewer tags than this cannot nest deep enough to be slow: no need to look.
_NESTING_CHECK_TAGS = 8192
#: Elements the parser may re-open in new blocks per page (formatting elements left open, see
#: _limit_reopened): past it, the formatting start tags that would re-open more are dropped.
MAX_REOPENED = 100_000
#: ... counted in units: a re-opened element is one, plus one per KiB of its start tag
#: (its attributes are cloned with it: 2,000 re-opened ``<b itemtype='...1 MB'>`` took 2 GB).
REOPEN_UNIT_BYTES = 1024
#: Attributes kept per tag (the rest dropped, see _limit_attributes): both parsers check each
#: new attribute against the tag's others, so a tag's parse is quadratic in them (one tag of
#: 40,000 took 3 s). The Zyte and WCXB pages' most is far below it.
MAX_ATTRS_PER_TAG = 256
# Start and end tags of the elements that make lexbor's "p in button scope" check walk the
# whole stack of open elements: nested deeply, they make the parse quadratic. (p, li, dd and
# dt are left out: each closes the previous one, so they do not nest by themselves.)
# Matched in the ASCII-lowercased body (bytes.lower() keeps offsets; a regex with IGNORECASE
# is three times slower).
_BLOCK_TAG_RE = re.compile(
    rb"<(/?)(?:address|article|aside|blockquote|center|details|dialog|dir|div|dl|fieldset"
    rb"|figcaption|figure|footer|form|h[1-6]|header|hgroup|listing|main|menu|nav|ol|pre"
    rb"|search|section|summary|ul)(?=[\t\n\f\r />])[^>]*>?"
)
_ROBOTS_META_NAMES = frozenset({"robots", "googlebot"})


@dataclass(slots=True)
class Link:
    """One link occurrence: the per-link columns of ``links/`` that a page alone determines."""

    target_url: str
    anchor_text: str
    title: str | None
    rel: list[str]
    nofollow: bool
    sponsored: bool
    ugc: bool
    is_image: bool
    tag: str
    placement: str
    position: int
    placement_score: float | None = None
    placement_block: int | None = None


#: :class:`Link`'s fields, in order: the columns of a :class:`LinkRows`.
LINK_FIELDS: tuple[str, ...] = tuple(Link.__dataclass_fields__)


def own_rels(rels: Sequence[list[str]]) -> list[list[str]]:
    """*rels* with each empty one a list of its own: the core's rel column shares one empty
    list, and a row handed out (a ``Link``, a ``link_rows`` dict) may be changed in place
    (review14-r14 1).

    >>> shared = []
    >>> rows = own_rels([shared, ["ugc"], shared])
    >>> rows == [[], ["ugc"], []] and rows[0] is not rows[2]
    True
    """
    return [rel or [] for rel in rels]


class LinkRows(Sequence[Link]):
    """A page's links held as columns (one list per :data:`LINK_FIELDS` name, as the native
    core hands them): a sequence of :class:`Link` made only when a row is first asked for.
    Column readers (``pipelines/rows.py``, the page type's link signals) read ``columns``:
    no object per row. Equal to a list of the same links.

    >>> rows = LinkRows((["http://a.test/"], ["A"], [None], [[]], [False], [False], [False],
    ...                  [False], ["a"], ["content"], [0], [1.0], [2]))
    >>> len(rows), rows[0].anchor_text, rows == [rows[0]], rows.column("placement")
    (1, 'A', True, ['content'])
    """

    __slots__ = ("_rows", "columns")

    def __init__(self, columns: Sequence[list[object]]) -> None:
        if len(columns) != len(LINK_FIELDS) or len({len(c) for c in columns}) > 1:
            raise ValueError("a LinkRows needs one column per Link field, all of one length")
        self.columns = tuple(columns)
        self._rows: list[Link] | None = None

    def column(self, name: str) -> list[object]:
        """The column *name* (a :data:`LINK_FIELDS` name), not to be changed: the core's list,
        or read from the rows once they are made (a caller may have changed one)."""
        if self._rows is not None:
            return [getattr(link, name) for link in self._rows]
        return self.columns[_FIELD_INDEX[name]]

    def rows(self) -> list[Link]:
        """The links as :class:`Link` objects, made once (later calls give the same list)."""
        if self._rows is None:
            columns = list(self.columns)
            columns[_REL] = own_rels(columns[_REL])
            self._rows = list(map(Link, *columns))
        return self._rows

    def __len__(self) -> int:
        return len(self.columns[0])

    def __getitem__(self, index):  # type: ignore[no-untyped-def]  # int or slice, as a list's
        return self.rows()[index]

    def __iter__(self) -> Iterator[Link]:
        return iter(self.rows())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LinkRows):
            return self.columns == other.columns if other._rows is self._rows is None else (
                self.rows() == other.rows())  # fmt: skip
        if isinstance(other, list):
            return self.rows() == other
        return NotImplemented  # as a list: the other side may know (mock.ANY)

    __hash__ = None  # type: ignore[assignment]  # mutable, as a list

    def __repr__(self) -> str:
        return repr(self.rows())

    def __reduce__(self) -> tuple[object, ...]:  # pickled as its columns (rows as made)
        return (_link_rows, (self.columns, self._rows))


def _link_rows(columns: Sequence[list[object]], rows: list[Link] | None) -> LinkRows:
    """A :class:`LinkRows` back from its pickle."""
    made = LinkRows(columns)
    made._rows = rows
    return made


_FIELD_INDEX = {name: index for index, name in enumerate(LINK_FIELDS)}
_REL = _FIELD_INDEX["rel"]


@dataclass(slots=True)
class PageLinks:
    """What one parse of a page yields."""

    base_url: str
    encoding: str
    title: str | None = None
    canonical: str | None = None
    meta_robots: str | None = None
    nofollow_page: bool = False
    #: A list, or (from the native core) a :class:`LinkRows`: the same links, as columns.
    links: list[Link] | LinkRows = field(default_factory=list)
    #: More than MAX_LINKS_PER_PAGE links: the first ones are kept.
    links_truncated: bool = False
    #: The bounds that cut or flattened something of the page, in the order met: "parse_bytes"
    #: (body cut at MAX_PARSE_BYTES), "dom_nodes" (cut at MAX_TAGS), "dom_depth" (nesting
    #: flattened), "links" (links cut at MAX_LINKS_PER_PAGE), "formatting" (formatting tags
    #: dropped, see _limit_reopened), "long_strings" (a text cut at MAX_TEXT_CHARS, a link or
    #: canonical dropped for a URL longer than MAX_URL_CHARS), "attributes" (a tag's
    #: attributes past MAX_ATTRS_PER_TAG dropped).
    limits_hit: list[str] = field(default_factory=list)
    #: Language (BCP-47 primary subtag) and where it came from: html-lang, content-language,
    #: detected or none (pipelines/pagelang.py); country (ISO 3166) and its source: cctld,
    #: hreflang, lang-region or none.
    lang: str | None = None
    lang_source: str = "none"
    country: str | None = None
    country_source: str = "none"
    #: The visible text, lines joined by newlines, cut at MAX_PAGE_TEXT_BYTES; only when
    #: asked for (``keep_text``).
    text: str | None = None
    #: What the page is for (pipelines/page_type.py): article, listing, collection, product,
    #: forum, service, documentation or other.
    page_type: str | None = None


def split_rel(rel: str | None) -> list[str]:
    """Split a rel attribute on ASCII whitespace, as ``relList`` does, lowercase it and drop
    repeated tokens (``relList`` is an ordered set).

    >>> split_rel(" NoFollow\\tEXTERNAL nofollow")
    ['nofollow', 'external']
    >>> split_rel("external,nofollow")
    ['external,nofollow']
    >>> split_rel(None)
    []
    """
    if not rel:
        return []
    tokens = rel.lower().split(" ") if _ASCII_WS_BUT_SPACE.search(rel) is None else None
    if tokens is None or "" in tokens:
        tokens = [t for t in _ASCII_WS.split(rel.lower()) if t]
    return list(dict.fromkeys(tokens)) if len(tokens) > 1 else tokens


def robots_nofollow(directives: str | None) -> bool:
    """True when robots directives (meta content or X-Robots-Tag) forbid following links.

    A user-agent prefix (``googlebot: nofollow``) applies too: we follow Google's reading.

    >>> robots_nofollow("noindex, NoFollow")
    True
    >>> robots_nofollow("googlebot: none")
    True
    >>> robots_nofollow("noarchive")
    False
    """
    if not directives:
        return False
    for part in directives.lower().replace(";", ",").split(","):
        token = part.rsplit(":", 1)[-1].strip()
        if token in _NOFOLLOW_DIRECTIVES:
            return True
    return False


@lru_cache(maxsize=64)
def _is_legacy_encoding(encoding: str) -> bool:
    """Whether a browser encodes link queries in *encoding* rather than UTF-8 (UTF-16 pages
    use UTF-8 for URLs, as do pages in an encoding Python does not know)."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return False
    return name not in ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "ascii")


@lru_cache(maxsize=1 << 14)
def _resolve_absolute(href: str) -> str | None:
    return resolve_link(href, None)


@lru_cache(maxsize=4)
def _nth_tag(n: int) -> re.Pattern[bytes]:
    """Matches the start of a body up to its *n*-th ``<`` (one pass in C).

    >>> _nth_tag(2).match(b"<a>x<b>y<c>").end()
    5
    """
    return re.compile(rb"(?:[^<]*<){%d}" % n)


def _limit_nesting(body: bytes, max_depth: int = MAX_BLOCK_DEPTH) -> bytes:
    """From where block elements nest deeper than *max_depth*, drop the block tags.

    lexbor's parse time grows with the square of the nesting depth of block elements (100,000
    nested ``<div>`` take minutes), so a page nested deeper than any real page is flattened
    first (Chromium's parser, likewise, stops nesting at 512 levels): the text and the links
    inside stay. The tags are found by a regular expression on the raw bytes (any
    ASCII-compatible encoding), not a tokenizer: only pages with more than
    ``_NESTING_CHECK_TAGS`` ``<`` are looked at.

    >>> _limit_nesting(b"<div>" * 4 + b"<a href=/x>x</a>" + b"</div>" * 4, 2)
    b'<div><div><a href=/x>x</a>'
    >>> _limit_nesting(b"<div><p>a<p>b<DIV class=x>c</div></div><div>d</div>", 1)
    b'<div><p>a<p>bcd'
    >>> _limit_nesting(b"<div><div></div></div><div></div>", 2)
    b'<div><div></div></div><div></div>'
    """
    lowered = body.lower()
    depth = 0
    for match in _BLOCK_TAG_RE.finditer(lowered):
        depth = depth - 1 if match[1] else depth + 1
        if depth > max_depth:
            parts = [body[: match.start()]]
            last = match.end()
            for later in _BLOCK_TAG_RE.finditer(lowered, last):
                parts.append(body[last : later.start()])
                last = later.end()
            parts.append(body[last:])
            return b"".join(parts)
    return body


# -- the stack of open elements, estimated on the raw bytes (see _limit_open_elements) ------
_TAG_RE = re.compile(rb"<(/?)([a-z][^\t\n\f\r />]*)[^>]*>?|<!--")
_VOID = frozenset(
    b"area base br col embed hr img input link meta source track wbr param keygen frame "
    b"basefont bgsound image html head body".split()
)  # and html, head, body: never nested
_RAW_TEXT = frozenset(b"script style textarea title xmp iframe noembed noframes plaintext".split())
# A start tag closes an open element of its group found above the nearest boundary.
_TABLE_BOUNDS = frozenset(b"table template html".split())
_SCOPE_BOUNDS = frozenset(
    b"applet caption html table td th marquee object template button svg math".split()
)
_LIST_BOUNDS = frozenset(
    b"applet caption html table td th marquee object template button ul ol dl menu section "
    b"article aside nav header footer main blockquote fieldset figure form details".split()
)
_CLOSES: dict[bytes, tuple[frozenset[bytes], frozenset[bytes]]] = {
    b"li": (frozenset({b"li"}), _LIST_BOUNDS),
    b"dd": (frozenset({b"dd", b"dt"}), _LIST_BOUNDS),
    b"dt": (frozenset({b"dd", b"dt"}), _LIST_BOUNDS),
    b"option": (frozenset({b"option"}), _SCOPE_BOUNDS),
    b"optgroup": (frozenset({b"option", b"optgroup"}), _SCOPE_BOUNDS),
    b"tr": (frozenset({b"tr", b"td", b"th"}), _TABLE_BOUNDS),
    b"td": (frozenset({b"td", b"th"}), _TABLE_BOUNDS),
    b"th": (frozenset({b"td", b"th"}), _TABLE_BOUNDS),
    b"a": (frozenset({b"a"}), _SCOPE_BOUNDS),
    b"nobr": (frozenset({b"nobr"}), _SCOPE_BOUNDS),
    b"button": (frozenset({b"button"}), _TABLE_BOUNDS),
    b"form": (frozenset({b"form"}), _TABLE_BOUNDS),
    **{
        t: (frozenset({b"tbody", b"thead", b"tfoot", b"tr", b"td", b"th", b"caption"}),
            _TABLE_BOUNDS)
        for t in (b"tbody", b"thead", b"tfoot", b"caption", b"colgroup")
    },
    **{t: (frozenset({b"rb", b"rt", b"rtc", b"rp"}), _SCOPE_BOUNDS) for t in
       (b"rb", b"rt", b"rtc", b"rp")},
}  # fmt: skip
# Start tags that close an open <p> (a block, in button scope).
_CLOSES_P = frozenset(
    b"address article aside blockquote center details dialog dir div dl fieldset figcaption "
    b"figure footer form h1 h2 h3 h4 h5 h6 header hgroup hr li dd dt listing main menu nav ol "
    b"p pre search section summary table ul xmp plaintext".split()
)
_P_GROUP = (frozenset({b"p"}), _SCOPE_BOUNDS)
_HEADINGS = frozenset(b"h1 h2 h3 h4 h5 h6".split())
_KEEP_TAGS = frozenset({b"a"})  # never dropped (a link; it does not nest in itself)


def _limit_open_elements(body: bytes, max_depth: int = MAX_BLOCK_DEPTH) -> bytes:
    """Drop the start tags that would nest elements deeper than *max_depth*.

    lexbor's parse walks the stack of open elements for many tags (a block's start looks for an
    open ``<p>``, an unknown end tag for its match, text under an ``<a>`` for the link): with
    100,000 open ``<span>``, quadratic. The stack is estimated on the raw bytes (tags, the
    elements that close themselves or their kind, raw text and comments skipped) in one pass
    of O(1) steps: per tag, where it is open in the stack; per boundary set, the nearest
    boundary. A page under the bound is returned as it is.

    >>> _limit_open_elements(b"<span>" * 3 + b"<a href=/x><b>x</b></a>" + b"</span>" * 3, 2)
    b'<span><span><a href=/x>x</b></a></span></span></span>'
    >>> _limit_open_elements(b"<ul><li>a<li>b<li><p>c<p>d<p>e</ul><table><tr><td>f<td>g", 3)
    b'<ul><li>a<li>b<li><p>c<p>d<p>e</ul><table><tr><td>f<td>g'
    >>> _limit_open_elements(b"<b><script>'<i><i><i>'</script><!-- <i><i> --><i></b>", 2)
    b"<b><script>'<i><i><i>'</script><!-- <i><i> --><i></b>"
    """
    lowered = body.lower()
    tags: list[bytes] = [b""]  # the stack; a root below all
    positions: dict[bytes, list[int]] = {}  # tag -> its positions in the stack
    # Per boundary set, the position of the nearest boundary at or below each position.
    near = {_TABLE_BOUNDS: [0], _SCOPE_BOUNDS: [0], _LIST_BOUNDS: [0]}
    table_near, scope_near, list_near = near[_TABLE_BOUNDS], near[_SCOPE_BOUNDS], near[_LIST_BOUNDS]
    drop: list[tuple[int, int]] = []
    skip_to = 0

    def pop_to(k: int) -> None:
        while len(tags) > k:
            positions[tags.pop()].pop()
            table_near.pop()
            scope_near.pop()
            list_near.pop()

    def open_in(group: frozenset[bytes], bounds: frozenset[bytes]) -> int:
        floor = near[bounds][-1]
        best = 0
        for tag in group:
            at = positions.get(tag)
            if at and at[-1] > floor and at[-1] > best:
                best = at[-1]
        return best

    for match in _TAG_RE.finditer(lowered):
        if match.start() < skip_to:
            continue
        name = match[2]
        if name is None:  # a comment
            end = lowered.find(b"-->", match.end())
            if end < 0:
                break
            skip_to = end + 3
        elif match[1]:  # an end tag: closes its element if open
            at = positions.get(name)
            if at:
                pop_to(at[-1])
        elif name in _VOID:
            continue
        elif name in _RAW_TEXT:
            end = lowered.find(b"</" + name, match.end())
            if end < 0:
                break
            skip_to = end
        else:
            if name in _CLOSES_P:
                k = open_in(*_P_GROUP)
                if k:
                    pop_to(k)
                if name in _HEADINGS and tags[-1] in _HEADINGS:
                    pop_to(len(tags) - 1)
            closes = _CLOSES.get(name)
            if closes is not None:
                k = open_in(*closes)
                if k:
                    pop_to(k)
            if match[0].endswith(b"/>") and (positions.get(b"svg") or positions.get(b"math")):
                continue  # self-closing in SVG or MathML
            k = len(tags)
            if k > max_depth and name not in _KEEP_TAGS:
                drop.append(match.span())
                continue
            tags.append(name)
            at = positions.get(name)
            if at is None:
                positions[name] = [k]
            else:
                at.append(k)
            table_near.append(k if name in _TABLE_BOUNDS else table_near[-1])
            scope_near.append(k if name in _SCOPE_BOUNDS else scope_near[-1])
            list_near.append(k if name in _LIST_BOUNDS else list_near[-1])
    if not drop:
        return body
    return _cut_spans(body, drop)


def _cut_spans(body: bytes, drop: list[tuple[int, int]]) -> bytes:
    """``body`` without the sorted, disjoint ``[start, end)`` spans of ``drop``.

    >>> _cut_spans(b"a<b>c</b>d", [(1, 4), (5, 9)])
    b'acd'
    """
    parts = []
    last = 0
    for start, end in drop:
        parts.append(body[last:start])
        last = end
    parts.append(body[last:])
    return b"".join(parts)


# -- attributes per tag (see _limit_attributes) ----------------------------------------------
# A tag of more than MAX_ATTRS_PER_TAG attributes spans more than twice as many bytes (each
# attribute but the first after a separator or a closing quote): such a stretch, from a tag's
# "<" to the next ">", needs a look...
_LONG_TAG_RE = re.compile(rb"</?[a-zA-Z][^>]{%d}[^>]*+" % (2 * MAX_ATTRS_PER_TAG))
# ...and so does a tag with a ">" in a quoted value (the tag goes on past it). A quote opens a
# value only after "=": this finds each such value (and a few "=" in text and scripts), and
# only tries the "=" (values that overlap are all tried). Each value is scanned once, to its
# quote or ">". (Its classes are spelled as ranges: 2.5x faster than [^">].)
_QUOTED_GT_RE = re.compile(rb"""=(?=[\t\n\f\r ]*+(?:"[\x00-!#-=?-\xff]*+|'[\x00-&(-=?-\xff]*+)>)""")
_TAG_START_RE = re.compile(rb"</?[a-zA-Z]")
# One attribute as the tokenizer reads it: a name (its first character may be "=", quotes
# and "<" are name characters), then maybe "=" and a value, quoted (a ">" inside does not
# end the tag; unclosed, it runs to the end) or not.
_ONE_ATTR = (
    rb"[^\t\n\f\r />][^\t\n\f\r />=]*+"
    rb"""(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+(?:"[^"]*+"?|'[^']*+'?|[^\t\n\f\r >]*+))?"""
)
# A start or end tag's name and its first MAX_ATTRS_PER_TAG attributes (a quoted value ends
# the attribute: the next may follow at once); then the rest of its attributes.
_FIRST_ATTRS_RE = re.compile(
    rb"</?[a-zA-Z][^\t\n\f\r />]*+(?>[\t\n\f\r /]*+%s){%d}" % (_ONE_ATTR, MAX_ATTRS_PER_TAG)
)  # (atomic: "a=b" is never retried as "a" then "=b")
_MORE_ATTRS_RE = re.compile(rb"(?>[\t\n\f\r /]*+%s)*+" % _ONE_ATTR)
_WHOLE_TAG_RE = re.compile(rb"</?[a-zA-Z][^\t\n\f\r />]*+(?>[\t\n\f\r /]*+%s)*+" % _ONE_ATTR)
# Where the tokenizer may leave the data state or the parser change what raw text is (in the
# lowercased body): a comment, a CDATA section (in SVG or MathML), the start tag of a raw text
# element (no "<" in its text starts a tag, unless it is in SVG or MathML), and the tags that
# open or close SVG, MathML, their HTML islands and a frameset (see _next_context).
_RAW_TEXT_NAMES = b"script style textarea title xmp iframe noembed noframes".split()
_RAW_TEXT_START_RE = re.compile(rb"<(%s)(?=[\t\n\f\r />])" % b"|".join(_RAW_TEXT_NAMES))
_RAW_TEXT_END_RE = {name: re.compile(rb"</%s[\t\n\f\r />]" % name) for name in _RAW_TEXT_NAMES}
_FOREIGN_ROOTS = frozenset({b"svg", b"math"})
# SVG's and MathML's HTML islands (integration points): HTML again inside them.
_ISLANDS = frozenset(b"foreignobject desc title mi mo mn ms mtext annotation-xml".split())
_CONTEXT_NAMES = _FOREIGN_ROOTS | _ISLANDS | {b"frameset"}
_CONTEXT_ONLY_NAMES = _CONTEXT_NAMES - set(_RAW_TEXT_NAMES)
_OPENER_RE = re.compile(
    rb"<!--|<!\[cdata\[|"
    + _RAW_TEXT_START_RE.pattern
    + rb"|</?(?:%s)(?=[\t\n\f\r />])" % b"|".join(sorted(_CONTEXT_NAMES))
)
# ...of which in HTML (not in SVG or MathML), the tags that change the context are the starts.
_HTML_OPENER_RE = re.compile(
    rb"<!--|" + _RAW_TEXT_START_RE.pattern + rb"|<(?:svg|math|frameset)(?=[\t\n\f\r />])"
)
# A comment ends at its first "-->" or "--!>"; "<!-->" and "<!--->" are whole comments.
_SHORT_COMMENT_RE = re.compile(rb"<!---?>")
# Markup starts at "<" then "!", "?", "/" or a letter (a tag, a comment or a bogus comment).
_MARKUP_RE = re.compile(rb"<[!/?a-zA-Z]")
_TAG_NAME_RE = re.compile(rb"</?([^\t\n\f\r />]*+)")
_SELF_CLOSING_RE = re.compile(rb"[\t\n\f\r /]*/>")
# A script's text: "<!--" escapes it, where "<script" escapes it twice (then "</script" is
# text); "-->" ends both.
_SCRIPT_EVENT_RE = re.compile(rb"-->|<(/?)script[\t\n\f\r />]")
# The context of a reading: (the SVG and MathML roots open, innermost last, b"s" or b"m" each;
# their HTML islands open; the elements open in them, innermost last, each after a space, or
# _HELD once an island closed with elements open (they may have kept it open); unsure: raw
# text may be markup to the end, whatever the tree: then the context is _UNSURE).
Context = tuple[bytes, int, bytes, int]
_HTML: Context = (b"", 0, b"", 0)
_UNSURE: Context = (b"", 0, b"", 1)
_HELD = b"!"
MAX_ROOTS = 16  # SVG and MathML roots open at once (more: unsure)
MAX_HELD = 16  # elements open in islands that are followed (more, or a long name: _HELD)
_VOID_NAMES = frozenset(
    b"area base basefont bgsound br col embed frame hr img input keygen link meta param source"
    b" track wbr".split()
)
# In an island every tag is read: its elements are followed (see _held), up to MAX_ISLAND_TAGS
# a page (then the tags skipped may hold anything open: _HELD).
MAX_ISLAND_TAGS = 4096
_ISLAND_OPENER_RE = re.compile(rb"<!--|<!\[cdata\[|</?[a-z]")
MAX_READINGS = 8  # readings of a page that differ at once (then it is cut where they part)


class _Ends:
    """Where the raw text elements, CDATA sections and escaped scripts of one page end: the
    same end is looked for once (a hostile page may open thousands of raw text elements that
    never end: a search from each would be quadratic)."""

    def __init__(self, lowered: bytes) -> None:
        self.lowered = lowered
        self.found: dict[bytes, tuple[int, int]] = {}  # searched from, found at
        self.escaped: dict[int, int] = {}  # where a script escaped at a "<!--" ends
        self.island_tags = 0  # tags read in islands (see MAX_ISLAND_TAGS)

    def next(self, key: bytes, at: int) -> int:
        """Where the first *key* (a raw text element's name: its end tag; or "<!--", "]]>")
        at or after *at* starts, or the end of the page.

        >>> _Ends(b"a]]>b</style>]]>").next(b"]]>", 2), _Ends(b"a</style>").next(b"style", 0)
        (13, 1)
        """
        since, found = self.found.get(key, (1, 0))
        if not since <= at <= found:  # (the same end for each start before it: searched once)
            pattern = _RAW_TEXT_END_RE.get(key) or re.compile(re.escape(key))
            match = pattern.search(self.lowered, at)
            since, found = at, match.start() if match else len(self.lowered)
            self.found[key] = since, found
        return found

    def script(self, start: int) -> int:
        """Where a script's text from *start* ends: at the ``</script`` the tokenizer takes
        for its end tag (not one in a script escaped twice), or at the end of the page.

        >>> _Ends(b'<!--<script></script><b x="</script><a>').script(0)
        27
        >>> _Ends(b"a<!-->b</script>").script(0), _Ends(b"a<!--b</script>").script(0)
        (7, 6)
        """
        escapes = []
        end: int | None = None
        at = start
        while end is None:
            end = self.next(b"script", at)
            escape = self.next(b"<!--", at)
            if escape < end:
                escapes.append(escape)
                end = self.escaped.get(escape)
                if end is None:
                    end, at = _escaped_script(self.lowered, escape)
        for escape in escapes:  # each page's escapes read once, whatever the starts
            self.escaped[escape] = end
        return end


def _escaped_script(lowered: bytes, escape: int) -> tuple[int | None, int]:
    """A script escaped by the ``<!--`` at *escape*: where its end tag is, or None and where
    it is not escaped any more (a ``-->``).

    >>> _escaped_script(b"<!--<script></script>--></script>", 0)
    (None, 24)
    """
    doubly = False
    at = escape + 2  # (a "<!--" lends its dashes: "<!-->")
    while True:
        event = _SCRIPT_EVENT_RE.search(lowered, at)
        if event is None:
            return len(lowered), at
        at = event.end()
        if event[0] == b"-->":
            return None, at
        if event[1] and not doubly:
            return event.start(), at
        if event[1] is not None:
            doubly = not event[1]
            at -= 1  # the ">" after the name may end an escape: "<script>-->"


def _next_context(context: Context, name: bytes, end_tag: bool, self_closing: bool) -> Context:
    """The context after a tag *name* (lowercased). A loose model of the tree: SVG and MathML
    elements open, their HTML islands open, and "unsure" for the rest of the page when an
    island held elements open as it closed (then they may have kept it open) or after a
    ``<frameset>`` (where a ``<style>`` is ignored): raw text is read both ways then.

    An end tag closes the innermost root if it names it, else nothing: the parser ignores a
    ``</math>`` in an ``<svg>`` (or closes more than one root: still foreign to the model).

    >>> c = _next_context(_HTML, b"svg", False, False)
    >>> c, _next_context(c, b"svg", True, False), _next_context(_HTML, b"svg", False, True)
    ((b's', 0, b'', 0), (b'', 0, b'', 0), (b'', 0, b'', 0))
    >>> _next_context(c, b"math", True, False), _next_context(c, b"frameset", False, False)
    ((b's', 0, b'', 0), (b'', 0, b'', 1))
    """
    roots, islands, held, unsure = context
    if unsure:
        return _UNSURE
    if islands or (name in _ISLANDS and roots and not end_tag and not self_closing):
        held = _held(held, name, end_tag)
    if name in _FOREIGN_ROOTS:
        if not end_tag and not self_closing:
            if len(roots) >= MAX_ROOTS:
                return _UNSURE
            roots += name[:1]
        elif end_tag and not islands and roots.endswith(name[:1]):
            roots = roots[:-1]
            if held == _HELD and not roots:
                return _UNSURE
    elif name in _ISLANDS and roots:
        if not end_tag and not self_closing:
            islands += 1
        elif end_tag and islands:
            islands -= 1
            held = held if islands or not held else _HELD  # (it closed, or an element of it)
    elif name == b"frameset" and not end_tag:
        return _UNSURE
    return roots, islands, held if roots else b"", unsure


def _held(held: bytes, name: bytes, end_tag: bool) -> bytes:
    """The elements open in islands (*held*) after a tag *name* in one: an end tag closes the
    innermost if it names it, else anything may stay open (_HELD, for good).

    >>> _held(b"", b"foreignobject", False), _held(b" foreignobject div", b"div", True)
    (b' foreignobject', b' foreignobject')
    >>> _held(b" foreignobject div", b"foreignobject", True)
    b'!'
    """
    if held == _HELD or (name in _VOID_NAMES and not end_tag):
        return held
    if end_tag:
        return held[: -len(name) - 1] if held.endswith(b" " + name) else _HELD
    if held.count(b" ") >= MAX_HELD or len(name) > 32:
        return _HELD
    return held + b" " + name


def _comment_end(lowered: bytes, start: int, ends: _Ends) -> int:
    """Where the comment at *start* ends (each end looked for once a page: a comment that
    never ends, searched to the end from each "<!--", was quadratic).

    >>> pages = (b"<!---->", b"<!-->", b"<!-- --!>x", b"<!--")
    >>> [_comment_end(page, 0, _Ends(page)) for page in pages]
    [7, 5, 9, 4]
    """
    short = _SHORT_COMMENT_RE.match(lowered, start)
    if short:
        return short.end()
    end, bang = ends.next(b"-->", start + 4), ends.next(b"--!>", start + 4)
    return min(end + 3, bang + 4, len(lowered))


def _read_markup(
    body: bytes, lowered: bytes, start: int, context: Context = _HTML, ends: _Ends | None = None
) -> tuple[list[tuple[int, Context]], tuple[int, int] | None]:
    """Where the markup at *start* may end as the tokenizer reads it, each with the context
    after it (a raw text element: at its end tag; in SVG or MathML also after its start tag:
    its text may be markup), and the span of its attributes past the first MAX_ATTRS_PER_TAG.

    >>> page = b'<!-- a <b x="c> --><script>a<b x="c></script>'
    >>> _read_markup(page, page, 0), _read_markup(page, page, 19)
    (([(19, (b'', 0, b'', 0))], None), ([(36, (b'', 0, b'', 0))], None))
    >>> _read_markup(b"</ x> y", b"</ x> y", 0)  # a bogus comment
    ([(5, (b'', 0, b'', 0))], None)
    >>> _read_markup(b"<style>a</style>", b"<style>a</style>", 0, (b"s", 0, b"", 0))[0]
    [(8, (b's', 0, b'', 0)), (6, (b's', 0, b'', 0))]
    """
    if lowered.startswith(b"<!--", start):
        return [(_comment_end(lowered, start, ends or _Ends(lowered)), context)], None
    if not _TAG_START_RE.match(body, start):  # "<!", "<?", "</" then no letter: to a ">"
        end = body.find(b">", start + 2)
        stops = [len(body) if end < 0 else end + 1]
        if (context[0] or context[3]) and lowered.startswith(b"<![cdata[", start):
            cdata = (ends or _Ends(lowered)).next(b"]]>", start + 9)
            stops.append(min(cdata + 3, len(body)))  # CDATA in SVG or MathML
        return [(stop, context) for stop in stops], None
    first = _FIRST_ATTRS_RE.match(body, start)
    read = _MORE_ATTRS_RE.match(body, first.end()) if first else _WHOLE_TAG_RE.match(body, start)
    end = read.end()  # type: ignore[union-attr]
    cut = (first.end(), end) if first and end > first.end() else None
    name = _TAG_NAME_RE.match(lowered, start)[1]  # type: ignore[index]
    end_tag = body[start + 1] == 47  # "/"
    after = context
    if context[1] or name in _CONTEXT_NAMES:
        after = _next_context(context, name, end_tag, bool(_SELF_CLOSING_RE.match(body, end)))
    if end_tag or name not in _RAW_TEXT_END_RE:
        return [(end, after)], cut
    ends = ends or _Ends(lowered)
    raw = (ends.script(end) if name == b"script" else ends.next(name, end), after)
    return ([raw, (end, after)] if context[0] or context[3] else [raw]), cut


def _opener_re(context: Context, ends: _Ends) -> re.Pattern[bytes]:
    """What may change a reading's state in *context* (see _OPENER_RE): in an island any tag,
    while what it holds is followed and the page's MAX_ISLAND_TAGS last.

    >>> _opener_re((b"s", 1, b"", 0), _Ends(b"")) is _ISLAND_OPENER_RE
    True
    """
    if context[1] and context[2] != _HELD and ends.island_tags < MAX_ISLAND_TAGS:
        ends.island_tags += 1
        return _ISLAND_OPENER_RE
    return _OPENER_RE if context[0] or context[3] else _HTML_OPENER_RE


def _read_to(
    body: bytes, lowered: bytes, reading: tuple[int, Context], at: int, ends: _Ends
) -> tuple[list[tuple[int, Context]] | None, tuple[int, int] | None]:
    """One step of a reading (its position in the data state, its context) towards *at*: the
    readings after the next markup that may change its state (a comment, raw text, a context
    tag) or that may hold *at*, and that markup's cut; None if no markup holds *at*.
    The tags before are skipped (none holds a ">" in a quoted value: all before *at* were read).
    """
    last, context = reading
    opener = _opener_re(context, ends).search(lowered, last, at)
    point = at if opener is None else opener.start()
    gt = body.rfind(b">", last, point)
    markup = _MARKUP_RE.search(body, max(gt + 1, last), point + 2)
    if markup is None:  # an "=" in text: no opener and no tag before it to read again
        return None, None
    start = markup.start()
    if context[1] and _TAG_START_RE.search(body, last, start):
        context = (context[0], context[1], _HELD, context[3])  # a tag in an island, not read
    # A short tag that ends before *at* ends at its first ">" (a ">" in a quoted value would
    # be read already): read no further if it only changes the context (most are <svg>).
    end = body.find(b">", start, min(at, start + 2 * MAX_ATTRS_PER_TAG))
    name = _TAG_NAME_RE.match(lowered, start)[1]  # type: ignore[index]
    if end > 0 and body[end - 1] != 47 and name in _CONTEXT_ONLY_NAMES:
        return [(end, _next_context(context, name, body[start + 1] == 47, False))], None
    return _read_markup(body, lowered, start, context, ends)


def _limit_attributes(body: bytes, quoted_gts: Sequence[int] | None = None) -> bytes:
    """Drop the attributes of a tag past its first MAX_ATTRS_PER_TAG: the tag, its text and
    its links stay. Only two kinds of tag are read (two regular expressions find them): those
    that span more than twice as many bytes without a ``>``, and those with a ``>`` in a quoted
    value (rare on honest pages); each is read attribute by attribute as the tokenizer reads
    it, so that no cut falls inside a quoted value.

    They are read in order with the comments and raw text elements (a "tag" in a script or a
    comment is text: read, its unclosed quote would hide all the tags after it), from the
    markup that holds them (a ``<`` after the last ``>``), each byte at most once or twice.
    Where the tokenizer's state depends on the tree (raw text in SVG or MathML is markup; a
    CDATA section there), every way is read, each a reading: they meet again at the same
    position and context. Past MAX_READINGS at once, the page is cut where they part.

    >>> tag = b"<a href=/x " + b" ".join(b"a%d" % i for i in range(MAX_ATTRS_PER_TAG + 9))
    >>> _limit_attributes(tag + b">x</a>").endswith(b" a253 a254>x</a>")  # href and 255 more
    True
    >>> quoted = b'<a title="1>0" ' + b" ".join(b"a%d" % i for i in range(MAX_ATTRS_PER_TAG + 9))
    >>> _limit_attributes(quoted + b">x</a>").endswith(b" a253 a254>x</a>")  # a ">" hid it
    True
    >>> _limit_attributes(b'<!-- <b x="c> -->' + tag + b">x</a>").endswith(b" a254>x</a>")
    True
    >>> _limit_attributes(b"<svg><style>" + tag + b">x</a>").endswith(b" a254>x</a>")
    True
    >>> page = b'<p title="x y">' + b"z " * MAX_ATTRS_PER_TAG  # text, no tag: as it is
    >>> _limit_attributes(page) is page
    True
    """
    cuts: set[tuple[int, int]] = set()
    lowered = b""
    raw_ends: _Ends | None = None
    readings = [(0, _HTML)]
    long_tags = (long.start() for long in _LONG_TAG_RE.finditer(body))
    if quoted_gts is None:
        quoted_gts = _quoted_gts(body)
    next_lt = -1  # no "<" from the nearest reading to it: a value before it is text to all
    for at in heapq.merge(long_tags, quoted_gts):
        if at < next_lt:
            continue
        lowered = lowered or body.lower()
        raw_ends = raw_ends or _Ends(lowered)
        readings = _readings_past(body, lowered, readings, at, cuts, raw_ends)
        if not readings:
            break
        next_lt = body.find(b"<", readings[0][0])
        next_lt = len(body) if next_lt < 0 else next_lt
    return _cut_spans(body, _disjoint(cuts)) if cuts else body


def _readings_past(
    body: bytes,
    lowered: bytes,
    readings: list[tuple[int, Context]],
    at: int,
    cuts: set[tuple[int, int]],
    raw_ends: _Ends,
) -> list[tuple[int, Context]]:
    """*readings* each read on past *at* (or to it: no markup holds it), the nearest first;
    the same position in the same context is one reading. Adds the cuts to *cuts*. Past
    MAX_READINGS at once, each is read on as _UNSURE (raw text both ways: every tag the others
    read, and the same context, so that they meet again); still past it, the cut of all from
    the first (and no reading)."""
    todo = readings  # sorted, as this returns them: a heap
    past: set[tuple[int, Context]] = set()
    while todo and todo[0][0] <= at:
        if len(todo) + len(past) > MAX_READINGS:
            unsure = {(position, _UNSURE) for position, _ in past.union(todo)}
            if len(unsure) > MAX_READINGS or unsure == past.union(todo):  # hostile
                cuts.add((min(unsure)[0], len(body)))
                return []
            todo = sorted(reading for reading in unsure if reading[0] <= at)
            past = unsure.difference(todo)
            continue
        reading = heapq.heappop(todo) if len(todo) > 1 else todo.pop()
        ends, cut = _read_to(body, lowered, reading, at, raw_ends)
        if cut:
            cuts.add(cut)
        for end in ends or [(at, reading[1])]:
            if end[0] > at or ends is None:
                past.add(end)
            elif end not in todo:
                heapq.heappush(todo, end)
    return sorted(past.union(todo))


def _disjoint(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """*spans* sorted, those that overlap made one.

    >>> _disjoint([(5, 9), (1, 4), (3, 6), (10, 12)])
    [(1, 9), (10, 12)]
    """
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


# -- formatting elements re-opened in each block (see _limit_reopened) ----------------------
# The formatting elements but <a>, whose names the parser keeps in its "list of active
# formatting elements" (ASCII case-insensitive; a regex with IGNORECASE is slower).
_FORMATTING = (
    rb"(?:[bB](?:[iI][gG])?|[iIuU]|[sS](?:[mM][aA][lL][lL]|[tT][rR](?:[iI][kK][eE]|[oO][nN][gG]))?"
    rb"|[eE][mM]|[fF][oO][nN][tT]|[nN][oO][bB][rR]|[cC][oO][dD][eE]|[tT][tT])"
)
# (The look-ahead on the first letter makes most other tags fail at once: 2x faster.)
_FORMATTING_START_RE = re.compile(
    rb"<(?=[bBiIuUsSeEfFnNcCtT])" + _FORMATTING + rb"(?=[\t\n\f\r />])"
)
# A whole tag, its attributes read as the tokenizer reads them (a quote opens a value only
# after "="; a ">" in a quoted value does not end the tag), so that no tag hides in another.
_FORMATTING_ATTRS = (
    rb"(?:[\t\n\f\r /]+|[^\t\n\f\r />][^\t\n\f\r />=]*"
    rb"""(?:[\t\n\f\r ]*=[\t\n\f\r ]*(?:"[^"]*"?|'[^']*'?|[^\t\n\f\r >]*))?)*+>?"""
)
_FORMATTING_TAG_RE = re.compile(
    rb"<(/?)(?=[aAbBiIuUsSeEfFnNcCtT])(%s|[aA])(?=[\t\n\f\r />])%s"
    % (_FORMATTING, _FORMATTING_ATTRS)
)
# The same tags, whole (no group: findall gives the tags), in the ASCII-lowercased body (its
# character classes are the same in either case: the same spans).
_FORMATTING_WHOLE_RE = re.compile(
    rb"</?(?=[abiusefnct])(?:%s|a)(?=[\t\n\f\r />])%s" % (_FORMATTING, _FORMATTING_ATTRS)
)
_LINK_START_RE = re.compile(rb"<a(?=[\t\n\f\r />])")  # in the lowercased body


def _limit_reopened(
    body: bytes, tags: int, max_reopened: int | None = None, quoted_gts: Sequence[int] | None = None
) -> bytes:
    """Drop the formatting start tags that would make the parser re-open more than
    *max_reopened* elements (``MAX_REOPENED``) in the page; *tags*: its count of ``<``.

    A formatting element left open (``<b class=1>`` without ``</b>``) is re-opened in each
    new block ("reconstruct the active formatting elements"): n of them, distinct (three alike
    at most are kept), then n ``</p><p>x`` make n x n elements in one lexbor call. Each tag
    re-opens at most the formatting elements then listed, so a page is looked at only when
    (its formatting start tags + one ``<a>``) x its tags exceeds the bound; then the list is
    estimated on the raw bytes, from above (:func:`_reopen_cost`), and if the page re-opens
    more, the formatting start tags but ``<a>`` that would go past the bound are dropped: the
    text and the links stay, a few ``</b>`` stray (the parser ignores them).

    >>> page = b"<p>" + b"".join(b"<b class=%d>" % i for i in range(4)) + b"</p><p>x" * 4
    >>> _limit_reopened(page, page.count(b"<"), 10)
    b'<p><b class=1></p><p>x</p><p>x</p><p>x</p><p>x'
    >>> closed = b"<p><b>bold</b> <i class=x>it</i></p><p>x" * 4  # re-opens none
    >>> _limit_reopened(closed, closed.count(b"<"), 10) is closed
    True
    """
    budget = MAX_REOPENED if max_reopened is None else max_reopened
    starts = len(_FORMATTING_START_RE.findall(body))
    if (starts + 1) * tags <= budget and not _heavy_formatting(body, quoted_gts):
        return body
    lowered = body.lower()
    pops = _pop_positions(lowered)
    if _reopen_bound(lowered, len(pops), starts) <= budget:
        return body  # three pages in four that get this far (WCXB), without a Python step per tag
    if _reopen_cost(body, tags, pops=pops) <= budget:
        return body
    drop: list[tuple[int, int]] = []
    _reopen_cost(body, tags, budget, drop, pops)
    return _cut_spans(body, drop)


# A formatting start tag (or <a>) of REOPEN_UNIT_BYTES or more, its first ">" past them
# (those with a ">" in a quoted value: _tags_with_a_quoted_gt).
_HEAVY_FORMATTING_RE = re.compile(
    rb"<(?=[aAbBiIuUsSeEfFnNcCtT])(?:%s|[aA])(?=[\t\n\f\r />])[^>]{%d}"
    % (_FORMATTING, REOPEN_UNIT_BYTES - 3)
)


def _reopen_units(tag: bytes) -> int:
    """What a listed element costs each time it is re-opened, by its start tag *tag*: one,
    plus one per REOPEN_UNIT_BYTES (the parser clones its attributes).

    >>> _reopen_units(b"<b>"), _reopen_units(b"<b title='" + b"x" * 2100 + b"'>")
    (1, 3)
    """
    return 1 + len(tag) // REOPEN_UNIT_BYTES


def _quoted_gts(body: bytes) -> array:
    """Where each quoted value holding a ``>`` may open (its ``=``): one scan of the page,
    which :func:`_limit_reopened` and :func:`_limit_attributes` share (8 bytes each: a
    hostile page may hold millions).

    >>> list(_quoted_gts(b'<p>a="b>" <b x=1 y="z>">'))
    [4, 18]
    """
    return array("q", (value.start() for value in _QUOTED_GT_RE.finditer(body)))


def _tags_with_a_quoted_gt(body: bytes, quoted_gts: Sequence[int] | None = None) -> Iterator[int]:
    """Where the tags with a ``>`` in a quoted value may start, in order (maybe twice): the
    first ``<`` of a tag name after the ``>`` before the value. A cheap over-estimate (a "tag"
    in a comment or script counts too), enough for :func:`_heavy_formatting`'s "may".

    >>> list(_tags_with_a_quoted_gt(b'<p>a="b>" <b x=1 y="z>" w=">">'))
    [10]
    """
    for at in _quoted_gts(body) if quoted_gts is None else quoted_gts:
        tag = _TAG_START_RE.search(body, body.rfind(b">", 0, at) + 1, at)
        if tag is not None:
            yield tag.start()


def _heavy_formatting(body: bytes, quoted_gts: Sequence[int] | None = None) -> bool:
    """Whether a formatting start tag or ``<a>`` of *body* costs more than one unit
    (:func:`_reopen_units`): one regular expression, and the tags with a ``>`` in a quoted
    value read as the tokenizer reads them.

    >>> _heavy_formatting(b"<p><b class=x>a</b>"), _heavy_formatting(b"<a x='>" + b"x" * 2000)
    (False, True)
    """
    if _HEAVY_FORMATTING_RE.search(body) is not None:
        return True
    for start in _tags_with_a_quoted_gt(body, quoted_gts):
        tag = _FORMATTING_TAG_RE.match(body, start)
        if tag is not None and tag.end() - start >= REOPEN_UNIT_BYTES:
            return True
    return False


def _reopen_bound(lowered: bytes, pops: int, starts: int) -> int:
    """An upper bound of :func:`_reopen_cost` for the ASCII-lowercased body *lowered*, with
    its *pops* tags that may pop and its *starts* formatting start tags (but ``<a>``), counted
    in C: the most elements the list may hold (three alike start tags at most per distinct
    one, and one ``<a>``) times the tags that may add them (those that may pop, links and
    ``<nobr>``).

    >>> page = b"<p><b x=1><b x=1><b x=1><b x=1><b>t</b></p><p>a</p><a href=/x>b</a>"
    >>> lowered = page.lower()
    >>> pops = len(_pop_positions(lowered))
    >>> _reopen_bound(lowered, pops, 5), _reopen_cost(page, page.count(b"<"))
    (60, 20)
    """
    listed = link = 1  # an <a>
    for tag, n in Counter(_FORMATTING_WHOLE_RE.findall(lowered)).items():
        if tag[1] == 0x61:  # an <a>
            link = max(link, _reopen_units(tag))
        elif tag[1] != 0x2F:  # not an end tag
            listed += min(n, 3) * _reopen_units(tag)
    return (listed - 1 + link) * (pops + len(_LINK_START_RE.findall(lowered)) + starts)


def _reopen_cost(
    body: bytes, tags: int, budget: int = 0, drop: list[tuple[int, int]] | None = None,
    pops: list[int] | None = None,
) -> int:  # fmt: skip
    """An upper estimate of the elements the parser re-opens in *body*: per tag that may pop
    elements (:func:`_pops`), the formatting elements then listed (each may be re-opened once
    after it). Each formatting start tag adds one (three alike at most, one ``<a>``); an end
    tag removes one only where it surely does: right after its start tag (only text or such
    pairs between; elsewhere an end tag may leave it listed: out of scope, or after the
    adoption agency's 8 rounds). With *drop*, the spans of the formatting start tags but
    ``<a>`` that would take the estimate past *budget* (were every later tag to re-open all
    listed) are appended to it, and left out of the estimate.

    >>> _reopen_cost(b"<p><b x=1><b x=2>t</b></p><p>a</p><p>b", 8)
    6
    >>> _reopen_cost(b"<p><b x=1><i>t</i></b><b x='>'</b>'></p><p>a", 9)
    5
    """
    size = link = 0  # units (_reopen_units) in the list, of its <a>
    alike: dict[bytes, int] = {}  # per start tag (name and attributes), how many listed
    certain: list[tuple[bytes, bytes]] = []  # the open elements on top: (name, start tag)
    cost = seen = last = 0  # seen: the "<" before the current tag
    if pops is None:
        pops = _pop_positions(body.lower())
    for match in _FORMATTING_TAG_RE.finditer(body):
        start = match.start()
        between = body.count(b"<", last, start)
        if between:
            certain.clear()
            if size:
                cost += size * (bisect_left(pops, start) - bisect_left(pops, last))
        seen += between + 1
        last = match.end()
        name = match[2].lower()
        if match[1] or name == b"a" or name == b"nobr":  # the adoption agency may pop
            cost += size
        if match[1]:
            if certain and certain[-1][0] == name:
                key = certain.pop()[1]
                n = alike[key]
                alike[key] = n - 1
                size -= _reopen_units(key) if n <= 3 else 0
            else:
                certain.clear()
            continue
        if name == b"a" or name == b"nobr":  # may close others (the adoption agency)
            certain.clear()
            if name == b"a":  # it replaces the last one; a heavy one may be dropped
                units = _reopen_units(match[0])
                if (
                    units > 1
                    and drop is not None
                    and cost + (size - link + units) * (tags - seen) > budget
                ):
                    drop.append(match.span())
                    continue
                size += units - link
                link = units
                continue
        elif drop is not None and cost + (size + _reopen_units(match[0])) * (tags - seen) > budget:
            drop.append(match.span())
            continue
        key = match[0].lower()
        n = alike.get(key, 0)
        alike[key] = n + 1
        size += _reopen_units(key) if n < 3 else 0  # the earliest of four alike is forgotten
        if name != b"nobr":
            certain.append((name, key))
    return cost + size * (len(pops) - bisect_left(pops, last))


# Start tags that may pop elements off the stack (formatting ones left listed, to be
# re-opened): those that close a <p>, a list item, a table's part, a form control...
_POPPING_START_RE = re.compile(
    rb"<(?:address|article|aside|blockquote|button|caption|center|col|colgroup|dd|details"
    rb"|dialog|dir|div|dl|dt|fieldset|figcaption|figure|footer|form|frameset|h[1-6]|header"
    rb"|hgroup|hr|input|keygen|li|listing|main|menu|nav|ol|optgroup|option|p|plaintext|pre"
    rb"|search|section|select|summary|table|tbody|td|textarea|tfoot|th|thead|tr|ul|xmp)"
    rb"(?=[\t\n\f\r />])",
    re.IGNORECASE,
)


# The same tags, and end tags, in the ASCII-lowercased body (IGNORECASE is slower).
_POPPING_RE = re.compile(b"<(?:/|" + _POPPING_START_RE.pattern[1:] + b")")


def _pops(body: bytes, start: int, end: int) -> int:
    """How many tags of ``body[start:end]`` may pop elements: end tags, and the start tags
    of _POPPING_START_RE (others, ``<span>``, ``<img>``..., push or are ignored).

    >>> _pops(b"<p>a<span>b</span><LI>c<img><div>", 0, 33)
    4
    """
    return body.count(b"</", start, end) + len(_POPPING_START_RE.findall(body, start, end))


def _pop_positions(lowered: bytes) -> list[int]:
    """Where the tags :func:`_pops` counts start in a body (ASCII-lowercased), in order: those
    of a span from a tag's end to the next ``<`` are then counted by two bisections (one scan
    of the body in C, where a scan per span cost a Python call and a regex set-up for each
    formatting tag and link; a match ends before the next ``<``, so a whole-body scan finds
    the same ones).

    >>> body = b"<p>a<span>b</span><LI>c<img><div>"
    >>> positions = _pop_positions(body.lower())
    >>> positions, bisect_left(positions, 33) - bisect_left(positions, 0) == _pops(body, 0, 33)
    ([0, 11, 18, 28], True)
    """
    return [match.start() for match in _POPPING_RE.finditer(lowered)]


# One traversal finds everything a page's links depend on (a css() call walks the whole tree).
_PAGE_SELECTOR = (
    "a[href], area[href], base[href], title, link[rel][href], meta[name][content], [hidden], "
    'svg, math, script[type="application/ld+json"], [itemtype], meta[property="og:type"]'
)
# Where the children of an SVG or MathML element are HTML again (the parser's integration
# points), per namespace: an <a> below one of these (below its nearest <svg>/<math>) is HTML.
_HTML_AGAIN = {
    "svg": frozenset({"foreignObject", "desc", "title"}),
    "math": frozenset({"mi", "mo", "mn", "ms", "mtext", "annotation-xml"}),
}
# ... an <annotation-xml> only with one of these encodings.
_HTML_ANNOTATION = ("text/html", "application/xhtml+xml")


def _foreign_links(root: LexborNode, seen: set[int], foreign: set[int]) -> None:
    """Add to ``foreign`` the ``mem_id`` of the ``<a href>`` under ``root`` (an ``<svg>`` or
    ``<math>``) that are SVG or MathML elements, not HTML ones: a browser's ``document.links``
    leaves them out. ``seen``: the elements walked already (a nested root is walked once)."""
    for node in root.traverse():
        mem_id = node.mem_id
        if mem_id in seen:
            continue
        seen.add(mem_id)
        if node.tag != "a" or "href" not in node.attributes:
            continue
        crossed: set[str] = set()  # the tags between the link and its nearest root
        cur = node.parent
        while cur is not None:
            tag = cur.tag or ""
            if tag == "svg" or tag == "math":
                if crossed.isdisjoint(_HTML_AGAIN[tag]):
                    foreign.add(mem_id)
                break
            if tag != "annotation-xml" or (
                (cur.attributes.get("encoding") or "").strip().lower() in _HTML_ANNOTATION
            ):
                crossed.add(tag)
            cur = cur.parent


def extract_from_text(
    html: str, url: str, *, encoding: str = "utf-8", x_robots_tag: str | None = None,
    content_language: str | None = None, keep_text: bool = False,
) -> PageLinks:  # fmt: skip
    """Extract every link of an already decoded page. See :func:`extract_page`."""
    tree = LexborHTMLParser(html)
    limits = ["dom_depth"] if html.count("<") > _NESTING_CHECK_TAGS and _flatten_deep(tree) else []
    return _extract(tree, url, encoding=encoding, x_robots_tag=x_robots_tag, limits=limits,
                    content_language=content_language, keep_text=keep_text)  # fmt: skip


def _encoding_declared_in_head(tree: LexborHTMLParser) -> str | None:
    """The encoding the first declaring ``<meta>`` of the ``<head>`` names, or None. A browser
    that guessed a page's encoding re-decodes it when its parser meets one (WHATWG "change the
    encoding"); a ``<meta>`` in the body, a comment or a script does not count."""
    head = tree.head
    if head is None:
        return None
    for node in head.css("meta[charset], meta[http-equiv][content]"):
        encoding = encoding_of_meta(node.html or "")
        if encoding is not None:
            return encoding
    return None


@dataclass(slots=True)
class WalkedPage:
    """A page's fields and links before placement, from one walk of its tree: by the Python
    path (:func:`_walk`) or the native core (:func:`pipelines.native.walk_page`), alike."""

    page: PageLinks  # its fields; ``add_links`` adds its links
    base: str
    alternates: list[tuple[str, str]]  # (hreflang, href) of <link rel=alternate>
    markup: PageMarkup  # the page type's signals
    # What placement reads of each link: its element, rel tokens, text (images aside), and
    # attributes (None: placement reads the element's).
    nodes: Sequence[LexborNode]
    rels: Sequence[Sequence[str]]
    texts: Sequence[str]
    attrs: Sequence[dict[str, str | None]] | None
    #: Appends the link rows with their placements to ``page.links``; True if a string was cut.
    add_links: Callable[[Sequence[Placed]], bool]
    #: A string was cut or a link dropped for its length already.
    long: bool
    #: The native core's placement scan (None: placement's own, in Python).
    scanner: Scanner | None = None
    #: The native core's page type link signals (None: Python's).
    link_signals: LinkSignals | None = None
    #: :func:`resolve_link`: the native core's port (the one its rows took), or Python's.
    resolve: Resolve = resolve_link
    #: The language detector's feature counts by the native core (None: py3langid's).
    langid_visits: Visits | None = None
    #: The page type's scores by the native core (None: Python's).
    page_type_scores: Scores | None = None


#: :func:`pipelines.urls.resolve_link` (href, base URL) -> target, or the native core's port.
Resolve = Callable[[str, str], "str | None"]


def _extract(
    tree: LexborHTMLParser,
    url: str,
    *,
    encoding: str,
    x_robots_tag: str | None,
    limits: list[str] | None = None,
    content_language: str | None = None,
    keep_text: bool = False,
    native: bool = True,
) -> PageLinks:
    walked = _native_walk(tree, url, encoding, limits, x_robots_tag) if native else None
    if walked is None:
        walked = _walk(tree, url, encoding, limits, x_robots_tag)
    page = walked.page
    placements = place_links_scored(tree, walked.nodes, walked.rels, walked.texts, walked.attrs,
                                    walked.markup, walked.scanner, True)  # fmt: skip
    if walked.add_links(placements) or walked.long:
        page.limits_hit.append("long_strings")
    _lang_country(page, tree, url, walked.base, walked.alternates, content_language, keep_text,
                  walked.resolve, walked.langid_visits)  # fmt: skip
    page.page_type = classify_page(
        url, page.title, walked.markup, page.links, walked.link_signals, walked.page_type_scores
    ).page_type
    return page


def _native_walk(
    tree: LexborHTMLParser, url: str, encoding: str, limits: list[str] | None,
    x_robots_tag: str | None,
) -> WalkedPage | None:  # fmt: skip
    """The native core's walk of *tree*, or None without the core (or if it failed)."""
    from pipelines import native  # it builds on this module: imported on first use

    return native.walk_page(tree, url, encoding, limits, x_robots_tag)


def _walk(
    tree: LexborHTMLParser, url: str, encoding: str, limits: list[str] | None,
    x_robots_tag: str | None,
) -> WalkedPage:  # fmt: skip
    """The Python path's walk of *tree*: one ``css()`` traversal finds what the page's links
    depend on, then the links are staged (:func:`stage_links`)."""
    alternates: list[tuple[str, str]] = []  # (hreflang, href) of <link rel=alternate>
    base_href: str | None = None
    title: str | None = None
    canonical_href: str | None = None
    robots: list[str] = []
    hidden: set[int] = set()  # elements a browser never renders (UA style [hidden])
    raw_links: list[tuple[LexborNode, dict[str, str | None]]] = []
    foreign: set[int] = set()  # <a> elements of SVG or MathML: not HTML links
    walked: set[int] = set()  # elements under the <svg> and <math> walked so far
    truncated = False
    markup = PageMarkup()  # the page type's signals
    last_id = -1
    for node in tree.css(_PAGE_SELECTOR):
        mem_id = node.mem_id
        if mem_id == last_id:  # a node matching two selectors comes twice, in a row
            continue
        last_id = mem_id
        attrs = node.attributes
        if "hidden" in attrs and is_hidden(attrs):
            hidden.add(mem_id)
        if "itemtype" in attrs:
            markup.add_itemtype(attrs["itemtype"] or "")
        tag = node.tag
        if tag == "a" or tag == "area":
            if "href" in attrs and mem_id not in foreign:
                if len(raw_links) < MAX_LINKS_PER_PAGE:
                    raw_links.append((node, attrs))
                else:
                    truncated = True
        elif tag == "title":
            if title is None and mem_id not in walked:  # not an SVG <title>
                title = collapse_ws(node.text())
        elif tag == "base":
            if base_href is None and "href" in attrs:
                base_href = attrs["href"] or ""
        elif tag == "link":
            rels = split_rel(attrs.get("rel"))
            if canonical_href is None and "canonical" in rels and "href" in attrs:
                canonical_href = attrs["href"] or ""  # valueless: "" (the DOM's value)
            if "hreflang" in attrs and "alternate" in rels and len(alternates) < MAX_ALTERNATES:
                alternates.append((attrs["hreflang"] or "", attrs.get("href") or ""))
        elif tag == "meta":
            name = (attrs.get("name") or "").strip().lower()
            if name in _ROBOTS_META_NAMES:
                content = attrs.get("content")
                if content:
                    robots.append(content.strip())
            elif name == "generator" or attrs.get("property") == "og:type":
                markup.add_meta(name or "og:type", attrs.get("content") or "")
        elif tag == "script":
            markup.add_jsonld(node.text() or "")
        elif (tag == "svg" or tag == "math") and mem_id not in walked:
            # Before its links: in document order a root comes before what it holds.
            _foreign_links(node, walked, foreign)

    page, base, long = page_fields(
        url, encoding, limits, x_robots_tag, base_href=base_href, title=title,
        canonical_href=canonical_href, robots=robots, truncated=truncated,
    )  # fmt: skip

    def raw_link(index: int) -> RawLink:
        node, attrs = raw_links[index]
        tag = node.tag or "a"
        if tag == "area":
            text, is_image, alts = "", False, [attrs.get("alt") or ""]
        else:
            text, is_image, alts = anchor_parts(node, hidden)
        return node, tag, attrs.get("rel"), attrs.get("title"), text, is_image, alts, attrs

    hrefs = [attrs["href"] or "" for _, attrs in raw_links]
    return stage_links(page, base, alternates, markup, long, (hrefs, raw_link), encoding, url)


#: One link as a walk found it: its element (None without a lexbor tree), tag, rel and title
#: attributes, text (not collapsed), whether it wraps an image, the images' alt texts, and its
#: attributes (None: placement reads the element's).
RawLink = tuple[
    "LexborNode | None", str, "str | None", "str | None", str, bool, list[str],
    "dict[str, str | None] | None",
]  # fmt: skip


def stage_links(
    page: PageLinks, base: str, alternates: list[tuple[str, str]], markup: PageMarkup,
    long: bool, links: tuple[Sequence[str], Callable[[int], RawLink]], encoding: str, url: str,
) -> WalkedPage:  # fmt: skip
    """The walked page of a walk's raw *links* (their hrefs, and each link's raw fields by
    index, read only for the hrefs that make a link): targets resolved by
    :func:`link_targets`, rows added by :func:`append_links`."""
    hrefs, raw_link = links
    targets, too_long = link_targets(hrefs, base, encoding, url)
    nodes: list[LexborNode] = []
    rels: list[list[str]] = []
    texts: list[str] = []  # each link's text as a reader sees it (images aside)
    attrs: list[dict[str, str | None] | None] = []
    titles: list[str | None] = []
    staged: list[tuple[str, str, bool, list[str]]] = []
    for index, target in targets:
        node, tag, rel, title, text, is_image, alts, link_attrs = raw_link(index)
        nodes.append(node)  # type: ignore[arg-type]  # None only where no placement follows
        rels.append(split_rel(rel))
        texts.append(collapse_ws(text))
        attrs.append(link_attrs)
        titles.append(title)
        staged.append((target, tag, is_image, alts))

    def add_links(placements: list[Placed]) -> bool:
        return append_links(page, staged, rels, texts, titles, placements)

    given = None if None in attrs else attrs  # placement reads them itself otherwise
    return WalkedPage(page, base, alternates, markup, nodes, rels, texts, given,  # type: ignore[arg-type]
                      add_links, long or too_long)  # fmt: skip


def page_fields(
    url: str, encoding: str, limits: list[str] | None, x_robots_tag: str | None, *,
    base_href: str | None, title: str | None, canonical_href: str | None, robots: list[str],
    truncated: bool, resolve: Resolve = resolve_link,
) -> tuple[PageLinks, str, bool]:  # fmt: skip
    """The page's fields from what its walk found (the first ``<base href>``, ``<title>``
    text, canonical href, robots contents), its base URL, and whether a string was cut or
    dropped (``long_strings``). Shared by the lexbor walk and the native core's (whose
    *resolve* is its port of :func:`resolve_link`, for the canonical)."""
    base = url
    if base_href is not None:
        # The first <base href>, resolved against the document URL; unparsable -> document URL.
        base = resolve_href(base_href.strip(), url) or url
    meta_robots = ", ".join(robots) or None
    long = False  # a string cut or dropped at MAX_TEXT_CHARS / MAX_URL_CHARS
    page = PageLinks(base_url=base, encoding=encoding)
    if title and len(title) > MAX_TEXT_CHARS:
        title, long = title[:MAX_TEXT_CHARS], True
    page.title = title or None
    if meta_robots and len(meta_robots) > MAX_TEXT_CHARS:
        page.meta_robots, long = meta_robots[:MAX_TEXT_CHARS], True
    else:
        page.meta_robots = meta_robots
    page.links_truncated = truncated
    page.limits_hit = list(limits or ())
    if truncated:
        page.limits_hit.append("links")
    if canonical_href:
        canonical = resolve(canonical_href, base)
        if canonical is not None and len(canonical) > MAX_URL_CHARS:
            canonical, long = None, True
        page.canonical = canonical
    page.nofollow_page = robots_nofollow(meta_robots) or robots_nofollow(x_robots_tag)
    return page, base, long


def link_targets(
    hrefs: Iterable[str], base: str, encoding: str, page_url: str
) -> tuple[list[tuple[int, str]], bool]:
    """The (index, target URL) of the *hrefs* that make a link, resolved against *base*, and
    whether one was dropped for a target longer than MAX_URL_CHARS. Empty and fragment-only
    hrefs are links only when *base* names another document than *page_url*.

    >>> hrefs = ["/a", "mailto:x@y.test", "#top", "b?q=é"]
    >>> link_targets(hrefs, "http://s.test/d/", "cp1252", "http://s.test/d/")
    ([(0, 'http://s.test/a'), (3, 'http://s.test/d/b?q=%E9')], False)
    >>> link_targets(["#top"], "http://s.test/d/", "utf-8", "http://s.test/p")
    ([(0, 'http://s.test/d/')], False)
    """
    same_document = base == page_url or is_same_document(base, page_url)
    targets: list[tuple[int, str]] = []
    long = False
    resolved: dict[str, str | None] = {}  # a page links to the same href many times
    legacy = _is_legacy_encoding(encoding)
    for index, raw in enumerate(hrefs):
        href = encode_query(raw, encoding) if legacy and not raw.isascii() else raw
        if href in resolved:
            target = resolved[href]
        elif href.startswith(("http://", "https://")) and len(href) <= MAX_URL_CHARS:
            # An absolute href does not depend on the base: cached across pages (if short: a
            # cache of huge hrefs would outlive their pages).
            target = resolved[href] = _resolve_absolute(href)
        else:
            skipped = is_skipped_href(href, same_document)
            target = resolved[href] = None if skipped else resolve_link(href, base)
        if target is None:
            continue
        if len(target) > MAX_URL_CHARS:
            long = True
            continue
        targets.append((index, target))
    return targets, long


def append_links(
    page: PageLinks, staged: Sequence[tuple[str, str, bool, list[str]]],
    rels: Sequence[list[str]], texts: Sequence[str], titles: Sequence[str | None],
    placements: Iterable[Placed],
) -> bool:  # fmt: skip
    """Append a row to ``page.links`` per staged link (target, tag, wraps an image, alt
    texts) with its rel tokens, collapsed text, title attribute and placement; True if a
    string was cut at MAX_TEXT_CHARS."""
    long = False
    page_nofollow = page.nofollow_page
    for position, ((target, tag, is_image, alts), rel, anchor, title_attr, placement) in enumerate(
        zip(staged, rels, texts, titles, placements, strict=True)
    ):
        if not anchor and alts:
            # The same image twice (a lazy-load <img> and its <noscript> copy) is one label.
            anchor = collapse_ws(" ".join(dict.fromkeys(alts)))
        link_title = collapse_ws(title_attr) if title_attr else None
        flags = ("nofollow" in rel, "sponsored" in rel, "ugc" in rel)
        if len(anchor) > MAX_TEXT_CHARS:
            anchor, long = anchor[:MAX_TEXT_CHARS], True
        if link_title is not None and len(link_title) > MAX_TEXT_CHARS:
            link_title, long = link_title[:MAX_TEXT_CHARS], True
        if rel and sum(map(len, rel)) > MAX_TEXT_CHARS:
            rel, long = _cap_tokens(rel), True
        page.links.append(
            Link(
                target_url=target,
                anchor_text=anchor,
                title=link_title,
                rel=rel,
                nofollow=page_nofollow or flags[0],
                sponsored=flags[1],
                ugc=flags[2],
                is_image=is_image,
                tag=tag,
                placement=placement.placement,
                position=position,
                placement_score=placement.score,
                placement_block=placement.block,
            )
        )
    return long


def _lang_country(
    page: PageLinks, tree: LexborHTMLParser, url: str, base: str,
    alternates: list[tuple[str, str]], content_language: str | None, keep_text: bool,
    resolve: Resolve = resolve_link, visits: Visits | None = None,
) -> None:  # fmt: skip
    """Set the page's language and country (pipelines/pagelang.py) and, if asked, its text
    (*resolve*: :func:`resolve_link` or the native core's port, for the hreflang links;
    *visits*: the detector's feature counts by the native core, or None).
    The visible text is computed (~0.4 ms a page) only when it is stored or the language is
    not declared; it changes the tree (scripts dropped), so this runs last."""
    root = tree.root
    html_lang = root.attributes.get("lang") if root is not None and root.tag == "html" else None
    in_html = parse_lang(html_lang)[0]
    in_header = parse_lang(first_language(content_language))[0]
    # The text is needed to detect: no language declared, or two that disagree.
    undeclared = in_html is None and in_header is None
    disagree = in_html is not None and in_header is not None and in_html != in_header
    text = visible_text(tree) if keep_text else None
    sample = text
    if sample is None and (undeclared or disagree):
        sample = _prose_sample(tree) or visible_text(tree)
    page.lang, page.lang_source, lang_region = page_lang(html_lang, content_language, sample,
                                                         visits)  # fmt: skip
    region = None
    if alternates:
        own = None
        for code, href in alternates:
            alt_region = parse_lang(code)[1]
            if alt_region is None:
                continue
            if own is None:
                own = resolve(url, url) or url
            # Resolved only when it may be the page itself (its path's last segment is ours).
            tail = href.rstrip("/").rsplit("/", 1)[-1]
            if tail in own and resolve(href, base) == own:
                region = alt_region
                break
    page.country, page.country_source = page_country(url_host(url), region, lang_region)
    if keep_text and text is not None:
        # NFKC: a search for "Acme" finds "Ａｃｍｅ" (pipelines/index/mentions.py).
        page.text = cap_utf8(unicodedata.normalize("NFKC", text), MAX_PAGE_TEXT_BYTES)


def _prose_sample(tree: LexborHTMLParser, max_chars: int = DETECT_SAMPLE_CHARS) -> str:
    """The page's paragraphs of five words or more, up to *max_chars* characters: what the
    detector reads when the whole visible text is not needed (cheaper: no element is removed,
    and the walk stops when enough is found); empty when the page has too little of it.

    >>> _prose_sample(LexborHTMLParser("<p>Menu</p><p>Un deux trois quatre cinq six.</p>"), 40)
    'Un deux trois quatre cinq six.'
    """
    parts: list[str] = []
    size = 0
    for node in tree.css("p"):
        line = " ".join(node.text().split())
        if line.count(" ") >= 4:
            parts.append(line)
            size += len(line) + 1
            if size >= max_chars:
                break
    return "\n".join(parts) if size >= max_chars // 4 else ""


# Elements whose text is not rendered (pipelines/linktext.py's _HIDDEN, for a whole page).
_UNRENDERED = ["script", "style", "template", "textarea", "noembed", "noframes", "iframe",
               "video", "audio", "datalist", "rp", "select"]  # fmt: skip


def visible_text(tree: LexborHTMLParser, max_chars: int = MAX_PAGE_TEXT_BYTES) -> str:
    """The text of the page's body a reader sees, one line per text run (whitespace inside a
    line collapsed, empty lines dropped), its first *max_chars* characters or a little more (the
    whole lines). In C (lexbor), ~0.4 ms a page: inline elements split
    lines too (``<b>Acme</b>, Inc.`` gives two). Drops the unrendered elements and those a
    ``hidden`` attribute hides: the tree is changed.

    >>> visible_text(LexborHTMLParser(
    ...     "<title>T</title><p>Hello  <b>world</b><script>x()</script><p hidden>no<p>Bye"))
    'Hello\\nworld\\nBye'
    """
    body = tree.body
    if body is None:
        return ""
    tree.strip_tags(_UNRENDERED)
    for node in body.css("[hidden]"):
        if is_hidden(node.attributes):
            node.decompose()
    kept: list[str] = []
    size = 0
    for raw in body.text(separator="\n").splitlines():
        line = " ".join(raw.split())
        if line:
            kept.append(line)
            size += len(line) + 1
            if size >= max_chars:  # a Python step per line: bounded on a huge page
                break
    return "\n".join(kept)


def cap_utf8(text: str, max_bytes: int) -> str:
    """*text* cut to at most *max_bytes* bytes of UTF-8, on a character boundary.

    >>> cap_utf8("héhé", 2), cap_utf8("héhé", 4), cap_utf8("abc", 10)
    ('h', 'héh', 'abc')
    """
    if len(text) * 4 <= max_bytes:
        return text
    return text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")


def _cap_tokens(tokens: list[str], max_chars: int = MAX_TEXT_CHARS) -> list[str]:
    """The first *tokens* that fit in *max_chars* characters (the first one cut to fit).

    >>> _cap_tokens(["nofollow", "external", "x" * 9], 20)
    ['nofollow', 'external']
    >>> _cap_tokens(["y" * 30, "ugc"], 20) == ["y" * 20]
    True
    """
    kept: list[str] = []
    room = max_chars
    for token in tokens:
        if len(token) > room:
            break
        kept.append(token)
        room -= len(token)
    return kept or [tokens[0][:max_chars]]


def extract_page(
    body: bytes,
    url: str,
    *,
    content_type: str | None = None,
    x_robots_tag: str | None = None,
    content_language: str | None = None,
    keep_text: bool = False,
    native: bool = True,
) -> PageLinks:
    """Decode ``body`` as a browser would and extract every link of the page at ``url``.

    ``url`` is the page's final (post-redirect) URL. Targets are resolved (WHATWG) and
    normalized (README); ``javascript:``, ``mailto:``, fragment-only and unparsable hrefs
    yield no link. Empty and fragment-only hrefs are links to the page itself, except under a
    ``<base href>`` naming another document: there they are links to it, as in a browser.

    The links are found by the native core when it is built (:mod:`pipelines.native`: the
    same rows, faster); *native* False takes the Python path even then (the reference).

    >>> page = extract_page(
    ...     b'<base href="/d/"><nav><a href="x.html#top" rel="NoFollow">A &amp; B</a></nav>'
    ...     b'<a href="mailto:a@b.test">mail</a>'
    ...     b'<main><a href="//o.test/"><img alt=Logo></a></main>',
    ...     "http://a.test/p",
    ... )
    >>> [(k.target_url, k.anchor_text, k.rel, k.nofollow, k.is_image, k.placement)
    ...  for k in page.links]  # doctest: +NORMALIZE_WHITESPACE
    [('http://a.test/d/x.html', 'A & B', ['nofollow'], True, False, 'nav'),
     ('http://o.test/', 'Logo', [], False, True, 'content')]
    >>> html = b'<base href="%s"><a href="#x">x</a><a href="">y</a>'
    >>> [k.target_url for k in extract_page(html % b"/d/", "http://a.test/p").links]
    ['http://a.test/d/', 'http://a.test/d/']
    >>> extract_page(html % b"/p#b", "http://a.test/p").links  # the page itself
    []
    """
    limits: list[str] = []
    tree, encoding = parse_page(body, content_type, limits=limits, native=native, url=url)
    return _extract(tree, url, encoding=encoding, x_robots_tag=x_robots_tag, limits=limits,
                    content_language=content_language, keep_text=keep_text,
                    native=native)  # fmt: skip


def parse_page(
    body: bytes, content_type: str | None = None, *, limits: list[str] | None = None,
    native: bool = True, url: str = "a page",
) -> tuple[LexborHTMLParser, str]:  # fmt: skip
    """The page's DOM as :func:`extract_page` parses it (bytes cut, deep nesting flattened,
    decoded as a browser would), and the encoding it was decoded with. The bounds hit are
    appended to *limits* (see PageLinks.limits_hit); *native* False: no step by the core;
    *url* names the page in the log if the core fails."""
    hit = limits if limits is not None else []
    body, many_tags, deep = bound_body(body, hit, native=native, url=url)
    encoding, tentative, start = sniff_encoding(body, content_type)
    tree = _parse(body[start:] if start else body, encoding)
    if tentative:
        declared = _encoding_declared_in_head(tree)
        if declared is not None and declared != encoding:
            encoding = declared
            tree = _parse(body, encoding)
    if many_tags and _flatten_deep(tree, native=native):
        deep = True
    if deep:
        hit.append("dom_depth")
    return tree, encoding


def bound_body(
    body: bytes, limits: list[str], *, native: bool = True, url: str = "a page"
) -> tuple[bytes, bool, bool]:
    """*body* cut and flattened as :func:`parse_page` parses it (MAX_PARSE_BYTES, MAX_TAGS,
    MAX_REOPENED, MAX_BLOCK_DEPTH), whether it has enough tags or nested links to nest deep
    (then what nests deeper than MAX_DOM_DEPTH is flattened after the parse), and whether its
    nesting was flattened already; the bounds hit are appended to *limits* ("dom_depth" is left
    to the caller: the parse may flatten more).

    By the native core when it is built and *native* (the same bytes, limits and flags,
    tests/test_native_bound_body.py: its Python, ~5 ms a page of the Zyte and WCXB mix, was a
    fifth of the core path's CPU); this Python is the reference and the fallback (a failure
    of the core is logged with *url*).

    >>> bound_body(b"<p>x", [])
    (b'<p>x', False, False)
    """
    if native:
        from pipelines import native as core  # it builds on this module: imported on first use

        bounded = core.bounded_body(body, url)
        if bounded is not None:
            body, hit_now, many_tags, deep = bounded
            limits.extend(hit_now)
            return body, many_tags, deep
    hit = limits
    if len(body) > MAX_PARSE_BYTES:
        body = body[:MAX_PARSE_BYTES]
        hit.append("parse_bytes")
    deep = False
    tags = body.count(b"<")
    if tags > MAX_TAGS:
        body = body[: _nth_tag(MAX_TAGS).match(body).end() - 1]  # type: ignore[union-attr]
        hit.append("dom_nodes")
    # n tags re-open (n/2)^2 elements at most, of a unit per REOPEN_UNIT_BYTES of the page at
    # most: under MAX_REOPENED, no need to look.
    if (tags // 2 + 1) ** 2 * (1 + len(body) // REOPEN_UNIT_BYTES) > MAX_REOPENED:
        quoted_gts = _quoted_gts(body)  # both bounds read them: one scan
        kept = _limit_reopened(body, min(tags, MAX_TAGS), quoted_gts=quoted_gts)
        if kept is not body:
            hit.append("formatting")
            body = kept
            quoted_gts = None  # positions in the bytes before the cut
    else:
        quoted_gts = None
    kept = _limit_attributes(body, quoted_gts)
    if kept is not body:
        hit.append("attributes")
        body = kept
    many_tags = tags > _NESTING_CHECK_TAGS
    if many_tags:
        flat = _limit_depth(body, native)
        deep = flat is not body
        body = flat
    return body, many_tags or (tags > MAX_DOM_DEPTH and _links_may_nest(body, MAX_DOM_DEPTH)), deep


# Links and the elements past which an <a> nests in another (the parser's "markers").
_NESTING_LINK_RE = re.compile(
    rb"<(?=[aAoOtTcCmM])(a|object|applet|marquee|template|td|th|caption)(?=[\t\n\f\r />])",
    re.IGNORECASE,
)  # (the look-ahead on the first letter: 1.6x faster)


def _links_may_nest(body: bytes, max_depth: int = MAX_DOM_DEPTH) -> bool:
    """Whether the links of *body* may nest deeper than *max_depth* (then it is flattened
    after the parse, as a page of many tags): an ``<a>`` nests in an open one only past a
    marker (``<object>``, a table cell...), and a link's text holds those below it, so n
    links nested make n x n / 2 of text to walk (4,000 in 60 KB: 8 s).

    >>> _links_may_nest(b"<a href=/x>w <OBJECT>" * 3, 4), _links_may_nest(b"<td><a href=/x>" * 2, 4)
    (True, False)
    """
    names = _NESTING_LINK_RE.findall(body)
    links = sum(1 for name in names if name == b"a" or name == b"A")
    return 2 * min(links, len(names) - links) > max_depth


def _limit_depth(body: bytes, native: bool = True) -> bytes:
    """``_limit_open_elements(_limit_nesting(body))``, by the native core when it is built and
    *native* (the same bytes, tests/test_native.py: a Python step per tag, on a page of many
    tags, ~1 ms)."""
    from pipelines import native as core  # it builds on this module: imported on first use

    flat = core.limit_depth(body) if native else None
    return _limit_open_elements(_limit_nesting(body)) if flat is None else flat


def _flatten_deep(
    tree: LexborHTMLParser, max_depth: int = MAX_DOM_DEPTH, native: bool = True
) -> bool:
    """Flatten what is nested deeper than *max_depth*: the content of an element at that
    depth is replaced by its links and text, side by side (:func:`_flat_html`). True if any
    element was. (With *native*, the core's walk first answers a page that has nothing so
    deep, most pages: this walk finds, and flattens, what one has.)

    Chromium's parser likewise stops nesting at 512 levels. Nesting lexbor parses fast
    (``<table><tr><td>``, inline elements) is flattened here, after the parse, in one walk:
    below it, every walk of extraction and placement from an element to the root, or over a
    nested block's text, is bounded. (lexbor moves a node in time linear in its subtree, so
    the deep content is rebuilt, not moved.)

    >>> tree = LexborHTMLParser("<i><b><u><a href=/x><b><s>x</s></b></a> y</u></b></i>")
    >>> _flatten_deep(tree, 3), tree.body.html
    (True, '<body><i><b><span><a href="/x">x</a> y</span></b></i></body>')
    """
    root = tree.root
    if root is None:
        return False
    if native:
        from pipelines import native as core  # it builds on this module: imported on first use

        if core.nests_deeper(tree, max_depth) is False:
            return False
    cuts: list[LexborNode] = []
    stack = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        child = node.child
        if child is None:
            continue
        if depth >= max_depth:
            cuts.append(node)
            continue
        depth += 1
        while child is not None:
            stack.append((child, depth))
            child = child.next
    if not cuts:
        return False
    hidden = hidden_elements(tree)
    for node in cuts:
        flat = _flat_html(node, hidden)
        child = node.child
        while child is not None:
            nxt = child.next
            child.decompose()
            child = nxt
        wrapper = LexborHTMLParser(f"<span>{flat}</span>").css_first("span")
        if wrapper is not None:
            node.insert_child(wrapper)
    return True


# What a flattened element keeps of its content: the text of these is not rendered.
_NOT_TEXT = frozenset({"script", "style", "template", "textarea", "title", "noembed", "noframes"})


def _flat_html(node: LexborNode, hidden: set[int]) -> str:
    """The links and the visible text under *node*, in document order, as flat HTML: each
    HTML link with its attributes, its anchor text and its images' alt texts.

    >>> tree = LexborHTMLParser('<div>a<b>b<a href="/x" rel=ugc>x<img alt="&quot;">'
    ...                         '<script>s</script></a></b><svg><a href=/s>s</a></svg></div>')
    >>> _flat_html(tree.css_first("div"), set())
    'ab<a href="/x" rel="ugc">x<img alt="&quot;"></a>s'
    """
    out: list[str] = []
    stack = [(node.child, False)]  # (next node to walk, in SVG or MathML content)
    while stack:
        cur, foreign = stack.pop()
        if cur is None:
            continue
        stack.append((cur.next, foreign))
        tag = cur.tag
        if tag == "-text":
            out.append(html_escape(cur.text_content or "", quote=False))
            continue
        if tag in _NOT_TEXT or tag == "-comment" or cur.mem_id in hidden:
            continue
        if (tag == "a" or tag == "area") and not foreign and "href" in cur.attributes:
            attrs = "".join(
                f' {k}="{html_escape(v or "")}"'
                for k, v in cur.attributes.items()
                if _ATTR_NAME.fullmatch(k)
            )
            if tag == "area":
                out.append(f"<area{attrs}>")
                continue
            text, is_image, alts = anchor_parts(cur, hidden)
            images = "".join(f'<img alt="{html_escape(alt)}">' for alt in alts)
            if is_image and not images:
                images = "<img>"
            out.append(f"<a{attrs}>{html_escape(text, quote=False)}{images}</a>")
            continue
        if tag == "svg" or tag == "math":
            inner = True
        elif foreign and tag in _HTML_AGAIN_ANY:
            inner = False
        else:
            inner = foreign
        stack.append((cur.child, inner))
    return "".join(out)


_ATTR_NAME = re.compile(r"[a-zA-Z_:][-a-zA-Z0-9_:.]*")
_HTML_AGAIN_ANY = _HTML_AGAIN["svg"] | _HTML_AGAIN["math"]


def _parse(data: bytes, encoding: str) -> LexborHTMLParser:
    if encoding == "utf-8":
        # lexbor decodes UTF-8 itself as the WHATWG decoder does (a bad byte is U+FFFD, as
        # in Python): no str to build, nor for selectolax to encode back.
        return LexborHTMLParser(data)
    return LexborHTMLParser(decode(data, encoding))
