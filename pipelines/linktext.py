"""The text of a link as a reader sees it: its rendered text (innerText with JavaScript off),
whether it wraps an image, and the images' alt texts. Extraction (the anchor column) and
placement (how much of a block is link text) measure the same text.
"""

from __future__ import annotations

from selectolax.lexbor import LexborHTMLParser, LexborNode

# Elements whose text a reader does not see in a link.
# <noscript> is not among them: a page parsed without scripting (as here, and in a browser
# with JavaScript off) shows its content.
# SVG's <title>, <desc> and <metadata> are not rendered either (only its <text> is).
_HIDDEN = frozenset(
    {"script", "style", "template", "-comment", "head", "title", "desc", "metadata"}
)
# Elements that break a line in rendered text: their edges separate words.
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt",
        "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header",
        "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "td", "th", "tr",
        "ul", "option", "picture", "source", "svg",
    }
)  # fmt: skip


def collapse_ws(text: str) -> str:
    """Collapse whitespace runs (``&nbsp;`` included) to one space and trim.

    >>> collapse_ws("  Hello\\n\\t wide\\xa0 world ")
    'Hello wide world'
    """
    return " ".join(text.split())


def anchor_parts(node: LexborNode, hidden: set[int]) -> tuple[str, bool, list[str]]:
    """Visible text of a link (whitespace not collapsed), whether it wraps an image, and the
    images' alt texts.

    *hidden*: the ``mem_id`` of the page's elements with a ``hidden`` attribute.
    """
    first = node.child
    if first is None:
        return "", False, []
    if first.next is None and first.tag == "-text":
        return first.text_content or "", False, []
    parts: list[str] = []
    alts: list[str] = []
    is_image = False
    stack = [first]
    while stack:
        cur = stack.pop()
        nxt = cur.next
        if nxt is not None:
            stack.append(nxt)
        tag = cur.tag
        if tag == "-text":
            parts.append(cur.text_content or "")
        elif tag in _HIDDEN or (hidden and cur.mem_id in hidden):
            continue
        elif tag == "img":
            is_image = True
            alt = cur.attributes.get("alt")
            if alt:
                alts.append(alt)
        else:
            child = cur.child
            if tag in _BLOCKS:
                parts.append(" ")
                if child is not None:
                    # Close the block with a space once its subtree is done.
                    stack.append(_BlockEnd)  # type: ignore[arg-type]
            if child is not None:
                stack.append(child)
    return "".join(parts), is_image, alts


class _BlockEndMarker:
    """Marks the end of a block element's subtree in the traversal stack."""

    tag = "-text"
    text_content = " "
    next = None


_BlockEnd = _BlockEndMarker()


def hidden_elements(tree: LexborHTMLParser) -> set[int]:
    """The ``mem_id`` of the elements with a ``hidden`` attribute (a browser renders none)."""
    return {node.mem_id for node in tree.css("[hidden]")}
