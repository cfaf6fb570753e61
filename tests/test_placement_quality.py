"""Quality floors of placement (the issue's bars): a regression fails the build.

The figures, with trafilatura beside them, come from ``benchmarks/eval_placement.py``.
"""

from __future__ import annotations

import pytest
from placement_eval import (
    WCXB_SAMPLE,
    halves,
    page_link_facts,
    prf,
    wcxb_pages,
    web_accuracy,
    web_links,
    zyte_links,
    zyte_pages,
)

from crawler.testweb.generator import build_test_web


@pytest.fixture(scope="module")
def zyte():
    pages = zyte_pages()
    assert len(pages) == 181
    return pages, [(page.id, link) for page, links in zyte_links(pages) for link in links]


def content_prf(rows, ids=None):
    return prf(
        [
            (link.label == "content", link.placement == "content")
            for pid, link in rows
            if link.label is not None and (ids is None or pid in ids)
        ]
    )


def test_zyte_content_precision_and_recall(zyte):
    _, rows = zyte
    # The placement model trades a little precision for much recall (0.880 / 0.946 / F1 0.912;
    # the rules alone had 0.888 F1).
    precision, recall, f1 = content_prf(rows)
    assert precision >= 0.85 and recall >= 0.935 and f1 >= 0.895, (precision, recall, f1)


def test_zyte_held_out_half_stays_close(zyte):
    # The half not looked at while tuning: a wide gap to the tuning half means overfitting.
    pages, rows = zyte
    tune, held = halves(pages)
    f_tune = content_prf(rows, {p.id for p in tune})[2]
    f_held = content_prf(rows, {p.id for p in held})[2]
    # (0.938 and 0.883 today; the placement model saw both halves, in 5 folds by domain)
    assert f_held >= 0.865 and f_tune - f_held <= 0.06, (f_tune, f_held)


def test_test_web_per_template_after_the_site_level_pass():
    links = web_links(build_test_web())
    # The model overrules the rules' content only when sure (DEMOTE): after the site-level
    # pass the figures are the rules' (0.994 hashed, 0.999 html5, 0.989 table, 0.998
    # wordpress); per page 0.83-0.99.
    for attr, floor in (("page_level", 0.80), ("site_level", 0.93), ("site_block", 0.98)):
        for template, (_, binary, _) in web_accuracy(links, attr).items():
            assert binary >= floor, (attr, template, binary)


# The 70-page WCXB sample (10 per page type, tests/data/wcxb-sample): content-class F1 floors,
# a little under what the sample gives today (eval_placement.py --only wcxb has the whole
# dev split, with trafilatura beside it).
WCXB_FLOORS = {
    "article": 0.80,  # 0.822 today
    "documentation": 0.90,  # 0.921
    "listing": 0.65,  # 0.675
    "forum": 0.60,  # a thread's posts (0.646: PROMOTE on forum markup)
    "service": 0.82,  # 0.837 (0.880 before DEMOTE and the markup facts)
    "product": 0.12,  # 0.143
    "collection": 0.60,  # 0.680
    None: 0.70,  # all pages together (0.734)
}


def test_wcxb_sample_content_f1_per_page_type():
    pages = wcxb_pages(WCXB_SAMPLE)
    assert len(pages) == 70
    rows = [(page.page_type, k) for page, links in zyte_links(pages) for k in links if k.label]
    for page_type, floor in WCXB_FLOORS.items():
        pairs = [
            (k.label == "content", k.placement == "content")
            for pt, k in rows
            if page_type in (None, pt)
        ]
        f1 = prf(pairs)[2]
        assert f1 >= floor, (page_type or "all", f1)


def test_page_link_facts_gathers_the_labeled_links_facts(zyte):
    """train_placement.py's rows: the spy on extraction's placement call replays the page's
    arguments into placement_facts (extraction passes one more: `columns`)."""
    from pipelines.placement import FEATURES

    pages, _ = zyte
    rows = [facts for page in pages[:3] for facts in page_link_facts(page)]
    assert rows, "no labeled link on three Zyte pages"
    assert {r.rule for r in rows} <= {"content", "nav", "sidebar", "footer", "comment"}
    assert all(len(r.row) == len(FEATURES) for r in rows)
