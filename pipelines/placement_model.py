"""The placement model: content or not, per link, from the facts the placement walk gathered.

:func:`pipelines.placement.placement_facts` gives, per link, the rules' placement and a row
of facts (:data:`pipelines.placement.FEATURES`). A logistic regression over those rows
(weights in :mod:`pipelines.placement_weights`, trained by
``tests/benchmarks/train_placement.py`` on the WCXB development pages and the Zyte articles,
cross-validated by domain) says whether the link is content: one weighted sum per link. Where
it overrules the rules, the region comes from the rules when they said boilerplate, else it is
a sidebar (a link beside the text). What the rules are certain of stays: comments
(``rel=ugc``, a comment container under an article) and a link around the whole main text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from pipelines import placement_weights as weights

_WEIGHTS = np.array(weights.WEIGHTS, dtype=float)
_SURE = 0.9  # the site-level pass keeps placements this sure (pipelines/sitewide.py SURE)
_OVERRULED = 0.85  # the most confidence an overruled placement gets: below _SURE


class _Placed(NamedTuple):  # pipelines.placement.Placed (no import cycle)
    placement: str
    score: float
    block: int


def content_probability(rows: np.ndarray) -> np.ndarray:
    """The model's probability that each link (a row of facts) is content.

    >>> rows = np.zeros((2, len(_WEIGHTS)))
    >>> bool(np.allclose(content_probability(rows), 1 / (1 + np.exp(-weights.BIAS))))
    True
    """
    z = rows @ _WEIGHTS + weights.BIAS
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))


def decide(rules: Sequence[_Placed], rows: np.ndarray) -> list[_Placed]:
    """The rules' placements, with content decided by the model (see the module docstring).

    A link the model agrees on keeps the rules' region and confidence; one it overrules gets
    the model's confidence, below what the site-level pass counts as sure.
    """
    if not len(_WEIGHTS) or rows.shape != (len(rules), len(_WEIGHTS)):
        return list(rules)
    prob = content_probability(rows).tolist()
    out = []
    for rule, p in zip(rules, prob, strict=True):
        content = p >= weights.THRESHOLD
        was = rule.placement == "content"
        if (
            content == was
            or rule.score >= 1.0
            or (rule.placement == "comment" and rule.score >= _SURE)
        ):
            out.append(rule)
            continue
        region = "content" if content else "sidebar"
        out.append(rule._replace(placement=region, score=min(_OVERRULED, max(p, 1.0 - p))))
    return out
