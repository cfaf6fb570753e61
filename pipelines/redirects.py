"""Links through redirects: where a link lands when its target is a redirect.

Two ways to know it (README, "Links through redirects"):

- statically, when the target's query carries the destination (``/out?url=https://x.test/``,
  ``/url?q=...``): :func:`static_final`, at extraction time;
- from observed HTTP redirects: the crawl's own (``pages.redirect_to``) and the target checks'
  (``targets.redirect_to``), chained by :func:`resolve_chains` at compaction time.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from urllib.parse import unquote

from pipelines.urls import normalize_url

DIRECT = "direct"
REDIRECT_SCRIPT = "redirect-script"
HTTP_REDIRECT = "http-redirect"
LINK_KINDS = (DIRECT, REDIRECT_SCRIPT, HTTP_REDIRECT)

# Query parameters that carry a redirect's destination on any path (lowercase names).
URL_PARAMS = frozenset({"url", "u", "to", "target", "dest", "destination", "redirect",
                        "redirect_to", "redirect_url", "redir", "link", "goto", "out"})  # fmt: skip
# Parameters that do on redirect paths only: Google's and others' ``/url?q=``.
PATH_PARAMS = {"q": ("/url", "/link", "/redirect", "/out", "/go", "/away")}
# Share buttons carry the page to share, not a destination: never read as redirects.
_SHARE_MARKS = ("share", "sharer", "intent/tweet", "submit")
MAX_VALUE = 2083  # characters of a carried URL (the crawl's URL length limit)
MAX_HOPS = 5  # as the crawl's redirect cap (crawler.defaults.MAX_REDIRECTS)


def _carried(value: str) -> str | None:
    """A query value read as an absolute http(s) URL: percent-encoded up to twice, or
    URL-safe base64 of one; None otherwise.

    >>> _carried("https%3A%2F%2Fx.test%2Fa%3Fb%3D1")
    'https://x.test/a?b=1'
    >>> _carried("aHR0cHM6Ly94LnRlc3Qv")
    'https://x.test/'
    >>> _carried("/account") is None, _carried("hello") is None
    (True, True)
    """
    if not value or len(value) > MAX_VALUE * 3:
        return None
    for _ in range(3):  # as written, then decoded once, then twice
        low = value[:8].lower()
        if low.startswith(("http://", "https://")):
            return normalize_url(value) if len(value) <= MAX_VALUE else None
        if not low.startswith(("http%3a", "https%3a", "http%253a", "https%253a")):
            break
        value = unquote(value)
    if value.startswith("aHR0c"):  # base64 of "http"
        try:
            text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("utf-8")
        except (binascii.Error, ValueError):
            return None
        if text.startswith(("http://", "https://")) and len(text) <= MAX_VALUE:
            return normalize_url(text)
    return None


def static_final(url: str) -> str | None:
    """The destination a redirect script's URL carries in its query, normalized; None when
    its query carries none (or ``url`` looks like a share button).

    Parameters read: :data:`URL_PARAMS` on any path, ``q`` on redirect paths (``/url``...);
    values percent-encoded or not, or URL-safe base64 of an http(s) URL. The first parameter
    that carries one wins; a destination equal to ``url`` is none.

    >>> static_final("http://a.test/out?url=https%3A%2F%2Fb.test%2Fpage")
    'https://b.test/page'
    >>> static_final("http://www.google.test/url?q=http://b.test/&sa=D")
    'http://b.test/'
    >>> static_final("http://a.test/search?q=http://b.test/") is None
    True
    >>> static_final("http://a.test/go?to=aHR0cDovL2IudGVzdC94")
    'http://b.test/x'
    >>> static_final("http://social.test/sharer.php?u=http://b.test/") is None
    True
    >>> static_final("http://a.test/login?next=/account") is None
    True
    """
    base, sep, query = url.partition("?")
    if not sep or not query:
        return None
    path = "/" + base.split("/", 3)[3] if base.count("/") >= 3 else "/"
    low_path = path.lower()
    if any(mark in low_path for mark in _SHARE_MARKS):
        return None
    for pair in query.split("&", 64)[:64]:
        name, eq, value = pair.partition("=")
        if not eq:
            continue
        name = unquote(name).lower()
        paths = PATH_PARAMS.get(name)
        if name not in URL_PARAMS and not (paths and low_path.rstrip("/").endswith(paths)):
            continue
        final = _carried(value)
        if final is not None and final != url:
            return final
    return None


def resolve_chains(hops: Mapping[str, str], max_hops: int = MAX_HOPS) -> dict[str, tuple[str, int]]:
    """For each URL that redirects (``hops``: URL -> its Location), the URL its chain ends
    at and the chain's length, following at most ``max_hops`` hops (a loop ends where it
    closes).

    >>> resolve_chains({"http://a.test/go/1": "http://s.test/x", "http://s.test/x": "http://b.test/"})
    {'http://a.test/go/1': ('http://b.test/', 2), 'http://s.test/x': ('http://b.test/', 1)}
    >>> resolve_chains({"http://a.test/1": "http://a.test/2", "http://a.test/2": "http://a.test/1"})
    {'http://a.test/1': ('http://a.test/2', 1), 'http://a.test/2': ('http://a.test/1', 1)}
    """
    out: dict[str, tuple[str, int]] = {}
    for start, nxt in hops.items():
        seen = {start}
        final, n = nxt, 1
        while n < max_hops and final in hops and hops[final] not in seen:
            seen.add(final)
            final = hops[final]
            n += 1
        out[start] = (final, n)
    return out
