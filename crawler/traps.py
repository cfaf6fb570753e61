"""Crawler-trap checks on a normalized URL: pure functions, no Scrapy, no Redis.

A trap is a site that makes new URLs faster than a crawl can finish them: a path that grows
(``/a/a/a/...``, ``/1/2/3/...``), a URL that lengthens on every hop. These checks end such
chains on the URL alone, as Heritrix's PathologicalPathDecideRule and
TooManyPathSegmentsDecideRule and StormCrawler's BasicURLFilter do. Query-string traps
(session IDs, calendars) need counts across pages: the frontier's per-path query budget.
"""

from __future__ import annotations

from array import array

#: The reasons, as they appear in the crawl's stats (``skipped_<reason>``).
URL_LENGTH = "url_length"
PATH_SEGMENTS = "path_segments"
PATH_REPEAT = "path_repeat"

# The longest run of segments checked for repetition (``/a/b/c/a/b/c/a/b/c/``): loops made
# by relative links are short; a bound keeps the check linear in the path.
MAX_REPEAT_PERIOD = 8


def path_segments(url: str) -> list[str]:
    """The segments of a normalized URL's path (a trailing slash adds no empty segment).

    >>> path_segments("http://a.test/x/y/?q=1")
    ['x', 'y']
    >>> path_segments("http://a.test/"), path_segments("http://a.test/a//b")
    ([], ['a', '', 'b'])
    """
    start = url.find("/", url.find("//") + 2)
    if start < 0:
        return []
    path = url[start + 1 :].partition("?")[0].partition("#")[0]
    if path.endswith("/"):
        path = path[:-1]
    return path.split("/") if path else []


def repeated_run(segments: list[str], max_repeat: int) -> bool:
    """Whether a run of 1 to MAX_REPEAT_PERIOD segments repeats back to back more than
    ``max_repeat`` times (Heritrix's PathologicalPathDecideRule, maxRepetitions).

    >>> repeated_run(["a", "a", "a"], 2), repeated_run(["a", "a", "b"], 2)
    (True, False)
    >>> repeated_run("x a b a b a b".split(), 2), repeated_run("2024 01 01".split(), 2)
    (True, False)
    """
    n = len(segments)
    if n <= max_repeat or len(set(segments)) == n:  # the common case: no segment twice
        return False
    for period in range(1, min(MAX_REPEAT_PERIOD, n // (max_repeat + 1)) + 1):
        # A run of equal pairs (i, i + period) this long means max_repeat + 1 copies.
        need = period * max_repeat
        run = 0
        for i in range(n - period):
            if segments[i] == segments[i + period]:
                run += 1
                if run >= need:
                    return True
            else:
                run = 0
    return False


def trap_reason(
    url: str,
    *,
    max_url_length: int = 2083,
    max_path_segments: int = 20,
    max_path_repeat: int = 2,
) -> str | None:
    """Why a normalized URL must not be crawled, or None. A limit of 0 is off.

    >>> trap_reason("http://a.test/blog/2024/05/post?page=2") is None
    True
    >>> trap_reason("http://a.test/?q=" + "x" * 3000)
    'url_length'
    >>> trap_reason("http://a.test/" + "/".join(map(str, range(30))))
    'path_segments'
    >>> trap_reason("http://a.test/a/a/a/"), trap_reason("http://a.test/a/a/")
    ('path_repeat', None)
    """
    if max_url_length and len(url) > max_url_length:
        return URL_LENGTH
    if not max_path_segments and not max_path_repeat:
        return None
    segments = path_segments(url)
    if max_path_segments and len(segments) > max_path_segments:
        return PATH_SEGMENTS
    if max_path_repeat and repeated_run(segments, max_path_repeat):
        return PATH_REPEAT
    return None


def dedupe_key(url: str, session_params: frozenset[str]) -> str:
    """The URL as the duplicate filter sees it: without session-ID parameters.

    A session ID makes every link new on every visit; Heritrix drops them the same way when
    it decides what was seen. The URL fetched and recorded keeps them: only the key changes,
    so the first variant is crawled and the others are duplicates. Names match lowercased,
    in the query and as a path parameter (``;jsessionid=...``).

    >>> params = frozenset({"sid", "jsessionid"})
    >>> dedupe_key("http://a.test/p?id=3&sid=9f8e7d", params)
    'http://a.test/p?id=3'
    >>> dedupe_key("http://a.test/p;jsessionid=AB12?SID=1", params)
    'http://a.test/p'
    >>> dedupe_key("http://a.test/p?id=3", params)
    'http://a.test/p?id=3'
    """
    if not session_params:
        return url
    base, sep, query = url.partition("?")
    semi = base.find(";", base.find("//") + 2)
    if semi >= 0 and base[semi + 1 :].partition("=")[0].lower() in session_params:
        base = base[:semi]
    if sep:
        kept = [p for p in query.split("&") if p.partition("=")[0].lower() not in session_params]
        query = "&".join(kept)
    return f"{base}?{query}" if query else base


class SeenCache:
    """URLs a worker knows to be in the frontier, in a fixed number of bytes.

    A direct-mapped table of 64-bit string hashes: a new URL overwrites whichever shares its
    slot, so memory never grows (a forgotten URL costs one more look-up in Redis, which
    dedupes exactly). A false hit needs two URLs with the same 64-bit hash.

    >>> cache = SeenCache(1024)
    >>> cache.add("http://a.test/"), cache.add("http://a.test/"), "http://a.test/" in cache
    (True, False, True)
    >>> cache.nbytes
    1024
    """

    def __init__(self, nbytes: int) -> None:
        slots = 1 << max(3, (max(nbytes, 64) // 8).bit_length() - 1)
        self.mask = slots - 1
        self.table = array("q", bytes(8 * slots))

    @property
    def nbytes(self) -> int:
        return len(self.table) * self.table.itemsize

    def __contains__(self, url: str) -> bool:
        h = hash(url) or 1  # 0 marks an empty slot
        return self.table[h & self.mask] == h

    def add(self, url: str) -> bool:
        """Remember ``url``; False if it was already there."""
        h = hash(url) or 1
        i = h & self.mask
        if self.table[i] == h:
            return False
        self.table[i] = h
        return True
