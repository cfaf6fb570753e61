"""WHATWG URL conformance: resolve_href against the web-platform-tests cases.

Each case of ``tests/data/whatwg-url/urltestdata.json`` (BSD-3-Clause, see the README and
LICENSE.md beside it) says what a browser resolves ``<a href=input>`` to on a page whose base
URL is ``base``, or that it fails. In scope for the crawler: the failures (no link may come out
of them) and the successes resolving to http(s) (the link must be exactly what a browser gets).
The other successes (``file:``, ``data:``, ``foo:``, ...) are checked too: resolve_href must
match them and resolve_link must drop them. resolve_link also drops the three http(s) cases whose
host is no host once its trailing dots are removed (``http://./``, ``http://../``,
``http://foo.09..``: ``foo.09`` would be an invalid IPv4 address).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pipelines import urls

DATA = Path(__file__).parent / "data" / "whatwg-url" / "urltestdata.json"
CASES: list[dict[str, Any]] = [
    case for case in json.loads(DATA.read_text(encoding="utf-8")) if isinstance(case, dict)
]


def _in_scope(case: dict[str, Any]) -> bool:
    return bool(case.get("failure")) or case["protocol"] in ("http:", "https:")


def _case_id(index: int, case: dict[str, Any]) -> str:
    base = "" if case["base"] is None else f" @ {case['base'][:40]}"
    return f"{index}: {case['input'][:60]!a}{base}"


def _check(case: dict[str, Any], impl: ModuleType = urls) -> str | None:
    """None when resolve_href and resolve_link agree with the case, else what is wrong.

    *impl* has the functions: ``pipelines.urls``, or the native core (tests/test_native_urls.py).
    """
    href, base = case["input"], case["base"]
    resolved = impl.resolve_href(href, base)
    link = impl.resolve_link(href, base)
    if case.get("failure"):
        if resolved is not None or link is not None:
            return f"must fail: resolve_href gave {resolved!r}, resolve_link gave {link!r}"
        return None
    expected = case["href"]
    if resolved != expected:
        return f"resolve_href gave {resolved!r}, expected {expected!r}"
    if case["protocol"] in ("http:", "https:"):
        if link != impl.normalize_url(expected):
            return f"resolve_link gave {link!r}, expected {impl.normalize_url(expected)!r}"
        if link is None and not case["hostname"].endswith("."):
            # only a host that is nothing, or no host, without its trailing dots is dropped
            return f"resolve_link dropped {expected!r}"
    elif link is not None:
        return f"not http(s): resolve_link must give None, gave {link!r}"
    return None


@pytest.mark.parametrize(
    "case", [pytest.param(case, id=_case_id(i, case)) for i, case in enumerate(CASES)]
)
def test_whatwg_case(case: dict[str, Any]) -> None:
    problem = _check(case)
    assert problem is None, problem


def failing(impl: ModuleType = urls) -> dict[int, str]:
    """The index of each case *impl* fails, and what is wrong."""
    return {i: problem for i, case in enumerate(CASES) if (problem := _check(case, impl))}


def test_whatwg_summary() -> None:
    in_scope = [i for i, case in enumerate(CASES) if _in_scope(case)]
    failures = sum(1 for i in in_scope if CASES[i].get("failure"))
    failed = failing()
    print(
        f"WHATWG URL: {len(in_scope) - len(failed.keys() & set(in_scope))}/{len(in_scope)}"
        f" in-scope cases pass ({failures} must-fail, {len(in_scope) - failures} http(s));"
        f" {len(CASES) - len(failed)}/{len(CASES)} cases in all"
    )
    assert len(in_scope) > 500
    assert not failed, [_case_id(i, CASES[i]) for i in failed]
