"""What the parser is fed (native/src/elide.rs, extract.py ``_parse_fed``): the core elides
the text of the top-level script and style elements before lexbor parses a page, and keeps
that tree only when it is the page's own tree but for that text.

Checked here, on the traps of the HTML tokenizer and tree builder (escaped and double-escaped
scripts, end tags in every case and delimiter, SVG and MathML, the other raw text and RCDATA
elements, comments, CDATA, ``<plaintext>``, templates, tables, unterminated scripts, attributes
holding markup, the JSON-LD and ``[hidden]`` scripts the page type reads, the marker byte in a
page) and on a seeded soup of them: the tree parsed from the elided bytes is node for node the
tree of the page's own bytes, but for the text of elided elements, each a script or style
child of ``<html>``, ``<head>`` or ``<body>``; the rows of every column are the Python
path's; the encodings that are not elided are not; hostile bodies stay bounded.
"""

from __future__ import annotations

import random

import pytest
from native_checks import HAS_CARGO, no_fallback  # noqa: F401 (no_fallback: autouse)
from selectolax.lexbor import LexborHTMLParser

from pipelines import encoding, extract, native

URL = "http://s.test/p"


@pytest.fixture(scope="module")
def core():
    module = native.lexbor_core()
    if module is None:
        assert not HAS_CARGO, "the native core is not built (see tests/test_native.py)"
        pytest.skip("no cargo: the Python path parses the page's own bytes")
    return module


def nodes(tree: LexborHTMLParser) -> list[tuple]:
    """Every node under the root in document order: (depth, tag, attributes, text, parent's
    tag, grandparent's tag)."""
    out = []
    stack = [(tree.root, 0, "", "")]
    while stack:
        node, depth, up, upper = stack.pop()
        if node is None:
            continue
        stack.append((node.next, depth, up, upper))
        text = node.text_content if node.tag in ("-text", "_comment", "-comment") else None
        out.append((depth, node.tag, tuple(node.attributes.items()), text, up, upper))
        stack.append((node.child, depth + 1, node.tag, up))
    return out


def elided_nodes(body: bytes, codec: str = "utf-8") -> int:
    """The text nodes elided in the core's tree of *body*; fails unless that tree is the tree
    of *body* itself but for them, each the text of a top-level script or style."""
    fed = nodes(extract._parse_fed(body, 0, codec))
    own = nodes(extract._parse(body, codec))
    assert len(fed) == len(own)
    elided = 0
    for got, want in zip(fed, own, strict=True):
        if got != want:
            assert got[1] == "-text" and got[3] == "\x01" and got[:3] == want[:3], (got, want)
            assert got[4:] == want[4:] and got[4] in ("script", "style"), got
            assert got[5] in ("html", "head", "body"), got
            elided += 1
    return elided


def same_rows(body: bytes, content_type: str | None = None) -> None:
    """The core's page of *body* is the Python path's, every column."""
    got = extract.extract_page(body, URL, content_type=content_type)
    want = extract.extract_page(body, URL, content_type=content_type, native=False)
    assert got == want
    assert list(got.links) == list(want.links) and got.limits_hit == want.limits_hit


# (page, text nodes the core elides: the traps it must see through, or not elide)
TRAPS = [
    (b"<script>if (a<b) x='</scripty>';</script><p>t</p>", 1),
    (b"<script>a</SCRIPT\t>b<script>c</script/>d<script>e</script x='>'>f<p>x", 3),
    (b"<script>a</scriptx>b</script\r>c<style>d</style >e", 2),
    # Escaped, double-escaped: "</script>" inside does not end the script.
    (b"<script><!--<script>x</script>y</script>z--></script><p>after</p>", 1),
    (b"<script><!--<script></script>--></script><p>after</p>", 1),
    (b"<script><!-- <SCRIPT>--></script><p>after</p>", 1),
    (b"<script><!--></script><p>after</p>", 1),
    (b"<script><!--<script>a</script b>-->x</script><i>i</i>", 1),
    (b"<script><!--<scripts>a</script>b--></script><i>i</i>", 1),
    (b"<script><!--<script>a-->b</script>c</script><i>i</i>", 1),
    # Foreign content: script and style are elements there, their text markup.
    (b"<svg><script>a<b>c</b></script><style>x<i>y</i></style></svg><script>s</script>", 1),
    (b"<math><style><!-- </style> --></style></math><style>x</style>", 1),
    (b"<svg/><script>s</script><svg><desc><script>t</script></desc></svg>", 1),
    (b"<svg><![CDATA[ > <script>x</script> ]]></svg><p>p", 0),
    (b"<![CDATA[<script>x</script>]]><p>p", 0),
    # Raw text and RCDATA elements, comments, plaintext.
    (b"<textarea><script>x</script></textarea><title><script>y</script></title>", 0),
    (b"<xmp><script>x</script></xmp><iframe><script>x</script></iframe>", 0),
    (b"<noembed><script>x</script></noembed><noframes><style>x</style></noframes>", 0),
    (b"<!-- <script>x</script> --><!--><script>y</script>", 1),
    (b"<plaintext><script>x</script>", 0),
    (b"<script>unterminated", 0),
    (b"<script><!--<script>never ends</script>", 0),
    # Where the tree puts them: in head, noscript (a child of it there too), template, tables,
    # formatting elements.
    (b"<head><script>a</script><style>b</style><noscript><style>c</style></noscript></head>", 2),
    (b"<p>text<script>x</script></p><script>y</script>", 1),
    (b"<b>bold<script>x</script>", 0),
    (b"<template><script>x</script></template><script>y</script>", 1),
    (b"<div><table><tr><td></div><script>x</script>", 0),  # in the cell: a second parse
    (b"<img alt='<script>x</script>'><script>y</script>", 0),  # in a value: a second parse
    (b"<frameset><script>x</script></frameset>", 0),
    (b"</body></html><script>after</script>", 1),
    # Read downstream: JSON-LD (any case, or spelled with a reference), [hidden], [itemtype].
    (b'<script type="application/ld+json">{"@type": "Article"}</script><p>x', 0),
    (
        b"<script TYPE=APPLICATION/LD+JSON>{}</script><script type='application/ld&#43;json'>"
        b"{}</script><script hidden>{}</script><script itemtype=x>{}</script>",
        0,
    ),
    # The marker byte in the page: nothing elided.
    (b"<script>a</script>\x01", 0),
]


@pytest.mark.parametrize(("page", "elided"), TRAPS)
def test_the_tree_is_the_pages_but_for_elided_text(core, page, elided):
    """The core's tree is the page's tree but for the text of elided top-level scripts and
    styles; they are the ones expected (the others kept, or found by the check); the rows
    are the Python path's."""
    body = b"<!doctype html>" + page + b"<a href=/x>x</a>"
    assert elided_nodes(body) == elided
    same_rows(body)


def test_a_region_the_tree_does_not_confirm_is_parsed_again(core):
    """The predictor's guesses that the tree refutes (a script in a cell, in a value) leave
    the page's own bytes parsed: the check counted fewer elided elements than regions."""
    for page in (b"<div><table><tr><td></div><script>x</script>",
                 b"<img alt='<script>x</script>'><script>y</script>"):  # fmt: skip
        fed, regions = core.elide_raw_text(page)
        assert regions == 2 - page.startswith(b"<div>")
        assert not core.elision_holds(LexborHTMLParser(fed), regions)
        assert core.elision_holds(LexborHTMLParser(b"<script>\x01</script>" * regions), regions)


SOUP = [
    b"<script>", b"</script>", b"</SCRIPT >", b"</script/", b"<script ", b"</script", b"<!--",
    b"-->", b"--!>", b"<!-->", b"-", b"<", b">", b"/", b"=", b"'", b'"', b"\r", b"\n", b" ",
    b"x", b"\xc3\xa9", b"\x00", b"<style>", b"</style>", b"<svg>", b"</svg>", b"<math>",
    b"</math>", b"<p>", b"</p>", b"<div>", b"</div>", b"<td>", b"<table>", b"</table>",
    b"<template>", b"</template>", b"<title>", b"</title>", b"<textarea>", b"</textarea>",
    b"<![CDATA[", b"]]>", b"<a href=x>", b"</a>", b"<b>", b"</b>", b"<head>", b"</head>",
    b"<body>", b"</body>", b"<noscript>", b"</noscript>", b"<scripts>", b"</scriptx>",
    b"<desc>", b"<foreignObject>", b"<img alt='", b"<svg/>", b"<script type=module>",
]  # fmt: skip


def test_a_seeded_soup_is_parsed_the_same(core):
    """2,000 seeded soups of the tokenizer's and tree builder's traps, scripts weighted: the
    core's tree is each page's own but for elided text; some are elided (the soups reach
    the elision, not only its refusals)."""
    rng = random.Random(18)
    elided = 0
    for k in range(2000):
        parts = [b"<script>" if rng.random() < 0.25 else rng.choice(SOUP)
                 for _ in range(rng.randint(1, 40))]  # fmt: skip
        body = b"".join(parts) + (b"</script>" if k % 2 else b"")
        elided += elided_nodes(body) > 0
        if k % 50 == 0:
            same_rows(body)
    assert elided >= 300


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        # A <meta> within the prescan's window past a long script: read on the page's bytes.
        (
            b"<script>" + b"x" * 2000 + b"</script><meta charset=windows-1251><title>\xcf\xf0"
            b"</title><p>\xcf\xf0\xe8\xe2\xe5\xf2<a href=/\xcf>\xcf</a>",
            None,
        ),
        (b"<meta charset=windows-1252><script>a</script><a href=/x>caf\xe9</a>", None),
        (b"\xef\xbb\xbf<script>a</script><a href=/x>x</a>", None),  # a byte-order mark
        (
            "<script>a</script><a href=/x>日本</a>".encode("iso2022_jp"),
            "text/html; charset=iso-2022-jp",
        ),
        ("<script>a</script><a href=/x>x</a>".encode("utf-16"), None),
        ("<script>a</script><a href=/x>日本</a>".encode("cp932"), "text/html; charset=shift_jis"),
        (b"<script>a\xff</script><a href=/x>x</a>", "text/html; charset=utf-8"),  # bad UTF-8
    ],
)
def test_encodings_are_sniffed_on_the_pages_own_bytes(core, body, content_type):
    """The sniff (byte-order mark, Content-Type, the <meta> prescan, the UTF-8 check, the
    tentative re-parse) reads the page's own bytes; a stateful or multi-byte encoding is not
    elided: the rows are the Python path's."""
    same_rows(body, content_type)


def test_the_tentative_reparse_is_elided_again(core, monkeypatch):
    """A <meta> past the prescan's window: the sniff is a tentative guess (cp1252 for these
    Latin bytes), the head's <meta> says windows-1251, and the page is parsed again, elided
    again (review14-b14 3): both parses checked, the rows the Python path's."""
    body = (
        b"<script>" + b"x" * 5000 + b"</script><meta charset=windows-1251><title>\xcf\xf0"
        b"</title><script>var s=1;</script><p>caf\xe9 na\xefve<a href=/\xe9>\xe9</a>"
    )
    sniffed = encoding.sniff_encoding(body, None)
    assert sniffed.tentative and sniffed.encoding != "cp1251"
    holds = core.elision_holds
    calls: list[bool] = []
    monkeypatch.setattr(core, "elision_holds", lambda t, r: calls.append(holds(t, r)) or calls[-1])
    assert extract.extract_page(body, URL).encoding == "cp1251"
    assert calls == [True, True]
    monkeypatch.undo()
    same_rows(body)


def test_only_ascii_transparent_encodings_are_elided():
    assert encoding.ascii_transparent("utf-8") and encoding.ascii_transparent("cp1251")
    assert encoding.ascii_transparent("iso8859-2") and encoding.ascii_transparent("koi8-u")
    others = "utf-16-le utf-16-be utf-32-le iso2022_jp cp932 euc_jp gb18030 big5hkscs cp949 utf-7"
    escapes = ["unicode_escape", "raw_unicode_escape", "undefined"]  # review14-b14 4
    for name in [*others.split(), *escapes, "cp037", "hz", "no-such-codec"]:
        assert not encoding.ascii_transparent(name), name


def test_the_bounds_are_those_of_the_pages_own_bytes(core, monkeypatch):
    """A body cut at MAX_PARSE_BYTES inside a script (then unterminated: not elided), or
    bounded by MAX_TAGS: the same limits and rows as the Python path."""
    monkeypatch.setattr(extract, "MAX_PARSE_BYTES", 600)
    body = b"<script>" + b"y" * 300 + b"</script><p>a<script>" + b"z" * 400 + b"</script>"
    same_rows(body + b"<a href=/x>x</a>")
    monkeypatch.setattr(extract, "MAX_PARSE_BYTES", 8 * 1024 * 1024)
    monkeypatch.setattr(extract, "MAX_TAGS", 300)
    body = (b"<script>" + b"<" * 100 + b"</script>") * 5 + b"<p>x" * 400 + b"<a href=/y>y</a>"
    limits: list[str] = []
    extract.parse_page(body, limits=limits)
    assert limits == ["dom_nodes"]
    same_rows(body)


@pytest.mark.parametrize(
    "body",
    [
        b"<script>" * (1 << 20),
        b"<!--<script>" * (700_000),
        b"<script><!--<script>" + b"<script>" * (1 << 20),
        b"<!--" + b"x" * (8 << 20),
        b"<style>" + b"</styl" * (1 << 20),
        b"<script>a</script>" * (400_000),
        b"<svg>" * (1 << 20) + b"<script>x</script>",
        b"<x a='" * (1 << 20),
        # 511 open, then end tags of a name never open: one look-up each (review14-b14 1)
        b"<div>" * 511 + b"</y>" * 499_000 + b"<script>x</script>",
    ],
)
def test_hostile_bodies_stay_bounded(core, body):
    """8 MiB of script openers, unterminated comments, escapes, near end tags: one linear pass
    (benchmarks quote the CPU: tests/benchmarks/same_bound_body.py's neighbour, see the
    report); the regions are disjoint and in order."""
    got = core.elide_raw_text(body)
    if got is not None:
        fed, regions = got
        assert regions > 0 and len(fed) <= len(body) and fed.count(b"\x01") == regions
