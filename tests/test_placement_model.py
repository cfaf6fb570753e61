"""The placement model: its weights agree with the facts the walk gathers, and it decides."""

from __future__ import annotations

import sys
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser

from pipelines import placement_weights
from pipelines.placement import (
    BIT_NAMES,
    FEATURES,
    LINK_FEATURES,
    PAGE_FEATURES,
    Placed,
    placement_facts,
)
from pipelines.placement_model import LinkFacts, decide, scores

sys.path.insert(0, str(Path(__file__).resolve().parent / "benchmarks"))

STORY = "The council met on Tuesday and voted on the new budget for the schools. " * 4
PAGE = (
    "<header><nav><a href=/>Home</a><a href=/news>News</a></nav></header>"
    f"<main><article><p>{STORY} <a href=http://gov.test/b>the budget</a>.</p><p>{STORY}</p>"
    "<section id=comments><p>Nice! <a href=http://x.test rel=ugc>me</a></p></section>"
    "</article></main><footer><a href=/legal>Legal</a></footer>"
)


def test_the_weights_are_for_the_facts_the_walk_gathers():
    # The trainer writes the FEATURES it trained on: a fact added, dropped or moved since
    # needs a new training (tests/benchmarks/train_placement.py --write).
    import train_placement

    assert train_placement.FEATURES is FEATURES
    assert placement_weights.FEATURES == FEATURES
    assert len(placement_weights.WEIGHTS) == len(FEATURES)
    tree = LexborHTMLParser(PAGE)
    rules, facts = placement_facts(tree, tree.css("a[href]"))
    rows = facts.rows(len(BIT_NAMES))
    assert len(rules) == len(rows) == 5
    assert all(len(row) == len(FEATURES) for row in rows)
    # The run-time sum (by parts, bits memoized) is the trainer's: bias + row . weights.
    for row, z in zip(rows, scores(facts), strict=True):
        dense = placement_weights.BIAS + sum(
            w * x for w, x in zip(placement_weights.WEIGHTS, row, strict=True)
        )
        assert abs(dense - z) < 1e-9


def test_model_decides_content_and_keeps_regions_and_comments():
    tree = LexborHTMLParser(PAGE)
    rules, facts = placement_facts(tree, tree.css("a[href]"))
    got = [p.placement for p in decide(rules, facts)]
    assert got == ["nav", "nav", "content", "comment", "footer"]


def test_an_overruled_link_is_not_sure_for_the_site_level_pass():
    rules = [Placed("content", 0.95, 7)]
    facts = LinkFacts([(0.0,) * len(LINK_FEATURES)], [0.0], (0.0,) * len(PAGE_FEATURES), [0])
    out = decide(rules, facts)[0]
    assert out.block == 7
    assert out.placement == "content" or out.score < 0.9


def test_page_markup_reaches_the_model():
    # The forum markup fact the model's PROMOTE reads is where decide() looks for it, and
    # extraction's schema.org types arrive in the page's facts.
    from pipelines import placement_model
    from pipelines.page_type import PageMarkup

    assert PAGE_FEATURES[placement_model._MARKUP_FORUM] == "markup_forum"
    markup = PageMarkup()
    markup.add_jsonld('{"@type": "DiscussionForumPosting"}')
    tree = LexborHTMLParser(PAGE)
    _, plain = placement_facts(tree, tree.css("a[href]"))
    _, marked = placement_facts(tree, tree.css("a[href]"), markup=markup)
    assert plain.page[placement_model._MARKUP_FORUM] == 0.0
    assert marked.page[placement_model._MARKUP_FORUM] == 1.0


def test_article_markup_demotes_the_rules_content_sooner(monkeypatch):
    # A score between DEMOTE and DEMOTE_ARTICLE: the rules' content stays on a plain page and
    # is overruled on one marked up as an article (where such links are related posts).
    from math import log

    from pipelines import placement_model

    assert PAGE_FEATURES[placement_model._MARKUP_ARTICLE] == "markup_article"
    assert placement_weights.DEMOTE < placement_weights.DEMOTE_ARTICLE
    p = (placement_weights.DEMOTE + placement_weights.DEMOTE_ARTICLE) / 2
    monkeypatch.setattr(placement_model, "scores", lambda facts: [log(p / (1 - p))])
    rules = [Placed("content", 0.95, 3)]
    page = [0.0] * len(PAGE_FEATURES)
    plain = LinkFacts([(0.0,) * len(LINK_FEATURES)], [0.0], tuple(page), [0])
    page[placement_model._MARKUP_ARTICLE] = 1.0
    article = LinkFacts([(0.0,) * len(LINK_FEATURES)], [0.0], tuple(page), [0])
    assert decide(rules, plain)[0].placement == "content"
    assert decide(rules, article)[0].placement == "sidebar"
