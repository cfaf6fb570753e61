"""The language detector's feature counts by the native core (native/src/langid.rs,
``pipelines.native.langid_visits``): py3langid's ``visit_counts``, the same features and
counts in the same order, so the same scores and languages; the Python path (``native=False``)
counts in py3langid."""

from __future__ import annotations

import logging
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from native_checks import built, repository_pages
from py3langid.langid import visit_counts

from pipelines import native, pagelang
from pipelines.extract import _prose_sample, extract_page, visible_text


@pytest.fixture(scope="module")
def core():
    """The built core; on a machine without cargo, None (the tests then check py3langid's)."""
    return built(native.core())


@pytest.fixture(scope="module")
def lid():
    return pagelang._identifier()


def _python(lid, text: bytes) -> list[tuple[int, int]] | None:
    found = visit_counts(lid.tk_nextmove, lid._rowbase, lid.tk_output, text)
    return None if found is None else list(found.items())


def _core(lid, text: bytes) -> list[tuple[int, int]] | None:
    found = native.langid_visits(lid, text)
    return None if found is None else list(found.items())


def _samples() -> list[str]:
    """What the detector reads of a third of the repository's pages (their prose, or their
    whole visible text), and a cut of each."""
    from selectolax.lexbor import LexborHTMLParser

    out = []
    for _, body in repository_pages()[::3]:
        tree = LexborHTMLParser(body.decode("utf-8", "replace"))
        text = _prose_sample(tree) or visible_text(tree)
        out += [pagelang.text_sample(text), text[:200]]
    return out


def test_counts_are_py3langids_on_the_pages(core, lid):
    samples = _samples()
    assert len(samples) > 150
    for text in samples:
        encoded = lid._encode(text)
        want = _python(lid, encoded)
        if core is None:
            assert native.langid_visits(lid, encoded) is None
            continue
        assert _core(lid, encoded) == (want or []), text[:80]


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=400),
        st.binary(max_size=400),
        # lone surrogates (encoded with surrogatepass), which st.text() never draws
        st.text(st.characters(codec=None, categories=["Cs", "Ll", "Lo"]), max_size=200),
    )
)
def test_counts_are_py3langids_on_any_bytes(core, lid, text):
    encoded = lid._encode(text) if isinstance(text, str) else text
    if core is not None:
        assert _core(lid, encoded) == (_python(lid, encoded) or [])


def test_detected_languages_are_py3langids(core, lid, monkeypatch):
    """``detect`` with the core's counts gives py3langid's language on every sample, and the
    core counted them (no silent fallback)."""
    calls = []
    counts = native.langid_visits
    monkeypatch.setattr(native, "langid_visits",
                        lambda *a: calls.append(1) or counts(*a))  # fmt: skip
    samples = [s for s in _samples() if s]
    for text in samples:
        assert pagelang.detect(text, native.langid_visits) == pagelang.detect(text), text[:80]
    detected = sum(pagelang.detect(s) is not None for s in samples)
    assert detected > 50 and (core is None or len(calls) >= detected)


def test_extraction_counts_in_the_core_and_python_in_py3langid(core, monkeypatch):
    """A page with no declared language: the core's extraction counts in the core, the
    Python path (``native=False``) in py3langid; the same language."""
    calls = []
    counts = native.langid_visits
    monkeypatch.setattr(native, "langid_visits",
                        lambda *a: calls.append(1) or counts(*a))  # fmt: skip
    body = ("<p>" + "Ceci est une phrase ordinaire, écrite pour le test. " * 5 + "</p>"
            "<a href=/x>x</a>").encode()  # fmt: skip
    python = extract_page(body, "http://s.test/", native=False)
    assert calls == [] and python.lang == "fr" and python.lang_source == "detected"
    assert extract_page(body, "http://s.test/") == python
    assert calls == ([] if core is None else [1])


def test_tables_that_are_not_py3langids_arrays(core, lid, caplog):
    """Tables of another type, or too short for the walk: a TypeError or None from the core,
    py3langid's counts then (logged once); never a crash."""
    if core is None:
        return
    text = "Un texte assez long pour le détecteur de langue.".encode()
    nm, rowbase, out = lid.tk_nextmove, array("q", lid._rowbase), array("q", lid.tk_output)
    assert list(core.langid_visits(nm, rowbase, out, text).items()) == _python(lid, text)

    class Sub(array):
        pass

    for bad in ((list(rowbase), rowbase, out), (nm, array("i", [0]), out),
                (Sub("I", nm[:10]), rowbase, out), (nm, rowbase, [0])):  # fmt: skip
        with pytest.raises(TypeError):
            core.langid_visits(*bad, text)
    assert core.langid_visits(array("I", nm[:300]), rowbase, out, text) is None  # too short
    assert core.langid_visits(nm, array("q", [-1]), out, text) is None
    assert core.langid_visits(array("I"), array("q"), array("q"), b"") == {}

    class NoTables:
        tk_nextmove, _rowbase, tk_output = [1], None, None

    with caplog.at_level(logging.ERROR):
        assert native.langid_visits(NoTables(), text) is None
        assert native.langid_visits(lid, text) is not None  # its own tables again


def test_scores_are_py3langids_bit_for_bit(core, lid):
    """The identifier's scores (float16 rows widened by a lookup, not numpy's cast) are
    py3langid's own to the bit, from the core's counts and from py3langid's, on the pages'
    samples and on rows of the table's every kind of half (zeros, subnormals, the extremes)."""
    import numpy as np
    from py3langid.langid import LanguageIdentifier

    assert type(lid)._sparse_score is not LanguageIdentifier._sparse_score  # the lookup's
    samples = [s for s in _samples() if s]
    for text in samples:
        encoded = lid._encode(text)
        found = visit_counts(lid.tk_nextmove, lid._rowbase, lid.tk_output, encoded)
        if not found:  # no feature: no product (py3langid's floor)
            continue
        # py3langid's own product (numpy's cast), called as its class has it: the reference
        want = LanguageIdentifier._sparse_score(lid, found, lid.nb_ptc)
        assert np.array_equal(lid._raw_score(encoded), want), text[:80]
        if core is not None:
            token = pagelang._VISITS.set(native.langid_visits)
            try:
                assert np.array_equal(lid._raw_score(encoded), want), text[:80]
            finally:
                pagelang._VISITS.reset(token)
    # Every finite half, as a table of its own, one row at a time, weighed by log1p(e - 1),
    # which is 1.0 in float32: each element as widened, compared by its bits with numpy's
    # cast in py3langid's product (review14-p14 3: a sum of rows could hide one element).
    halves = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    table = halves[np.isfinite(halves)].reshape(-1, 128)  # all 63,488
    one = np.float32(np.e - 1)
    assert np.log1p(np.array([one])) == 1.0
    pc = lid.nb_pc
    try:
        lid.nb_pc = np.zeros(128, dtype=np.float32)
        for row in range(len(table)):
            got = lid._sparse_score({row: one}, table)
            want = LanguageIdentifier._sparse_score(lid, {row: one}, table)
            assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), row
            assert np.array_equal(got, table[row].astype(np.float32)), row
    finally:
        lid.nb_pc = pc


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400), st.integers(1, 60))
def test_letters_enough_as_counted_on_the_whole(text, enough):
    """``_letters`` (a prefix first) says ">= enough letters" exactly when the whole text's
    count does, and gives the whole's count below it."""
    whole = len(pagelang._NOT_LETTERS.sub("", text))
    got = pagelang._letters(text, enough)
    assert (got >= enough) == (whole >= enough)
    assert got == whole or got >= enough
