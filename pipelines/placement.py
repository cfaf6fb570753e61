"""Placement: where on the page a link sits (content, nav, sidebar, footer, comment).

Per page, from the DOM alone:

1. **The main content block** (Ahrefs' "biggest piece of content"): the element that maximizes
   ``decayed good text - link text outside running text - boilerplate text`` over its
   subtree. *Good text* is the text of paragraph-like blocks (``p``, ``pre``, ``td``, ``li``,
   ``blockquote``, the text straight in a ``div``...) that are long and not link-dense
   (jusText/boilerpipe's density idea), counting less the deeper it lies (readability's
   decay); *boilerplate text* is good text under an element that markup labels nav, sidebar,
   footer or comments. No class name is needed, so hashed class names and table layouts get
   one too. Markup that names the article body (``itemprop=articleBody``, ``entry-content``,
   ``article-body``...) overrides density where they overlap; one teaser of a listing widens
   to the listing; a page without running text (a hub) takes its largest block of links.
2. **Markup labels**, kept only below the common ancestor of the link and the main block (a
   wrapper that holds both, ``<div class="content-sidebar-wrap">``, tells nothing about
   either): HTML5 sectioning, ARIA roles, schema.org ``itemprop``, and id/class tokens in
   several conventions (WordPress, Bootstrap, BEM, camelCase) and languages. ``rel=ugc`` and
   comment containers make a comment. A page builder's class name on every block (Elementor's
   and HubSpot's "widget"), whose boxes hold most of the running text side by side, is no
   sidebar; a site's own region wrapper, nested in itself, stays one.
3. **Inside the main block**, a link in running text is content. A link of its own (not in a
   paragraph) is content, except before the first or after the last paragraph (bylines,
   share and tag bars, related lists), in a list of headlines, or, in an article, when it
   stays on the page's site (promos and related stories; editors' own links mostly leave
   it); so are the links of a short, link-heavy first or last paragraph (byline, sign-off).
4. **Blocks of copy beside it**: a marketing page holds its copy in several sections (hero,
   features, testimonials) of which density chose one; a block beside main (a child of one of
   its ancestors) under no boilerplate label whose running text is comparable to main's (a
   share of it; the largest few) is copy too, and a link in its running text is content.
   Related posts beside a story hold far less text than the story, so they stay out.
5. **Outside it, without a label**, where the link sits: the outermost region before main is
   nav, the outermost after it footer, regions nested beside main sidebars; pagination
   anchors (``2``, ``next``, ``Older posts``...) are nav.

Each link also gets a confidence (:func:`place_links_scored`: 0.9+ from markup or running
text, 0.5-0.8 from position) and a structural fingerprint of its container (tags, classes,
ids: stable across the pages of one site, whatever the link's text), which the site-level pass
(:mod:`pipelines.sitewide`) uses to correct template links at compaction. Work is per
element on the paths from links and paragraphs to the root (not over the whole DOM),
memoized by ``mem_id``; text is measured by lexbor.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from functools import lru_cache
from itertools import compress, islice, repeat
from math import log1p
from typing import Any, NamedTuple

from selectolax.lexbor import LexborHTMLParser, LexborNode

from pipelines.linktext import anchor_parts, collapse_ws, hidden_elements
from pipelines.memo import BoundedMemo
from pipelines.page_type import MARKUP_FACTS, PageMarkup
from pipelines.placement_model import LinkFacts, decide
from pipelines.urls import registered_domain

CONTENT, NAV, SIDEBAR, FOOTER, COMMENT = "content", "nav", "sidebar", "footer", "comment"
BOILERPLATE = frozenset({NAV, SIDEBAR, FOOTER, COMMENT})

_TAG_LABELS = {
    "nav": NAV,
    "header": NAV,
    "menu": NAV,
    "footer": FOOTER,
    "aside": SIDEBAR,
    "dialog": SIDEBAR,
    "main": CONTENT,
    "article": CONTENT,
}
_ROLE_LABELS = {
    "navigation": NAV,
    "banner": NAV,
    "menu": NAV,
    "menubar": NAV,
    "menuitem": NAV,
    "tablist": NAV,
    "search": NAV,
    "contentinfo": FOOTER,
    "complementary": SIDEBAR,
    "dialog": SIDEBAR,
    "alertdialog": SIDEBAR,
    "main": CONTENT,
    "article": CONTENT,
    "comment": COMMENT,
}
_ITEMPROP_LABELS = {
    "articlebody": CONTENT,
    "text": CONTENT,
    "reviewbody": CONTENT,
    "description": CONTENT,
    "breadcrumb": NAV,
    "comment": COMMENT,
    "author": NAV,
}
# Whole id/class tokens (split on non-letters and camelCase), mapped to a label. Several
# languages: en, de, fr, es, pt, it, nl, ru (transliterated), pl. Meta links (author, tags,
# share buttons, dates) are not editorial: nav for taxonomy, sidebar for widgets.
_WORDS = {
    COMMENT: "comment comments commentlist commentary-list comentario comentarios commentaire "
    "commentaires kommentar kommentare commenti reactie reacties opmerkingen komentarze "
    "kommentarii disqus respond replies reply discussion discussions guestbook gaestebuch "
    "talkback ugc",
    NAV: "nav navbar navigation navi navigatie navegacion navegacao menu menus menubar "
    "mainmenu topmenu submenu megamenu dropdown breadcrumb breadcrumbs crumbs crumb "
    "pagination pager paging pagenav masthead topbar toolbar header kopfzeile cabecalho "
    "cabecera entete intestazione skip skiplink tags tag tagcloud taglist categories "
    "byline author authors meta postmeta entrymeta dateline timestamp logo brand branding "
    "hamburger drawer offcanvas",
    SIDEBAR: "sidebar sidebars aside widget widgets blogroll related recommended recommend "
    "recommendations popular trending mostread sidebox rail secondary share sharing social "
    "sharebar socials recirc recirculation promo promotion advert advertisement ads ad sponsor "
    "sponsored newsletter subscribe subscription signup teaser teasers outbrain taboola "
    "seitenleiste barra lateral zijbalk colonne latérale relacionados relacionadas correlati "
    "verwandte aehnliche cookie cookies consent gdpr onetrust cookiebot modal popup lightbox "
    "",
    FOOTER: "footer foot colophon copyright bottombar legal imprint impressum "
    "fusszeile fußzeile pie rodape rodapé piede voettekst podval stopka disclaimer",
    CONTENT: "content entry post article story articlebody storybody postbody entrycontent "
    "postcontent main body text prose richtext contenido conteudo contenu inhalt "
    "artikel articolo testo texto",
}
_TOKEN_LABELS: dict[str, str] = {w: label for label, ws in _WORDS.items() for w in ws.split()}
# Strong words also match as the head or tail of a compound token (sitefooter, mainnav...).
_COMPOUND = (
    ("comment", COMMENT),
    ("footer", FOOTER),
    ("sidebar", SIDEBAR),
    ("navbar", NAV),
    ("breadcrumb", NAV),
    ("navigation", NAV),
    ("menu", NAV),
    ("widget", SIDEBAR),
    ("related", SIDEBAR),
)

# Tokens that name something inside a region rather than a region (post-title, main-text...).
_WEAK_CONTENT = frozenset({"main", "body", "text", "post", "entry", "content"})
# id/class tokens: runs of letters, split where camelCase starts a word.
_TOKEN_RE = re.compile(r"[A-Z]?[a-z\u00e0-\u024f]+|[A-Z]+(?![a-z])")
# ASCII bytes other than a-z, mapped to a space: what separates the tokens of a lowercase name.
_ASCII_SEPARATORS = bytes(c if 97 <= c <= 122 else 32 for c in range(256))

# Paragraph-like blocks: their text (less nested blocks) is what density is measured on.
_SCAN_SELECTOR = (
    "a[href], area[href], p, pre, td, th, li, dd, dt, blockquote, div, section, article, main, "
    "center, font"
)
# Containers whose own text (text straight inside, not in children) counts as a block.
_CONTAINERS = frozenset({"div", "section", "article", "main", "center", "font"})


def _tag_id(name: str) -> int:
    """lexbor's number for a standard tag name (the same in every document)."""
    return LexborHTMLParser("").create_node(name).tag_id


_LINK_TAG_IDS = frozenset({_tag_id("a"), _tag_id("area")})
_CONTAINER_IDS = frozenset(map(_tag_id, _CONTAINERS))

_MIN_PARA = 25  # characters of own text below which a block is not running text
_MAX_DENSITY = 0.5  # link text / text above which a block is a link list, not running text
_LINK_WEIGHT = 1.0  # the main block pays this much per character of link text outside text
_BOILER_WEIGHT = 1.0  # ... and per character of good text under a boilerplate label
_DECAY = 0.85  # text counts this much less per level it lies below an element
_WRAPPER_SHARE = 0.5  # a region label on an element with more of the page's text is a wrapper
_BUILDER_NESTED = 0.4  # a page builder's boxes: at most this share of them inside another
_NAMED_SHARE = 0.6  # a named body with this share of main's text is the main block
_MIN_ARTICLE = 400  # good characters from which main is an article, where link lists are not text
_HEADLINE_WORDS = 5  # mean words per anchor from which a list of links is a list of stories
_EDGE_TEXT = 150  # an edge paragraph shorter than this...
_EDGE_LINKS = 0.2  # ... with this share of link text is a byline or sign-off
_GRID_SHARE = 5.0  # a block of items with this many times main's text is the page's content
_THREAD_POSTS = 2  # comments straight in main that make it a thread (a forum's, a Q&A's)
_THREAD_SHARE = 0.5  # comments' share of the running text from which a page is a thread
_THREAD_OTHER = 2000  # running text outside the comments below which no article is beside them
_MIN_MAIN = 50  # good characters below which a page has no main text (a link hub)
_COPY_SHARE = 0.3  # running text beside main, in this share of main's, is the page's copy too
_COPY_BLOCKS = 8  # at most this many such blocks beside main (the largest)
_ITEM_TAGS = frozenset({"li", "article", "dt", "dd"})
_LAYOUT_TAGS = frozenset({"tr", "td", "th", "tbody", "thead", "tfoot", "table"})
# Pagination anchors: page numbers, arrows, next/previous in several languages.
_PAGER = re.compile(
    r"[\d\s]{1,5}|[«»‹›<>←→\s.]*(?:next|prev|previous|older|newer|more|suivant|précédent|"
    r"weiter|zurück|siguiente|anterior|próximo|avanti|indietro|volgende|vorige|следующая|"
    r"предыдущая)?(?:\s+(?:posts?|page|entries|articles|articoli|seite|página))?[«»‹›<>←→\s.]*",
    re.IGNORECASE,
)
_BLOCK_TAGS = frozenset(
    {
        "p", "pre", "td", "th", "li", "dd", "dt", "blockquote", "div", "section", "article",
        "main", "center", "ul", "ol", "table", "tr", "nav", "aside", "header", "footer", "form",
        "figure", "figcaption", "h1", "h2", "h3", "h4", "h5", "h6", "dl", "body",
    }
)  # fmt: skip
_PARAGRAPHS = frozenset({"p", "li", "dd", "dt", "blockquote", "pre"})
_CELL_TAGS = ("td", "th")  # a branch of these beside main is a column, never a small bar
_LIST_ITEM_TAGS = ("li", "dd", "dt")  # a paragraph in one is a teaser's blurb
_LIST_TAGS = ("ul", "ol")  # a link's list (4 levels up at most): a list of stories?
# Bits of what an element is (its tag, its label, the word groups its class and id name), ORed
# down the tree into each link's ancestry: facts for the placement model (:func:`_link_facts`).
BIT_NAMES = (
    "tag_nav", "tag_header", "tag_footer", "tag_aside", "tag_main", "tag_article", "tag_li",
    "tag_table", "tag_form", "tag_heading", "tag_section", "tag_list", "tag_p",
    "label_nav", "label_sidebar", "label_footer", "label_comment", "label_content",
    "word_post", "word_product", "word_item", "word_social", "word_toc", "word_hero",
)  # fmt: skip
_BIT = {name: 1 << i for i, name in enumerate(BIT_NAMES)}
_TAG_BITS = {
    **{t: _BIT["tag_" + t] for t in ("nav", "header", "footer", "aside", "main", "article")},
    **{t: _BIT["tag_table"] for t in ("table", "tr", "td", "th")},
    **{t: _BIT["tag_heading"] for t in ("h1", "h2", "h3", "h4", "h5", "h6")},
    **{t: _BIT["tag_list"] for t in ("ul", "ol", "dl")},
    "li": _BIT["tag_li"], "dd": _BIT["tag_li"], "dt": _BIT["tag_li"], "form": _BIT["tag_form"],
    "section": _BIT["tag_section"], "p": _BIT["tag_p"], "blockquote": _BIT["tag_p"],
}  # fmt: skip
_LABEL_BITS: dict[str | None, int] = {
    lab: _BIT["label_" + lab] for lab in (NAV, SIDEBAR, FOOTER, COMMENT, CONTENT)
}
_WORD_GROUPS = {
    "word_post": "post posts answer answers reply replies message messages thread topic "
    "question questions forum",
    "word_product": "product products description desc detail details spec specs "
    "specification specifications price pdp",
    "word_item": "item items card cards grid tile tiles result results listing teaser "
    "collection catalog",
    "word_social": "share sharing social follow",
    "word_toc": "toc sidenav docs doc",
    "word_hero": "hero banner cta feature features service services section block",
}
_WORD_BITS = {w: _BIT[group] for group, ws in _WORD_GROUPS.items() for w in ws.split()}
_SELF_URLS = (
    ('link[rel="canonical"][href]', "href"),
    ('meta[property="og:url"][content]', "content"),
    ("base[href]", "href"),
)


class Placed(NamedTuple):
    """One link's placement, confidence in [0.5, 1] and structural fingerprint."""

    placement: str
    score: float | None  # None (and placement ""): not placed (the native path, for now)
    block: int | None  # 31-bit fingerprint of the link's container path (tags, classes, ids)


class PlacedColumns(Sequence[Placed]):
    """Links' placements held as three columns (placement, score, block: the native core's
    rules answer so): a sequence of :class:`Placed` made only when a row is first read or
    set. Extraction's rows take the columns as they are (:meth:`columns`): no tuple per link
    made, then taken apart again. Equal to a list of the same placements.

    >>> placed = PlacedColumns(["content", "nav"], [0.9, 0.8], [1, 2])
    >>> len(placed), placed[1], placed == [Placed("content", 0.9, 1), Placed("nav", 0.8, 2)]
    (2, Placed(placement='nav', score=0.8, block=2), True)
    >>> placed[0] = placed[0]._replace(score=0.6)
    >>> placed.columns()
    (['content', 'nav'], [0.6, 0.8], [1, 2])
    """

    __slots__ = ("_columns", "_rows")

    def __init__(self, placements: list[str], scores: list[float], blocks: list[int]) -> None:
        if not len(placements) == len(scores) == len(blocks):
            raise ValueError("PlacedColumns' columns are of one length")
        self._columns = (placements, scores, blocks)
        self._rows: list[Placed] | None = None

    def rows(self) -> list[Placed]:
        """The placements as :class:`Placed` tuples, made once (later calls: the same list)."""
        if self._rows is None:
            # tuple.__new__ in C, not the NamedTuple's Python __new__.
            self._rows = list(map(tuple.__new__, repeat(Placed), zip(*self._columns, strict=True)))
        return self._rows

    def columns(self) -> tuple[list[Any], list[Any], list[Any]]:
        """The placements, scores and blocks as lists (not to be changed): the columns given,
        or read from the rows once they are made (a row may have been set)."""
        if self._rows is None:
            return self._columns
        placements, scores, blocks = zip(*self._rows, strict=True) if self._rows else ((), (), ())
        return list(placements), list(scores), list(blocks)

    def __len__(self) -> int:
        return len(self._columns[0])

    def __getitem__(self, index):  # type: ignore[no-untyped-def]  # int or slice, as a list's
        return self.rows()[index]

    def __setitem__(self, index: int, placed: Placed) -> None:
        self.rows()[index] = placed

    def __iter__(self) -> Iterator[Placed]:
        return iter(self.rows())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PlacedColumns):
            return self.columns() == other.columns()
        if isinstance(other, list):
            return self.rows() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, as a list

    def __repr__(self) -> str:
        return f"PlacedColumns({self.rows()!r})"


def _tokens(value: str) -> list[str]:
    """id/class tokens, lowercased: split on non-letters and camelCase.

    >>> _tokens("site-footer__link mainNav css-1x9f2k AD_2")
    ['site', 'footer', 'link', 'main', 'nav', 'css', 'x', 'f', 'k', 'ad']
    """
    if value.isascii() and value.islower():
        # Most class names: no camelCase, so the tokens are the runs of a-z (bytes.translate
        # runs in C, the regex per character).
        return value.encode().translate(_ASCII_SEPARATORS).decode().split()
    return [t.lower() for t in _TOKEN_RE.findall(value)]


def _token_label(token: str) -> str | None:
    label = _TOKEN_LABELS.get(token)
    if label is not None or len(token) < 7:
        return label
    for word, compound_label in _COMPOUND:
        if token.startswith(word) or token.endswith(word):
            return compound_label
    return None


def _word_facts(word: str) -> tuple[bool, str | None, bool, int]:
    """What one class name says: (a comment word, the first region word, an article word, the
    word groups it names: :data:`_WORD_BITS`), from one split into tokens.

    Within one class name a region word wins over an article word (sdc-article-related-stories,
    sidebar-content, comment-body).

    >>> _word_facts("sdc-article-related-stories"), _word_facts("articleBody")
    ((False, 'sidebar', True, 0), (False, None, True, 0))
    """
    region: str | None = None
    article = comment = False
    bits = 0
    for token in _tokens(word):
        bits |= _WORD_BITS.get(token, 0)
        if comment:
            continue  # a comment word decides: only the bits are left to read
        label = _TOKEN_LABEL[token]
        if label == COMMENT:
            comment = True
        elif label == CONTENT:
            article = article or token not in _WEAK_CONTENT
        elif label is not None and region is None:
            region = label
    if comment:
        return True, None, False, bits
    return False, region, article, bits


def classify_element(tag: str, attrs: dict[str, str | None]) -> str | None:
    """The placement an element's own markup announces, or None.

    >>> classify_element("div", {"class": "widget-area sidebar-1"})
    'sidebar'
    >>> classify_element("section", {"id": "comments"})
    'comment'
    >>> classify_element("div", {"role": "navigation"})
    'nav'
    >>> classify_element("div", {"itemprop": "articleBody"})
    'content'
    >>> classify_element("ul", {"class": "c-Footer__links"})
    'footer'
    >>> classify_element("div", {"class": "sdc-article-related-stories"})
    'sidebar'
    >>> classify_element("div", {"class": "l-sidebar-fixed l-article-body"}) is None
    True
    >>> classify_element("div", {"class": "css-1x9f2k"}) is None
    True
    """
    return _classify(
        tag, attrs.get("class"), attrs.get("id"), attrs.get("role"), attrs.get("itemprop")
    )


def _classify(
    tag: str, cls: str | None, id_: str | None, role: str | None, itemprop: str | None
) -> str | None:
    label = _TAG_LABELS.get(tag)
    if label is not None:
        return label
    if role:
        label = _ROLE_LABELS.get(role.strip().lower())
        if label is not None:
            return label
    if itemprop:
        label = _ITEMPROP_LABELS.get(itemprop.strip().lower())
        if label is not None:
            return label
    found: str | None = None
    content = False
    for value in (id_, cls):
        if value:
            comment, region, article = _VALUE_FACTS[value][:3]
            if comment:
                return COMMENT
            found = found or region
            content = content or article
    # Separate class names of an article and of a region (l-sidebar-fixed l-article-body): a
    # layout modifier, not a region.
    if content:
        return None if found else CONTENT
    return found


def _value_facts(value: str) -> tuple[bool, str | None, bool, bool, int]:
    """What an id or class attribute says: (a comment word, the first region word, an article
    word without a region word in its class name, a name of the article's body, the word
    groups it names: :func:`_value_bits`). Memoized per value: class lists repeat across
    elements where ids and digits do not.

    >>> _value_facts("menu-item menu-item-2041") == (False, NAV, False, False, _BIT["word_item"])
    True
    >>> _value_facts("entry-content clearfix")
    (False, None, False, True, 0)
    """
    body = _names_body(value)
    found: str | None = None
    content = any_comment = False
    bits = 0
    # Its words' tokens are the value's (whitespace splits both): one split serves both.
    for word in value.split():
        comment, region, article, word_bits = _WORD_FACTS[word]
        bits |= word_bits
        if any_comment:
            continue
        if comment:
            any_comment = True
        elif region is not None:
            found = found or region
        elif article:
            content = True
    if any_comment:
        return True, None, False, body, bits
    return False, found, content, body, bits


@lru_cache(maxsize=4096)
def _resolve(labels: tuple[str, ...]) -> str | None:
    """Combine the labels of a link's ancestors, innermost first.

    Comments win; then the innermost boilerplate region (a teaser ``<article>`` inside a
    menu or a related box is still boilerplate), except that a menu inside a footer or a
    sidebar belongs to that footer or sidebar; content only if nothing else.

    >>> _resolve(("nav", "footer"))
    'footer'
    >>> _resolve(("content", "sidebar"))
    'sidebar'
    >>> _resolve(("content",))
    'content'
    """
    if not labels:
        return None
    if COMMENT in labels:
        return COMMENT
    boiler = [lab for lab in labels if lab != CONTENT]
    if not boiler:
        return CONTENT
    first = boiler[0]
    if first == NAV:
        for outer in boiler[1:]:
            if outer in (FOOTER, SIDEBAR):
                return outer
    return first


_BODY_RE = re.compile(
    r"(?:article|story|entry|post|blog|news)[-_]?(?:body|content|text)"
)  # on lowercased values
_BODY_ITEMPROPS = frozenset({"articlebody", "reviewbody"})


def _names_body(value: str) -> bool:
    """Markup that names the article's body: WordPress entry-content, article-body,
    story-text... (a name of the whole body, not of a part of a region).

    >>> _names_body("entry-content clearfix"), _names_body("css-53u6y8")
    (True, False)
    """
    low = value.lower()
    # Every match ends in one of these: a substring test first, the regex only if one is there.
    if "body" not in low and "content" not in low and "text" not in low:
        return False
    return _BODY_RE.search(low) is not None


def _facts(
    tag: str,
    cls: str | None,
    id_: str | None,
    role: str | None,
    itemprop: str | None,
    align: str | None,
) -> tuple[str | None, bool, int, int]:
    """An element's label, whether it names the article body (schema.org articleBody or a
    class or id), its fingerprint part and its bits (:data:`_TAG_BITS`, :data:`_WORD_BITS`):
    everything that depends on its tag and attributes alone, memoized (markup repeats)."""
    if tag not in _TAG_LABELS and not (cls or id_ or role or itemprop):
        label = None
    else:
        label = _classify(tag, cls, id_, role, itemprop)
    bits = _TAG_BITS.get(tag, 0) | _LABEL_BITS.get(label, 0)
    body = bool(itemprop and itemprop.strip().lower() in _BODY_ITEMPROPS)
    for value in (cls, id_):
        if value:
            value_facts = _VALUE_FACTS[value]  # looked up once for both
            body = body or value_facts[3]
            bits |= value_facts[4]
    return label, body, _part_hash(tag, cls, id_, None if cls else align), bits


def _value_bits(value: str) -> int:
    """The word groups (:data:`_WORD_BITS`) an id or class attribute names.

    >>> _value_bits("product-card grid") == _WORD_BITS["product"] | _WORD_BITS["card"]
    True
    >>> _value_facts("product-card grid")[4] == _value_bits("product-card grid")
    True
    """
    bits = 0
    for token in _tokens(value):
        bits |= _WORD_BITS.get(token, 0)
    return bits


# Markup repeats, so what its names say is memoized; the memos are bounded in bytes, not in
# entries, since a page chooses their keys (pipelines/memo.py).
_TOKEN_LABEL = BoundedMemo(_token_label, 4 << 20)
_WORD_FACTS = BoundedMemo(_word_facts, 4 << 20)
_VALUE_FACTS = BoundedMemo(_value_facts, 8 << 20)
_FACTS = BoundedMemo(_facts, 8 << 20)


def _part_hash(tag: str, cls: str | None, id_: str | None, align: str | None) -> int:
    """A container's share of a link's structural fingerprint: tag, class and id, digits out
    (``post-123``, ``menu-item-45`` vary per page; hashed names keep their letters), and the
    ``align`` of unclassed elements (what tells apart the rows of a 1990s table layout)."""
    # Digits are ASCII: deleting their bytes from the UTF-8 is deleting them from the text.
    text = f"{tag}.{cls or ''}#{id_ or ''}@{align or ''}".encode()
    return zlib.crc32(text.translate(None, b"0123456789"))


_ROOT_FACTS = (None, False, 0, 0)  # the root: no label, not the body, no fingerprint, no bits

#: What an element's facts depend on: its tag, class, id, role, itemprop, align (:func:`_facts`).
Kind = tuple[str, str | None, str | None, str | None, str | None, str | None]
#: Sums up the tree (parent, values, decay) -> values (:func:`_tree_sums`), by the core.
TreeSums = Callable[[list[int], list[float], float], list[float]]


class Scanned(NamedTuple):
    """:func:`_scan`'s facts gathered by the native core (``pipelines.native.scan_page``):
    the recorded elements numbered as :meth:`_Page.register` numbers them, each with its
    parent, depth, fingerprint (:attr:`_Page.block`), address (``mem_id``) and kind (an index
    into ``kinds``: markup repeats); each link's key; the blocks of running text and their
    text length; the keys of blocks and links in document order. ``facts``: each kind's label,
    whether it names the body, and bits (:func:`_facts` but the fingerprint part) when the
    core classified them with this module's tables, else None (then looked up here). Then
    what the rules read per element, derived in the same pass: ``nearest``, each element's
    nearest block of running text (:attr:`_Text.nearest`), and ``ancestry``, its bits ORed
    with its ancestors' (:func:`_ancestry`; None without ``facts``). ``sums``: the core's
    :func:`_tree_sums`, which the page's scoring then takes."""

    facts: list[tuple[str | None, bool, int]] | None
    parent: list[int]
    depth: list[int]
    block: list[int]
    addresses: Sequence[int]  # the core's array('Q')
    kind_of: list[int]
    kinds: list[Kind]
    link_keys: list[int]
    paras: list[tuple[int, int]]
    seq: list[int]
    nearest: list[int]
    ancestry: list[int] | None
    sums: TreeSums | None = None  # the core's sums up the tree (:func:`_tree_sums`)
    #: Each element's tag, label and bits (by its kind, ``facts``), and the elements (but the
    #: root) of kinds that name the body, made by the core; None: :meth:`_Page.adopt` does.
    lists: tuple[list[str], list[str | None], list[int], list[int]] | None = None
    #: The core's own copy of the arrays (``linkcrawl_native.ScanArrays``: parent, depth,
    #: kind_of, nearest, kinds), which its later calls on the page read in place of the lists.
    arrays: Any = None


#: A native scan: (tree, root, links) -> the page's :class:`Scanned`, or None (then Python's).
Scanner = Callable[[LexborHTMLParser, LexborNode, Sequence[LexborNode]], Scanned | None]
# What _scan measures: the tags of _SCAN_SELECTOR but the links', for a native scan.
SCAN_BLOCKS = tuple(t for t in map(str.strip, _SCAN_SELECTOR.split(",")) if "[" not in t)


class LinkNodes(Sequence[LexborNode]):
    """A page's link elements, by their addresses (``mem_id``) from the native core's walk,
    found (:func:`pipelines.native._nodes`, one ``css()`` traversal) only when a rule first
    reads one; and each link's ``href`` as the walk read it (``_internal`` reads that).

    >>> tree = LexborHTMLParser("<a href=/x>x</a>")
    >>> nodes = LinkNodes(tree, [tree.css_first("a").mem_id], ["/x"])
    >>> len(nodes), nodes.made, nodes[0].tag, nodes.made
    (1, False, 'a', True)
    """

    __slots__ = ("_addresses", "_found", "_tree", "hrefs")

    def __init__(
        self, tree: LexborHTMLParser, addresses: Sequence[int], hrefs: Sequence[str]
    ) -> None:
        self._tree, self._addresses, self.hrefs = tree, addresses, hrefs
        self._found: list[LexborNode] | None = None

    @property
    def made(self) -> bool:
        """Whether the nodes were found (a rule read one)."""
        return self._found is not None

    def __len__(self) -> int:
        return len(self._addresses)

    def __getitem__(self, index):  # type: ignore[no-untyped-def]  # int or slice, as a list's
        if self._found is None:
            import pipelines.native as native  # it builds on this module

            found = native._nodes(self._tree, self._addresses)
            if found is None:  # the core's scan found them all: a bug if not
                raise LookupError("a link the core found is not an element of the tree")
            self._found = found
        return self._found[index]


class _AddressIndex:
    """Each recorded element's number by its ``mem_id``, made from a native scan's addresses
    when first read (a third of the pages never read it), shared by a page and its nodes."""

    __slots__ = ("addresses", "made")

    def __init__(self, addresses: Sequence[int], made: dict[int, int] | None = None) -> None:
        self.addresses, self.made = addresses, made

    def get(self) -> dict[int, int]:
        """The index, made once: ``_AddressIndex([7, 9]).get()`` is ``{7: 0, 9: 1}``."""
        if self.made is None:
            self.made = dict(zip(self.addresses, range(len(self.addresses)), strict=True))
        return self.made


class _Nodes:
    """The nodes of a natively scanned page's elements, found when a rule first reads one:
    down from its nearest found ancestor, among each parent's children by address (an
    ancestor of the root: up from the root). Each parent's children are read once and every
    recorded one kept, so the lookups of a page cost one pass over its tree at most (no
    recursion: a page nests as deep as it likes; no rescans: a box may hold 100,000 links)."""

    __slots__ = ("addresses", "found", "index_of", "links", "parent", "read", "stepped")

    def __init__(self, page: _Page, root: LexborNode, keys: list[int], links: Sequence[LexborNode]):
        # The page's index holder, not the page: a _Page -> _Nodes -> _Page cycle kept every
        # parsed document alive until a full collection (review13-p13 1).
        self.index_of, self.parent = page.index_of, page.parent
        self.addresses = page.index_addresses
        # Links not yet found (LinkNodes): their keys, read when a lookup needs one.
        self.links: tuple[list[int], set[int], LinkNodes] | None = None
        if isinstance(links, LinkNodes) and not links.made:
            if len(keys) != len(links):
                raise ValueError("a key per link")
            self.found: dict[int, LexborNode] = {}
            self.links = (keys, set(keys), links)
        else:
            self.found = dict(zip(keys, links, strict=True))
        self.found[0] = root
        self.read: set[int] = set()  # whose children are in found (-1: the root's ancestors)
        self.stepped: set[int] = set()  # whose children the core's way down went among

    def __getitem__(self, key: int) -> LexborNode:
        node = self.found.get(key)
        if node is None and self.links is not None and key in self.links[1]:
            self._links_found()
            node = self.found.get(key)
        return node if node is not None else self._find(key)

    def _links_found(self) -> None:
        """The links' nodes, among the found ones as when given found (the root stays)."""
        keys, _, links = self.links  # type: ignore[misc]
        self.links = None
        root = self.found[0]
        self.found.update(zip(keys, links, strict=True))
        self.found[0] = root

    def __len__(self) -> int:
        return len(self.parent)

    def _find(self, key: int) -> LexborNode:
        found, parent, path = self.found, self.parent, []
        while key not in found:  # up to the nearest found: the root at the latest
            path.append(key)
            key = parent[key]
        path.reverse()  # from the found one down
        node = self._step(found[key], path)
        if node is not None:
            return node
        for key in path:
            up = parent[key]
            if up not in self.read:
                self._keep(up, found[up].child, "next")
            if key not in found and -1 not in self.read:  # hung under the root, above it
                self._keep(-1, found[0].parent, "parent")
            if key not in found:
                raise LookupError(f"element {key} of the scan is not in the tree")
        return found[path[-1]]

    def _step(self, start: LexborNode, path: list[int]) -> LexborNode | None:
        """The nodes of *path* (each a child of the one before, the first of *start*'s) by the
        native core's way down (``pipelines.native.child_steps``): Python steps ``.child`` and
        ``.next`` only, and keeps those on the path. Once per parent (then its children are
        read, as without the core: a box of 100,000 links is not stepped through again); None
        without the core, or if an element is not where the scan put it."""
        parent, stepped = self.parent, self.stepped
        if any(parent[key] in stepped for key in path):
            return None
        from pipelines import native  # it builds on this module: imported on first use

        steps = native.child_steps(start, [self.addresses[key] for key in path])
        if steps is None:
            return None
        node, found = start, self.found
        for key, position in zip(path, steps, strict=True):
            stepped.add(parent[key])
            node = node.child
            for _ in range(position):
                node = node.next
            found[key] = node
        return node

    def _keep(self, up: int, node: LexborNode | None, step: str) -> None:
        """Keep the recorded nodes from *node* on, stepping by *step*: *up*'s children
        (``next``), or the root's ancestors (``parent``, *up* -1: they hang under the root)."""
        index, parent, found = self.index_of.get(), self.parent, self.found
        want = 0 if up < 0 else up
        while node is not None:
            key = index.get(node.mem_id)
            if key is not None and parent[key] == want:
                found.setdefault(key, node)
            node = getattr(node, step)
        self.read.add(up)


class _Page:
    """The elements on the paths from links and blocks to the root, numbered in the order they
    were recorded (an element after its parent), with per-element facts in lists: the tree is
    recorded first (:meth:`register`), the facts then read in one go (:meth:`read_facts`)."""

    __slots__ = (
        "ancestry", "arrays", "attrs", "bits", "block", "body", "depth",
        "index_addresses", "index_of", "kind_of", "kinds", "label", "nearest", "nodes", "parent",
        "sums", "tag",
    )  # fmt: skip

    def __init__(self, root: LexborNode) -> None:
        # mem_id -> number; the root is 0 (an adopted scan's: made when first read).
        self.index_of = _AddressIndex([], {root.mem_id: 0})
        self.parent: list[int] = [-1]
        self.nodes: list[LexborNode] | _Nodes = [root]
        self.index_addresses: Sequence[int] = []  # a native scan's: each element's mem_id
        self.attrs: dict[int, dict[str, str | None]] = {}  # attributes the caller had read
        self.label: list[str | None] = []
        self.block: list[int] = []
        self.body: list[int] = []  # elements that markup names the article's body
        self.tag: list[str] = []
        self.depth: list[int] = []
        self.bits: list[int] = []  # the element's own bits (tag, label, class words)
        # A native scan's: each element's kind (an index into kinds: its tag, class, id, role,
        # itemprop, align), read by the rules instead of the node's attributes; and the
        # arrays it derived (Scanned.nearest, Scanned.ancestry). Python's scan: empty, None.
        self.kind_of: list[int] = []
        self.kinds: list[Kind] = []
        self.nearest: list[int] | None = None
        self.ancestry: list[int] | None = None
        self.sums: TreeSums | None = None
        self.arrays: Any = None  # a native scan's arrays kept in the core (Scanned.arrays)

    @property
    def index(self) -> dict[int, int]:
        """Each recorded element's number by its ``mem_id``."""
        return self.index_of.get()

    def register(self, node: LexborNode, mem_id: int) -> int:
        """Record ``node`` (whose ``mem_id`` the caller has) and its ancestors up to the root
        (or a recorded one)."""
        index = self.index
        known = index.get(mem_id)
        if known is not None:
            return known
        cur = node.parent
        if cur is not None:
            up = index.get(cur.mem_id)
            if up is not None:  # most often: its parent is recorded, one element to add
                k = index[mem_id] = len(self.parent)
                self.parent.append(up)
                self.nodes.append(node)
                return k
        pending = [node]
        ids = [mem_id]
        up = 0  # past the top (a node outside the root): hang it under the root
        while cur is not None:
            cur_id = cur.mem_id
            k = index.get(cur_id)
            if k is not None:
                up = k
                break
            pending.append(cur)
            ids.append(cur_id)
            cur = cur.parent
        # Numbered outermost first, each the parent of the next (in C: extend, update).
        parent, k, m = self.parent, len(self.parent), len(pending)
        pending.reverse()
        ids.reverse()
        index.update(zip(ids, range(k, k + m), strict=True))
        parent.append(up)
        parent.extend(range(k, k + m - 1))
        self.nodes.extend(pending)
        return k + m - 1

    def read_facts(self) -> None:
        """Each recorded element's tag, label, depth and container fingerprint."""
        nodes, parent, given = self.nodes, self.parent, self.attrs
        self.tag = tags = [n.tag or "" for n in nodes]
        facts = [_ROOT_FACTS] + [
            _FACTS[tag, a.get("class"), a.get("id"), a.get("role"), a.get("itemprop"),
                   a.get("align")]
            if (a := given.get(k) or nodes[k].attributes)
            else _FACTS[tag, None, None, None, None, None]
            for k, tag in enumerate(tags[1:], 1)
        ]  # fmt: skip
        labels, bodies, parts, bits = zip(*facts, strict=True)  # columns, transposed in C
        self.label = list(labels)
        self.body = [k for k, named in enumerate(bodies) if named]
        self.bits = list(bits)
        n = len(nodes)
        depth = self.depth = [0] * n
        block = self.block = [0] * n
        for k in range(1, n):
            up = parent[k]
            depth[k] = depth[up] + 1
            block[k] = (block[up] * 31 + parts[k]) & 0xFFFFFFFF

    def adopt(
        self, scanned: Scanned, links: Sequence[LexborNode],
        attrs: Sequence[dict[str, str | None]] | None,
    ) -> None:  # fmt: skip
        """The elements and facts of a native scan (:meth:`register` then :meth:`read_facts`
        by the core): the facts of each kind of element looked up once."""
        self.index_addresses = scanned.addresses
        self.index_of = _AddressIndex(scanned.addresses)
        self.parent, self.depth, self.block = scanned.parent, scanned.depth, scanned.block
        self.nodes = _Nodes(self, self.nodes[0], scanned.link_keys, links)
        if attrs is not None:
            self.attrs = dict(zip(scanned.link_keys, attrs, strict=True))
        kinds, kind_of = scanned.kinds, scanned.kind_of
        self.kinds, self.kind_of = kinds, kind_of
        self.nearest, self.ancestry, self.sums = scanned.nearest, scanned.ancestry, scanned.sums
        self.arrays = scanned.arrays
        if scanned.lists is not None:  # the core's, copied where placement writes (voided
            # labels): a Scanned is cached and may be placed again (review12-n18c 2)
            self.tag, label, bits, body = scanned.lists
            self.label, self.bits = list(label), list(bits)
            self.label[0], self.bits[0] = _ROOT_FACTS[0], _ROOT_FACTS[3]
            self.body = body
            return
        if scanned.facts is not None:
            labels, bodies, bits = zip(*scanned.facts, strict=True)
        else:
            labels, bodies, _, bits = zip(*[_FACTS[kind] for kind in kinds], strict=True)
        self.tag = list(map([kind[0] for kind in kinds].__getitem__, kind_of))
        self.label = list(map(labels.__getitem__, kind_of))
        self.bits = list(map(bits.__getitem__, kind_of))
        self.label[0], self.bits[0] = _ROOT_FACTS[0], _ROOT_FACTS[3]
        named = {k for k, body in enumerate(bodies) if body}
        if named:  # the elements of those kinds but the root, picked in C
            self.body = list(
                compress(range(1, len(kind_of)), map(named.__contains__, islice(kind_of, 1, None)))
            )

    def attributes(self, key: int) -> dict[str, str | None]:
        """An element's attributes: those the caller had read, else the node's."""
        return self.attrs.get(key) or self.nodes[key].attributes

    def names(self, key: int) -> tuple[str | None, str | None, str | None]:
        """An element's class, id and role (None: absent or valueless; the rules read them
        as truthy or not): those the caller had read, else a native scan's (its kind: no
        node touched), else the node's.

        >>> tree = LexborHTMLParser('<div class="a b" id=c role>x</div>')
        >>> page = _Page(tree.body)
        >>> key = page.register(tree.css_first("div"), tree.css_first("div").mem_id)
        >>> page.names(key)
        ('a b', 'c', None)
        """
        a = self.attrs.get(key)
        if not a and self.kind_of:
            kind = self.kinds[self.kind_of[key]]
            return kind[1], kind[2], kind[3]
        if not a:
            a = self.nodes[key].attributes
        return a.get("class"), a.get("id"), a.get("role")

    def up(self, key: int, stop: set[int]) -> list[int]:
        """``key`` and its ancestors until one in ``stop`` (included) or the root."""
        out = []
        parent = self.parent
        while key >= 0:
            out.append(key)
            if key in stop:
                break
            key = parent[key]
        return out


def place_links(tree: LexborHTMLParser, links: Sequence[LexborNode]) -> list[str]:
    """Placement of each link node of ``tree``, in order (see the module docstring).

    >>> story = "Running text of the story, sentence after sentence. " * 6
    >>> tree = LexborHTMLParser(
    ...     '<div><a href="/">Home</a> <a href="/news">News</a></div>'
    ...     f'<div><div><p>{story}<a href="/x">a source</a>.</p><p>{story}</p></div>'
    ...     '<div><a href="/y">Other story</a></div></div>'
    ...     '<div><a href="/legal">Legal</a> <a href="/c" rel="ugc">Bob</a></div>')
    >>> place_links(tree, tree.css("a[href]"))
    ['nav', 'nav', 'content', 'sidebar', 'footer', 'comment']
    """
    return [p.placement for p in place_links_scored(tree, links)]


def place_links_scored(
    tree: LexborHTMLParser,
    links: Sequence[LexborNode],
    rels: Sequence[Sequence[str]] | None = None,
    anchors: Sequence[str] | None = None,
    attrs: Sequence[dict[str, str | None]] | None = None,
    markup: PageMarkup | None = None,
    scanner: Scanner | None = None,
    columns: bool = False,
) -> list[Placed]:
    """Placement, confidence and container fingerprint of each link node, in order.

    ``rels`` (each link's rel tokens, lowercased), ``anchors`` (each link's text, images' alt
    aside) and ``attrs`` (each link's attributes), if the caller has them already; ``markup``
    what extraction's pass noted of the page's schema.org and OpenGraph types; ``scanner``
    the native core's fact gathering (:data:`Scanner`), else Python's. ``columns``: the
    native core's answer may come as a :class:`PlacedColumns` (extraction's rows take its
    columns), not a list.

    The facts are gathered and the rules applied (:func:`placement_facts`); then the model
    (:mod:`pipelines.placement_model`) decides content or not from each link's facts, the
    rules' answer among them.
    """
    rules, stage = _placement_rules(tree, links, rels, anchors, attrs, markup, scanner, True)
    if stage is None:
        return rules
    modeled = stage.facts.modeled
    if modeled is not None:  # the core's rules ran its model stage too
        return modeled if columns or isinstance(modeled, list) else modeled.rows()
    if scanner is not None:  # the native core's walk: its model stage too
        placed = _native_stage(stage, facts=False)
        if placed is not None:
            return placed[0]
    return decide(rules, _link_facts(*stage))


def placement_facts(
    tree: LexborHTMLParser,
    links: Sequence[LexborNode],
    rels: Sequence[Sequence[str]] | None = None,
    anchors: Sequence[str] | None = None,
    attrs: Sequence[dict[str, str | None]] | None = None,
    markup: PageMarkup | None = None,
    scanner: Scanner | None = None,
) -> tuple[list[Placed], LinkFacts | None]:
    """The rules' placement of each link, and the links' facts for the model (rows of
    :data:`FEATURES`: :meth:`pipelines.placement_model.LinkFacts.rows`).

    The facts are gathered first (:func:`_scan`, :class:`_Text`, :func:`_main_block`,
    :func:`_article`), then each link is decided by the rules (:func:`_place_link`, and
    :func:`_place_outside` for the links outside main that no markup labels), then their facts
    read (:func:`_link_facts`, by the native core when *scanner* is its); None for no links
    or no root.
    """
    rules, stage = _placement_rules(tree, links, rels, anchors, attrs, markup, scanner)
    if isinstance(rules, PlacedColumns):  # the core's rules: a list, as documented
        rules = rules.rows()
    if stage is None:
        return rules, None
    if scanner is not None:
        staged = _native_stage(stage, facts=True, decide=False)
        if staged is not None:
            return rules, staged[1]
    return rules, _link_facts(*stage)


class _Stage(NamedTuple):
    """What the per-link stage reads (:func:`_link_facts`, the model): the page's facts, the
    rules' placements and the links' anchors."""

    facts: _Facts
    raw: list[float]
    link_keys: list[int]
    anchors: Sequence[str]
    rules: Sequence[Placed]  # a list, or the core's PlacedColumns
    marked: tuple[float, ...]
    anchor_len: list[int]


def _native_stage(
    stage: _Stage, facts: bool, decide: bool = True
) -> tuple[list[Placed], LinkFacts | None] | None:
    """The per-link stage by the native core (``pipelines.native.place_stage``), or None."""
    from pipelines import native  # it builds on this module: imported on first use

    return native.place_stage(stage, facts, decide)


def _placement_rules(
    tree: LexborHTMLParser,
    links: Sequence[LexborNode],
    rels: Sequence[Sequence[str]] | None,
    anchors: Sequence[str] | None,
    attrs: Sequence[dict[str, str | None]] | None,
    markup: PageMarkup | None,
    scanner: Scanner | None,
    model: bool = False,
) -> tuple[list[Placed], _Stage | None]:
    """:func:`placement_facts`' rules, and what the per-link stage reads (None for no links
    or no root). *model*: the caller runs the model's stage next (the core's rules may run it
    with them: then ``facts.modeled`` holds its placements)."""
    if not links:
        return [], None
    root = tree.body or tree.root
    if root is None:
        return [Placed(CONTENT, 0.5, 0) for _ in links], None
    page, link_keys, paras, seq = _scan(tree, root, links, attrs, scanner)
    if anchors is None:
        hidden = hidden_elements(tree)
        anchors = [
            "" if node.tag == "area" else collapse_ws(anchor_parts(node, hidden)[0])
            for node in links
        ]
    anchor_len = list(map(len, anchors))
    text = _Text(page, paras, link_keys, anchor_len)
    raw = _void_wrapper_labels(page, text.good)
    marked = markup.facts() if markup is not None else _NO_MARKUP
    main = _main_block(page, text, raw, link_keys, anchor_len, bool(marked[_MARKUP_PRODUCT]))
    main = _whole_landmark(page, main, bool(marked[_MARKUP_ARTICLE]))
    # An article's landmark holds related stories, teasers: not its copy.
    landmark = -1 if marked[_MARKUP_ARTICLE] else _landmark(page, main)
    ruled = None
    if scanner is not None and rels is not None and page.kind_of:  # the core's scan: its rules
        # and the model's stage with them, unless a product's rules come between.
        staged = (anchor_len, raw, marked) if model and not marked[_MARKUP_PRODUCT] else None
        ruled = _native_rules(tree, page, text, main, seq, links, link_keys, rels, anchors,
                              attrs, landmark, staged)  # fmt: skip
    if ruled is not None:
        facts, results = ruled
    else:
        where = _Where(page, main)
        facts = _Facts(tree, page, text, main, _article(page, text, seq, main, where), seq, where)
        facts.landmark = landmark
        results = _place_each(facts, links, link_keys, rels, anchors, attrs)
    if marked[_MARKUP_PRODUCT]:  # (the core's columns: their rows, set in place)
        rows = results.rows() if isinstance(results, PlacedColumns) else results
        _product_links(tree, facts, link_keys, anchors, rows, _one_product(markup))
    return results, _Stage(facts, raw, link_keys, anchors, results, marked, anchor_len)


def _place_each(
    facts: _Facts,
    links: Sequence[LexborNode],
    link_keys: list[int],
    rels: Sequence[Sequence[str]] | None,
    anchors: Sequence[str],
    attrs: Sequence[dict[str, str | None]] | None,
) -> list[Placed]:
    """Each link's placement by the rules (:func:`_place_link`, then :func:`_place_outside`
    for the links outside main that no markup labels); the reference of the native core's
    (native/src/rules.rs ``place``)."""
    page, main, where = facts.page, facts.main, facts.where
    results: list[Placed] = []
    outside: list[tuple[int, int, int, int]] = []  # (link index, common ancestor, branch, side)
    parent, blocks = page.parent, page.block
    for i, (node, key) in enumerate(zip(links, link_keys, strict=True)):
        up = parent[key]
        block = blocks[up if up >= 0 else key] & 0x7FFFFFFF
        link_attrs = attrs[i] if attrs is not None else None  # None: read when a rule needs them
        if rels is not None:
            ugc = "ugc" in rels[i]
        else:
            if link_attrs is None:
                link_attrs = node.attributes
            ugc = "ugc" in (link_attrs.get("rel") or "").lower().split()
        decided = _place_link(facts, key, ugc, anchors[i], link_attrs, node)
        if decided is None:  # outside main, unlabeled: decided below, for all such links
            top, branch, _ = where.locate(key)
            side = facts.order.get(branch)
            if side is None:
                side = _side(page, top, branch, main.path, facts.order)
            outside.append((i, top, branch, side))
            decided = (SIDEBAR, 0.6)
        results.append(Placed(decided[0], decided[1], block))
    if outside:
        _place_outside(page, main.path, outside, results)
    return results


def _native_rules(
    tree: LexborHTMLParser, page: _Page, text: _Text, main: _Main, seq: list[int],
    links: Sequence[LexborNode], link_keys: list[int], rels: Sequence[Sequence[str]],
    anchors: Sequence[str], attrs: Sequence[dict[str, str | None]] | None, landmark: int,
    model: tuple[list[int], list[float], tuple[float, ...]] | None = None,
) -> tuple[_Facts, list[Placed]] | None:  # fmt: skip
    """:func:`_Where`, :func:`_article`, :func:`_copy_blocks` and :func:`_place_each` by the
    native core (``pipelines.native.place_rules``) over a natively scanned page, and with
    *model* (the anchors' lengths, the raw good text, the markup's facts) the model's stage
    (``facts.modeled``); None if it failed (then logged): Python's rules run."""
    from pipelines import native  # it builds on this module: imported on first use

    facts = _Facts(tree, page, text, main, None, seq, None)
    facts.landmark = landmark

    def tail(i: int, key: int, is_article: bool, technical: bool) -> tuple[str, float]:
        link_attrs = attrs[i] if attrs is not None else None
        return _place_tail(facts, key, link_attrs, links[i], is_article, technical)

    hrefs = links.hrefs if isinstance(links, LinkNodes) else None

    def internal(i: int) -> bool:  # _place_tail's last test
        link_attrs = attrs[i] if attrs is not None else None
        if link_attrs is not None:
            href = link_attrs.get("href") or ""
        elif hrefs is not None:  # the walk's (no node found for it)
            href = hrefs[i]
        else:
            href = links[i].attributes.get("href") or ""
        return _internal(href, facts.own_site())

    # _place_tail split: _is_button by the core, over the kinds (the caller gave no names).
    button = None if page.attrs else sorted(_BUTTON_WORDS)

    inputs = None
    if model is not None:  # what _link_facts reads that the rules do not
        anchor_len, raw, marked = model
        bits = _ancestry(page)
        head = (float(main.listing), float(main.thread), float(main.weak), _main_share(main, raw))
        inputs = (anchor_len, bits, head, _page_tail(main, bits, marked))
    answer = native.place_rules(
        page, text, main, seq, link_keys, rels, anchors, landmark,
        (_PAGER.fullmatch, tail, lambda top: _in_landmark(facts, top),
         lambda key: _in_link_list(page, key, facts.lists), internal, button), inputs,
    )  # fmt: skip
    if answer is None:
        return None
    results, article, copy, located, facts.modeled = answer
    facts.article, facts.copy, facts.located = article, copy, located
    return facts, results


#: The facts of a link the placement model reads (:func:`_link_facts`), in this order: the
#: rules' answer, where the link sits relative to main and to running text, its anchor, the
#: links that share its container (:data:`LINK_FEATURES`); what the page is
#: (:data:`PAGE_FEATURES`); in main times three of those; its ancestry's bits.
LINK_FEATURES: tuple[str, ...] = (
    "rule_content", "rule_nav", "rule_sidebar", "rule_footer", "rule_comment", "rule_score",
    "in_main", "in_text", "in_paragraph", "para_density", "para_length",
    "before_text", "after_text", "position", "anchor_length", "anchor_words", "no_anchor",
    "same_container", "same_parent", "container_content", "container_anchor",
)  # fmt: skip
PAGE_FEATURES: tuple[str, ...] = (
    "page_listing", "page_thread", "page_weak", "page_article", "page_technical",
    "main_share", "main_links", "page_links", "main_post", "main_product", *MARKUP_FACTS,
)  # fmt: skip
FEATURES: tuple[str, ...] = (
    *LINK_FEATURES,
    *PAGE_FEATURES,
    "main_listing",
    "main_thread",
    "main_article",
    *BIT_NAMES,
)
_NO_MARKUP = (0.0,) * len(MARKUP_FACTS)
_LOG_WORDS = [log1p(words) / 3 for words in range(65)]  # the anchor_words of short anchors
_ONE_HOT = {
    label: tuple(float(label == other) for other in (CONTENT, NAV, SIDEBAR, FOOTER, COMMENT))
    for label in (CONTENT, NAV, SIDEBAR, FOOTER, COMMENT)
}


def _ancestry(page: _Page) -> list[int]:
    """Each element's bits ORed with its ancestors' (an element comes after its parent): a
    native scan's, else computed here."""
    if page.ancestry is not None:
        return page.ancestry
    parent, own = page.parent, page.bits
    bits = list(own)
    for k in range(1, len(bits)):
        bits[k] |= bits[parent[k]]
    return bits


def _link_facts(
    facts: _Facts, raw: list[float], link_keys: list[int], anchors: Sequence[str],
    rules: list[Placed], marked: tuple[float, ...], anchor_len: list[int] | None = None,
) -> LinkFacts:  # fmt: skip
    """The links' facts for the model (:class:`pipelines.placement_model.LinkFacts`); the
    reference of the native core's (native/src/model.rs ``stage``)."""
    page, text, main, art, where = facts.page, facts.text, facts.main, facts.article, facts.where
    parent, tag, good, own, in_links = page.parent, page.tag, text.good, text.own, text.links
    seq_index = facts.seq_index
    located, main_key, around = where.of, main.key, main.ancestors
    first, last, n_seq = art.first_good, art.last_good, max(len(seq_index), 1)
    lengths = anchor_len if anchor_len is not None else [len(anchor) for anchor in anchors]
    log_anchor = [log1p(length) / 5 for length in lengths]
    per_block: dict[int, list[float]] = {}  # links, rule content, anchor sum
    for rule, la in zip(rules, log_anchor, strict=True):
        sums = per_block.get(rule.block)
        if sums is None:
            per_block[rule.block] = [1, rule.placement == CONTENT, la]
        else:
            sums[0] += 1
            sums[1] += rule.placement == CONTENT
            sums[2] += la
    # Per container: its size, share of rule content, mean anchor length; per grandparent,
    # its links; per paragraph, its text facts (links share them: computed once each).
    containers = {
        b: (log1p(count) / 5, content / count, anchor / count)
        for b, (count, content, anchor) in per_block.items()
    }
    grand = [parent[parent[k]] if parent[k] > 0 else 0 for k in link_keys]
    per_grand = {g: log1p(count) / 5 for g, count in Counter(grand).items()}
    para_facts: dict[int, tuple[float, float, float, float]] = {}
    rows = []
    inside = []
    for i, (key, p) in enumerate(zip(link_keys, text.link_para, strict=True)):
        in_para = para_facts.get(p)
        if in_para is None:
            size = max(own.get(p, 0), 0)
            in_para = para_facts[p] = (
                1.0 if p in good else 0.0,
                1.0 if p >= 0 and tag[p] in _PARAGRAPHS else 0.0,
                in_links.get(p, 0) / size if size else 1.0,
                log1p(size) / 8,
            )
        at = seq_index.get(key, -1)
        anchor, rule = anchors[i], rules[i]
        words = anchor.count(" ") + 1 if anchor else 0
        same, content_share, mean_anchor = containers[rule.block]
        in_main = 1.0 if key in around or (located[key] or (key,))[0] == main_key else 0.0
        inside.append(in_main)
        rows.append((
            *_ONE_HOT[rule.placement], rule.score, in_main, *in_para,
            1.0 if 0 <= at < first else 0.0, 1.0 if at > last >= 0 else 0.0, at / n_seq,
            log_anchor[i], _LOG_WORDS[words] if words < 65 else log1p(words) / 3,
            0.0 if anchor else 1.0, same, per_grand[grand[i]], content_share, mean_anchor,
        ))  # fmt: skip
    bits = _ancestry(page)
    head, tail = _page_parts(facts, raw, bits, marked)
    page_facts = (*head, sum(inside) / len(inside), log1p(len(inside)) / 8, *tail)
    return LinkFacts(rows, inside, page_facts, [bits[k] for k in link_keys])


def _page_parts(
    facts: _Facts, raw: list[float], bits: list[int], marked: tuple[float, ...]
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The page's facts (:data:`PAGE_FEATURES`) before main_links and after page_links (those
    two are the links')."""
    main, art = facts.main, facts.article
    head = (
        float(main.listing), float(main.thread), float(main.weak), float(art.is_article),
        float(art.technical), _main_share(main, raw),
    )  # fmt: skip
    return head, _page_tail(main, bits, marked)


def _main_share(main: _Main, raw: list[float]) -> float:
    """Main's share of the page's running text (main_share)."""
    return raw[main.key] / raw[0] if raw[0] else 0.0


def _page_tail(main: _Main, bits: list[int], marked: tuple[float, ...]) -> tuple[float, ...]:
    """The page's facts after page_links: main's post and product words, the markup's."""
    main_bits = bits[main.key]
    return (
        float(main_bits & _BIT["word_post"] > 0), float(main_bits & _BIT["word_product"] > 0),
        *marked,
    )  # fmt: skip


def _stage_inputs(stage: _Stage) -> tuple[Any, ...]:
    """The per-link stage's arguments as the core takes them (native/src/model.rs
    ``placement_links`` but its last, what it answers): what :func:`_link_facts` reads."""
    facts, raw, link_keys, anchors, rules, marked, anchor_len = stage
    page, text, main, art = facts.page, facts.text, facts.main, facts.article
    bits = _ancestry(page)
    if isinstance(rules, PlacedColumns):  # the core takes a list of them
        rules = rules.rows()
    return (
        rules, link_keys, text.link_para, anchors, anchor_len, page.parent, page.tag,
        (text.own, text.good, text.links), facts.seq_index,
        facts.where.of if facts.located is None else facts.located,
        (main.key, main.ancestors), (art.first_good, art.last_good), bits,
        _page_parts(facts, raw, bits, marked),
    )  # fmt: skip


def _scan(
    tree: LexborHTMLParser,
    root: LexborNode,
    links: Sequence[LexborNode],
    attrs: Sequence[dict[str, str | None]] | None,
    scanner: Scanner | None = None,
) -> tuple[_Page, list[int], dict[int, int], list[int]]:
    """The walk that gathers the facts: the links and the paragraph-like blocks of running
    text, in document order, recorded with their ancestors (:class:`_Page`). Returns the page,
    each link's key, each block's text length (nested blocks included; a box's own text only),
    and the keys of blocks and links in document order. By ``scanner`` (the native core's) if
    given and it answers, else here."""
    scanned = scanner(tree, root, links) if scanner is not None else None
    if scanned is not None:
        page = _Page(root)
        page.adopt(scanned, links, attrs)
        return page, scanned.link_keys, dict(scanned.paras), scanned.seq
    page = _Page(root)
    register = page.register
    link_ids = {node.mem_id: i for i, node in enumerate(links)}
    link_keys = [-1] * len(links)
    paras: dict[int, int] = {}
    seq: list[int] = []
    for node in tree.css(_SCAN_SELECTOR):
        tag_id = node.tag_id
        if tag_id in _LINK_TAG_IDS:
            mem_id = node.mem_id
            i = link_ids.get(mem_id)
            if i is not None:
                key = link_keys[i] = register(node, mem_id)
                if attrs is not None:
                    page.attrs[key] = attrs[i]
                seq.append(key)
            continue
        # A box's text is only what lies straight in it; a paragraph's, all of it.
        length = len(node.text(deep=tag_id not in _CONTAINER_IDS, strip=True))
        if length >= _MIN_PARA:  # shorter: not running text; its links count for the box
            key = register(node, node.mem_id)
            paras[key] = length
            seq.append(key)
    for i, node in enumerate(links):
        if link_keys[i] < 0:  # not found by the scan (a caller's own node list)
            link_keys[i] = register(node, node.mem_id)
    page.read_facts()
    return page, link_keys, paras, seq


class _Text:
    """Where the running text is: each block's own text (nested blocks subtracted), the link
    text in it, and the blocks that are running text (``good``: long, not a list of links)."""

    __slots__ = ("good", "link_para", "links", "nearest", "own")

    def __init__(
        self, page: _Page, paras: dict[int, int], link_keys: list[int], anchor_len: list[int]
    ) -> None:
        if page.sums is not None and page.nearest is not None:  # a native scan's: the core's
            from pipelines import native  # it builds on this module: imported on first use

            made = native.page_text(page, paras, link_keys, anchor_len)
            if made is not None:
                self.nearest = page.nearest
                self.own, self.link_para, self.links, self.good = made
                return
        parent = page.parent
        # Each element's nearest paragraph-like ancestor-or-self (-1: none), in one pass: an
        # element comes after its parent. The last entry, -1, answers for the root's parent.
        nearest = page.nearest  # a native scan's
        if nearest is None:
            nearest = [-1] * (len(parent) + 1)
            for k, up in enumerate(parent):
                nearest[k] = k if k in paras else nearest[up]
        self.nearest = nearest
        own = self.own = dict(paras)
        for key, length in paras.items():
            outer = nearest[parent[key]]
            if outer >= 0 and key != outer:
                own[outer] -= length
        link_text: dict[int, int] = {}
        # Each link's paragraph (-1: none), found once: the main block's scoring reads it too.
        self.link_para = link_para = [nearest[parent[key]] for key in link_keys]
        for p, length in zip(link_para, anchor_len, strict=True):
            if p >= 0:
                link_text[p] = link_text.get(p, 0) + length
        self.links = link_text
        self.good = {
            key: length
            for key, length in own.items()
            if length >= _MIN_PARA and link_text.get(key, 0) <= _MAX_DENSITY * length
        }

    def para_of(self, key: int) -> int:
        """The nearest paragraph-like ancestor-or-self of ``key`` (or of none: -1), or -1."""
        return self.nearest[key]


def _void_wrapper_labels(page: _Page, good: dict[int, int]) -> list[float]:
    """Each element's raw good text (its subtree's); drops the nav/sidebar/footer label of an
    element that holds most of the page's running text: a layout wrapper (l-sidebar-fixed,
    has-footer...), not that region."""
    if page.sums is not None and not page.attrs:  # a native scan's page (names by kind): the core
        from pipelines import native  # it builds on this module: imported on first use

        voided = native.void_labels(page, good)
        if voided is not None:
            return voided
    parent, label = page.parent, page.label
    raw = [0.0] * len(parent)
    for key, value in good.items():
        raw[key] += value
    raw = _tree_sums(page, raw)
    total = raw[0]
    if total < _MIN_ARTICLE:  # little running text: no layout wrapper to tell from a region
        return raw
    voided = []
    for region in (NAV, SIDEBAR, FOOTER):
        for key in list(_labelled(label, region)):
            if raw[key] > _WRAPPER_SHARE * total:
                label[key] = None
                if region != NAV:
                    voided.append(key)
    _void_builder_labels(page, raw, _side_regions(page, voided))
    return raw


def _tree_sums(page: _Page, values: list[float], decay: float = 1.0) -> list[float]:
    """Each element's value plus ``decay`` times its children's sums, summed from the last
    element up (an element comes after its parent): ``values``, updated, or the core's list
    of the same floats (``page.sums``, Rust's loop: the same operations in the same order).

    >>> page = _Page(LexborHTMLParser("<p><b>x</b></p>").body)
    >>> page.parent = [-1, 0, 1, 0]
    >>> _tree_sums(page, [0.0, 1.0, 10.0, 100.0], 0.5)
    [53.0, 6.0, 10.0, 100.0]
    """
    if page.sums is not None:
        return page.sums(page.parent, values, decay)
    parent = page.parent
    if decay == 1.0:
        for key in range(len(parent) - 1, 0, -1):
            values[parent[key]] += values[key]
    else:
        for key in range(len(parent) - 1, 0, -1):
            values[parent[key]] += decay * values[key]
    return values


def _side_regions(page: _Page, voided: list[int]) -> set[int]:
    """The elements that are a region beside main, whatever their text: an aside or footer
    by tag or role (or a sidebar by id), and a voided wrapper that holds no main or article
    (WordPress's ``aside#secondary`` of text widgets, not a layout wrapper around main)."""
    label = page.label  # a sidebar named by its class is a box: its names are weighed
    regions = {key for key in _labelled(label, SIDEBAR) if not _region_words(page, key)}
    regions.update(_labelled(label, FOOTER))
    if voided:
        holds_main = {0}  # main's and articles' ancestors-or-self
        parent = page.parent
        for tag in ("main", "article"):
            for key in _labelled(page.tag, tag):
                while key not in holds_main:
                    holds_main.add(key)
                    key = parent[key]
        regions.update(key for key in voided if key not in holds_main)
    return regions


def _void_builder_labels(page: _Page, raw: list[float], regions: set[int]) -> None:
    """Drops the sidebar label of a class name that a page builder gives every block
    (elementor-widget, hs_cos_wrapper_widget), the marketing copy too: a name whose boxes
    hold most of the page's running text, side by side (few of them inside another), names
    no region. A site's own region wrapper nests (a widget wrapper around its carousels,
    each a widget again): a region, kept. Boxes inside ``regions`` (a WordPress sidebar's
    text widgets) are no builder's: their text does not count."""
    label, parent, tag, total = page.label, page.parent, page.tag, raw[0]
    words_of = {  # boxes with running text (not inline tags) and their sidebar names
        key: _region_words(page, key)
        for key in _labelled(label, SIDEBAR)
        if raw[key] and tag[key] in _BLOCK_TAGS
    }
    text: dict[str, float] = {}  # per name, the running text of its outermost boxes
    boxes: Counter[str] = Counter()
    nested: Counter[str] = Counter()
    above: dict[int, frozenset[str]] = {0: frozenset()}  # the names on an element and above
    aside = {0: False}  # whether an element is or sits in a region beside main
    for key, words in words_of.items():
        path, cur = [], parent[key]
        while cur not in above:  # each element walked once: memoized
            path.append(cur)
            cur = parent[cur]
        names, inside = above[cur], aside[cur]
        for cur in reversed(path):
            more = words_of.get(cur)
            names = above[cur] = names | more if more else names
            inside = aside[cur] = inside or cur in regions
        boxes.update(words)
        nested.update(words & names)
        if inside:
            continue
        for word in words - names:  # a name on an ancestor: its text is counted there
            text[word] = text.get(word, 0.0) + raw[key]
    builder = {
        word
        for word, value in text.items()
        if value > _WRAPPER_SHARE * total and nested[word] <= _BUILDER_NESTED * boxes[word]
    }
    for key in list(_labelled(label, SIDEBAR)) if builder else ():  # its links' too
        if not builder.isdisjoint(words_of.get(key) or _region_words(page, key)):
            label[key] = None


def _labelled(label: Sequence[str | None], region: str) -> Iterator[int]:
    """The elements so labelled (the root aside), found by list.index (in C): few of them.

    >>> list(_labelled([None, "sidebar", "nav", "sidebar"], "sidebar"))
    [1, 3]
    """
    key = 0
    while True:
        try:
            key = label.index(region, key + 1)
        except ValueError:
            return
        yield key


def _region_words(page: _Page, key: int) -> frozenset[str]:
    """The class names that give an element its label."""
    return _CLASS_REGION_WORDS[page.names(key)[0] or "", page.label[key]]


def _class_region_words(cls: str, label: str | None) -> frozenset[str]:
    """The names of a class attribute whose region word is ``label``.

    >>> sorted(_class_region_words("widget sidebar-left clearfix menu", SIDEBAR))
    ['sidebar-left', 'widget']
    """
    return frozenset(word for word in cls.split() if _WORD_FACTS[word][1] == label)


_CLASS_REGION_WORDS = BoundedMemo(_class_region_words, 1 << 20)  # class lists repeat


class _Boiler:
    """Whether an element is under (or is) a boilerplate label, memoized along the path."""

    __slots__ = ("flags", "label", "parent")

    def __init__(self, page: _Page) -> None:
        self.parent, self.label = page.parent, page.label
        self.flags: list[bool | None] = [None] * len(page.parent)
        self.flags[0] = False

    def __call__(self, key: int) -> bool:
        flags, parent, label = self.flags, self.parent, self.label
        path = []
        cur = key
        while flags[cur] is None:
            path.append(cur)
            cur = parent[cur]
        flag = bool(flags[cur])
        for k in reversed(path):
            flag = flag or label[k] in BOILERPLATE
            flags[k] = flag
        return bool(flags[key])


def _best_block(
    page: _Page,
    text: _Text,
    link_keys: list[int],
    anchor_len: list[int],
    under_boiler: _Boiler,
    hub: bool,
) -> int:
    """argmax over elements of decayed gain - cost. Articles gain good text and pay for link
    text outside running text; a link hub (``hub``: a page without running text) gains all
    block text and half of each link's text, and pays nothing for links."""
    if page.sums is not None:  # a native scan's page: the core's loop (the same floats)
        from pipelines import native  # it builds on this module: imported on first use

        best = native.best_block(page, text, link_keys, anchor_len, hub)
        if best is not None:
            return best
    depth = page.depth
    n = len(page.parent)
    gain = [0.0] * n
    cost = [0.0] * n
    link_text, good = text.links, text.good
    for key, value in (text.own if hub else good).items():
        if under_boiler(key):
            cost[key] += _BOILER_WEIGHT * value
        else:
            gain[key] += value - (link_text.get(key, 0) if hub else 0)
    for key, length, para in zip(link_keys, anchor_len, text.link_para, strict=True):
        if hub:
            if not under_boiler(key):
                gain[key] += 0.5 * length
        elif para not in good:  # a link in running text is text
            cost[key] += _LINK_WEIGHT * max(length, 1)
    # Text counts less the further it lies below an element (readability's decay): a wrapper
    # of the whole page does not win over the article by adding teasers' blurbs.
    gain, cost = _tree_sums(page, gain, _DECAY), _tree_sums(page, cost)
    net = [g - c for g, c in zip(gain, cost, strict=True)]
    top = max(net)
    # The deepest of the best (the first of those on a tie), found by list.index (in C).
    best = k = net.index(top)
    while True:
        try:
            k = net.index(top, k + 1)
        except ValueError:
            break
        if depth[k] > depth[best]:
            best = k
    return best if gain[best] > cost[best] else 0


class _Main(NamedTuple):
    """The main block and what the rules need of it."""

    key: int
    good: float  # its good text (as density chose it, before markup named the body)
    weak: bool  # no main block: markup alone decides
    listing: bool  # a listing, or a hub's block of links
    path: list[int]  # main and its ancestors, innermost first
    ancestors: set[int]
    thread: bool  # most running text in comments, main among them: a forum's or a Q&A's
    sections: bool = False  # a page of sections, not an article: widened past an FAQ, or
    # all of <main> (and no article markup)


def _main_block(
    page: _Page,
    text: _Text,
    raw: list[float],
    link_keys: list[int],
    anchor_len: list[int],
    product: bool = False,
) -> _Main:
    """The main content block: by density, widened to a whole listing, overridden by markup
    that names the article body, widened past an FAQ (:func:`_past_faq`); a page without
    running text takes its biggest block of links and text."""
    under_boiler = _Boiler(page)
    main = _best_block(page, text, link_keys, anchor_len, under_boiler, hub=False)
    main_good = raw[main]
    weak = main == 0 or main_good < _MIN_MAIN
    listing = False
    if not weak:
        items, listing = _listing(page, main)
        if items != main:  # a listing: the list and what frames it (its intro, "see also")
            up = page.parent[items]
            main = up if up > 0 else items
            main_good = raw[main]
    if not weak and page.body:
        main = _named_body(page, main, main_good, raw)
    sections = False
    if not weak:
        wide = _past_faq(page, main, product)
        if wide != main:
            main, main_good, listing, sections = wide, raw[wide], False, True
    if not weak and main_good < _MIN_ARTICLE:
        # Little running text: a grid of items (products, threads, cards) may hold far more.
        hub = _best_block(page, text, link_keys, anchor_len, under_boiler, hub=True)
        if hub != main and page.tag[hub] not in _LAYOUT_TAGS:
            block_text = _block_text(page, text)
            if block_text[hub] >= _GRID_SHARE * block_text[main]:
                main, listing = hub, True
    if weak:  # no running text to speak of (a link hub): its biggest block of links and text
        main = _best_block(page, text, link_keys, anchor_len, under_boiler, hub=True)
        weak = main == 0
        listing = True
    if weak:  # nothing at all: markup alone decides
        main = 0
    thread = main > 0 and _is_thread(page, text.good, main, under_boiler)
    if main > 0:
        _posts_of_a_thread(page, main)
    path = page.up(main, set())
    return _Main(main, main_good, weak, listing, path, set(path), thread, sections)


_FAQ_WORDS = frozenset({"faq", "faqs"})
_FOLDS = _FAQ_WORDS | {"accordion"}  # a product's accordion is its description: not there


def _past_faq(page: _Page, main: int, product: bool) -> int:
    """A main block inside an FAQ (a class or id word ``faq``; ``accordion`` too but on a
    product's page, where the accordion is its description): the page's ``<main>`` around it
    (a marketing page's FAQ has its longest prose, but its copy is all the sections beside
    it). The outermost such element counts: a page that is all FAQ is not widened."""
    words = _FAQ_WORDS if product else _FOLDS
    path = page.up(main, set())
    if page.kind_of and not page.attrs:  # a native scan's page (names by kind): the core's
        from pipelines import native  # it builds on this module: imported on first use

        wide = native.past_faq(page, path, words)
        if wide is not None:
            return wide
    faq = -1
    for i, k in enumerate(path):
        if page.tag[k] == "article":  # a post tagged or filed so, or all FAQ: no sections
            continue
        cls, id_, _ = page.names(k)
        names = f"{cls or ''} {id_ or ''}"
        low = names.lower()  # a substring test first: few names hold one, tokens are dearer
        if any(word in low for word in words) and _names_faq(names, words):
            faq = i
    if faq < 0:
        return main
    landmark = _first_landmark(page, path[faq + 1 : -1])  # the FAQ's ancestors below the root
    return landmark if landmark >= 0 else main


def _names_faq(names: str, words: frozenset[str]) -> bool:
    """Whether class/id names hold an FAQ word, WordPress taxonomy classes (a post's category
    or tag) aside.

    >>> _names_faq("post category-faq tag-accordion", _FOLDS), _names_faq("FAQs", _FOLDS)
    (False, True)
    """
    for name in names.split():
        if not name.lower().startswith(_TAXONOMY):
            low = name.lower()  # "FAQs": its camelCase tokens are "fa", "qs"
            if not words.isdisjoint(_tokens(name)) or not words.isdisjoint(_tokens(low)):
                return True
    return False


_TAXONOMY = ("category-", "tag-")


def _is_landmark(page: _Page, key: int) -> bool:
    """Whether an element is the page's ``<main>`` (or role=main)."""
    if page.tag[key] == "main":
        return True
    if page.label[key] != CONTENT:  # role=main labels it content: only then read its role
        return False
    return (page.names(key)[2] or "").strip().lower() == "main"


def _whole_landmark(page: _Page, main: _Main, article: bool) -> _Main:
    """A main block that is all of the page's ``<main>`` is a page of sections (a course's,
    a service's), not an article, unless its markup says article or it is a plain run of
    paragraphs (a hand-written blog's post: :func:`_has_sections`)."""
    if article or main.key <= 0 or main.sections or not _is_landmark(page, main.key):
        return main
    if not _has_sections(page.nodes[main.key]):
        return main
    return main._replace(sections=True)


_SECTION_TAGS = frozenset({"div", "section", "article"})
_WRAPPER_LEVELS = 3  # single wrappers (a container, a row) looked through for the sections


def _has_sections(node: LexborNode) -> bool:
    """Whether an element holds >= 2 sections (``div``, ``section``, ``article`` children),
    through a few single wrappers: a page of sections, not a post's paragraphs.

    >>> from selectolax.lexbor import LexborHTMLParser
    >>> page = LexborHTMLParser("<main><div><section>a</section><div>b</div></div></main>")
    >>> _has_sections(page.css_first("main")), _has_sections(page.css_first("section"))
    (True, False)
    """
    for _ in range(_WRAPPER_LEVELS + 1):
        children = [c for c in islice(node.iter(), _MAX_CHILDREN) if c.tag[0] != "-"]
        if len(children) != 1:
            return sum(c.tag in _SECTION_TAGS for c in children) >= 2
        node = children[0]
    return False


_MAX_CHILDREN = 200  # children of an element looked at


def _landmark(page: _Page, main: _Main) -> int:
    """The page's ``<main>`` (or role=main) element around the main block, or -1."""
    return -1 if main.weak else _first_landmark(page, main.path[1:-1])


def _first_landmark(page: _Page, keys: Sequence[int]) -> int:
    """The first of ``keys`` (a path up the tree) that is the page's ``<main>``, or -1."""
    return next((k for k in keys if _is_landmark(page, k)), -1)


def _in_landmark(facts: _Facts, top: int) -> bool:
    """Whether a link whose common ancestor with main is ``top`` lies in the landmark."""
    landmark, page = facts.landmark, facts.page
    if landmark < 0 or page.depth[top] < page.depth[landmark]:
        return False
    cls = page.names(top)[0]
    return not (cls and _COLUMNS_CLASS[cls])


_COLUMN_WORDS = frozenset({"flex", "row", "columns"})


def _names_columns(cls: str) -> bool:
    """Whether a class lays an element's children side by side (a utility or grid framework's
    row): a block beside main there is a column, a sidebar, not stacked copy.

    >>> _names_columns("flex gap-8"), _names_columns("row"), _names_columns("flex flex-col")
    (True, True, False)
    """
    tokens = _tokens(cls)
    return not _COLUMN_WORDS.isdisjoint(tokens) and "col" not in tokens


_COLUMNS_CLASS = BoundedMemo(_names_columns, 1 << 20)  # class lists repeat, per link


def _copy_blocks(text: _Text, main: _Main, where: _Where) -> frozenset[int]:
    """Blocks beside main (children of its ancestors) under no boilerplate label whose running
    text is comparable to main's: a marketing page holds its copy in several sections (hero,
    features, testimonials), of which density chose one. The largest few; none beside a
    listing, a thread or no main."""
    if main.weak or main.listing or main.thread:
        return frozenset()
    per_block: dict[int, int] = {}
    located = where.of
    for key, length in text.good.items():
        at = located[key]  # main's own children are not beside it: skipped
        if at is not None and at[0] != main.key and _resolve(at[2]) in (None, CONTENT):
            per_block[at[1]] = per_block.get(at[1], 0) + length
    floor = _COPY_SHARE * main.good
    blocks = sorted((length, b) for b, length in per_block.items() if length >= floor)
    return frozenset(b for _, b in blocks[-_COPY_BLOCKS:])


def _posts_of_a_thread(page: _Page, main: int) -> None:
    """A main block made of comments (children or grandchildren of it labelled comment) is a
    thread, a forum's or a Q&A's: its posts are the content, so their comment label goes.
    Comments under an article stay comments: they are not in the article's main block."""
    parent, label = page.parent, page.label
    posts = []
    k = 0
    while True:  # the comments, found by list.index (in C): most elements are not one
        try:
            k = label.index(COMMENT, k + 1)
        except ValueError:
            break
        if parent[k] == main or parent[parent[k]] == main:
            posts.append(k)
    if len(posts) >= _THREAD_POSTS:
        for k in posts:
            label[k] = None


def _block_text(page: _Page, text: _Text) -> list[int]:
    """Each element's block text: the own text of the blocks under it (nothing twice)."""
    parent = page.parent
    total = [0] * len(parent)
    for key, length in text.own.items():
        total[key] += length
    for key in range(len(parent) - 1, 0, -1):  # an element comes after its parent
        total[parent[key]] += total[key]
    return total


def _named_body(page: _Page, main: int, main_good: float, raw: list[float]) -> int:
    """Markup that names the article body wins over density where they overlap: up to the
    nearest named ancestor, or down to a named descendant with most of main's text."""
    named = set(page.body)
    for k in page.up(main, set()):
        if k in named:
            return k
    inner = [k for k in page.body if page.up(k, {main})[-1] == main]
    best = max(inner, key=raw.__getitem__, default=None)
    if best is not None and raw[best] >= _NAMED_SHARE * main_good:
        return best
    return main


class _Where:
    """Where each element is relative to main: (common ancestor with main, the child of it that
    holds the element, labels from the element up to that child, innermost first), found in
    one pass (an element comes after its parent); None for main and its ancestors."""

    __slots__ = ("main", "of")

    def __init__(self, page: _Page, main: _Main) -> None:
        self.main = main.key
        around, parent, label = main.ancestors, page.parent, page.label
        of: list[tuple[int, int, tuple[str, ...]] | None] = [None] * len(parent)
        for k in range(1, len(parent)):  # the root is among main's ancestors
            if k in around:
                continue
            up, lab = parent[k], label[k]
            if up in around:
                of[k] = (up, k, (lab,) if lab else ())
            elif not lab:  # most elements: where its parent is (the same tuple)
                of[k] = of[up]
            else:
                top, branch, labels = of[up]  # type: ignore[misc]
                of[k] = (top, branch, (lab, *labels))
        self.of = of

    def locate(self, key: int) -> tuple[int, int, tuple[str, ...]]:
        return self.of[key] or (key, key, ())

    def in_main(self, key: int) -> bool:
        return key == self.main or self.locate(key)[0] == self.main


class _Article(NamedTuple):
    """Main's running text, in document order (positions in the scan's sequence)."""

    first_good: int  # the first paragraph of running text in main, or -1
    last_good: int
    is_article: bool  # enough prose outside list items: an article, not a listing
    edges: set[int]  # its byline and sign-off: short first or last paragraphs thick with links
    technical: bool  # code blocks (<pre>) in main: documentation, where same-site links are text


def _article(page: _Page, text: _Text, seq: list[int], main: _Main, where: _Where) -> _Article:
    """Running text inside main: links after the last of it (related lists, share and tag
    bars) or before the first (bylines) are not the editor's text."""
    first_good = last_good = -1
    prose = 0
    technical = False
    texts: list[int] = []  # main's paragraphs of running text, in document order
    good = text.good
    for i, key in enumerate(() if main.listing else seq):
        if key in good and page.tag[key] in _PARAGRAPHS and where.in_main(key):
            technical = technical or page.tag[key] == "pre"
            if first_good < 0:
                first_good = i
            last_good = i
            texts.append(key)
            if not _in_item(page, key):
                prose += good[key]
    is_article = prose >= _MIN_ARTICLE and not main.sections
    # The article's edges: a short paragraph thick with links as its first or last ("By Jane
    # Doe", "Follow us @site, Facebook", a newsletter plug) is the byline or the sign-off.
    edges: set[int] = set()
    if is_article:
        for end in (texts[:2], texts[::-1][:2]):
            for key in end:
                own = text.own[key]
                if own >= _EDGE_TEXT or text.links.get(key, 0) < _EDGE_LINKS * own:
                    break
                edges.add(key)
    return _Article(first_good, last_good, is_article, edges, technical)


class _Facts:
    """Everything the rules read about one page, and their memos. ``where`` is built when
    first read (the native core's rules locate the elements themselves: :func:`_native_rules`
    gives ``article``, ``copy`` and ``located``, each link's entry of ``where.of``, or
    ``modeled``, the model's placements when it ran the model's stage with its rules)."""

    __slots__ = ("_seq", "_seq_index", "_where", "article", "copy", "landmark", "lists",
                 "located", "main", "modeled", "order", "page", "site", "text", "tree")  # fmt: skip

    def __init__(
        self,
        tree: LexborHTMLParser,
        page: _Page,
        text: _Text,
        main: _Main,
        article: _Article | None,
        seq: list[int],
        where: _Where | None,
    ) -> None:
        self.tree, self.page, self.text, self.main, self._where = tree, page, text, main, where
        self.article = article  # type: ignore[assignment]  # None: the core's, given after
        self._seq, self._seq_index = seq, None  # (the core's rules index it themselves)
        self.site: list[str | None] = []  # the page's own site, found when first needed
        self.lists: dict[int, bool] = {}  # _in_link_list's memo
        self.order: dict[int, int] = {}  # child of an ancestor of main -> -1 before, 1 after
        # More blocks of copy beside main (the core's: given after).
        self.copy = _copy_blocks(text, main, where) if where is not None else frozenset()
        self.landmark = -1  # the page's <main> around main, where running text is its copy
        self.located: list[tuple[int, ...] | None] | None = None  # the core's where.of, links'
        self.modeled: list[Placed] | None = None  # the model's placements, by the core's rules

    @property
    def where(self) -> _Where:
        if self._where is None:
            self._where = _Where(self.page, self.main)
        return self._where

    @property
    def seq_index(self) -> dict[int, int]:
        """Each key of the scan's sequence (blocks and links in document order) -> its index,
        the last if it comes twice; made when first read."""
        if self._seq_index is None:
            self._seq_index = dict(zip(self._seq, range(len(self._seq)), strict=True))
        return self._seq_index

    def own_site(self) -> str | None:
        if not self.site:  # (a native scan's page: its URLs found by the core)
            self.site.append(_site_of(self.tree, bool(self.page.kind_of)))
        return self.site[0]


def _place_link(
    facts: _Facts, key: int, ugc: bool, anchor: str, attrs: dict[str, str | None] | None,
    node: LexborNode,
) -> tuple[str, float] | None:  # fmt: skip
    """One link's placement and confidence, by the first rule that applies: around main;
    markup labels below the common ancestor with main; running text; pagination; then its
    position in main. None: outside main without a label (see :func:`_place_outside`).
    ``attrs``: the link's attributes (None: ``node``'s, read only if the last rules need
    them: most links are placed before)."""
    main = facts.main
    if key in main.ancestors:  # a link around the main block (<a><div>text</div></a>)
        return CONTENT, 1.0  # it holds the text: sure (the model does not overrule it)
    top, branch, labels = facts.where.locate(key)  # common ancestor with main, labels below it
    if ugc or COMMENT in labels:
        if main.thread and _in_post_text(facts, key, anchor):
            return CONTENT, 0.7  # a link in a post's own text: the thread is the content
        return COMMENT, 1.0 if ugc else 0.9
    resolved = _resolve(labels)
    if resolved is not None and resolved != CONTENT:
        return resolved, 0.9
    inside = top == main.key
    art = facts.article
    at = facts.seq_index.get(key, -1)
    if inside:
        in_text = _in_running_text(facts, key, at)
        if in_text is not None:
            return in_text
    elif branch in facts.copy and _text_para(facts, key) >= 0:
        return CONTENT, 0.8  # running text of a block of copy beside main (a section)
    elif _in_landmark(facts, top) and _text_para(facts, key) >= 0:
        return CONTENT, 0.7  # running text beside main in the page's <main>: its copy too
    if anchor and _PAGER.fullmatch(anchor):  # 2, next, older posts »...
        return NAV, 0.8
    if main.weak:
        return CONTENT, 0.55
    if not inside:
        return None
    if at > art.last_good >= 0:  # after the article's text: related, share, tags
        return SIDEBAR, 0.6
    if 0 <= at < art.first_good:  # before it: byline, share
        return NAV, 0.6
    return _place_tail(facts, key, attrs, node, art.is_article, art.technical)


def _place_tail(
    facts: _Facts, key: int, attrs: dict[str, str | None] | None, node: LexborNode,
    is_article: bool, technical: bool,
) -> tuple[str, float]:  # fmt: skip
    """:func:`_place_link`'s last rules, for a link of its own in main between the first and
    the last of its running text: those that read the tree, the link's attributes and the
    page's site (the native core's rules call back for them)."""
    page = facts.page
    if is_article and _in_link_list(page, key, facts.lists):
        return SIDEBAR, 0.55  # a list of stories in an article ("more on this"): not its text
    if attrs is None:
        attrs = node.attributes
    if _is_button(page, key, attrs):  # "Buy now", "Book", "Check price": a call to action
        return SIDEBAR, 0.6
    if is_article and not technical and _internal(attrs.get("href") or "", facts.own_site()):
        # A link of its own in an article, to the same site: a promo or a related story far
        # more often than the editor's (who cites sources and products).
        return SIDEBAR, 0.55
    return CONTENT, 0.75


def _is_thread(page: _Page, good: dict[int, int], main: int, under_boiler: _Boiler) -> bool:
    """Whether most of the page's running text (outside nav, sidebars, footers) lies in
    comments, and the main block is one of them or holds some: a thread, a forum's or a
    Q&A's, whose posts are its content (an article's main block holds no comments)."""
    parent, label = page.parent, page.label
    if COMMENT not in label:  # most pages: no comment at all (a scan in C)
        return False
    if page.sums is not None:  # a native scan's page: the core's
        from pipelines import native  # it builds on this module: imported on first use

        thread = native.is_thread(page, good, main)
        if thread is not None:
            return thread
    # Per element under boilerplate: 1 if its outermost boilerplate label is a comment, else 2;
    # read from the walk up that under_boiler memoized, for the blocks of text only.
    kinds: dict[int, int] = {}

    def kind(key: int) -> int:
        path = []
        cur = key
        while True:
            found = kinds.get(cur)
            if found is not None:
                break
            path.append(cur)
            up = parent[cur]
            if up <= 0 or not under_boiler(up):  # cur: the outermost boilerplate label
                found = 1 if label[cur] == COMMENT else 2
                break
            cur = up
        for k in path:
            kinds[k] = found
        return found

    comments = other = 0
    for k, v in good.items():
        if not under_boiler(k):
            other += v
        elif kind(k) == 1:
            comments += v
    if comments == 0 or comments < _THREAD_SHARE * (comments + other):
        return False
    # Main among the posts; or no article beside them: no named body, little other text.
    if under_boiler(main) and kind(main) == 1:
        return True
    if other < _THREAD_OTHER and all(under_boiler(k) for k in page.body):
        return True
    return _holds_comment(page, main)


def _holds_comment(page: _Page, key: int) -> bool:
    """Whether an element labelled comment lies below ``key``."""
    parent, label, depth = page.parent, page.label, page.depth
    top = depth[key]
    k = 0
    while True:
        try:
            k = label.index(COMMENT, k + 1)
        except ValueError:
            return False
        cur = parent[k]
        while cur >= 0 and depth[cur] > top:
            cur = parent[cur]
        if cur == key:
            return True


def _text_para(facts: _Facts, key: int) -> int:
    """The block of running text a link lies straight in (not in a box or item inside it), or
    -1."""
    page, text = facts.page, facts.text
    p = text.para_of(page.parent[key])
    if p < 0 or p not in text.good or _block_of(page, key) != p:
        return -1
    return p


def _in_post_text(facts: _Facts, key: int, anchor: str) -> bool:
    """Whether a link lies in a post's running text (a paragraph of it, not its author box,
    attribution, action bar or pager)."""
    if _text_para(facts, key) < 0:
        return False
    return not (anchor and _PAGER.fullmatch(anchor))


def _in_running_text(facts: _Facts, key: int, at: int) -> tuple[str, float] | None:
    """A link of main in a paragraph is the editor's text; in a cell's or a box's own text,
    most likely, unless before or after all paragraphs (breadcrumbs, a byline in a cell)."""
    page, text, art = facts.page, facts.text, facts.article
    p = _text_para(facts, key)
    if p < 0:
        return None
    if p in art.edges:
        return SIDEBAR, 0.55
    if page.tag[p] in _PARAGRAPHS:
        return CONTENT, 0.95
    if text.good[p] >= 0.5 * facts.main.good:  # the article's text itself, straight in a box
        return CONTENT, 0.9
    if art.first_good <= at <= art.last_good or art.first_good < 0:
        return CONTENT, 0.85
    return None


def _place_outside(
    page: _Page,
    main_path: list[int],
    outside: list[tuple[int, int, int, int]],
    results: list[Placed],
) -> None:
    """Links outside main with no label, or a content label only (teaser ``<article>``s beside
    the main one), by where they sit: the outermost region before main is the page's header,
    the outermost after it the footer; regions nested deeper (columns beside main) are
    sidebars, except a small one just before main (breadcrumbs, title bar)."""
    depth = page.depth
    first_before = min((depth[t] for _, t, _, s in outside if s < 0), default=-1)
    first_after = min((depth[t] for _, t, _, s in outside if s > 0), default=-1)
    per_branch: dict[int, int] = {}
    for _, _, branch, _ in outside:
        per_branch[branch] = per_branch.get(branch, 0) + 1
    main_parent = main_path[min(1, len(main_path) - 1)]
    for i, top, branch, side in outside:
        if top == main_parent:
            small = per_branch[branch] < 5 and page.tag[branch] not in _CELL_TAGS
            placement = NAV if side < 0 and small else SIDEBAR  # a column is a sidebar
        elif side < 0:
            placement = NAV if depth[top] == first_before else SIDEBAR
        else:
            placement = FOOTER if depth[top] == first_after else SIDEBAR
        results[i] = results[i]._replace(placement=placement)


_MARKUP_PRODUCT = MARKUP_FACTS.index("markup_product")
_MARKUP_ARTICLE = MARKUP_FACTS.index("markup_article")
_PRODUCT_ITEM = '[itemtype*="schema.org/Product" i]'
_MAX_PRODUCT_ITEMS = 2  # more Product items: a grid of products, not one product's page
# A price in an anchor: a currency sign or code before or after the amount.
_PRICE = re.compile(
    r"(?:[$\u20ac\u00a3\u00a5\u20b9]|\b(?:usd|eur|gbp|chf)\b)\s?\d"
    r"|\d(?:[.,]\d\d)?\s?(?:[$\u20ac\u00a3\u00a5\u20b9]|\b(?:usd|eur|gbp|chf)\b)",
    re.IGNORECASE,
)
_MAX_PRICED = 200  # characters of an anchor searched for a price


def _product_links(
    tree: LexborHTMLParser,
    facts: _Facts,
    link_keys: list[int],
    anchors: Sequence[str],
    results: list[Placed],
    one_product: bool = False,
) -> None:
    """The rules of a page marked up as a product's, applied after the others.

    - Its item (the product's microdata scope, :func:`_product_item`) holds its
      description, specifications and attributes (genre, maker, features), often in a
      column beside the description that density did not choose: a link in it is content
      unless a region label lies between them (:func:`_item_labels`).
    - A link whose anchor carries a price, outside running text, offers another product (a
      related item's card, an add-on, a bundle): a sidebar, and so are the other links of its
      card (:func:`_priced_cards`: its picture, its maker). Unless main is a grid of items
      outside the item and the markup names several products (``one_product`` False): a
      catalogue marked up as products, whose grid is its content.
    - A call to action ("Add to cart", "Learn more", "Size guide", "Shipping"): a button or a
      policy beside the description, not the description (:data:`_CALL_TO_ACTION`).

    In running text, neither a priced card nor a bare "here": its text says what it is.
    """
    page = facts.page
    item = _product_item(tree, page)
    labels = _item_labels(page, item) if item >= 0 else None
    listing = facts.main.listing and not one_product
    cards = _priced_cards(facts, link_keys, anchors)
    for i, key in enumerate(link_keys):
        placed = results[i]
        in_item = labels[key] if labels is not None else None
        if placed.score >= 1.0 or (in_item is None and (listing or placed.placement != CONTENT)):
            continue
        loose = _text_para(facts, key) < 0
        if (loose and _card_of(page, key) in cards) or _names_action(anchors[i], loose):
            if placed.placement == CONTENT or in_item is not None:
                results[i] = placed._replace(placement=SIDEBAR, score=0.6)
        elif in_item is not None and _resolve(in_item) in (None, CONTENT):
            results[i] = placed._replace(placement=CONTENT, score=max(placed.score, 0.7))


# Anchors of a call to action or a shop's policy; "learn more about ..." too.
_CALL_TO_ACTION = re.compile(
    r"(?:learn more|shop(?: now| all)?|buy(?: it)? now|add to (?:cart|bag|basket|wishlist)"
    r"|view (?:full )?details|see (?:how|more|details|all)|details|more info|read more"
    r"|find out more|write a review|sign up(?: now)?|subscribe(?: now)?|size (?:guide|chart)"
    r"|shipping(?: info| policy)?|returns?(?: policy)?|privacy policy"
    r"|terms(?: of (?:use|service))?|click here|here|compare|take the quiz|notify me"
    r"|get started)\W*|learn more\b.*",
    re.IGNORECASE,
)
_MAX_ACTION = 80  # characters: a longer anchor is a title, not a button's words


def _names_action(anchor: str, loose: bool = True) -> bool:
    """Whether an anchor is a call to action or a policy's name. In running text (``loose``
    False) not a bare "here" or "details": the text around it says what it is.

    >>> _names_action("Add to cart"), _names_action("Learn more about Git"), _names_action("Here.")
    (True, True, True)
    >>> _names_action("Care guide"), _names_action("Shopping for a skillet: what to look for")
    (False, False)
    >>> _names_action("here", loose=False), _names_action("Add to cart", loose=False)
    (False, True)
    """
    if len(anchor) > _MAX_ACTION:
        return False
    words = anchor.strip()
    if not loose and _GENERIC_ACTION.fullmatch(words):
        return False
    return _CALL_TO_ACTION.fullmatch(words) is not None


_GENERIC_ACTION = re.compile(r"(?:(?:click )?here|details|compare)\W*", re.IGNORECASE)


def _priced_cards(facts: _Facts, link_keys: list[int], anchors: Sequence[str]) -> set[int]:
    """The cards (:func:`_card_of`) around links whose anchor carries a price, outside running
    text: each offers another product. Not one that holds main: the product's own article
    (its "Add to cart - $29.99")."""
    cards = set()
    for key, anchor in zip(link_keys, anchors, strict=True):
        if _PRICE.search(anchor[:_MAX_PRICED]) and _text_para(facts, key) < 0:
            card = _card_of(facts.page, key)
            if card not in facts.main.ancestors:
                cards.add(card)
    return cards


_CARD_TAGS = frozenset({"li", "article"})
_CARD_LEVELS = 4  # a card's links lie at most this many levels below it


def _card_of(page: _Page, key: int) -> int:
    """The card a link lies in: the nearest ``li`` or ``article`` a few levels up, else the
    link itself (-1 never: a link is its own card when no item holds it)."""
    card = _nearest(page, page.parent[key], _CARD_TAGS, _CARD_LEVELS)
    return card if card >= 0 else key


def _one_product(markup: PageMarkup | None) -> bool:
    """Whether the markup names exactly one product (its JSON-LD or microdata): a product's
    page, where a grid of priced items beside it offers others, not a catalogue."""
    return markup is not None and markup.schema_types.count("product") == 1


def _product_item(tree: LexborHTMLParser, page: _Page) -> int:
    """The product's own microdata item (``itemtype=schema.org/Product``): the outermost
    one the walk recorded, or -1 (none, or a grid of several products)."""
    items = tree.css(_PRODUCT_ITEM)
    if not items or len(items) > _MAX_PRODUCT_ITEMS:
        return -1
    keys = [k for node in items if (k := page.index.get(node.mem_id)) is not None]
    return min(keys, key=page.depth.__getitem__, default=-1)


def _item_labels(page: _Page, item: int) -> list[tuple[str, ...] | None]:
    """Per element under ``item``, the labels from it up to the item (excluded), innermost
    first; None for the others. In one pass (an element comes after its parent). A
    ``meta`` block's nav label is left out: in a product's item it holds the product's
    attributes (game_meta_data, product-meta), not an article's byline."""
    parent, label = page.parent, page.label
    of: list[tuple[str, ...] | None] = [None] * len(parent)
    for k in range(item + 1, len(parent)):
        up = parent[k]
        above = () if up == item else of[up]
        if above is None:
            continue
        lab = label[k]
        if lab is None or (lab == NAV and _names_meta(page, k)):
            of[k] = above
        else:
            of[k] = (lab, *above)
    return of


def _names_meta(page: _Page, key: int) -> bool:
    """Whether an element's class or id says ``meta`` and no other nav word (its nav label
    comes from that word alone), its tag and role saying nothing.

    >>> page = _Page(LexborHTMLParser('<div class="rightcol game_meta_data">').body)
    >>> key = page.register(page.nodes[0].child, page.nodes[0].child.mem_id)
    >>> page.read_facts()
    >>> page.label[key], _names_meta(page, key)
    ('nav', True)
    """
    if page.tag[key] in _TAG_LABELS:
        return False
    cls, id_, role = page.names(key)
    if role:
        return False
    for value in (cls, id_):
        if value:
            tokens = _tokens(value)
            if "meta" in tokens and all(_TOKEN_LABEL[t] != NAV for t in tokens if t != "meta"):
                return True
    return False


def _site_of(tree: LexborHTMLParser, core: bool = False) -> str | None:
    """The page's registered domain, from its canonical URL, og:url or base (the page's own
    URL is not passed in), or None. *core*: the first of those URLs found by the native core
    in one walk (a natively scanned page's); the others (and Python's path) are found by
    selectolax's selectors, one at a time."""
    found = _core_self_urls(tree) if core else []
    for i, (selector, attr) in enumerate(_SELF_URLS):
        if i < len(found):
            url = found[i]
        else:
            node = tree.css_first(selector)
            url = (node.attributes.get(attr) or "") if node is not None else ""
        host = _href_host(url)
        if host:
            return registered_domain(host)
    return None


def _core_self_urls(tree: LexborHTMLParser) -> list[str]:
    """The first of ``_SELF_URLS``' values by the core (``pipelines.native.self_urls``), or
    none (no core, or a case only lexbor's selectors tell)."""
    from pipelines import native  # it builds on this module: imported on first use

    return native.self_urls(tree) or []


def _href_host(href: str) -> str | None:
    """The host of an absolute or scheme-relative href, lowercased; None for a relative one.

    >>> _href_host(" HTTPS://Www.Example.test:8080/a?b"), _href_host("/a"), _href_host("//x.test")
    ('www.example.test', None, 'x.test')
    """
    href = href.strip().lower()
    if href.startswith("//"):
        rest = href[2:]
    elif href.startswith(("http://", "https://")):
        rest = href.split("//", 1)[1]
    else:
        return None
    for sep in "/?#":
        rest = rest.split(sep, 1)[0]
    return rest.rpartition("@")[2].split(":", 1)[0].rstrip(".") or None


def _internal(href: str, site: str | None) -> bool:
    """Whether a link's href stays on the page's site (a relative href always does)."""
    host = _href_host(href)
    if host is None:
        return not href.strip().lower().startswith(("javascript:", "mailto:", "tel:", "data:"))
    return site is not None and registered_domain(host) == site


_BUTTON_WORDS = frozenset({"button", "btn", "cta", "buttons"})


def _is_button(page: _Page, key: int, attrs: dict[str, str | None]) -> bool:
    """Whether a link is a button: role=button, or its parent's class says so (a class of
    its own alone is often a styled link in the text).

    >>> tree = LexborHTMLParser('<div class="wp-block-button"><a href="/x">Buy</a></div>')
    >>> a = tree.css_first("a")
    >>> page = _Page(tree.body)
    >>> _is_button(page, page.register(a, a.mem_id), {"href": "/x"})
    True
    """
    if (attrs.get("role") or "").strip().lower() == "button":
        return True
    cls = page.names(page.parent[key])[0]
    return bool(cls) and _BUTTON_CLASS[cls]


def _names_button(cls: str) -> bool:
    """Whether a class attribute names a button.

    >>> _names_button("wp-block-button"), _names_button("buttonless-link")
    (True, False)
    """
    return not _BUTTON_WORDS.isdisjoint(_tokens(cls))


_BUTTON_CLASS = BoundedMemo(_names_button, 1 << 20)  # class lists repeat


def _in_item(page: _Page, key: int) -> bool:
    """Whether a paragraph is (in) a list item: the blurb of a listing's teaser."""
    return _nearest(page, key, _LIST_ITEM_TAGS, 3) >= 0


def _nearest(page: _Page, start: int, tags: Collection[str], count: int) -> int:
    """The first of ``start`` and its ancestors, ``count`` elements at most, whose tag is one of
    ``tags``; else -1. The bounded "which box holds this" walk the rules share."""
    cur = start
    for _ in range(count):
        if cur <= 0:
            return -1
        if page.tag[cur] in tags:
            return cur
        cur = page.parent[cur]
    return -1


def _block_of(page: _Page, key: int) -> int:
    """The nearest block-level ancestor of a link (a paragraph, item, cell, container), or -1."""
    cur = page.parent[key]
    while cur >= 0:
        if page.tag[cur] in _BLOCK_TAGS:
            return cur
        cur = page.parent[cur]
    return -1


def _listing(page: _Page, main: int) -> tuple[int, bool]:
    """The list around ``main`` (:func:`_whole_list`; main if none) and whether main is a
    listing (a list's item, or :func:`_has_items`): on a natively scanned page by the core
    (``pipelines.native.main_listing``: no node found in Python), else here."""
    levels = _list_levels(page, main)
    if isinstance(page.nodes, _Nodes):  # a native scan's page: its nodes are found by address
        from pipelines import native  # it builds on this module: imported on first use

        found = native.main_listing(page, main, levels)
        if found is not None:
            return found
    items = _whole_list(page, main, levels)
    return items, items != main or _has_items(page.nodes[main])


_MAX_SIBLINGS = 200  # children of an element read for its items
_LIST_ITEMS = 3  # like items (same tag and class) that make a list


def _has_items(node: LexborNode) -> bool:
    """Whether ``node`` holds >= 3 repeated items with links (teaser ``<article>``s, ``<li>``s
    of the same class) among its children: a listing."""
    seen: dict[tuple[str | None, str | None], int] = {}
    child = node.child
    for _ in range(_MAX_SIBLINGS):
        if child is None:
            return False
        tag = child.tag
        if tag in _ITEM_TAGS and child.css_first("a[href]") is not None:
            cls = child.attributes.get("class")
            n = seen[(tag, cls)] = seen.get((tag, cls), 0) + 1
            if n >= _LIST_ITEMS:
                return True
        child = child.next
    return False


_LIST_LEVELS = 3  # levels above main searched for the list it is an item of
_LIST_LEVELS_IN_LINK = 14  # ... when a link holds main: a card's title, deep in its card
_LINK_LEVELS = 4  # main in a link: the link at most this many levels up


def _list_levels(page: _Page, main: int) -> int:
    """How far up :func:`_whole_list` looks for the list that ``main`` is an item of: further
    when main's text lies in a link, which no article's body does: the title of a grid's card
    (a shop's best sellers), whose item sits many boxes up."""
    in_link = _nearest(page, page.parent[main], ("a",), _LINK_LEVELS) >= 0
    return _LIST_LEVELS_IN_LINK if in_link else _LIST_LEVELS


def _whole_list(page: _Page, main: int, levels: int = _LIST_LEVELS) -> int:
    """The list around ``main`` when main is one item of it (or inside one item, at most
    ``levels`` up): one teaser of a listing page has the most text, but the listing is the
    page's content."""
    cur = main
    for _ in range(levels):
        up = page.parent[cur]
        if up < 0:
            return main
        node = page.nodes[cur]
        tag, cls = node.tag, node.attributes.get("class")
        if tag in _LAYOUT_TAGS or up == 0:  # layout rows and cells are not items
            return main
        if tag not in _ITEM_TAGS and not cls:
            cur = up  # unclassed boxes: only repeated classed boxes make a list
            continue
        same = 0
        sibling = page.nodes[up].child
        for _ in range(_MAX_SIBLINGS):
            if sibling is None:
                break
            if sibling.tag == tag and sibling.attributes.get("class") == cls:
                same += 1
            sibling = sibling.next
        if same >= _LIST_ITEMS:
            return up
        cur = up
    return main


def _in_link_list(page: _Page, key: int, memo: dict[int, bool]) -> bool:
    """Whether the link ``key`` is an item of a list (ul/ol, up to 4 levels up) of >= 3 links."""
    cur = _nearest(page, page.parent[key], _LIST_TAGS, 4)
    if cur < 0:
        return False
    found = memo.get(cur)
    if found is None:
        # Headlines, not names: related-story lists link long titles.
        anchors = [a.text(deep=True, strip=True) for a in page.nodes[cur].css("a[href]")]
        words = sum(len(a.split()) for a in anchors)
        found = memo[cur] = len(anchors) >= 3 and words >= _HEADLINE_WORDS * len(anchors)
    return found


def _side(page: _Page, top: int, branch: int, main_path: list[int], order: dict[int, int]) -> int:
    """-1 if subtree ``branch`` (a child of ``top``) comes before main in document order."""
    index = main_path.index(top)
    main_branch = main_path[index - 1] if index > 0 else top
    cur = page.nodes[top].child
    side = -1
    keys = page.index
    while cur is not None:
        k = keys.get(cur.mem_id)
        if k == main_branch:
            side = 1
        elif k is not None:
            order[k] = side
        cur = cur.next
    return order.get(branch, 1)
