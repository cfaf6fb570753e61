"""Page type's scores by the native core (native/src/classify.rs,
``pipelines.native.page_type_scores``): page_type.py's ``_scores``, float for float, so the
same page types; the Python path (``native=False``) scores in Python."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from native_checks import built, repository_pages

from pipelines import native, page_type
from pipelines.extract import extract_page
from pipelines.page_type_weights import BIAS, WEIGHTS


@pytest.fixture(scope="module")
def core():
    """The built core; on a machine without cargo, None (the tests then check Python's)."""
    return built(native.core())


def _same_floats(got: list[float], want: list[float]) -> bool:
    return [math.copysign(1, x) if math.isnan(x) else x for x in got] == [
        math.copysign(1, x) if math.isnan(x) else x for x in want
    ] and list(map(math.isnan, got)) == list(map(math.isnan, want))


def test_scores_are_pythons_on_the_pages(core, monkeypatch):
    """Every repository page's signals: the core's scores are Python's; its extraction asked
    the core (no silent fallback), and its page type is the Python path's."""
    seen = []
    signals_of = page_type.page_signals
    monkeypatch.setattr(page_type, "page_signals",
                        lambda *a: seen.append(signals_of(*a)) or seen[-1])  # fmt: skip
    calls = []
    scores = native.page_type_scores
    monkeypatch.setattr(native, "page_type_scores",
                        lambda s: calls.append(1) or scores(s))  # fmt: skip
    types = set()
    for url, body in repository_pages()[::2]:
        page = extract_page(body, url)
        assert page.page_type == extract_page(body, url, native=False).page_type, url
        types.add(page.page_type)
    assert len(types) >= 5 and len(seen) > 100
    assert core is None or len(calls) >= len(seen) // 2 - 5  # "other" pages are not scored
    for signals in seen:
        want = page_type._scores(signals)
        got = scores(signals)
        assert got is None if core is None else got == want


NAMES = st.sampled_from([*WEIGHTS, "x_none", "u_root"])
VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(0.0),
                   st.just(-0.0), st.integers(-(2**60), 2**60), st.booleans())  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(NAMES, VALUES, max_size=60))
def test_scores_are_pythons_on_any_signals(core, signals):
    got = native.page_type_scores(signals)
    if core is None:
        assert got is None
        return
    assert _same_floats(got, page_type._scores(signals)), signals


def test_odd_signals_and_weights(core, caplog):
    """A value that is no number: Python's (TypeError in the core, logged once); a name that
    is no str or no Rust str: no weights, as in Python; weights not one per type refused."""
    if core is None:
        return
    assert native.page_type_scores({"a_cart": "x"}) is None
    assert native.page_type_scores({1: 1.0, "\ud800": 2.0, "a_cart": 1.0}) == page_type._scores(
        {"a_cart": 1.0}
    )
    with pytest.raises(ValueError):
        core.page_type_weights([0.0, 1.0], {"a": [1.0]})
    assert core.page_type_scores({}) == list(BIAS)


def test_the_python_path_scores_in_python(core, monkeypatch):
    """``native=False`` scores in Python (no call to the core); with the core, one call."""
    calls = []
    scores = native.page_type_scores
    monkeypatch.setattr(native, "page_type_scores", lambda s: calls.append(1) or scores(s))
    body = b"<title>Red shoes</title><a href=/products/red>Buy</a>"
    python = extract_page(body, "http://shop.test/products/red-shoes", native=False)
    assert calls == [] and python.page_type is not None
    assert extract_page(body, "http://shop.test/products/red-shoes") == python
    assert calls == ([] if core is None else [1])
