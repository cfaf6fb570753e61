"""The native URL rules (native/src/urls.rs) give pipelines/urls.py's answers.

Both paths run on every case of tests/test_urls.py's tables and of pipelines/urls.py's
docstrings, the WHATWG URL cases (tests/test_whatwg_url.py), every raw href of the Zyte pages
against its page URL, hostile inputs, and random hrefs and bases. Where they may differ is
listed here and in README ("Native URL rules"); any other difference fails.
"""

from __future__ import annotations

import codecs
import doctest
import encodings
import encodings.aliases
import gzip
import json
import pkgutil
import shutil
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import test_urls
import test_whatwg_url
from hypothesis import given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser

from pipelines import urls
from pipelines.encoding import _NON_LATIN, decode, sniff_encoding
from pipelines.extract import _is_legacy_encoding
from pipelines.native import core, whatwg_label

ZYTE = Path(__file__).parent / "data" / "zyte-article-extraction-benchmark"
PORTED = (
    "resolve_href",
    "normalize_url",
    "resolve_link",
    "is_skipped_href",
    "is_same_document",
    "encode_query",
)


def sniffed_codecs() -> list[str]:
    """Every text codec pipelines.encoding.sniff_encoding can return: one a Content-Type names
    (any Python codec, through w3lib's WHATWG mapping), a byte-order mark's, a guess's."""
    names = {*encodings.aliases.aliases, *encodings.aliases.aliases.values()}
    names |= {module.name for module in pkgutil.iter_modules(encodings.__path__)}
    found = {sniff_encoding(b"", f"text/html; charset={name}").encoding for name in names}
    boms = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE,
            codecs.BOM_UTF32_BE)  # fmt: skip
    found |= {sniff_encoding(bom + b"<p>").encoding for bom in boms}
    found |= {guess or name for name, guess in _NON_LATIN.items()}
    return sorted(name for name in found if _decodes_pages(name))


def _decodes_pages(codec: str) -> bool:
    """Whether the Python path decodes a page in *codec* (not bytes-to-bytes codecs such as
    zlib; nor "undefined", "idna" and "punycode", which fail)."""
    try:
        decode(bytes(range(256)), codec)
    except (LookupError, UnicodeError):
        return False
    return True


#: The codecs of pages whose link queries are encoded in the page's encoding (not those that
#: decode as WHATWG's "replacement": no links).
LEGACY = [c for c in sniffed_codecs() if _is_legacy_encoding(c) and decode(b"<p>", c) != "\ufffd"]
#: The Encoding Standard's single-byte encodings (its names).
WHATWG_SINGLE_BYTE = ("IBM866", "ISO-8859-2", "ISO-8859-3", "ISO-8859-4", "ISO-8859-5",
                      "ISO-8859-6", "ISO-8859-7", "ISO-8859-8", "ISO-8859-10", "ISO-8859-13",
                      "ISO-8859-14", "ISO-8859-15", "ISO-8859-16", "KOI8-R", "KOI8-U", "macintosh",
                      "windows-874", *(f"windows-{n}" for n in range(1250, 1259)),
                      "x-mac-cyrillic")  # fmt: skip

Call = tuple[str, tuple[Any, ...], dict[str, Any]]


@pytest.fixture(scope="module")
def native() -> ModuleType:
    """The native core. Without it the comparisons fail (they would compare the Python path
    with itself); test_fallback checks what a machine without cargo does."""
    module = core()
    assert module is not None, (
        "native core not built: cd native && cargo build --release && cd .. && "
        "ln -sf native/target/release/liblinkcrawl_native.so linkcrawl_native.abi3.so"
    )
    return module


def test_fallback() -> None:
    """Without cargo on the machine no core is built, and the Python path answers; with cargo
    the core must be built."""
    if shutil.which("cargo") is None:
        assert core() is None, "a core is loaded on a machine without cargo"
        assert urls.resolve_link("../x", "http://b.test/a/b") == "http://b.test/x"
    else:
        assert core() is not None, "native core not built (see the native fixture)"


def differences(native: ModuleType, calls: Iterable[Call]) -> list[tuple[Call, Any, Any]]:
    """Each call whose answer differs between the paths: (call, Python's, native's)."""
    found = []
    for name, args, kwargs in calls:
        expected = getattr(urls, name)(*args, **kwargs)
        if name == "encode_query":  # the core takes the WHATWG label of the Python codec
            args = (args[0], whatwg_label(args[1]))
        got = getattr(native, name)(*args, **kwargs)
        if got != expected:
            found.append(((name, args, kwargs), expected, got))
    return found


def href_calls(href: str, base: str | None) -> list[Call]:
    """Every function of an href on a page whose base URL is *base*."""
    return [
        ("is_skipped_href", (href,), {}),
        ("resolve_href", (href, base), {}),
        ("resolve_link", (href, base), {}),
        ("normalize_url", (href,), {}),
    ]


# --- (a) tests/test_urls.py's tables and pipelines/urls.py's docstrings ------------------------


def _table(test: Callable[..., None]) -> list[tuple[Any, ...]]:
    (mark,) = (mark for mark in test.pytestmark if mark.name == "parametrize")  # type: ignore[attr-defined]
    return [tuple(getattr(row, "values", row)) for row in mark.args[1]]


def table_calls() -> list[Call]:
    calls: list[Call] = []
    calls += [("resolve_href", (h, b), {}) for h, b, _ in _table(test_urls.test_resolve_href)]
    calls += [("resolve_link", (h, b), {}) for h, b, _ in _table(test_urls.test_resolve_link)]
    calls += [("normalize_url", (u,), {}) for u, _ in _table(test_urls.test_normalize_url)]
    calls += [("is_skipped_href", (h,), {}) for h, _ in _table(test_urls.test_is_skipped_href)]
    calls += [("encode_query", (h, e), {}) for h, e, _ in _table(test_urls.test_encode_query)]
    for url, params, prefixes, _ in _table(test_urls.test_normalize_url_tracking_configurable):
        kwargs = {"tracking_params": params, "tracking_prefixes": prefixes}
        calls += [
            ("normalize_url", (url,), kwargs),
            ("resolve_link", (url, "http://b.test/"), kwargs),
        ]
    # Every input of the tables as an href, on every base of the tables.
    inputs = {args[0] for _, args, _ in calls}
    bases = {args[1] for name, args, _ in calls if name in ("resolve_href", "resolve_link")}
    return calls + [call for href in inputs for base in bases for call in href_calls(href, base)]


def test_tables(native: ModuleType) -> None:
    calls = table_calls()
    assert len(calls) > 5000
    assert differences(native, calls) == []


def test_docstring_examples(native: ModuleType) -> None:
    examples = [
        example
        for test in doctest.DocTestFinder().find(urls)
        if test.name.rpartition(".")[2] in PORTED
        for example in test.examples
    ]
    assert len(examples) >= 12
    with_native = {**vars(urls), **{name: getattr(native, name) for name in PORTED}}
    for example in examples:
        expected = eval(example.source, dict(vars(urls)))  # our own docstrings
        assert eval(example.source, with_native) == expected, example.source


# --- (b) the WHATWG URL cases ------------------------------------------------------------------

#: WHATWG cases where the paths' answers differ (README, "Native URL rules"): none, both are ada.
WHATWG_DIFFERENCES: set[int] = set()


def test_whatwg_cases(native: ModuleType) -> None:
    python_failing = test_whatwg_url.failing(urls)
    native_failing = test_whatwg_url.failing(native)
    print(
        f"WHATWG URL: Python path passes {len(test_whatwg_url.CASES) - len(python_failing)},"
        f" native path {len(test_whatwg_url.CASES) - len(native_failing)}"
        f" of {len(test_whatwg_url.CASES)} cases"
    )
    assert len(native_failing) <= len(python_failing)
    differing = {
        i
        for i, case in enumerate(test_whatwg_url.CASES)
        if differences(native, href_calls(case["input"], case["base"]))
    }
    assert differing == WHATWG_DIFFERENCES, [
        test_whatwg_url._case_id(i, test_whatwg_url.CASES[i]) for i in differing
    ]


# --- (c) the Zyte pages' hrefs -----------------------------------------------------------------


@cache
def zyte_links() -> list[tuple[str, str, str]]:
    """Every raw href of the Zyte pages' ``<a>`` and ``<area>``, with its page's URL and its
    text."""
    truth = json.loads((ZYTE / "ground-truth.json").read_text(encoding="utf-8"))
    links = []
    for pid, item in sorted(truth.items()):
        html = gzip.decompress((ZYTE / "html" / f"{pid}.html.gz").read_bytes())
        tree = LexborHTMLParser(html.decode("utf-8", "replace"))
        for node in tree.css("a[href], area[href]"):
            links.append((node.attributes.get("href") or "", item["url"], node.text()))
    return links


def test_zyte_hrefs(native: ModuleType) -> None:
    links = zyte_links()
    assert len(links) > 20_000
    pairs = dict.fromkeys((href, page) for href, page, _ in links)  # each once, in page order
    calls = [call for href, page in pairs for call in href_calls(href, page)]
    assert differences(native, calls) == []


# --- hostile inputs: bounded, and the same answers ---------------------------------------------

HOSTILE = [
    "/" + "a/../" * 50_000,
    "http://" + "ü" * 3000 + ".test/",
    "http://" + "a." * 50_000 + "test/",
    "\t\n " * 50_000 + "/x" + "?b=%7e&a" * 20_000,
    "/%" + "%41" * 50_000 + "#" + "x" * 50_000,
    "//h.test/" + "%2e%2E/" * 20_000,
    # lone, paired and reversed surrogates (a str from Python may hold them)
    "/\ud800a?\udc00=1#\udbff",
    "/\udbff\udfff?q=\ude00\ud83d",
]


def test_hostile_inputs(native: ModuleType) -> None:
    calls = [call for href in HOSTILE for call in href_calls(href, test_urls.BASE)]
    calls += [("encode_query", ("/?" + "ж✓" * 100_000, "cp1251"), {})]
    assert differences(native, calls) == []


# --- (d) random hrefs and bases ----------------------------------------------------------------

_BASES = st.one_of(
    st.sampled_from([test_urls.BASE, "http://a.test", "https://u:p@b.test:8443/x/y?q#f",
                     "http://[::1]:81/a/", "HTTP://B%C3%BCcher.DE./a", "file:///tmp/x",
                     "foo://host/a/b", "not a url"]),
    test_urls.url_like(),
)  # fmt: skip
_HREFS = st.one_of(test_urls._SHORTCUT_HREFS, test_urls.url_like(), st.text(max_size=30))


@settings(max_examples=200, deadline=None)
@given(_HREFS, _BASES)
def test_random_hrefs(native: ModuleType, href: str, base: str) -> None:
    assert differences(native, href_calls(href, base)) == []


# --- encode_query: every character, in every legacy encoding ------------------------------------

#: Where the paths encode a character differently, by encoding (README, "Native URL rules"): the
#: native path uses the WHATWG encoders (encoding_rs), as a browser does; the Python path uses
#: Python's codecs. Single-byte encodings: the C1 controls (U+0080-U+009F), which WHATWG maps
#: to the bytes windows-125x leave undefined, windows-1255's 0xCA (U+05BA, undefined in Python),
#: and the 4 code points where WHATWG's KOI8-U (KOI8-RU) has Belarusian ў. Multi-byte
#: encodings: the number of code points that differ.
C1_CONTROLS = frozenset(range(0x80, 0xA0))
SINGLE_BYTE_DIFFERENCES = C1_CONTROLS | {0x05BA, 0x040E, 0x045E, 0x255D, 0x256C}
CJK_DIFFERENCES = {"cp932": 2264, "euc_jp": 6244, "gb18030": 21, "big5hkscs": 2436, "cp949": 0,
                   "iso2022_jp": 521}  # fmt: skip
_BMP = [cp for cp in range(0x80, 0x10000) if not 0xD800 <= cp < 0xE000]
# Single-byte encodings map nothing above U+25A0 (on both paths): their sweep stops at U+2FFF.
_SINGLE_BYTE_RANGE = [cp for cp in _BMP if cp < 0x3000]


def encoding_differences(native: ModuleType, encoding: str, code_points: list[int]) -> set[int]:
    """The code points whose encode_query differs between the paths in *encoding*."""
    # One query of every character, "&" between them: "&" is ASCII, and no encoded character
    # comes out as "&" (it is percent-encoded).
    query = "?" + "&".join(map(chr, code_points))
    python = urls.encode_query(query, encoding)[1:].split("&")
    ours = native.encode_query(query, whatwg_label(encoding))[1:].split("&")
    assert len(python) == len(ours) == len(code_points)
    return {cp for cp, a, b in zip(code_points, python, ours, strict=True) if a != b}


def is_whatwg_single_byte(native: ModuleType, codec: str) -> bool:
    """Whether Python's *codec* is one of the Encoding Standard's single-byte encodings: each
    byte it defines decodes alike there (WHATWG defines some bytes Python leaves undefined)."""
    chars = [decode(bytes([byte]), codec) for byte in range(256)]
    if sum(char != "\ufffd" for char in chars[0x80:]) < 64:
        return False  # not a single-byte codec (a multi-byte one, or barely defined)
    return any(
        all(python in ("\ufffd", native.decode(bytes([byte]), name))
            for byte, python in enumerate(chars))
        for name in WHATWG_SINGLE_BYTE
    )  # fmt: skip


@pytest.mark.parametrize("encoding", LEGACY)
def test_encode_query_every_character(native: ModuleType, encoding: str) -> None:
    """Every codec sniff_encoding may return: encoded as the Python path encodes it but where
    listed, or unknown to the core (LookupError) and then not a WHATWG encoding."""
    try:
        native.encode_query("/?é", whatwg_label(encoding))
    except LookupError:
        assert not is_whatwg_single_byte(native, encoding), "pipelines.native._WHATWG_LABELS"
        return
    cjk = encoding in CJK_DIFFERENCES
    code_points = [*_BMP, 0x1F600, 0x20000] if cjk else _SINGLE_BYTE_RANGE
    differing = encoding_differences(native, encoding, code_points)
    if cjk:
        assert len(differing) == CJK_DIFFERENCES[encoding]
    else:
        assert differing <= SINGLE_BYTE_DIFFERENCES


def test_unknown_encoding(native: ModuleType) -> None:
    # It fails only when a character is to be encoded, on both paths.
    href = "/s?q=plain#ж"
    assert native.encode_query(href, whatwg_label("no-such-codec")) == urls.encode_query(
        href, "no-such-codec"
    )
    for impl in (urls, native):
        with pytest.raises(LookupError):
            impl.encode_query("/s?q=ж", "no-such-codec")


# Lone surrogates are left out (no decoded page has them), and so are C1 controls (above).
_QUERY_TEXT = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="".join(map(chr, C1_CONTROLS))),
    max_size=20,
)


@settings(max_examples=200, deadline=None)
@given(_QUERY_TEXT, _QUERY_TEXT, st.sampled_from(["cp1251", "koi8-r", "cp949", "cp1252"]))
def test_random_queries(native: ModuleType, path: str, query: str, encoding: str) -> None:
    href = f"/{path}?{query}#{query}"
    assert differences(native, [("encode_query", (href, encoding), {})]) == []
