"""Placement: where on the page a link sits (content, nav, sidebar, footer, comment).

Per page, from the DOM alone. Signals, strongest first:
- comment containers (WordPress ``comment-list``, Disqus, ``#comments``) -> comment;
- HTML5 sectioning elements and ARIA landmark roles (``nav``, ``aside``, ``footer``,
  ``role=navigation`` ...);
- id/class tokens in common conventions (WordPress, Bootstrap, BEM) and schema.org
  ``itemprop=articleBody``;
- without any hint: the main content block (the element holding the most paragraph text),
  links inside it are content; links before it nav, after it footer, beside it sidebar.
The site-level pass at compaction corrects template links that the DOM does not reveal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from selectolax.lexbor import LexborHTMLParser, LexborNode

CONTENT, NAV, SIDEBAR, FOOTER, COMMENT = "content", "nav", "sidebar", "footer", "comment"

_TAG_LABELS = {
    "nav": NAV,
    "header": NAV,
    "footer": FOOTER,
    "aside": SIDEBAR,
    "main": CONTENT,
    "article": CONTENT,
}
_ROLE_LABELS = {
    "navigation": NAV,
    "banner": NAV,
    "menu": NAV,
    "menubar": NAV,
    "contentinfo": FOOTER,
    "complementary": SIDEBAR,
    "main": CONTENT,
    "article": CONTENT,
    "comment": COMMENT,
}
# Whole tokens of id/class (split on non-alphanumerics), mapped to a label.
_TOKEN_LABELS: dict[str, str] = {}
for _label, _words in {
    COMMENT: "comment comments commentlist comentarios commentaires kommentare disqus respond "
    "replies reply discussion",
    NAV: "nav navbar navigation menu menubar mainmenu topmenu breadcrumb breadcrumbs pagination "
    "pager masthead topbar header navlinks skip",
    SIDEBAR: "sidebar aside widget widgets blogroll related sidebox rail secondary",
    FOOTER: "footer colophon copyright bottombar pie fusszeile",
    CONTENT: "content entry post article story articlebody main body text prose",
}.items():
    for _w in _words.split():
        _TOKEN_LABELS[_w] = _label
_TOKEN_SPLIT = re.compile(r"[^a-z0-9]+")
# Tokens that look like labels but are not regions (entry-meta, post-title, nav-link ...).
_WEAK_CONTENT = frozenset({"main", "body", "text", "post", "entry"})


def _tokens(value: str) -> list[str]:
    return [t for t in _TOKEN_SPLIT.split(value.lower()) if t]


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
    >>> classify_element("div", {"class": "css-1x9f2k"}) is None
    True
    """
    label = _TAG_LABELS.get(tag)
    if label is not None:
        return label
    role = attrs.get("role")
    if role:
        label = _ROLE_LABELS.get(role.strip().lower())
        if label is not None:
            return label
    if (attrs.get("itemprop") or "").lower() == "articlebody":
        return CONTENT
    found: str | None = None
    for name in ("id", "class"):
        value = attrs.get(name)
        if not value:
            continue
        for token in _tokens(value):
            label = _TOKEN_LABELS.get(token)
            if label is None:
                continue
            if label == COMMENT:
                return COMMENT
            if label == CONTENT and token in _WEAK_CONTENT:
                found = found or CONTENT
                continue
            if found is None or found == CONTENT:
                found = label
    return found


def _resolve(labels: list[str]) -> str | None:
    """Combine the labels of a link's ancestors, innermost first.

    Comments win; otherwise the innermost region, except that a menu inside a footer or a
    sidebar belongs to that footer or sidebar.

    >>> _resolve(["nav", "footer"])
    'footer'
    >>> _resolve(["sidebar", "content"])
    'sidebar'
    >>> _resolve(["content", "nav"])
    'content'
    """
    if not labels:
        return None
    if COMMENT in labels:
        return COMMENT
    first = labels[0]
    if first == NAV:
        for outer in labels[1:]:
            if outer in (FOOTER, SIDEBAR):
                return outer
    return first


def _main_block(tree: LexborHTMLParser) -> LexborNode | None:
    """The element holding the most paragraph text: the page's main content block."""
    scores: dict[int, tuple[int, LexborNode]] = {}
    for p in tree.css("p, pre, blockquote, td"):
        length = len(p.text(deep=True, strip=True))
        if length < 40:
            continue
        parent = p.parent
        if parent is None:
            continue
        key = parent.mem_id
        prev = scores.get(key)
        scores[key] = ((prev[0] if prev else 0) + length, parent)
    if not scores:
        return None
    return max(scores.values(), key=lambda item: item[0])[1]


def place_links(tree: LexborHTMLParser, links: Sequence[LexborNode]) -> list[str]:
    """Placement of each link node of ``tree``, in order."""
    memo: dict[int, str | None] = {}
    result: list[str | None] = []
    unresolved = False
    for node in links:
        labels: list[str] = []
        cur = node.parent
        while cur is not None and cur.tag not in ("body", "html", "-document"):
            key = cur.mem_id
            if key in memo:
                label = memo[key]
            else:
                label = classify_element(cur.tag or "", cur.attributes)
                memo[key] = label
            if label is not None:
                labels.append(label)
            cur = cur.parent
        placed = _resolve(labels)
        unresolved = unresolved or placed is None
        result.append(placed)
    if unresolved:
        _place_by_layout(tree, links, result)
    return [label or CONTENT for label in result]


def _place_by_layout(
    tree: LexborHTMLParser, links: Sequence[LexborNode], result: list[str | None]
) -> None:
    """Fill links that no markup placed, from the main block and document order."""
    main = _main_block(tree)
    if main is None:
        return
    main_id = main.mem_id
    inside: list[bool] = []
    for node in links:
        cur = node.parent
        hit = False
        while cur is not None:
            if cur.mem_id == main_id:
                hit = True
                break
            cur = cur.parent
        inside.append(hit)
    first_in = next((i for i, hit in enumerate(inside) if hit), None)
    last_in = max((i for i, hit in enumerate(inside) if hit), default=None)
    for i, label in enumerate(result):
        if label is not None:
            continue
        if inside[i]:
            result[i] = CONTENT
        elif first_in is None or i < first_in:
            result[i] = NAV
        elif last_in is not None and i > last_in:
            result[i] = FOOTER
        else:
            result[i] = SIDEBAR
