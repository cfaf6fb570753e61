"""Placement's main-block scoring by the native core (native/src/main_block.rs,
pipelines/native.py ``best_block``) is Python's (pipelines/placement.py ``_best_block``, the
reference and the fallback): the same element on every page kept in the repository, both
ways of scoring (running text; a hub's blocks of links), and on random trees; arrays that
are no tree are left to Python; a core failure falls back to Python and logs once.
"""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from native_checks import built, no_core, no_fallback, repository_pages  # noqa: F401 (no_fallback: autouse)
from selectolax.lexbor import LexborHTMLParser

from pipelines import native, placement
from pipelines.extract import extract_page


@pytest.fixture(scope="module")
def core():
    """The built core (with lexbor's API); without cargo, None (the Python path)."""
    return built(native.lexbor_core())


def _fallback_works() -> None:
    no_core()
    assert extract_page(b"<a href=/x>x</a>", "http://s.test/").links[0].placement


def _python_best(page, text, link_keys, anchor_len, hub) -> int:
    """Python's ``_best_block`` of *page* (its own loops: no core sums, a fresh memo)."""
    sums, page.sums = page.sums, None
    try:
        return placement._best_block(
            page, text, link_keys, anchor_len, placement._Boiler(page), hub
        )
    finally:
        page.sums = sums


def test_every_page(core, monkeypatch):
    """On every page kept in the repository, each main-block scoring of extraction with the
    core is the core's (a guard: it answered, no silent fallback) and Python's element, for
    both ways of scoring; the pages' placements are the Python path's."""
    if core is None:
        return _fallback_works()
    real = native.best_block
    seen = {False: 0, True: 0}

    def both(page, text, link_keys, anchor_len, hub):
        got = real(page, text, link_keys, anchor_len, hub)
        assert got is not None, "the core did not answer"
        assert got == _python_best(page, text, link_keys, anchor_len, hub)
        other = not hub  # the other way of scoring too, on the same arrays
        assert real(page, text, link_keys, anchor_len, other) == _python_best(
            page, text, link_keys, anchor_len, other
        )
        seen[hub] += 1
        return got

    monkeypatch.setattr(native, "best_block", both)
    pages = repository_pages()
    for url, body in pages:
        page = extract_page(body, url)
        want = extract_page(body, url, native=False)
        got = [(k.placement, k.placement_score, k.placement_block) for k in page.links]
        assert got == [(k.placement, k.placement_score, k.placement_block) for k in want.links]
    assert len(pages) > 280 and seen[False] > 250 and seen[True] > 10


def _page_of(parent: list[int], label: list[str | None], core) -> placement._Page:
    page = placement._Page(LexborHTMLParser("").root)
    page.parent, page.label, page.sums = parent, label, core.tree_sums
    page.depth = [0] * len(parent)
    for k in range(1, len(parent)):
        page.depth[k] = page.depth[parent[k]] + 1
    return page


def _text_of(own: dict[int, int], good: dict[int, int], links: dict[int, int], link_para):
    text = object.__new__(placement._Text)
    text.own, text.good, text.links, text.link_para = own, good, links, link_para
    return text


_LABELS = st.sampled_from([None, None, None, "nav", "sidebar", "footer", "comment", "content"])


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), n=st.integers(1, 40), hub=st.booleans())
def test_random_trees(core, data, n, hub):
    """Random trees, labels, blocks and links (ties, zero lengths, big lengths): the core's
    element is Python's."""
    if core is None:
        return _fallback_works()
    parent = [-1] + [data.draw(st.integers(0, k - 1)) for k in range(1, n)]
    label = [None] + [data.draw(_LABELS) for _ in range(1, n)]
    lengths = st.integers(0, 300) | st.integers(0, 10**12)
    own = data.draw(st.dictionaries(st.integers(0, n - 1), lengths, max_size=n))
    good = {k: v for k, v in own.items() if data.draw(st.booleans())}
    links = {k: data.draw(lengths) for k in own if data.draw(st.booleans())}
    link_keys = data.draw(st.lists(st.integers(0, n - 1), unique=True, max_size=n))
    anchor_len = [data.draw(st.integers(0, 200)) for _ in link_keys]
    paras = st.sampled_from([-1, *good]) if good else st.just(-1)
    link_para = [data.draw(paras) for _ in link_keys]
    page = _page_of(parent, label, core)
    text = _text_of(own, good, links, link_para)
    got = native.best_block(page, text, link_keys, anchor_len, hub)
    assert got == _python_best(page, text, link_keys, anchor_len, hub)


def test_arrays_that_are_no_tree_are_pythons(core):
    """A parent after its child, a key out of range, lengths that differ: None (Python's
    loop answers), no panic."""
    if core is None:
        return _fallback_works()
    text = _text_of({1: 30}, {1: 30}, {}, [])
    assert native.best_block(_page_of([-1, 0], [None, None], core), text, [], [], False) == 1
    page = _page_of([-1, 0], [None, None], core)
    page.parent = [-1, 1]
    assert native.best_block(page, text, [], [], False) is None
    page = _page_of([-1, 0], [None, None], core)
    assert native.best_block(page, _text_of({}, {5: 1}, {}, []), [], [], False) is None
    assert native.best_block(page, text, [1], [], False) is None
    page.label = [None]
    assert native.best_block(page, text, [], [], False) is None


def test_a_panic_falls_back_and_logs_once(core, monkeypatch, caplog):
    if core is None:
        return _fallback_works()
    monkeypatch.undo()  # the real _failed
    monkeypatch.setattr(native, "_logged_failures", set())
    monkeypatch.setattr(core, "best_block", lambda *args: core._panic_for_test())
    body = b"<div><p>" + b"Words of running text. " * 40 + b'<a href="/p/1">Read more</a></p>'
    with caplog.at_level(logging.ERROR, logger="pipelines.native"):
        pages = [extract_page(body + b"<p>%d</p>" % k, "https://a.test/") for k in range(3)]
    want = [
        extract_page(body + b"<p>%d</p>" % k, "https://a.test/", native=False) for k in range(3)
    ]
    assert pages == want
    assert len([r for r in caplog.records if "native core failed" in r.message]) == 1
