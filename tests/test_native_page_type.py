"""Page type's link signals by the native core (native/src/page_type.rs, pipelines/native.py
``link_signals``) are Python's (pipelines/page_type.py ``_link_signals``, the reference and
the fallback): the very floats, in the same order, on every page kept in the repository (the
Zyte pages, the WCXB sample and page-type pages), on random and hostile URLs and anchors, and
with the core's lowercasing checked against ``str.lower`` on every code point; a core failure
falls back to Python and logs once, and no panic crosses into Python.
"""

from __future__ import annotations

import logging
import re
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from native_checks import HAS_CARGO, built, no_fallback, repository_pages, stub_core  # noqa: F401 (no_fallback: autouse)

from pipelines import native, page_type
from pipelines.extract import Link, extract_page


@pytest.fixture(scope="module")
def core():
    """The built core with page type's tables; without cargo, None (the Python path)."""
    return built(native._signals_core())


def _python(url: str, links: list) -> list[tuple[str, str]]:
    out: dict[str, float] = {}
    page_type._link_signals(url, links, out)
    return [(name, value.hex()) for name, value in out.items()]


def _rust(url: str, links: list) -> list[tuple[str, str]]:
    values = native.link_signals(url, links)
    assert values is not None, "the core did not answer"
    return [(name, value.hex()) for name, value in zip(page_type.LINK_SIGNALS, values, strict=True)]


def test_the_names_are_pythons_order():
    """LINK_SIGNALS (the core's order) is the order Python's function writes its signals."""
    link = Link("https://a.test/x", "x", None, [], False, False, False, False, "a", "nav", 0)
    assert [name for name, _ in _python("https://a.test/", [link])] == list(page_type.LINK_SIGNALS)
    assert [name for name, _ in _python("", [])] == list(page_type.LINK_SIGNALS)


def test_every_page(core, monkeypatch):
    """On every page kept in the repository: extraction with the core takes the core's link
    signals (a guard: it answered on each page, no silent fallback), they are Python's very
    floats, and the page type is the Python path's."""
    if core is None:
        return _fallback_works()
    answered = []
    real = native.link_signals
    monkeypatch.setattr(native, "link_signals",
                        lambda url, links: answered.append(url) or real(url, links))  # fmt: skip
    pages = repository_pages()
    links = 0
    for url, body in pages:
        answered.clear()
        page = extract_page(body, url)
        assert answered == [url], url
        assert _rust(url, page.links) == _python(url, page.links), url
        assert page.page_type == extract_page(body, url, native=False).page_type, url
        links += len(page.links)
    assert len(pages) > 280 and links > 20_000


def _fallback_works() -> None:
    assert not HAS_CARGO and native.link_signals("https://a.test/", []) is None
    assert extract_page(b"<a href=/x>x</a>", "http://s.test/").page_type


# Hostile pieces of URLs and anchors: the splits' separators, cased characters whose
# lowercase differs in length or context (dotted I, Kelvin sign, final sigma), the phrases and
# paths counted, and some of everything else.
_URL_PIECES = st.sampled_from(
    ["://", "/", "//", "?", "#", "@", ":", "a.test", "A.TEST", "www.", "p", "t", "/p/", "/t/",
     "/products/", "/shop/", "/u/", "http", "https", "%2F", "\n", " ", "İ", "K", "é", "\u0000",
     "\ud7ff", "\U0001f600", "-", "x" * 30]
)  # fmt: skip
_TEXT_PIECES = st.sampled_from(
    [" ", "\n", "read more", "READ MORE", "Reply", "İ", "K", "Σ", "ς", "ß", "ﬃ", "edit this",
     "add to cart", "$", "€", "£", "¥", "next", "Older", "page 2", "like", "Talk to", "boo\u212a",
     "\u0130n stock", "x" * 60, "é", "\U0001f600", "\u0301", "ǅ", "Ⅻ"]
)  # fmt: skip
_URLS = st.lists(_URL_PIECES | st.text(max_size=8), max_size=12).map("".join)
_TEXTS = st.lists(_TEXT_PIECES | st.text(max_size=8), max_size=40).map("".join)
_PLACES = st.sampled_from(["content", "content", "nav", "sidebar", "footer", "comment", "",
                           "Content", "other"])  # fmt: skip


def _link(target: str, text: str, place: str, ugc: bool, image: bool) -> Link:
    return Link(target, text, None, [], False, False, ugc, image, "a", place, 0)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    url=_URLS,
    links=st.lists(
        st.builds(
            _link,
            _URLS | st.just("https://a.test/p/1"),
            _TEXTS,
            _PLACES,
            st.booleans(),
            st.booleans(),
        ),
        max_size=30,
    ),
    same_host=st.booleans(),
)
def test_random_and_hostile_links(core, url, links, same_host):
    """Random and hostile URLs and anchors: the core's signals are Python's."""
    if core is None:
        return _fallback_works()
    if same_host and links:  # targets on the page's host (the internal share and shapes)
        host = url.split("://", 1)[-1].split("/", 1)[0]
        links = [
            _link(f"x://{host}/{k.target_url}", k.anchor_text, k.placement, k.ugc, k.is_image)
            for k in links
        ]
    assert _rust(url, links) == _python(url, links)


def test_lowercase_matches_str_lower_on_every_code_point(core):
    """The core lowercases the anchors with Rust's full case mapping, Python with its own
    (another Unicode version maybe): on every code point (and final sigma in context) the two
    put the phrases' characters at the same places (what the counts read); other characters
    may differ."""
    if core is None:
        return _fallback_works()
    alphabet = {c for phrases in page_type._ANCHOR_PHRASES.values() for p in phrases for c in p}
    other = re.compile("[^" + re.escape("".join(sorted(alphabet))) + "]+")
    chars = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c < 0xE000]
    text = "\n".join(chars) + "\nΣ ΑΣ ΑΣΑ ΑΣ.\n"
    assert other.sub("\0", core._lower_for_test(text)) == other.sub("\0", text.lower())


def test_many_links_and_none(core):
    """100,000 links (the core takes what it is given; Python's wrapper cuts at
    MAX_SIGNAL_LINKS) and none: Python's floats."""
    if core is None:
        return _fallback_works()
    links = [
        _link(f"https://a.test/p/{k % 700}", "Read more " * (k % 3), "content" if k % 4 else "nav",
              k % 5 == 0, k % 7 == 0)
        for k in range(100_000)
    ]  # fmt: skip
    cols = [[getattr(k, n) for k in links] for n in native._LINK_COLUMNS]
    got = core.link_signals("https://a.test/", *cols)
    out: dict[str, float] = {}
    page_type._link_signals("https://a.test/", links, out)  # (its first MAX_SIGNAL_LINKS)
    assert got != list(out.values())
    assert _rust("https://a.test/", links) == _python("https://a.test/", links)
    assert _rust("https://a.test/", []) == _python("https://a.test/", [])


def test_a_lone_surrogate_is_pythons_unlogged(core):
    """A string no Rust str holds: the Python path's signals, no failure logged."""
    if core is None:
        return _fallback_works()
    link = _link("https://a.test/\ud800", "x", "content", False, False)
    assert native.link_signals("https://a.test/", [link]) is None
    assert page_type.page_signals("https://a.test/", links=[link],
                                  link_signals=native.link_signals)  # fmt: skip


def test_columns_of_other_lengths_are_refused(core):
    if core is None:
        return _fallback_works()
    with pytest.raises(ValueError):
        core.link_signals("", ["a"], [], [], [], [])


def test_a_panic_falls_back_and_logs_once(core, monkeypatch, caplog):
    """A panic in the core is a RuntimeError (not PanicException), the page takes Python's
    signals, and one line is logged for any number of pages."""
    if core is None:
        return _fallback_works()
    with pytest.raises(RuntimeError):
        core._panic_for_test()
    monkeypatch.undo()  # the real _failed
    monkeypatch.setattr(native, "_logged_failures", set())
    monkeypatch.setattr(core, "link_signals", lambda *args: core._panic_for_test())
    body = b"<p>" + b"Words of running text. " * 40 + b'<a href="/p/1">Read more</a></p>'
    with caplog.at_level(logging.ERROR, logger="pipelines.native"):
        pages = [extract_page(body, f"https://a.test/{k}") for k in range(3)]
    assert [p.page_type for p in pages] == [
        extract_page(body, f"https://a.test/{k}", native=False).page_type for k in range(3)
    ]
    assert len([r for r in caplog.records if "native core failed" in r.message]) == 1


def test_native_false_takes_no_rust_signals(core, monkeypatch):
    if core is None:
        return _fallback_works()
    calls = []
    monkeypatch.setattr(native, "link_signals", lambda *a: calls.append(a))
    extract_page(b"<a href=/x>x</a>", "http://s.test/", native=False)
    assert calls == []
    extract_page(b"<a href=/x>x</a>", "http://s.test/")
    assert len(calls) == 1


def test_a_build_without_these_functions_is_not_used(tmp_path, monkeypatch, caplog):
    """A build of api15 from before the page-type, main-block and deep-nesting functions
    (same version string): core() does not use it, and says which it lacks."""
    new = ("link_signal_tables", "link_signals", "best_block", "nests_deeper")
    older = [name for name in native.CORE_FUNCTIONS if name not in new]
    source = f"def core_version():\n    return {native.CORE_VERSION!r}\n" + "".join(
        f"def {name}(*args): pass\n" for name in older
    )
    stub_core(tmp_path, monkeypatch, source)
    try:
        with caplog.at_level(logging.WARNING, logger=native.__name__):
            assert native.core() is None
        assert all(name in caplog.text for name in new)
    finally:
        sys.modules.pop("linkcrawl_native", None)  # the foreign one (the real one comes back)
        native.core.cache_clear()


def test_a_core_answer_of_the_wrong_length_falls_back(monkeypatch):
    """A core built for other signals (one fewer here) is not trusted: Python's signals, and
    the failure reported (here to the test, in production logged once)."""
    core = native.core()
    assert core is not None
    real = core.link_signals
    monkeypatch.setattr(core, "link_signals", lambda *a: real(*a)[:-1])
    failures: list[str] = []
    monkeypatch.setattr(native, "_failed", lambda url, exc: failures.append(str(exc)))
    html = b"<a href=/x>Read more</a>"
    page = extract_page(html, "https://a.test/")
    assert page.page_type == extract_page(html, "https://a.test/", native=False).page_type
    assert native.link_signals("https://a.test/", page.links) is None
    assert failures and "link signals from the core" in failures[-1]


def test_link_signals_take_any_iterable():
    page = extract_page(b"<a href=/x>Read more</a><a href=/y>y</a>", "https://a.test/")
    assert native.link_signals("https://a.test/", iter(page.links)) == native.link_signals(
        "https://a.test/", list(page.links)
    )
