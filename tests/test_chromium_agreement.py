"""linkcrawl against the link list of a real browser (Chromium, JavaScript off).

The reference, ``tests/data/chromium-links.json.gz``, is made by
``tests/tools/make_chromium_reference.py``; what is compared and how is in
``tests/tools/agreement.py`` (run it to see the figures, LinkExtractor's beside). No browser
is needed here.
"""

from __future__ import annotations

import json

import pytest
from tools import agreement

from pipelines.urls import is_same_document, normalize_url


def test_reference_covers_every_page_at_its_own_url():
    pages = agreement.reference()["pages"]
    truth = json.loads((agreement.ZYTE / "ground-truth.json").read_text())
    cases = json.loads(agreement.CASES.read_text())
    assert {k for k in pages if not k.startswith("case:")} == set(truth)
    assert {k[5:] for k in pages if k.startswith("case:")} == set(cases)
    for page_id, item in truth.items():
        assert pages[page_id]["url"] == item["url"]
    assert sum(len(p["links"]) for p in pages.values()) > 20_000


@pytest.fixture(scope="module")
def zyte() -> agreement.Score:
    return agreement.score_linkcrawl()


def test_targets_recall_and_precision(zyte):
    assert zyte.ref > 20_000
    assert zyte.recall >= 0.999, zyte.misses[:10]
    assert zyte.precision >= 0.999, zyte.extras[:10]


def test_anchor_agreement(zyte):
    assert zyte.anchor_agreement >= 0.999, zyte.anchor_diffs[:10]


def test_rel_tokens_exactly_as_the_browser_splits_them(zyte):
    assert zyte.rel_diffs == []


def test_self_hrefs_under_a_base_naming_another_document_are_the_browsers_links():
    """Under a <base href> naming another document, Chromium resolves href="" (and "#x") to
    that document: linkcrawl gives those targets, with the same text."""
    checked = 0
    for name, page in agreement.reference()["pages"].items():
        if is_same_document(page["base"], page["url"]):
            continue
        ref = [
            (normalize_url(k["href"]), agreement.browser_anchor(k))
            for k in page["links"]
            if agreement._fragment_or_empty(k["raw"] or "")
        ]
        got = [(k.target, k.anchor) for k in agreement.linkcrawl_links(name, page["url"])]
        assert all(link in got for link in ref), name
        checked += len(ref)
    assert checked >= 4


def test_hand_written_failure_cases_agree_exactly():
    """Early </html>, late <base>, misnested <a>, <template>, //, unparsable URLs, rel, ..."""
    cases = agreement.score_linkcrawl(cases=True)
    assert cases.ref > 40
    assert cases.misses == [] and cases.extras == []
    assert cases.anchor_diffs == []
    assert cases.rel_diffs == []


def _deliberate_difference(case: str) -> tuple[str, str]:
    """The browser's text and linkcrawl's anchor of the one link of a hand-written case that
    is marked as a deliberate difference."""
    name = f"case:{case}"
    page = agreement.reference()["pages"][name]
    (ref,) = page["links"]
    (got,) = agreement.linkcrawl_links(name, page["url"])
    assert "linkcrawl_differs" in agreement._cases()[case]
    return ref["text"], got.anchor


def test_deliberate_difference_undeclared_utf8():
    """Chromium reads an undeclared UTF-8 page as windows-1252; linkcrawl keeps the UTF-8."""
    ref, got = _deliberate_difference("charset-undeclared-utf-8")
    assert ref.startswith("GrÃ¼ÃŸe")
    assert got.startswith("Grüße aus Köln, ça va? ✓")


def test_deliberate_difference_mathml():
    """Chromium lays MathML out (x as U+1D465, spaced operators); linkcrawl keeps the text."""
    ref, got = _deliberate_difference("mathml")
    assert " ".join(ref.split()) == "\U0001d465 = 2"
    assert got == "x=2"


def test_deliberate_difference_undeclared_central_european():
    """Chromium detects an undeclared windows-1250 page; linkcrawl reads undeclared Latin pages
    as windows-1252 (it detects only non-Latin scripts, where detection is reliable)."""
    ref, got = _deliberate_difference("charset-undeclared-polish-windows-1250")
    assert ref.startswith("Zażółć")
    assert got.startswith("Za¿ó³æ")


def test_undeclared_legacy_pages_are_detected_as_the_browser_does():
    """No BOM, no charset in Content-Type or <meta>: Chromium detects the script; so does
    linkcrawl, for the encodings the issue names and the other non-Latin ones."""
    pages = agreement.reference()["pages"]
    names = [n for n in pages if n.startswith("case:charset-undeclared-")]
    assert len(names) >= 12
    for name in names:
        if "linkcrawl_differs" in agreement._cases()[name[5:]]:
            continue
        ref = [(k["href"], k["text"]) for k in pages[name]["links"]]
        got = [(k.target, k.anchor) for k in agreement.linkcrawl_links(name, pages[name]["url"])]
        assert [" ".join(t.split()) for _, t in ref] == [a for _, a in got], name
