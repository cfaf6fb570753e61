"""The placement model: content or not, per link, from the facts the placement walk gathered.

:func:`pipelines.placement.placement_facts` gives, per link, the rules' placement and its
facts (:class:`LinkFacts`; one row per link of :data:`pipelines.placement.FEATURES`). A
logistic regression over those rows (weights in :mod:`pipelines.placement_weights`, trained by
``tests/benchmarks/train_placement.py`` on the WCXB development pages, the Zyte articles and
the test web, cross-validated by domain) says whether the link is content: one weighted sum
per link; a link the rules call content stays so unless the model is surer (DEMOTE, below
THRESHOLD: a blog index's posts, an item grid, are content on templates the model saw
little of; DEMOTE_ARTICLE on a page marked up as an article, where the rules' content beside
the story is related posts and share bars more often). Where it overrules the rules, the
region comes from the rules when they said boilerplate, else it is a sidebar (a link beside
the text). What the rules are certain of stays: comments (``rel=ugc``, a comment container
under an article) and a link around the whole main text.

With the native core, the links' facts, :func:`scores` and :func:`decide` run in Rust
(native/src/model.rs, ``pipelines.native.place_stage``) with the same floats: this module and
``pipelines.placement._link_facts`` are the reference and the fallback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from functools import reduce
from math import exp, log
from operator import add, mul
from typing import NamedTuple

from pipelines import placement_weights as weights

_SURE = 0.9  # the site-level pass keeps placements this sure (pipelines/sitewide.py SURE)
_MARKUP_ARTICLE = 10  # pipelines.placement.PAGE_FEATURES' markup_article
_MARKUP_FORUM = 12  # pipelines.placement.PAGE_FEATURES' markup_forum
_OVERRULED = 0.85  # the most confidence an overruled placement gets: below _SURE


def _plain_sum(values: Iterable[float]) -> float:
    """Floats added left to right from 0, as ``sum`` does before Python 3.12.

    >>> _plain_sum([1e16, 1.0, -1e16])
    0.0
    """
    return reduce(add, values, 0)


#: A sum of floats from 0, left to right, without compensation: ``sum`` until Python 3.11
#: (faster), from 3.12 on (whose ``sum`` compensates: Neumaier) a plain one. The scores are
#: then the same floats on every version, and the native core's (native/src/model.rs).
_fsum: Callable[[Iterable[float]], float] = sum if sys.version_info < (3, 12) else _plain_sum


class LinkFacts(NamedTuple):
    """The model's facts about a page's links, in parts (rows() joins them): per link its own
    facts and whether it lies in main, the page's facts, per link its ancestry's bits."""

    own: list[tuple[float, ...]]  # per link: pipelines.placement.LINK_FEATURES
    inside: list[float]  # per link: 1.0 in main
    page: tuple[float, ...]  # pipelines.placement.PAGE_FEATURES
    bits: list[int]  # per link: bit j is the j-th of the bit facts (pipelines.placement)

    def rows(self, n_bits: int) -> list[list[float]]:
        """One row per link, in the order of pipelines.placement.FEATURES."""
        listing, thread, article = self.page[0], self.page[1], self.page[3]
        return [
            [*own, *self.page, inside * listing, inside * thread, inside * article,
             *(float(bits >> j & 1) for j in range(n_bits))]
            for own, inside, bits in zip(self.own, self.inside, self.bits, strict=True)
        ]  # fmt: skip


class _Weights:
    """The weights, split as :class:`LinkFacts` is: a link's score is a sum over its own
    facts, the page's part (the same for all its links), in main times the interactions'
    part, and its bits' part (memoized: ancestries repeat)."""

    def __init__(self, n_own: int, n_page: int) -> None:
        w = self.source = weights.WEIGHTS
        self.own = w[:n_own]
        self.page = w[n_own : n_own + n_page]
        self.inter = w[n_own + n_page : n_own + n_page + 3]
        self.bits = w[n_own + n_page + 3 :]
        self.bit_sums: dict[int, float] = {}

    def bit_sum(self, bits: int) -> float:
        found = self.bit_sums.get(bits)
        if found is None:
            found = _fsum(w for j, w in enumerate(self.bits) if bits >> j & 1)
            if len(self.bit_sums) < 65_536:  # bounded: a page chooses its ancestries
                self.bit_sums[bits] = found
        return found


_SPLIT: list[_Weights] = []


def scores(facts: LinkFacts) -> list[float]:
    """Each link's weighted sum (the logit of its probability of being content)."""
    if not _SPLIT or _SPLIT[0].source is not weights.WEIGHTS:  # new weights: split anew
        _SPLIT[:] = [_Weights(len(facts.own[0]), len(facts.page))]
    w = _SPLIT[0]
    page = weights.BIAS + _fsum(a * b for a, b in zip(w.page, facts.page, strict=True))
    listing, thread, article = facts.page[0], facts.page[1], facts.page[3]
    inter = w.inter[0] * listing + w.inter[1] * thread + w.inter[2] * article
    own_w, bit_sum = w.own, w.bit_sum
    return [
        page + _fsum(map(mul, own_w, own)) + inside * inter + bit_sum(bits)
        for own, inside, bits in zip(facts.own, facts.inside, facts.bits, strict=True)
    ]


def decide(rules: Sequence[_Placed], facts: LinkFacts | None) -> list[_Placed]:
    """The rules' placements, with content decided by the model (see the module docstring).

    A link the model agrees on keeps the rules' region and confidence; one it overrules gets
    the model's confidence, below what the site-level pass counts as sure.
    """
    if facts is None or not weights.WEIGHTS:
        return list(rules)
    out = []
    cut = _logit(weights.THRESHOLD)
    # The rules' content stays unless the model is sure (DEMOTE), but in a thread's main
    # (main_thread: posts and signatures, where the rules say content too often).
    # A page marked up as a forum's (DiscussionForumPosting, QAPage, a forum generator) has
    # posts the rules miss: content there from PROMOTE (below THRESHOLD).
    # On a page marked up as an article, DEMOTE_ARTICLE: the rules' content beside its story
    # is often related posts, share bars, tags.
    demote = _logit(weights.DEMOTE_ARTICLE if facts.page[_MARKUP_ARTICLE] else weights.DEMOTE)
    promote = _logit(weights.PROMOTE) if facts.page[_MARKUP_FORUM] else cut
    thread = facts.page[1]
    for rule, z, inside in zip(rules, scores(facts), facts.inside, strict=True):
        sure = cut if thread and inside else demote
        content = z >= (sure if rule.placement == "content" else promote)
        if (
            content == (rule.placement == "content")
            or rule.score >= 1.0
            or (rule.placement == "comment" and rule.score >= _SURE)
        ):
            out.append(rule)
            continue
        p = 1.0 / (1.0 + exp(-max(-30.0, min(30.0, z))))
        region = "content" if content else "sidebar"
        out.append(rule._replace(placement=region, score=min(_OVERRULED, max(p, 1.0 - p))))
    return out


def _logit(p: float) -> float:
    """A probability as a logit: ``_logit(0.5)`` is 0.0."""
    return log(p / (1.0 - p))


class _Placed(NamedTuple):  # pipelines.placement.Placed (no import cycle)
    placement: str
    score: float
    block: int
