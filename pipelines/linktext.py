"""The text of a link as a reader sees it: its rendered text (innerText with JavaScript off),
whether it wraps an image, and the images' alt texts. Extraction (the anchor column) and
placement (how much of a block is link text) measure the same text.
"""

from __future__ import annotations

from selectolax.lexbor import LexborHTMLParser, LexborNode

# Elements whose text a reader does not see in a link: not rendered (UA style display:none:
# <rp>, <datalist>, <noembed>, <noframes>), or replaced elements whose fallback content a
# browser with support does not show (<video>, <audio>, <iframe>), or a form control's value
# (<textarea>). SVG's <title>, <desc> and <metadata> are not rendered either (only its <text>).
# <noscript> is not among them: a page parsed without scripting (as here, and in a browser with
# JavaScript off) shows its content; nor are <canvas> and <object>, whose fallback then shows.
_HIDDEN = frozenset(
    {
        "script", "style", "template", "-comment", "head", "title", "desc", "metadata", "rp",
        "datalist", "textarea", "video", "audio", "iframe", "noembed", "noframes",
    }
)  # fmt: skip
# Elements that break a line in rendered text (block-level in the UA style sheet, table rows
# and cells; and <svg>, whose text Chromium's innerText sets apart): their edges separate words.
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "br", "caption", "center", "dd",
        "details", "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure",
        "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr",
        "legend", "li", "listing", "main", "menu", "nav", "ol", "optgroup", "option", "p",
        "plaintext", "pre", "search", "section", "summary", "svg", "table", "td", "th", "tr",
        "ul", "xmp",
    }
)  # fmt: skip
# Shown only when open: a closed <dialog> is not rendered, a closed <details> shows its summary.
_UNLESS_OPEN = frozenset({"dialog", "details"})


def collapse_ws(text: str) -> str:
    """Collapse whitespace runs (``&nbsp;`` included) to one space and trim.

    >>> collapse_ws("  Hello\\n\\t wide\\xa0 world ")
    'Hello wide world'
    """
    return " ".join(text.split())


def anchor_parts(node: LexborNode, hidden: set[int]) -> tuple[str, bool, list[str]]:
    """Visible text of a link (whitespace not collapsed), whether it wraps an image, and the
    images' alt texts.

    *hidden*: the ``mem_id`` of the page's elements that a ``hidden`` attribute hides
    (:func:`is_hidden`).
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
        elif tag in _UNLESS_OPEN and "open" not in cur.attributes:
            if tag == "details":
                summary = _summary_of(cur)
                if summary is not None:
                    parts.append(" ")
                    stack.append(_BlockEnd)  # type: ignore[arg-type]
                    stack.append(_Alone(summary))  # type: ignore[arg-type]
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


class _Alone:
    """A node walked without its following siblings (the summary of a closed ``<details>``)."""

    __slots__ = ("_node",)
    next = None

    def __init__(self, node: LexborNode) -> None:
        self._node = node

    def __getattr__(self, name: str) -> object:
        return getattr(self._node, name)


def _summary_of(details: LexborNode) -> LexborNode | None:
    """The summary a closed ``<details>`` shows: its first ``<summary>`` child."""
    child = details.child
    while child is not None:
        if child.tag == "summary":
            return child
        child = child.next
    return None


class _BlockEndMarker:
    """Marks the end of a block element's subtree in the traversal stack."""

    tag = "-text"
    text_content = " "
    next = None


_BlockEnd = _BlockEndMarker()


def is_hidden(attrs: dict[str, str | None]) -> bool:
    """Whether an element's ``hidden`` attribute hides it from rendered text: any value but
    ``until-found``, whose content stays in ``innerText`` (found by find-in-page).

    >>> is_hidden({"hidden": ""}), is_hidden({"hidden": "Until-Found"}), is_hidden({})
    (True, False, False)
    """
    if "hidden" not in attrs:
        return False
    return (attrs["hidden"] or "").lower() != "until-found"


def hidden_elements(tree: LexborHTMLParser) -> set[int]:
    """The ``mem_id`` of the elements whose ``hidden`` attribute hides them (see is_hidden)."""
    return {node.mem_id for node in tree.css("[hidden]") if is_hidden(node.attributes)}
