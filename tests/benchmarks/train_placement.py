"""Train the placement model (pipelines/placement_weights.py) on the WCXB development pages.

Pages: the WCXB dev split, the 181 Zyte articles (type "zyte": news must not get worse) and the
test web built with seed 1 (type "testweb": the placements the project means on its own
templates; the CI floor measures seed 0). Each labeled link (``tests/placement_eval.py``:
content when its anchor, in context, lies in the human-marked main text) gives a row of facts
(:data:`pipelines.placement.FEATURES`, as :func:`pipelines.placement.placement_facts` gathers
them). A logistic regression (numpy,
Newton's method, L2) on the standardized rows says content or not; links are weighted so that
the page types count more alike (``--balance``), and the weights are written back
unstandardized, so that the run-time model is one weighted sum per link. The honest figure is
the k-fold cross-validation with folds by domain (no site on both sides), per page type,
beside the rules alone and trafilatura (its cached answers, ``eval_placement.py
--wcxb-cache``); then the model is trained on all pages.

    PYTHONPATH=. python tests/benchmarks/train_placement.py --cache /tmp/facts.pkl --l2 100 \
        [--write]

The facts cache holds rows of the FEATURES it was made with: remove it after changing them.
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import sys
from collections import Counter
from itertools import product
from multiprocessing import Pool
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent.parent)]

from placement_eval import (  # noqa: E402
    WCXB_DEV,
    WCXB_TYPES,
    ZytePage,
    norm,
    page_link_facts,
    prf,
    wcxb_pages,
    web_link_facts,
    zyte_pages,
)

from crawler.testweb.generator import build_test_web  # noqa: E402
from pipelines.placement import FEATURES  # noqa: E402
from pipelines.urls import registered_domain  # noqa: E402

PROMOTES = (0.2, 0.25, 0.3, 0.35, 0.4)  # PROMOTE thresholds tried
DEMOTES = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3)  # DEMOTE thresholds tried
DEMOTES_ARTICLE = (0.1, 0.2, 0.3, 0.4)  # DEMOTE_ARTICLE thresholds tried
WEIGHTS_FILE = HERE.parent.parent / "pipelines" / "placement_weights.py"


def _facts(page: ZytePage) -> tuple[str, str, str, list[tuple[str, str, str, list[float]]]]:
    host = page.url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()
    links = [(k.anchor, k.label, k.rule, k.row) for k in page_link_facts(page)]
    return page.id, page.page_type, registered_domain(host) or host, links


def collect(jobs: int) -> list[tuple[str, str, str, list[tuple[str, str, str, list[float]]]]]:
    """Per WCXB page, Zyte page (type "zyte": news articles) and test web page ("testweb"):
    id, type, domain, and its labeled links (anchor, label, rule, row)."""
    pages = wcxb_pages(WCXB_DEV)
    for page in zyte_pages():
        page.page_type = "zyte"
        pages.append(page)
    with Pool(jobs) as pool:
        data = pool.map(_facts, pages, chunksize=8)
    return data + test_web_facts()


def test_web_facts() -> list[tuple[str, str, str, list[tuple[str, str, str, list[float]]]]]:
    """The test web (another seed than the one tests/test_placement_quality.py measures): the
    placements the project means on its templates (a blog index's posts are content...)."""
    return [
        (url, "testweb", host, [(k.anchor, k.label, k.rule, k.row) for k in links])
        for url, host, links in web_link_facts(build_test_web(seed=1))
    ]


def peer(data, traf: Path | None) -> np.ndarray:
    """Per link, whether trafilatura kept it (a <ref> with its anchor; each used once)."""
    known = json.loads(traf.read_text()) if traf and traf.is_file() else {}
    hits = []
    for pid, _, _, links in data:
        refs = Counter(known.get(pid, ()))
        for anchor, *_ in links:
            a = norm(anchor)
            hits.append(refs[a] > 0)
            refs[a] -= refs[a] > 0
    return np.array(hits)


def fit(x: np.ndarray, y: np.ndarray, s: np.ndarray, l2: float, iters: int = 25):
    """Logistic regression weights and bias for standardized ``x``, sample weights ``s``."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    w = np.zeros(d + 1)
    reg = np.full(d + 1, l2)
    reg[-1] = 0.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(xb @ w, -30, 30)))
        g = xb.T @ ((p - y) * s) + reg * w
        h = (xb * (p * (1 - p) * s)[:, None]).T @ xb + np.diag(reg + 1e-6)
        step = np.linalg.solve(h, g)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return w[:-1], w[-1]


def cross_validate(x, y, s, domains, folds: int, l2: float, seed: int = 0) -> np.ndarray:
    """Each link's probability by the model trained on the folds without its domain."""
    names = sorted(set(domains))
    random.Random(seed).shuffle(names)
    fold_of = {d: i % folds for i, d in enumerate(names)}
    fold = np.array([fold_of[d] for d in domains])
    prob = np.zeros(len(y))
    for k in range(folds):
        train = fold != k
        mu, sd = x[train].mean(0), x[train].std(0) + 1e-9
        w, b = fit((x[train] - mu) / sd, y[train], s[train], l2)
        prob[~train] = 1 / (1 + np.exp(-(((x[~train] - mu) / sd) @ w + b)))
    return prob


def table(types: np.ndarray, y: np.ndarray, systems: dict[str, np.ndarray]) -> dict:
    """Content-class F1 per page type and system ("all": the WCXB pages); printed."""
    print(f"  {'page type':14}" + "".join(f"{name:>14}" for name in systems) + "   links")
    out = {}
    for t in (*WCXB_TYPES, "all", "zyte", "testweb"):
        mask = ~np.isin(types, ("zyte", "testweb")) if t == "all" else types == t
        cells = {n: prf(list(zip(y[mask], pred[mask], strict=True)))[2]
                 for n, pred in systems.items()}  # fmt: skip
        out[t] = cells
        print(f"  {t:14}" + "".join(f"{v:14.3f}" for v in cells.values()) + f"  {mask.sum():6d}")
    return out


def decided(
    prob: np.ndarray, kept: np.ndarray, marked: tuple[np.ndarray, np.ndarray],
    cuts: tuple[float, float, float, float],
) -> np.ndarray:  # fmt: skip
    """Content per link: from THRESHOLD, or from DEMOTE where ``kept`` (the rules said
    content, outside a thread's main: there the model overrules them only when sure; see
    pipelines/placement_model.py decide; DEMOTE_ARTICLE on pages ``marked`` up as an
    article's), else from PROMOTE on pages marked up as a forum's and THRESHOLD elsewhere.
    ``cuts``: THRESHOLD, DEMOTE, PROMOTE, DEMOTE_ARTICLE; ``marked``: article, forum."""
    threshold, demote, promote, demote_article = cuts
    article, forum = marked
    return np.where(
        kept,
        prob >= np.where(article, demote_article, demote),
        prob >= np.where(forum, promote, threshold),
    )


def write_weights(
    w: np.ndarray, b: float, cuts: tuple[float, float, float, float], l2: float, cv: float
) -> None:
    threshold, demote, promote, demote_article = cuts
    lines = [
        '"""Weights of the placement model (pipelines/placement_model.py), one per fact of',
        "pipelines.placement.FEATURES: a link's score is BIAS plus, per fact, its value times its",
        "weight; content from THRESHOLD (of the probability), or from DEMOTE where the rules said",
        "content (DEMOTE_ARTICLE on a page marked up as an article), or from PROMOTE on a page",
        "marked up as a forum's.",
        "",
        "Generated by tests/benchmarks/train_placement.py --write (do not edit by hand): a",
        f"logistic regression on the WCXB development pages, L2 {l2:g}; content-class F1 of all",
        f'pages by 5-fold cross-validation with folds by domain: {cv:.3f}."""',
        "",
        "# fmt: off",
        "FEATURES: tuple[str, ...] = (",
        *[f'    "{name}",' for name in FEATURES],
        ")",
        f"BIAS = {b:.4f}",
        f"THRESHOLD = {threshold:.3f}",
        f"DEMOTE = {demote:.3f}",
        f"PROMOTE = {promote:.3f}",
        f"DEMOTE_ARTICLE = {demote_article:.3f}",
        "WEIGHTS: tuple[float, ...] = (",
        *[f"    {v:.4f},  # {name}" for name, v in zip(FEATURES, w, strict=True)],
        ")",
        "# fmt: on",
        "",
    ]
    WEIGHTS_FILE.write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, help="facts cache (pickle) to read or write")
    ap.add_argument("--wcxb-cache", type=Path, default=Path("/tmp/placement-wcxb-traf.json"),
                    help="trafilatura's answers (eval_placement.py --wcxb-cache)")  # fmt: skip
    ap.add_argument("--jobs", type=int, default=2, help="processes")
    ap.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    ap.add_argument("--l2", type=float, default=None, help="L2 (default: chosen by CV)")
    ap.add_argument("--balance", type=float, default=1.0,
                    help="weight links by (links of their page type)^-BALANCE")  # fmt: skip
    ap.add_argument("--threshold", type=float, default=None,
                    help="THRESHOLD (default: chosen by CV)")  # fmt: skip
    ap.add_argument("--demote", type=float, default=None,
                    help="DEMOTE (default: chosen by CV)")  # fmt: skip
    ap.add_argument("--demote-article", type=float, default=None,
                    help="DEMOTE_ARTICLE (default: chosen by CV)")  # fmt: skip
    ap.add_argument("--promote", type=float, default=None,
                    help="PROMOTE (default: chosen by CV)")  # fmt: skip
    ap.add_argument("--web", type=float, default=1.0,
                    help="extra weight of the test web's F1 in choosing thresholds")  # fmt: skip
    ap.add_argument("--write", action="store_true", help="write the weights module")
    args = ap.parse_args()
    if args.cache and args.cache.is_file():
        data = pickle.loads(args.cache.read_bytes())
        if all(t != "testweb" for _, t, _, _ in data):  # a cache from before the test web
            data += test_web_facts()
            args.cache.write_bytes(pickle.dumps(data))
    else:
        data = collect(args.jobs)
        if args.cache:
            args.cache.write_bytes(pickle.dumps(data))
    if data and data[0][3] and len(data[0][3][0][3]) != len(FEATURES):
        raise SystemExit("the facts cache is from another FEATURES: remove it")
    x = np.array([row for *_, links in data for *_, row in links], dtype=float)
    y = np.array([label == "content" for *_, links in data for _, label, _, _ in links])
    rule = np.array([r == "content" for *_, links in data for _, _, r, _ in links])
    kept = rule & (x[:, FEATURES.index("main_thread")] < 0.5)  # see decided()
    marked = (
        x[:, FEATURES.index("markup_article")] > 0.5,
        x[:, FEATURES.index("markup_forum")] > 0.5,
    )
    types = np.array([t or "other" for _, t, _, links in data for _ in links])
    domains = [d for _, _, d, links in data for _ in links]
    counts = Counter(types.tolist())
    s = np.array([counts[t] ** -args.balance for t in types.tolist()])
    s *= len(s) / s.sum()
    traf = peer(data, args.wcxb_cache)
    sets = (~np.isin(types, ("zyte", "testweb")), types == "zyte", types == "testweb")
    print(f"{len(data)} pages, {len(y)} labeled links, {len(FEATURES)} facts")
    best = None
    for l2 in [args.l2] if args.l2 is not None else [1.0, 10.0, 100.0]:
        prob = cross_validate(x, y, s, domains, args.folds, l2)
        for threshold in [args.threshold] if args.threshold else np.arange(0.3, 0.71, 0.05):
            for demote, promote, demote_article in product(
                [args.demote] if args.demote is not None else (*DEMOTES, threshold),
                [args.promote] if args.promote is not None else (*PROMOTES, threshold),
                [args.demote_article] if args.demote_article is not None else DEMOTES_ARTICLE,
            ):
                if max(demote, promote, demote_article) > threshold:
                    continue
                # The WCXB pages' F1, the Zyte articles' and the test web's: the modern web,
                # news and the project's own templates kept.
                cuts = (float(threshold), demote, promote, demote_article)
                pred = decided(prob, kept, marked, cuts)
                f1s = [prf(list(zip(y[m], pred[m], strict=True)))[2] for m in sets]
                f1 = sum(f1s) + args.web * f1s[2]
                if best is None or f1 > best[0]:
                    best = (f1, l2, cuts, prob)
        print(f"L2 {l2:g}: CV F1 (WCXB + Zyte + test web, best thresholds) {best[0]:.3f}")
    _, l2, cuts, prob = best  # type: ignore[misc]
    cv_pred = decided(prob, kept, marked, cuts)
    cv = prf(list(zip(y[sets[0]], cv_pred[sets[0]], strict=True)))[2]
    mu, sd = x.mean(0), x.std(0) + 1e-9
    w, b = fit((x - mu) / sd, y, s, l2)
    fitted = 1 / (1 + np.exp(-(((x - mu) / sd) @ w + b)))
    print(f"\ncontent-class F1, L2 {l2:g}, threshold {cuts[0]:.2f}, demote {cuts[1]:.2f},"
          f" promote {cuts[2]:.2f}, demote on articles {cuts[3]:.2f}"
          " (model CV: folds by domain; in-sample: on all)")  # fmt: skip
    table(types, y, {"rules": rule, "model CV": cv_pred,
                     "in-sample": decided(fitted, kept, marked, cuts),
                     "trafilatura": traf})  # fmt: skip
    raw = w / sd
    order = np.argsort(-np.abs(w))
    print("\nlargest standardized weights: " + ", ".join(
        f"{FEATURES[i]} {w[i]:+.2f}" for i in order[:15]))  # fmt: skip
    if args.write:
        write_weights(raw, float(b - mu @ raw), cuts, l2, cv)
        print(f"wrote {WEIGHTS_FILE}")


if __name__ == "__main__":
    main()
