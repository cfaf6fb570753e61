"""Deterministic sample webs for loopback crawls, with the links a crawler must find on them.

Three builders share one page model:

* :func:`build_test_web` -- end-to-end tests: 4 page templates and every edge case the link
  extractor must handle (see :data:`EDGE_CASES` and ``SampleWeb.features``);
* :func:`build_demo_web` -- ``linkcrawl demo``: the same kind of web on 36 friendly host names;
* :func:`build_benchmark_web` -- throughput: >= 100 hosts x 80 pages, ~30-60 links per page,
  URL variants (tracking parameters, fragments, ...) of the same pages, like real sites.

Every link is written as an href *variant* of a canonical target URL (relative, ``../``, with
a fragment, with ``utm_*``, ``HTTP://HOST``, ``:80``, via ``<base href>``...), and the expectation
is the canonical URL the generator meant -- nothing here parses or normalizes URLs.

Conventions of the expectations (:class:`ExpectedLink`):

* ``target_url``: normalized per the README (lowercase scheme/host, punycode, no default port, no
  fragment, dot segments resolved, tracking parameters removed, parameters sorted by key).
* ``anchor_text``: the element's text content, whitespace collapsed (``&nbsp;`` counts as
  whitespace) and trimmed, entities decoded; when that is empty, the alt of the first ``<img>``
  inside (collapsed likewise), or "" (``is_image`` tells the two apart). ``<area>``: its alt.
* ``is_image``: the ``<a>`` contains an ``<img>``; always False for ``<area>``.
* ``placement``: the region the generator put the link in: logo, menus, breadcrumbs and
  pagination are ``nav``; blogroll, widgets, related/recent posts are ``sidebar``; comment author
  and comment body links are ``comment`` (they always carry rel ``ugc``); links outside any region
  (e.g. after a stray ``</html>``) are ``content``.
* Not links: ``javascript:``, ``mailto:``, ``tel:``, ``data:``, ``ftp:``, fragment-only and
  empty hrefs (but under a ``<base href>`` naming another document: links to it), ``<a>``
  without href, anything inside comments, ``<script>``, ``<template>``,
  ``<textarea>``, and ``<link>`` elements. Positions count only the links kept.
"""

from __future__ import annotations

import html
import itertools
import random
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from crawler.testweb.resource import Resource

_T = TypeVar("_T")

__all__ = [
    "EDGE_CASES",
    "HUGE_PAGE_FILLER_BYTES",
    "TEMPLATES",
    "TRACKING_PARAMS",
    "ExpectedLink",
    "ExpectedPage",
    "SampleWeb",
    "build_benchmark_web",
    "build_demo_web",
    "build_test_web",
]

TEMPLATES: tuple[str, ...] = ("html5", "wordpress", "hashed", "table")
TRACKING_PARAMS: tuple[str, ...] = (
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "gclid",
    "fbclid",
    "mc_cid",
    "mc_eid",
)
HUGE_PAGE_FILLER_BYTES = 3_000_000
HTML_UTF8 = "text/html; charset=utf-8"

#: Feature keys of ``SampleWeb.features`` that :func:`build_test_web` always covers.
EDGE_CASES: tuple[str, ...] = (
    "template_html5",
    "template_wordpress",
    "template_hashed",
    "template_table",
    "base_href",
    "relative_bare",
    "relative_dot",
    "relative_parent",
    "relative_query",
    "entities",
    "nested_markup",
    "whitespace_anchor",
    "image_link",
    "text_image_link",
    "image_link_no_alt",
    "rel_mixed_case",
    "rel_sponsored",
    "rel_ugc_comment",
    "link_title",
    "meta_robots_nofollow",
    "x_robots_nofollow",
    "non_links",
    "area_map",
    "link_in_comment",
    "link_in_script",
    "link_in_template",
    "uppercase_unquoted",
    "redirect_301",
    "redirect_302_chain",
    "robots_disallowed",
    "not_found",
    "pdf_file",
    "png_file",
    "windows_1251",
    "shift_jis",
    "huge_page",
    "malformed",
    "undecodable_bytes",
    "tracking_params",
    "fragment",
    "uppercase_scheme_host",
    "default_port",
    "dot_segments",
    "scheme_relative",
    "unsorted_query",
    "whitespace_href",
    "cross_seed_link",
    "external_link",
    "idn_host",
    "trailing_dot_host",
    "non_ascii_path",
    "same_domain_other_host",
    "redirect_script",
    "opaque_redirect",
    "shortener_link",
    "dead_external",
)


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpectedLink:
    """One link occurrence a crawler must extract (see the module docstring for conventions)."""

    target_url: str
    anchor_text: str
    rel: tuple[str, ...]
    nofollow: bool
    is_image: bool
    placement: str
    tag: str = "a"
    title: str | None = None
    href: str = field(default="", compare=False)  # the href as written, for debugging


@dataclass(frozen=True)
class ExpectedPage:
    """One served URL: what a crawler gets there and the links it must extract."""

    url: str
    status: int
    links: tuple[ExpectedLink, ...]
    redirect_to: str | None
    content_type: str  # the Content-Type header as served
    template: str  # html5 | wordpress | hashed | table | redirect | file | error
    disallowed: bool  # robots.txt disallows it: never fetched
    nofollow_page: bool  # meta robots or X-Robots-Tag nofollow
    title: str | None = None  # the document's <title>

    @property
    def is_html(self) -> bool:
        """Served as text/html."""
        return self.content_type.startswith("text/html")


@dataclass(frozen=True)
class SampleWeb:
    """A generated web: what to serve, and what a crawler must find there."""

    site: dict[str, dict[str, Resource]]  # host -> path+query -> Resource
    pages: dict[str, ExpectedPage]  # canonical URL -> page
    seeds: list[str]
    hosts: list[str]  # the served (seed) hosts
    features: dict[str, tuple[str, ...]] = field(default_factory=dict)  # edge case -> page URLs
    reachable: tuple[str, ...] = ()  # URLs a same-host crawler fetches, BFS order, no robots.txt
    depth: dict[str, int] = field(default_factory=dict)  # reachable URL -> min link depth
    templates: dict[str, str] = field(default_factory=dict)  # host -> template
    external_hosts: tuple[str, ...] = ()  # linked hosts that are not served (502)
    # Links through redirects: URL linked -> the URL it lands on (a seed site's page), for
    # /out?url= and /go/N scripts on seed hosts and a shortener off them.
    link_redirects: dict[str, str] = field(default_factory=dict)
    # Dead off-seed targets linked: URL -> how it dies ("404", "500", "dns": a name that
    # cannot resolve when the crawler is told not to use the proxy for it, see DNS_FAIL_HOST).
    dead_targets: dict[str, str] = field(default_factory=dict)

    def expected_link_rows(self) -> Iterator[tuple[str, ExpectedLink]]:
        """(source_url, link) for every link on every reachable 2xx HTML page."""
        pages = self.pages
        for url in self.reachable:
            page = pages[url]
            if 200 <= page.status < 300 and page.is_html and not page.disallowed:
                for link in page.links:
                    yield url, link

    def html_pages(self) -> list[ExpectedPage]:
        """The reachable 2xx HTML pages (those that yield link rows)."""
        return [
            p
            for p in (self.pages[u] for u in self.reachable)
            if 200 <= p.status < 300 and p.is_html and not p.disallowed
        ]


# ---------------------------------------------------------------------------------------------
# Words
# ---------------------------------------------------------------------------------------------

_ADJ = (
    "quick",
    "simple",
    "modern",
    "classic",
    "hidden",
    "honest",
    "tiny",
    "bold",
    "quiet",
    "green",
    "golden",
    "urban",
    "rustic",
    "clever",
    "fresh",
    "slow",
    "wild",
    "bright",
    "cozy",
    "practical",
    "forgotten",
    "seasonal",
)
_NOUN = (
    "guide",
    "garden",
    "kitchen",
    "journey",
    "market",
    "workshop",
    "library",
    "harbor",
    "studio",
    "recipe",
    "camera",
    "bicycle",
    "festival",
    "notebook",
    "village",
    "river",
    "museum",
    "theater",
    "planet",
    "orchard",
    "lighthouse",
    "bakery",
)
_TAIL = (
    "for beginners",
    "in ten steps",
    "that changed everything",
    "on a budget",
    "we love",
    "explained",
    "revisited",
    "at home",
    "for the weekend",
    "from scratch",
    "in winter",
    "after dark",
    "in practice",
    "for families",
)
_WORDS = (
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "we",
    "our",
    "with",
    "for",
    "on",
    "that",
    "this",
    "was",
    "it",
    "you",
    "can",
    "time",
    "day",
    "city",
    "light",
    "water",
    "people",
    "small",
    "great",
    "new",
    "old",
    "first",
    "last",
    "long",
    "little",
    "world",
    "year",
    "way",
    "work",
    "life",
    "part",
    "place",
    "week",
    "case",
    "point",
    "home",
    "story",
    "morning",
    "table",
    "window",
    "road",
    "season",
    "market",
    "bread",
    "music",
    "paper",
    "garden",
    "friend",
    "open",
    "simple",
    "careful",
    "quietly",
    "often",
    "really",
)
_CATS = (
    "news",
    "guides",
    "reviews",
    "recipes",
    "travel",
    "tips",
    "interviews",
    "events",
    "photos",
    "history",
)
_PEOPLE = (
    "alice",
    "bob",
    "chen",
    "dana",
    "emeka",
    "farah",
    "goran",
    "hana",
    "ivan",
    "julia",
    "kofi",
    "lena",
    "mateo",
    "nora",
    "oskar",
    "priya",
)
_WIDGET_TITLES = ("Blogroll", "Friends", "Elsewhere", "Links we like")
_CLASS_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
_CLASS_TABOO = (
    "nav",
    "menu",
    "foot",
    "side",
    "head",
    "comm",
    "main",
    "cont",
    "widg",
    "crumb",
    "page",
    "top",
    "bot",
    "link",
    "post",
    "aside",
    "bar",
    "art",
)

#: Served off-seed hosts of the test web's redirect and dead-link edge cases.
SHORTENER_HOST = "sho.example"
DEAD_HOST = "gone.example"  # answers 404 and 500
DNS_FAIL_HOST = "nxdomain.example"  # unknown to the server: set no_proxy for it to fail DNS

#: Off-seed sites that are linked but never served: (canonical URL, anchor text).
_EXTERNALS: tuple[tuple[str, str], ...] = (
    ("http://en.wiki.example/wiki/Main_Page", "Wiki"),
    ("https://social.example/", "Social network"),
    ("https://video.example/watch?v=dqw4", "A video"),
    ("http://maps.example/", "Maps"),
    ("https://code.example/linkcrawl", "Source code"),
    ("http://weather-service.example/forecast", "Weather forecast"),
    ("https://press.example/releases/2024", "Press release"),
    ("http://directory.example/listing/42", "Web directory"),
)
_CREDITS = {
    "html5": ("https://themes.example/html5-up/", "Theme by Themes Example"),
    "wordpress": ("https://wordpress.example/", "Proudly powered by WordPress"),
    "hashed": ("https://framework.example/", "Made with Framework"),
    "table": ("http://www.webring.example/", "Retro Webring"),
}
_ADS_URL = "https://ads.example/click?campaign=spring&id=7"

TEST_HOSTS: tuple[str, ...] = (
    "www.shop.test",
    "blog.shop.test",
    "news.example",
    "sport.news.example",
    "www.recipes.test",
    "forum.recipes.test",
    "travel.example",
    "www.travel.example",
    "docs.devtools.test",
    "www.devtools.test",
    "garden.example",
    "music.test",
    "photo.example",
    "www.science.test",
    "kids.science.test",
    "cars.example",
    "oldweb.test",
    "retro.oldweb.test",
    "books.example",
    "www.finance.test",
    "weather.example",
    "games.test",
    "pets.example",
    "www.history.test",
)
DEMO_HOSTS: tuple[str, ...] = (
    "news.example",
    "www.news.example",
    "blog-1.test",
    "sports.news.example",
    "blog-2.test",
    "blog-3.test",
    "shop.example",
    "www.shop.example",
    "recipes.test",
    "forum.recipes.test",
    "travel.example",
    "photos.travel.example",
    "weather.example",
    "music.test",
    "books.example",
    "blog-4.test",
    "garden.test",
    "cars.example",
    "pets.test",
    "science.example",
    "kids.science.example",
    "history.test",
    "finance.example",
    "jobs.example",
    "movies.test",
    "games.example",
    "blog-5.test",
    "tech.example",
    "docs.tech.example",
    "art.test",
    "health.example",
    "school.test",
    "city.example",
    "events.city.example",
    "blog-6.test",
    "radio.example",
)
_MIN_EDGE_HOSTS = 8


# ---------------------------------------------------------------------------------------------
# URLs (only string assembly: the generator knows each canonical target it meant)
# ---------------------------------------------------------------------------------------------


def _split(url: str) -> tuple[str, str, str]:
    """Canonical ``scheme://host/path?query`` -> (scheme, host, path?query)."""
    scheme, _, rest = url.partition("://")
    host, _, pq = rest.partition("/")
    return scheme, host, "/" + pq


def _host_of(url: str) -> str:
    return url.partition("://")[2].partition("/")[0]


def _with_query(path: str, **params: str) -> str:
    """``path`` with its query parameters in canonical (sorted) order."""
    if not params:
        return path
    return path + "?" + "&".join(f"{k}={v}" for k, v in sorted(params.items()))


def _rel(base_pq: str, target_pq: str) -> str:
    """A path-relative reference from document ``base_pq`` to ``target_pq`` (same origin)."""
    bpath = base_pq.partition("?")[0]
    tpath, sep, tquery = target_pq.partition("?")
    bsegs = bpath[: bpath.rfind("/") + 1].split("/")[1:-1]
    tcut = tpath.rfind("/") + 1
    tsegs = tpath[:tcut].split("/")[1:-1]
    name = tpath[tcut:]
    common = 0
    while common < min(len(bsegs), len(tsegs)) and bsegs[common] == tsegs[common]:
        common += 1
    rest = "".join(s + "/" for s in tsegs[common:]) + name
    ref = "../" * (len(bsegs) - common) + rest
    if not ref or ":" in ref.partition("/")[0]:
        ref = "./" + ref
    return ref + sep + tquery


def _add_params(href: str, extra: Sequence[tuple[str, str]], rng: random.Random) -> str:
    path, _, query = href.partition("?")
    params = [tuple(p.split("=", 1)) for p in query.split("&")] if query else []
    for item in extra:
        params.insert(rng.randint(0, len(params)), item)
    return path + "?" + "&".join(f"{k}={v}" for k, v in params)


_TRACKING_SETS: tuple[tuple[tuple[str, str], ...], ...] = (
    (("utm_source", "newsletter"), ("utm_medium", "email")),
    (("utm_source", "twitter"), ("utm_campaign", "spring-sale")),
    (("utm_content", "sidebar"), ("utm_term", "tips"), ("utm_medium", "cpc")),
    (("gclid", "EAIaIQobChMI8x"),),
    (("fbclid", "IwAR2xQ7pz"),),
    (("mc_cid", "4f2a1b"), ("mc_eid", "9c8d7e")),
)
_FRAGMENTS = ("#comments", "#top", "#section-2", "#respond", "#main", "#more")
VARIANTS: tuple[str, ...] = (
    "abs",
    "root",
    "rel",
    "dot",
    "frag",
    "utm",
    "upper",
    "port",
    "noslash",
    "schemerel",
    "dots",
    "unsorted",
    "ws",
    "query",
)


def _href(target: str, base: str, kind: str, rng: random.Random) -> str:
    """Write ``target`` (canonical) as an href of variant ``kind`` on a page whose base is
    ``base``. Variants that do not apply fall back to a form that does."""
    if kind == "abs":
        return target
    if kind == "root":  # the most common case, kept cheap
        bscheme, _, rest = base.partition("://")
        origin_len = len(bscheme) + 3 + rest.find("/")
        if target[:origin_len] == base[:origin_len] and target[origin_len : origin_len + 1] == "/":
            return target[origin_len:]
        return target
    scheme, host, pq = _split(target)
    bscheme, bhost, bpq = _split(base)
    same = scheme == bscheme and host == bhost
    if kind in ("rel", "dot", "query"):
        if not same:
            return target
        if kind == "query" and "?" in pq and pq.partition("?")[0] == bpq.partition("?")[0]:
            return "?" + pq.partition("?")[2]
        ref = _rel(bpq, pq)
        if kind == "dot" and not ref.startswith("."):
            ref = "./" + ref
        return ref
    if kind == "frag":
        return (pq if same and rng.random() < 0.6 else target) + _pick(rng, _FRAGMENTS)
    if kind == "utm":
        written = pq if same and rng.random() < 0.5 else target
        written = _add_params(written, _pick(rng, _TRACKING_SETS), rng)
        return written + (_pick(rng, _FRAGMENTS) if rng.random() < 0.25 else "")
    if kind == "upper":
        return f"{scheme.upper()}://{host.upper()}{pq}"
    if kind == "port":
        return f"{scheme}://{host}:{80 if scheme == 'http' else 443}{pq}"
    if kind == "noslash":
        return f"{scheme}://{host}" + ("" if pq == "/" else pq)
    if kind == "schemerel":
        return f"//{host}{pq}" if scheme == bscheme else target
    if kind == "dots":
        path, sep, query = pq.partition("?")
        segs = path.split("/")
        at = rng.randint(1, len(segs) - 1)
        segs.insert(at, _pick(rng, (".", "x/..", "./archive/..")))
        return (
            "/".join(segs) + sep + query
            if same
            else f"{scheme}://{host}" + "/".join(segs) + sep + query
        )
    if kind == "unsorted":
        path, sep, query = pq.partition("?")
        params = query.split("&") if query else []
        written = path + ("?" + "&".join(reversed(params)) if len(params) > 1 else sep + query)
        return written if same else f"{scheme}://{host}{written}"
    if kind == "ws":
        return "  " + (pq if same else target) + " \n"
    return target  # "abs"


def _href_features(href: str, kind: str, target: str) -> list[str]:
    feats: list[str] = []
    if href[:1] not in ("/", "#") and "://" not in href and not href.startswith(" "):
        if href.startswith("?"):
            feats.append("relative_query")
        elif "../" in href:
            feats.append("relative_parent")
        elif href.startswith("./"):
            feats.append("relative_dot")
        else:
            feats.append("relative_bare")
    extra = {
        "frag": "fragment",
        "upper": "uppercase_scheme_host",
        "port": "default_port",
        "schemerel": "scheme_relative",
        "dots": "dot_segments",
        "ws": "whitespace_href",
    }
    if kind in extra:
        feats.append(extra[kind])
    if "#" in href:
        feats.append("fragment")
    if kind == "utm" or any(f"{p}=" in href for p in ("utm_", "gclid", "fbclid", "mc_cid")):
        feats.append("tracking_params")
    if kind == "unsorted" and href.count("&") and "?" in target:
        feats.append("unsorted_query")
    return feats


# ---------------------------------------------------------------------------------------------
# Page building
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _L:
    """A link to write: canonical ``target`` and how to write it."""

    target: str
    text: str  # expected anchor text
    inner: str | None = None  # raw inner HTML (default: the escaped text)
    kind: str = "root"  # href variant (see _href), unless ``href`` is given
    href: str | None = None
    rel: str | None = None  # the rel attribute exactly as written
    title: str | None = None
    is_image: bool = False
    tag: str = "a"
    open_tag: str | None = None  # a raw opening tag (must contain ``href``)
    close: str | None = None
    attrs: str = ""
    static: bool = False  # the same object on every page of a host: memoizable


_Item = str | _L


@dataclass(slots=True)
class _Comment:
    name: str
    link: _L | None
    body: list[_Item]
    permalink: _L | None = None


@dataclass
class _Ctx:
    """What a template renders: the regions of one page."""

    title: str
    site: str
    logo: _L
    menu: list[_L]
    branding: list[_L] = field(default_factory=list)
    crumbs: list[_L] = field(default_factory=list)
    content: list[_Item] = field(default_factory=list)
    pager: list[_Item] = field(default_factory=list)
    comments: list[_Comment] = field(default_factory=list)
    widgets: list[tuple[str, list[_L]]] = field(default_factory=list)
    footer: list[_Item] = field(default_factory=list)
    head: str = ""  # extra raw <head> markup
    charset_meta: str | None = "utf-8"
    lang: str = "en"
    tail: list[_Item] = field(default_factory=list)  # after the footer, before </body>
    classes: dict[str, str] = field(default_factory=dict)


_object_new = object.__new__


def _pick(rng: random.Random, seq: Sequence[_T]) -> _T:
    """rng.choice, cheaper (one random() call)."""
    return seq[int(rng.random() * len(seq))]


def _new_link(
    target_url: str,
    anchor_text: str,
    rel: tuple[str, ...],
    nofollow: bool,
    is_image: bool,
    placement: str,
    tag: str,
    title: str | None,
    href: str,
) -> ExpectedLink:
    """ExpectedLink(...) without the frozen-dataclass __init__ (3x faster; same object)."""
    link = _object_new(ExpectedLink)
    link.__dict__.update(
        target_url=target_url,
        anchor_text=anchor_text,
        rel=rel,
        nofollow=nofollow,
        is_image=is_image,
        placement=placement,
        tag=tag,
        title=title,
        href=href,
    )
    return link


def _escape(text: str, quote: bool = True) -> str:
    """html.escape, with a fast path for the common text that needs none."""
    if "&" in text or "<" in text or ">" in text or (quote and ('"' in text or "'" in text)):
        return html.escape(text, quote)
    return text


_UNQUOTED_SAFE = frozenset("\"'=<>` \t\n\r\f")


class _Page:
    """Accumulates one document's markup and the links it holds, in document order."""

    __slots__ = (
        "base",
        "base_dir",
        "base_path",
        "features",
        "links",
        "memo",
        "nofollow",
        "parts",
        "rng",
        "upper",
        "url",
    )

    def __init__(
        self,
        url: str,
        rng: random.Random,
        *,
        base: str | None = None,
        nofollow: bool = False,
        upper: bool = False,
        features: dict[str, list[str]] | None = None,
        memo: dict[tuple[object, ...], tuple[str, ExpectedLink]] | None = None,
    ) -> None:
        self.url = url
        self.base = base or url
        self.base_path = self.base.partition("?")[0]
        self.base_dir = self.base_path[: self.base_path.rfind("/") + 1]
        self.rng = rng
        self.nofollow = nofollow
        self.upper = upper
        self.parts: list[str] = []
        self.links: list[ExpectedLink] = []
        self.features = features
        self.memo = memo

    def w(self, markup: str) -> None:
        self.parts.append(markup)

    def emit(self, items: Sequence[_Item], placement: str) -> None:
        for item in items:
            if type(item) is str:
                self.parts.append(item)
            else:
                self.link(item, placement)  # type: ignore[arg-type]

    def feature(self, name: str) -> None:
        if self.features is not None:
            urls = self.features.setdefault(name, [])
            if not urls or urls[-1] != self.url:
                urls.append(self.url)

    def link(self, lk: _L, placement: str) -> None:
        memo = self.memo
        key: tuple[object, ...] = ()
        if memo is not None and lk.static:
            kind = lk.kind
            where = (
                self.base_dir
                if kind in ("rel", "dot")
                else self.base_path
                if kind == "query"
                else ""
            )
            key = (id(lk), placement, self.nofollow, self.upper, where)
            hit = memo.get(key)
            if hit is not None:
                self.parts.append(hit[0])
                self.links.append(hit[1])
                return
        href = lk.href if lk.href is not None else _href(lk.target, self.base, lk.kind, self.rng)
        if lk.open_tag is not None:
            opening = lk.open_tag
        else:
            esc = _escape(href)
            if self.upper:
                value = esc if esc and not _UNQUOTED_SAFE.intersection(esc) else f'"{esc}"'
                opening = f"<A HREF={value}"
                if lk.rel is not None:
                    opening += f' REL="{lk.rel}"'
                if lk.title is not None:
                    opening += f' TITLE="{html.escape(lk.title)}"'
            else:
                opening = f'<a href="{esc}"'
                if lk.rel is not None:
                    opening += f' rel="{lk.rel}"'
                if lk.title is not None:
                    opening += f' title="{html.escape(lk.title)}"'
            opening += lk.attrs + ">"
        inner = lk.inner if lk.inner is not None else _escape(lk.text, quote=False)
        close = lk.close if lk.close is not None else ("</A>" if self.upper else "</a>")
        markup = opening + inner + close
        self.parts.append(markup)
        rel = tuple(t.lower() for t in lk.rel.split()) if lk.rel else ()
        exp = _new_link(
            lk.target,
            lk.text,
            rel,
            self.nofollow or "nofollow" in rel,
            lk.is_image,
            placement,
            lk.tag,
            lk.title,
            href,
        )
        self.links.append(exp)
        if key:
            memo[key] = (markup, exp)  # type: ignore[index]
        if self.features is not None:
            if placement == "comment" and "ugc" in rel:
                self.feature("rel_ugc_comment")
            for name in _href_features(href, lk.kind if lk.href is None else "", lk.target):
                self.feature(name)

    def top_link(self, placement: str) -> None:
        """``<a href="#top">``: no link on a page whose base is itself; under a ``<base href>``
        naming another document, a link to that document (a browser resolves it there)."""
        if self.base == self.url:
            self.parts.append('<a href="#top">Back to top</a>')
        else:
            self.link(_L(self.base, "Back to top", href="#top"), placement)

    def html(self) -> str:
        return "".join(self.parts)


# ---------------------------------------------------------------------------------------------
# Templates: each writes a whole document, regions in its own document order
# ---------------------------------------------------------------------------------------------


def _charset(ctx: _Ctx) -> str:
    return f'<meta charset="{ctx.charset_meta}">\n' if ctx.charset_meta else ""


def _render_html5(p: _Page, c: _Ctx) -> None:
    p.w(
        f'<!DOCTYPE html>\n<html lang="{c.lang}">\n<head>\n{_charset(c)}'
        f"<title>{html.escape(c.title)} | {html.escape(c.site)}</title>\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="stylesheet" href="/static/site.css">\n'
        f'<link rel="alternate" type="application/rss+xml" href="/feed.xml">\n{c.head}</head>\n'
        '<body>\n<header class="site-header">\n'
    )
    p.link(c.logo, "nav")
    p.w('\n<nav class="menu" aria-label="Main"><ul>\n')
    for lk in c.menu:
        p.w("<li>")
        p.link(lk, "nav")
        p.w("</li>\n")
    p.w("</ul></nav>\n</header>\n<main>\n")
    if c.crumbs:
        p.w('<nav class="breadcrumbs" aria-label="Breadcrumb">')
        for i, lk in enumerate(c.crumbs):
            p.w(" &rsaquo; " if i else "")
            p.link(lk, "nav")
        p.w("</nav>\n")
    p.w(f"<article>\n<h1>{html.escape(c.title)}</h1>\n")
    p.emit(c.content, "content")
    p.w("\n</article>\n")
    if c.pager:
        p.w('<nav class="pagination" aria-label="Pages">')
        p.emit(c.pager, "nav")
        p.w("</nav>\n")
    if c.comments:
        p.w(f'<section id="comments">\n<h2>{len(c.comments)} comments</h2>\n<ol>\n')
        for cm in c.comments:
            p.w('<li class="comment"><p class="author">')
            if cm.link is not None:
                p.link(cm.link, "comment")
            else:
                p.w(html.escape(cm.name))
            p.w(" wrote:</p>\n<div>")
            p.emit(cm.body, "comment")
            p.w("</div></li>\n")
        p.w("</ol>\n</section>\n")
    p.w("</main>\n<aside>\n")
    for title, links in c.widgets:
        p.w(f'<section class="box"><h3>{html.escape(title)}</h3><ul>\n')
        for lk in links:
            p.w("<li>")
            p.link(lk, "sidebar")
            p.w("</li>\n")
        p.w("</ul></section>\n")
    p.w("</aside>\n<footer>\n<p>")
    p.emit(c.footer, "footer")
    p.w(" ")
    p.top_link("footer")
    p.w("</p>\n</footer>\n")
    p.emit(c.tail, "content")
    p.w("</body>\n</html>\n")


def _render_wordpress(p: _Page, c: _Ctx) -> None:
    p.w(
        f'<!DOCTYPE html>\n<html lang="{c.lang}-US">\n<head>\n{_charset(c)}'
        f"<title>{html.escape(c.title)} &#8211; {html.escape(c.site)}</title>\n"
        "<link rel='stylesheet' id='theme-style-css' href='/wp-content/themes/twentyx/style.css"
        '?ver=6.4\' media=\'all\' />\n<link rel="pingback" href="/xmlrpc.php">\n'
        f'{c.head}</head>\n<body class="wp-singular post-template-default">\n'
        '<div id="page" class="hfeed site">\n'
        '<a class="skip-link screen-reader-text" href="#content">Skip to content</a>\n'
        '<div id="masthead" class="site-header">\n<div class="site-branding">'
    )
    p.link(c.logo, "nav")
    for lk in c.branding:
        p.w('<p class="site-title">')
        p.link(lk, "nav")
        p.w("</p>")
    p.w(
        '</div>\n<div id="site-navigation" class="main-navigation"><div class="menu-primary-'
        'container"><ul id="primary-menu" class="menu">\n'
    )
    for i, lk in enumerate(c.menu):
        p.w(f'<li id="menu-item-{10 + i}" class="menu-item menu-item-type-custom">')
        p.link(lk, "nav")
        p.w("</li>\n")
    p.w(
        '</ul></div></div>\n</div>\n<div id="content" class="site-content">\n'
        '<div id="primary" class="content-area"><div id="main" class="site-main">\n'
    )
    if c.crumbs:
        p.w('<div class="breadcrumbs" typeof="BreadcrumbList">')
        for i, lk in enumerate(c.crumbs):
            p.w(" &raquo; " if i else "")
            p.link(lk, "nav")
        p.w("</div>\n")
    p.w(
        '<div class="post type-post status-publish hentry">\n<div class="entry-header">'
        f'<h1 class="entry-title">{html.escape(c.title)}</h1></div>\n<div class="entry-content">'
        "\n"
    )
    p.emit(c.content, "content")
    p.w("\n</div>\n</div>\n")
    if c.pager:
        p.w('<div class="navigation pagination"><div class="nav-links">')
        p.emit(c.pager, "nav")
        p.w("</div></div>\n")
    if c.comments:
        p.w(
            '<div id="comments" class="comments-area">\n<h2 class="comments-title">'
            f"{len(c.comments)} thoughts on &ldquo;{html.escape(c.title)}&rdquo;</h2>\n"
            '<ol class="comment-list">\n'
        )
        for cm in c.comments:
            p.w(
                '<li class="comment even thread-even depth-1"><div class="comment-body">'
                '<div class="comment-author vcard"><b class="fn">'
            )
            if cm.link is not None:
                p.link(cm.link, "comment")
            else:
                p.w(html.escape(cm.name))
            p.w('</b> <span class="says">says:</span></div>\n<div class="comment-metadata">')
            if cm.permalink is not None:
                p.link(cm.permalink, "comment")
            p.w('</div>\n<div class="comment-content">')
            p.emit(cm.body, "comment")
            p.w("</div></div></li>\n")
        p.w("</ol>\n</div>\n")
    p.w('</div></div>\n<div id="secondary" class="widget-area">\n')
    for i, (title, links) in enumerate(c.widgets):
        p.w(
            f'<div id="block-{i + 2}" class="widget widget_links"><h2 class="widget-title">'
            f"{html.escape(title)}</h2><ul>\n"
        )
        for lk in links:
            p.w("<li>")
            p.link(lk, "sidebar")
            p.w("</li>\n")
        p.w("</ul></div>\n")
    p.w('</div>\n</div>\n<div id="colophon" class="site-footer"><div class="site-info">\n')
    p.emit(c.footer, "footer")
    p.w("\n</div></div>\n</div>\n")
    p.emit(c.tail, "content")
    p.w("</body>\n</html>\n")


def _render_hashed(p: _Page, c: _Ctx) -> None:
    k = c.classes
    p.w(
        f'<!DOCTYPE html>\n<html lang="{c.lang}">\n<head>\n{_charset(c)}'
        f"<title>{html.escape(c.title)} - {html.escape(c.site)}</title>\n"
        f'<link rel="preload" href="/_next/static/app.js" as="script">\n{c.head}</head>\n'
        f'<body><div id="__next"><div class="{k["root"]}">\n<div class="{k["top"]}">'
    )
    p.link(c.logo, "nav")
    p.w(f'<div class="{k["menu"]}">')
    for lk in c.menu:
        p.link(lk, "nav")
    p.w(f'</div></div>\n<div class="{k["cols"]}">\n<div class="{k["main"]}">\n')
    if c.crumbs:
        p.w(f'<div class="{k["crumbs"]}">')
        for i, lk in enumerate(c.crumbs):
            p.w(" / " if i else "")
            p.link(lk, "nav")
        p.w("</div>\n")
    p.w(f'<h1 class="{k["h1"]}">{html.escape(c.title)}</h1>\n<div class="{k["body"]}">\n')
    p.emit(c.content, "content")
    p.w("\n</div>\n")
    if c.pager:
        p.w(f'<div class="{k["pager"]}">')
        p.emit(c.pager, "nav")
        p.w("</div>\n")
    if c.comments:
        p.w(f'<div class="{k["comments"]}">\n')
        for cm in c.comments:
            p.w(f'<div class="{k["comment"]}"><div class="{k["who"]}">')
            if cm.link is not None:
                p.link(cm.link, "comment")
            else:
                p.w(html.escape(cm.name))
            p.w(f'</div><div class="{k["text"]}">')
            p.emit(cm.body, "comment")
            p.w("</div></div>\n")
        p.w("</div>\n")
    p.w(f'</div>\n<div class="{k["side"]}">\n')
    for title, links in c.widgets:
        p.w(f'<div class="{k["box"]}"><div class="{k["boxtitle"]}">{html.escape(title)}</div>')
        for lk in links:
            p.w(f'<div class="{k["row"]}">')
            p.link(lk, "sidebar")
            p.w("</div>")
        p.w("</div>\n")
    p.w(f'</div>\n</div>\n<div class="{k["bottom"]}">')
    p.emit(c.footer, "footer")
    p.w("</div>\n</div></div>\n")
    p.emit(c.tail, "content")
    p.w("</body>\n</html>\n")


def _render_table(p: _Page, c: _Ctx) -> None:
    meta = (
        f'<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset={c.charset_meta}">\n'
        if c.charset_meta
        else ""
    )
    p.w(
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN">\n<HTML>\n<HEAD>\n'
        f"{meta}<TITLE>{html.escape(c.title)} - {html.escape(c.site)}</TITLE>\n{c.head}</HEAD>\n"
        '<BODY BGCOLOR="#FFFFFF" TEXT="#000000" LINK="#0000EE">\n'
        '<TABLE WIDTH="100%" BORDER=0 CELLPADDING=4 CELLSPACING=0>\n'
        '<TR><TD COLSPAN=2 BGCOLOR="#000080">'
    )
    p.link(c.logo, "nav")
    p.w(" <FONT COLOR=white>")
    for i, lk in enumerate(c.menu):
        p.w(" | " if i else "")
        p.link(lk, "nav")
    p.w('</FONT></TD></TR>\n<TR><TD WIDTH=180 VALIGN=top BGCOLOR="#EEEEEE">\n')
    for title, links in c.widgets:
        p.w(f"<B>{html.escape(title)}</B><BR>\n")
        for lk in links:
            p.link(lk, "sidebar")
            p.w("<BR>\n")
        p.w("<BR>\n")
    p.w("</TD>\n<TD VALIGN=top>\n")
    if c.crumbs:
        p.w("<SMALL>")
        for i, lk in enumerate(c.crumbs):
            p.w(" &gt; " if i else "")
            p.link(lk, "nav")
        p.w("</SMALL>\n")
    p.w(f"<H1>{html.escape(c.title)}</H1>\n")
    p.emit(c.content, "content")
    if c.pager:
        p.w("\n<P ALIGN=center>")
        p.emit(c.pager, "nav")
        p.w("</P>\n")
    if c.comments:
        p.w("<HR><B>Guestbook</B>\n<TABLE BORDER=1 CELLPADDING=3>\n")
        for cm in c.comments:
            p.w("<TR><TD>")
            if cm.link is not None:
                p.link(cm.link, "comment")
            else:
                p.w(html.escape(cm.name))
            p.w(" wrote:<BR>")
            p.emit(cm.body, "comment")
            p.w("</TD></TR>\n")
        p.w("</TABLE>\n")
    p.w("</TD></TR>\n<TR><TD COLSPAN=2 ALIGN=center><FONT SIZE=1>")
    p.emit(c.footer, "footer")
    p.w("</FONT></TD></TR>\n</TABLE>\n")
    p.emit(c.tail, "content")
    p.w("</BODY>\n</HTML>\n")


_RENDER = {
    "html5": _render_html5,
    "wordpress": _render_wordpress,
    "hashed": _render_hashed,
    "table": _render_table,
}
_NAV_KIND = {"html5": "root", "wordpress": "abs", "hashed": "root", "table": "rel"}


# ---------------------------------------------------------------------------------------------
# The web builder
# ---------------------------------------------------------------------------------------------


@dataclass
class _Sitewide:
    logo: _L
    menu: list[_L]
    branding: list[_L]
    head_widgets: list[tuple[str, list[_L]]]
    tail_widgets: list[tuple[str, list[_L]]]
    footer: list[_Item]


@dataclass
class _Article:
    url: str
    title: str
    category: int


@dataclass
class _Host:
    index: int
    name: str
    template: str
    site_title: str
    home: str
    about: str
    privacy: str
    categories: list[tuple[str, str]]  # (label, url)
    articles: list[_Article]
    listing: list[str]  # listing page URLs; [0] is the home page
    classes: dict[str, str]
    specials: list[tuple[str, str]] = field(default_factory=list)  # (url, anchor) on home
    disallow: list[str] = field(default_factory=list)
    blogroll: list[_L] = field(default_factory=list)
    sister: str | None = None  # home of another host of the same registered domain
    sponsored: bool = False
    sitewide: _Sitewide | None = None

    def url(self, pq: str) -> str:
        return f"http://{self.name}{pq}"


def _site_title(host: str) -> str:
    labels = [x for x in host.split(".")[:-1] if x != "www"]
    return " ".join(x.replace("-", " ").title() for x in reversed(labels)) or host


def _domain(host: str) -> str:
    return ".".join(host.split(".")[-2:])


class _Builder:
    """Plans hosts, renders every page, and records the expectations."""

    def __init__(
        self, names: Sequence[str], articles_per_host: int, seed: int, *, bench: bool
    ) -> None:
        if articles_per_host < 1:
            raise ValueError("pages_per_host must be >= 1")
        self.rng = random.Random(seed)
        self.bench = bench
        self.per_page = 10 if bench else 4
        self.site: dict[str, dict[str, Resource]] = {}
        self.pages: dict[str, ExpectedPage] = {}
        self.features: dict[str, list[str]] | None = None if bench else {}
        self.externals: dict[str, None] = {}
        self.link_redirects: dict[str, str] = {}
        self.dead_targets: dict[str, str] = {}
        self.hosts = [self._plan(i, name, articles_per_host) for i, name in enumerate(names)]
        self.served = frozenset(names)
        by_domain: dict[str, list[_Host]] = {}
        for h in self.hosts:
            by_domain.setdefault(_domain(h.name), []).append(h)
        for group in by_domain.values():
            for i, h in enumerate(group):
                if len(group) > 1:
                    h.sister = group[(i + 1) % len(group)].home
        order = list(range(len(self.hosts)))
        self.rng.shuffle(order)
        weights = [0.0] * len(self.hosts)
        for rank, i in enumerate(order):
            weights[i] = 1.0 / (rank + 1)
        self.cum_weights = list(itertools.accumulate(weights))
        self.memo: dict[tuple[object, ...], tuple[str, ExpectedLink]] | None = {} if bench else None
        self.sentences = []
        for _ in range(1500):
            s = " ".join(self.rng.choices(_WORDS, k=self.rng.randint(3, 14)))
            self.sentences.append(s[0].upper() + s[1:])

    # -- planning ------------------------------------------------------------------------------

    def _plan(self, index: int, name: str, n_articles: int) -> _Host:
        rng = self.rng
        template = TEMPLATES[index % 4]
        n_cats = 4 if self.bench else 2
        cats = rng.sample(_CATS, n_cats)
        arts: list[_Article] = []
        for i in range(n_articles):
            title = f"{_pick(rng, _ADJ).title()} {_pick(rng, _NOUN)} {_pick(rng, _TAIL)}"
            if i % 7 == 3:
                title = "Tips & tricks: " + title.lower()
            slug = "-".join(title.lower().replace("&", "and").replace(":", "").split()[:4])
            slug = f"{slug}-{i + 1}"
            cat = i % n_cats
            pq = {
                "html5": f"/articles/{slug}.html",
                "wordpress": f"/2024/{1 + i % 12:02d}/{slug}/",
                "hashed": f"/p/{slug}-{1000 + 7 * i}",
                "table": f"/docs/{cats[cat]}/{slug}.html",
            }[template]
            arts.append(_Article(f"http://{name}{pq}", title, cat))
        n_listing = max(1, -(-n_articles // self.per_page))
        base = f"http://{name}"
        listing = [base + "/"]
        for k in range(2, n_listing + 1):
            listing.append(
                base
                + {
                    "html5": f"/page/{k}/",
                    "wordpress": f"/page/{k}/",
                    "hashed": _with_query("/", p=str(k)),
                    "table": _with_query("/", page=str(k)),
                }[template]
            )
        cat_pq = {
            "html5": "/topics/{}/",
            "wordpress": "/category/{}/",
            "hashed": "/c/{}",
            "table": "/docs/{}/",
        }[template]
        about, privacy = {
            "html5": ("/about/", "/privacy/"),
            "wordpress": ("/about/", "/privacy-policy/"),
            "hashed": ("/about", "/legal/privacy"),
            "table": ("/about.html", "/privacy.html"),
        }[template]
        classes: dict[str, str] = {}
        if template == "hashed":
            for key in (
                "root",
                "top",
                "menu",
                "cols",
                "main",
                "crumbs",
                "h1",
                "body",
                "pager",
                "comments",
                "comment",
                "who",
                "text",
                "side",
                "box",
                "boxtitle",
                "row",
                "bottom",
                "logo",
            ):
                classes[key] = self._hashed_class()
        host = _Host(
            index,
            name,
            template,
            _site_title(name),
            base + "/",
            base + about,
            base + privacy,
            [(c.title(), base + cat_pq.format(c)) for c in cats],
            arts,
            listing,
            classes,
            sponsored=index % 3 == 1,
        )
        if self.bench and index % 10 == 9:
            host.disallow.append("/private/")
        return host

    def _hashed_class(self) -> str:
        while True:
            name = "".join(self.rng.choices(_CLASS_CHARS, k=6))
            if not any(t in name for t in _CLASS_TABOO):
                break
        if self.rng.random() < 0.4:
            other = "".join(self.rng.choices(_CLASS_CHARS[:26], k=6))
            if not any(t in other for t in _CLASS_TABOO):
                return f"sc-{name} {other}"
        return f"css-{name}"

    # -- choosing targets ----------------------------------------------------------------------

    def _other_host(self, h: _Host) -> _Host:
        while True:
            other = self.rng.choices(self.hosts, cum_weights=self.cum_weights)[0]
            if other is not h or len(self.hosts) == 1:
                return other

    def _cross_link(self, h: _Host, kinds: Sequence[str] = ("abs",)) -> _L:
        """A link to another seed host (home or an article) or to an off-seed site."""
        rng = self.rng
        if rng.random() < 0.25:
            url, text = _pick(rng, _EXTERNALS)
            self.externals.setdefault(_host_of(url))
            return _L(url, text, kind=_pick(rng, kinds))
        other = self._other_host(h)
        if rng.random() < 0.4 or not other.articles:
            return _L(other.home, other.site_title, kind=_pick(rng, kinds))
        art = _pick(rng, other.articles)
        return _L(art.url, art.title, kind=_pick(rng, kinds))

    def _in_kind(self, h: _Host, variant_rate: float) -> str:
        rng = self.rng
        if rng.random() < variant_rate:
            if self.bench:
                return _pick(rng, ("frag", "utm", "utm", "frag", "abs", "root", "upper", "port"))
            return _pick(
                rng,
                (
                    "frag",
                    "utm",
                    "utm",
                    "frag",
                    "upper",
                    "port",
                    "dots",
                    "schemerel",
                    "abs",
                    "rel",
                    "dot",
                    "ws",
                ),
            )
        return _NAV_KIND[h.template]

    def _sentence(self) -> str:
        return _pick(self.rng, self.sentences)

    # -- regions -------------------------------------------------------------------------------

    def _sitewide(self, h: _Host) -> _Sitewide:
        """The regions every page of ``h`` shares (built once; their links are memoizable)."""
        if h.sitewide is not None:
            return h.sitewide
        nav = _NAV_KIND[h.template]
        alt = f"{h.site_title} logo"
        t = h.template
        if t == "table":
            logo = _L(
                h.home,
                alt,
                inner=f'<IMG SRC=/img/logo.gif ALT="{alt}" BORDER=0>',
                is_image=True,
                kind=nav,
            )
        elif t == "wordpress":
            logo = _L(
                h.home,
                alt,
                inner=f'<img width="200" height="60" src="/wp-content/'
                f'uploads/logo.png" class="custom-logo" alt="{alt}">',
                is_image=True,
                kind="abs",
                rel="home",
                attrs=' class="custom-logo-link"',
            )
        else:
            cls = h.classes.get("logo", "logo")
            logo = _L(
                h.home,
                alt,
                inner=f'<img src="/img/logo.png" alt="{alt}" width="120" height="40">',
                is_image=True,
                kind=nav,
                attrs=f' class="{cls}"',
            )
        menu = [_L(h.home, "Home", kind=nav)]
        menu += [_L(url, label, kind=nav) for label, url in h.categories]
        menu.append(_L(h.about, "About", kind=nav))
        branding = [_L(h.home, h.site_title, kind="abs", rel="home")] if t == "wordpress" else []
        head_widgets: list[tuple[str, list[_L]]] = []
        if h.blogroll:
            head_widgets.append((_WIDGET_TITLES[h.index % len(_WIDGET_TITLES)], h.blogroll))
        tail_widgets: list[tuple[str, list[_L]]] = []
        if h.sponsored:
            href = f"https://ads.example/click?id=7&utm_source={h.name}&campaign=spring"
            self.externals.setdefault("ads.example")
            tail_widgets.append(
                (
                    "Sponsored",
                    [_L(_ADS_URL, "Spring sale: 20% off", href=href, rel="sponsored noopener")],
                )
            )
        credit_url, credit_text = _CREDITS[t]
        self.externals.setdefault(_host_of(credit_url))
        footer: list[_Item] = [
            _L(h.about, "About us", kind=nav),
            " &middot; ",
            _L(h.privacy, "Privacy policy", kind=nav),
            " &middot; ",
            f'<a href="mailto:info@{h.name}">Contact</a> &middot; ',
        ]
        if t == "table":
            self.externals.setdefault("counter.example")
            footer += [
                _L(
                    "http://counter.example/c?id=77",
                    "Visitor counter",
                    inner='<IMG SRC="http://counter.example/img?id=77" ALT="Visitor counter"'
                    " WIDTH=88 HEIGHT=31>",
                    is_image=True,
                    kind="abs",
                ),
                " ",
            ]
        if h.sister is not None:
            other = _site_title(_host_of(h.sister))
            footer += [_L(h.sister, f"Visit {other}", kind="abs"), " &middot; "]
        footer += [_L(credit_url, credit_text, kind="abs"), f" &copy; 2024 {h.site_title}"]
        for lk in (
            logo,
            *menu,
            *branding,
            *h.blogroll,
            *footer,
            *(x for _, links in tail_widgets for x in links),
        ):
            if isinstance(lk, _L):
                lk.static = True
        h.sitewide = _Sitewide(logo, menu, branding, head_widgets, tail_widgets, footer)
        return h.sitewide

    def _ctx(
        self,
        h: _Host,
        title: str,
        *,
        crumbs: Sequence[_L] = (),
        widgets_extra: Sequence[tuple[str, list[_L]]] = (),
    ) -> _Ctx:
        sw = self._sitewide(h)
        return _Ctx(
            title=title,
            site=h.site_title,
            logo=sw.logo,
            menu=sw.menu,
            branding=sw.branding,
            crumbs=list(crumbs),
            classes=h.classes,
            widgets=[*sw.head_widgets, *widgets_extra, *sw.tail_widgets],
            footer=sw.footer,
        )

    def _related(self, h: _Host, exclude: str | None, n: int, title: str) -> tuple[str, list[_L]]:
        pool = [a for a in h.articles if a.url != exclude]
        picks = self.rng.sample(pool, min(n, len(pool)))
        return title, [_L(a.url, a.title, kind=self._in_kind(h, 0.2)) for a in picks]

    def _paragraphs(
        self, h: _Host, n: int, exclude: str | None, links_per_para: int
    ) -> list[_Item]:
        rng = self.rng
        items: list[_Item] = []
        pool = [a for a in h.articles if a.url != exclude] or h.articles
        for _ in range(n):
            items.append(f"<p>{self._sentence()}")
            for _ in range(rng.randint(0, links_per_para)):
                r = rng.random()
                if r < 0.55:
                    art = _pick(rng, pool)
                    text = (
                        art.title
                        if rng.random() < 0.6
                        else " ".join(rng.choices(_WORDS[20:], k=rng.randint(1, 3)))
                    )
                    lk = _L(art.url, text, kind=self._in_kind(h, 0.3))
                else:
                    lk = self._cross_link(h, ("abs", "abs", "abs", "utm", "frag", "upper"))
                items += [f" {_pick(rng, _WORDS)} ", lk, f" {self._sentence().lower()}"]
            items.append(".</p>\n")
        return items

    def _comments(self, h: _Host, page_url: str, n: int) -> list[_Comment]:
        rng = self.rng
        wp = h.template == "wordpress"
        out: list[_Comment] = []
        for i in range(n):
            name = _pick(rng, _PEOPLE).title()
            link: _L | None = None
            r = rng.random()
            if r < 0.55:
                self.externals.setdefault("social.example")
                link = _L(
                    f"https://social.example/@{name.lower()}",
                    name,
                    kind="abs",
                    rel="external nofollow ugc" if wp else "ugc nofollow",
                )
            elif r < 0.8:
                other = self._other_host(h)
                link = _L(
                    other.home,
                    name,
                    kind="abs",
                    rel="external nofollow ugc" if wp else "ugc nofollow",
                )
            body: list[_Item] = [f"<p>{self._sentence()}"]
            if rng.random() < 0.5:
                lk = self._cross_link(h)
                lk.rel = "nofollow ugc" if wp else "ugc nofollow"
                body += [" ", lk]
            body.append("</p>")
            cid = 100 + i
            permalink = (
                _L(
                    page_url,
                    f"March {i + 3}, 2024 at {9 + i}:15 am",
                    kind="abs",
                    href=f"{page_url}#comment-{cid}",
                )
                if wp
                else None
            )
            out.append(_Comment(name, link, body, permalink))
        return out

    # -- emitting pages ------------------------------------------------------------------------

    def _emit(
        self,
        h: _Host,
        url: str,
        ctx: _Ctx,
        *,
        base: str | None = None,
        nofollow: bool = False,
        headers: Sequence[tuple[str, str]] = (),
        encoding: str = "utf-8",
        content_type: str = HTML_UTF8,
        disallowed: bool = False,
        broken_bytes: bool = False,
    ) -> ExpectedPage:
        page = _Page(
            url,
            self.rng,
            base=base,
            nofollow=nofollow,
            upper=h.template == "table",
            features=self.features,
            memo=self.memo,
        )
        _RENDER[h.template](page, ctx)
        text = page.html()
        if broken_bytes:
            body = text.encode(encoding).replace("\ue000".encode(), b"\xff")
        else:
            body = text.encode(encoding)
        self._serve(url, Resource(200, body, (("Content-Type", content_type), *headers)))
        exp = ExpectedPage(
            url,
            200,
            tuple(page.links),
            None,
            content_type,
            h.template,
            disallowed,
            nofollow,
            f"{ctx.title} {_TITLE_SEP[h.template]} {ctx.site}",
        )
        self.pages[url] = exp
        if self.features is not None:
            page.feature(f"template_{h.template}")
            if h.template == "table":
                page.feature("uppercase_unquoted")
            if h.sister is not None:
                page.feature("same_domain_other_host")
            for lk in page.links:
                other = _host_of(lk.target_url)
                if other != h.name:
                    page.feature("cross_seed_link" if other in self.served else "external_link")
        return exp

    def _serve(self, url: str, res: Resource) -> None:
        _, host, pq = _split(url)
        self.site.setdefault(host, {})[pq] = res

    def _feature(self, name: str, url: str) -> None:
        if self.features is not None:
            urls = self.features.setdefault(name, [])
            if url not in urls:
                urls.append(url)

    # -- regular pages -------------------------------------------------------------------------

    def _regular(self, h: _Host) -> None:
        rng = self.rng
        bench = self.bench
        home_crumb = _L(h.home, "Home", kind=_NAV_KIND[h.template])
        n_list = len(h.listing)
        # Listing pages (home page first).
        for k, url in enumerate(h.listing):
            chunk = h.articles[k * self.per_page : (k + 1) * self.per_page]
            content: list[_Item] = [f"<p>{self._sentence()}.</p>\n<h2>Latest posts</h2>\n<ul>\n"]
            for art in chunk:
                content += [
                    "<li>",
                    _L(art.url, art.title, kind=self._in_kind(h, 0.1)),
                    f"<p>{self._sentence()}&hellip; ",
                ]
                if h.template == "wordpress":
                    content += [
                        _L(
                            art.url,
                            f"Continue reading \u201c{art.title}\u201d",
                            inner=f'Continue reading<span class="screen-reader-text"> '
                            f"&ldquo;{html.escape(art.title)}&rdquo;</span>",
                            kind="abs",
                            attrs=' class="more-link"',
                        )
                    ]
                content.append("</p></li>\n")
            content.append("</ul>\n")
            if k == 0 and h.specials:
                content.append("<h2>Also on this site</h2>\n<ul>\n")
                for surl, stext in h.specials:
                    content += ["<li>", _L(surl, stext, kind=_NAV_KIND[h.template]), "</li>\n"]
                content.append("</ul>\n")
            if k == 0:
                content += ["<p>Friends of the site: ", self._cross_link(h), ".</p>\n"]
            ctx = self._ctx(
                h,
                "Home" if k == 0 else f"Posts, page {k + 1}",
                widgets_extra=[self._related(h, None, 5 if bench else 3, "Recent posts")],
            )
            ctx.content = content
            if n_list > 1:
                ctx.pager = self._pager(h, k)
            self._emit(h, url, ctx)
        # Category pages.
        for ci, (label, url) in enumerate(h.categories):
            arts = [a for a in h.articles if a.category == ci]
            content = [f"<p>All posts filed under {html.escape(label)}.</p>\n<ul>\n"]
            for art in arts:
                content += ["<li>", _L(art.url, art.title, kind=self._in_kind(h, 0.1)), "</li>\n"]
            content.append("</ul>\n")
            ctx = self._ctx(
                h,
                label,
                crumbs=[home_crumb],
                widgets_extra=[self._related(h, None, 3, "Recent posts")],
            )
            ctx.content = content
            self._emit(h, url, ctx)
        # Articles.
        for i, art in enumerate(h.articles):
            label, cat_url = h.categories[art.category]
            crumbs = [home_crumb, _L(cat_url, label, kind=_NAV_KIND[h.template])]
            ctx = self._ctx(
                h,
                art.title,
                crumbs=crumbs,
                widgets_extra=[self._related(h, art.url, 5 if bench else 3, "Related posts")],
            )
            ctx.content = self._paragraphs(
                h, rng.randint(6, 10) if bench else 3, art.url, 4 if bench else 2
            )
            n_comments = (rng.randint(0, 4) if bench else (i % 3)) if i % 4 != 3 else 0
            ctx.comments = self._comments(h, art.url, n_comments)
            self._emit(h, art.url, ctx)
        # About and privacy.
        ctx = self._ctx(h, "About")
        ctx.content = [
            f"<p>{self._sentence()}. Write to us at ",
            f'<a href="mailto:hello@{h.name}">hello@{h.name}</a> or call ',
            '<a href="tel:+15550100">+1 555 0100</a>.</p>\n<p>Start at our ',
            _L(h.home, "home page", kind=_NAV_KIND[h.template]),
            ".</p>\n",
        ]
        self._emit(h, h.about, ctx)
        ctx = self._ctx(h, "Privacy policy")
        self.externals.setdefault("privacy.example")
        ctx.content = [
            f"<p>{self._sentence()}. We follow the ",
            _L("https://privacy.example/gdpr", "GDPR guidelines", kind="abs"),
            ".</p>\n",
        ]
        self._emit(h, h.privacy, ctx)

    def _pager(self, h: _Host, k: int) -> list[_Item]:
        kind = "query" if h.template == "table" else _NAV_KIND[h.template]
        items: list[_Item] = []
        if k > 0:
            items += [
                _L(h.listing[k - 1], "\u00ab Newer posts", inner="&laquo; Newer posts", kind=kind),
                " ",
            ]
        for j, url in enumerate(h.listing):
            if j == k:
                items.append(f'<span aria-current="page">{j + 1}</span> ')
            else:
                items += [_L(url, str(j + 1), kind=kind), " "]
        if k + 1 < len(h.listing):
            items.append(
                _L(h.listing[k + 1], "Older posts \u00bb", inner="Older posts &raquo;", kind=kind)
            )
        return items

    # -- robots, redirects, files --------------------------------------------------------------

    def _robots(self, h: _Host) -> None:
        lines = ["# robots.txt for " + h.name, "User-agent: *"]
        if h.disallow:
            lines += [f"Disallow: {d}" for d in h.disallow]
        elif h.index % 2:
            lines.append("Disallow:")
        else:
            lines.append("Allow: /")
        lines += ["", "User-agent: BadBot", "Disallow: /", ""]
        self.site.setdefault(h.name, {})["/robots.txt"] = Resource(
            200, "\n".join(lines).encode(), (("Content-Type", "text/plain; charset=utf-8"),)
        )

    def _redirect(self, url: str, status: int, location: str, to: str) -> None:
        body = f'<html><body>Moved to <a href="{html.escape(to)}">here</a>.</body></html>\n'
        self._serve(
            url,
            Resource(status, body.encode(), (("Content-Type", HTML_UTF8), ("Location", location))),
        )
        self.pages[url] = ExpectedPage(url, status, (), to, HTML_UTF8, "redirect", False, False)

    def _file(self, url: str, body: bytes, content_type: str) -> None:
        self._serve(url, Resource(200, body, (("Content-Type", content_type),)))
        self.pages[url] = ExpectedPage(url, 200, (), None, content_type, "file", False, False)

    # -- the whole web -------------------------------------------------------------------------

    def build(self, edge_cases: bool) -> SampleWeb:
        for h in self.hosts:
            n = 8 if self.bench else 4
            roll: list[_L] = []
            seen: set[str] = {h.home}
            for _ in range(n * 3):
                if len(roll) >= n:
                    break
                lk = self._cross_link(h, ("abs", "abs", "abs", "noslash", "upper", "utm"))
                if lk.target not in seen:
                    seen.add(lk.target)
                    roll.append(lk)
            h.blogroll = roll
        if edge_cases:
            if len(self.hosts) < _MIN_EDGE_HOSTS:
                raise ValueError(f"the test web needs n_hosts >= {_MIN_EDGE_HOSTS}")
            _EdgeCases(self).add_all()
        for h in self.hosts:
            self._regular(h)
            self._robots(h)
        return self._finish()

    def _finish(self) -> SampleWeb:
        seeds = [h.home for h in self.hosts]
        served = {h.name for h in self.hosts}
        pages = self.pages
        hosts: dict[str, str] = {}

        def host_of(url: str) -> str:
            host = hosts.get(url)
            if host is None:
                host = hosts[url] = _host_of(url)
            return host

        # Internal consistency: every same-host link target is a served page.
        for url, page in pages.items():
            host = host_of(url)
            for lk in page.links:
                if lk.target_url not in pages and host_of(lk.target_url) == host:
                    raise RuntimeError(f"{url} links to unknown {lk.target_url}")
        depth: dict[str, int] = {}
        queue = deque((s, 0) for s in seeds)
        while queue:
            url, d = queue.popleft()
            if url in depth:
                continue
            page = pages.get(url)
            if page is None or page.disallowed:
                continue
            depth[url] = d
            host = host_of(url)
            if page.redirect_to is not None:
                if host_of(page.redirect_to) == host:
                    queue.appendleft((page.redirect_to, d))
                continue
            if 200 <= page.status < 300 and page.is_html:
                for lk in page.links:
                    if lk.target_url not in depth and host_of(lk.target_url) == host:
                        queue.append((lk.target_url, d + 1))
        for url, page in pages.items():
            if url not in depth and not page.disallowed:
                raise RuntimeError(f"unreachable page {url}")
        externals = tuple(sorted(h for h in self.externals if h not in served))
        features = {k: tuple(v) for k, v in sorted((self.features or {}).items())}
        return SampleWeb(
            self.site,
            pages,
            seeds,
            [h.name for h in self.hosts],
            features,
            tuple(depth),
            depth,
            {h.name: h.template for h in self.hosts},
            externals,
            dict(self.link_redirects),
            dict(self.dead_targets),
        )


_TITLE_SEP = {"html5": "|", "wordpress": "\u2013", "hashed": "-", "table": "-"}


# ---------------------------------------------------------------------------------------------
# Edge cases of the test web (hosts 0..7: two of each template)
# ---------------------------------------------------------------------------------------------


def _a(href: str, inner: str) -> str:
    """Raw markup of a non-link (or a link inside an inert context)."""
    return f'<a href="{href}">{inner}</a>'


class _EdgeCases:
    """Adds the edge-case pages; each is linked from its host's home page."""

    def __init__(self, b: _Builder) -> None:
        self.b = b
        self.h = b.hosts

    def add_all(self) -> None:
        self.base_href(self.h[0])
        self.typography(self.h[0])
        self.redirect_301(self.h[0])
        self.images(self.h[1])
        self.partners(self.h[1])
        self.meta_nofollow(self.h[1])
        self.redirect_chain(self.h[1])
        self.x_robots(self.h[2])
        self.non_links(self.h[2])
        self.area_map(self.h[2])
        self.relative(self.h[3])
        self.private(self.h[3])
        self.files(self.h[3])
        self.charsets(self.h[4])
        self.malformed(self.h[4])
        self.broken_bytes(self.h[4])
        self.huge(self.h[5])
        self.variants(self.h[6])
        self.private(self.h[7])
        self.redirect_scripts(self.h[6])

    def _special(self, h: _Host, url: str, text: str) -> None:
        h.specials.append((url, text))

    def _art(self, h: _Host, i: int) -> _Article:
        return h.articles[i % len(h.articles)]

    def base_href(self, h: _Host) -> None:
        b = self.b
        base = h.url("/docs/v2/")
        v1, intro, install = (
            h.url("/docs/v1/"),
            h.url("/docs/v2/intro.html"),
            h.url("/docs/v2/install.html"),
        )
        url = h.url("/guides/base-href.html")
        ctx = b._ctx(h, "Docs via base href")
        ctx.head = f'<base href="{base}">\n<base href="/ignored/">\n'
        ctx.content = [
            "<p>Relative links on this page resolve against the base URL: read the ",
            _L(intro, "introduction", kind="rel"),
            ", then ",
            _L(install, "install it", kind="dot"),
            "; the ",
            _L(v1, "previous version", kind="rel"),
            " is archived. See also ",
            _L(h.about, "about us", kind="rel"),
            " and the ",
            _L(base, "docs index", href="./"),
            " and ",
            _L(h.articles[0].url, h.articles[0].title, kind="root"),
            ".</p>\n",
        ]
        b._emit(h, url, ctx, base=base)
        b._feature("base_href", url)
        self._special(h, url, "Documentation")
        for doc, title, links in (
            (
                base,
                "Docs v2",
                [
                    _L(intro, "Introduction", kind="rel"),
                    _L(install, "Installation", kind="dot"),
                    _L(v1, "Docs v1", kind="rel"),
                ],
            ),
            (
                intro,
                "Introduction",
                [_L(install, "Next: installation", kind="rel"), _L(base, "Docs index", kind="dot")],
            ),
            (install, "Installation", [_L(intro, "Back: introduction", kind="rel")]),
            (v1, "Docs v1 (archived)", [_L(base, "Current docs", kind="rel")]),
        ):
            ctx = b._ctx(h, title)
            items: list[_Item] = ["<p>"]
            for lk in links:
                items += [lk, " "]
            ctx.content = [*items, "</p>\n"]
            b._emit(h, doc, ctx)

    def typography(self, h: _Host) -> None:
        b = self.b
        url = h.url("/guides/typography.html")
        a = [self._art(h, i).url for i in range(6)]
        wiki = h.url("/wiki/Caf%C3%A9")
        ctx = b._ctx(h, "Typography in links")
        ctx.content = [
            "<p>Entities: ",
            _L(a[0], "Fish & Chips", inner="Fish &amp; Chips"),
            ", ",
            _L(a[1], "Café Menu", inner="Caf&eacute;&nbsp;Menu"),
            ", ",
            _L(a[2], "Résumé tips", inner="R&#233;sum&#xE9; tips"),
            ", ",
            _L(a[3], "© 2024 — all…", inner="&copy; 2024 &mdash; all&hellip;"),
            ".</p>\n",
            "<p>Markup: ",
            _L(a[4], "bold it", inner="<b>bold</b> <i>it</i>"),
            ", ",
            _L(
                a[5],
                "Deeply nested text",
                inner='<span class="x"><em>Deeply <strong>nested</strong></em> text</span>',
            ),
            ", ",
            _L(a[0], "Spaced out link", inner="\n     Spaced\n   out\tlink  "),
            ", ",
            _L(a[1], "<code> samples", inner="&lt;code&gt; samples", title='Tom & Jerry\'s "best"'),
            ".</p>\n",
            "<p>Unicode path: ",
            _L(wiki, "Café wiki", href="/wiki/Café"),
            ".</p>\n",
        ]
        b._emit(h, url, ctx)
        for name in (
            "entities",
            "nested_markup",
            "whitespace_anchor",
            "link_title",
            "non_ascii_path",
        ):
            b._feature(name, url)
        self._special(h, url, "Typography")
        ctx = b._ctx(h, "Café")
        ctx.content = [
            "<p>A page with a non-ASCII path. ",
            _L(url, "Back to typography", kind="root"),
            "</p>\n",
        ]
        b._emit(h, wiki, ctx)

    def redirect_scripts(self, h: _Host) -> None:
        """Links through redirects (``/out?url=``, ``/go/N``, a shortener), each landing on
        another seed site, and dead off-seed targets (404, 500, a name that does not resolve)."""
        b = self.b
        url = h.url("/links/out.html")
        site = h.name.split(".")[-2:]
        lands = [x for x in b.hosts if x.name.split(".")[-2:] != site][:3]  # other sites
        dest = [lands[0].articles[0].url, lands[1].home, lands[2].articles[1].url]
        out = h.url("/out?url=" + dest[0].replace(":", "%3A").replace("/", "%2F"))
        go = h.url("/go/3")
        short = f"http://{SHORTENER_HOST}/ab12"
        b._redirect(out, 302, dest[0], dest[0])
        b._redirect(go, 302, dest[1], dest[1])
        b._serve(short, Resource(301, b"", (("Location", dest[2]),)))
        b.link_redirects.update({out: dest[0], go: dest[1], short: dest[2]})
        gone, broken = f"http://{DEAD_HOST}/missing", f"http://{DEAD_HOST}/broken"
        nxdomain = f"http://{DNS_FAIL_HOST}/"
        b._serve(broken, Resource(500, b"oops", (("Content-Type", "text/plain"),)))
        b.dead_targets.update({gone: "404", broken: "500", nxdomain: "dns"})
        b.externals.setdefault(DNS_FAIL_HOST)
        ctx = b._ctx(h, "Recommended elsewhere")
        ctx.content = [
            "<p>Through our redirect script: ",
            _L(out, "a friend's article", kind="root"),
            ", an opaque one: ",
            _L(go, "another friend", kind="root"),
            ", a short link: ",
            _L(short, "short link", kind="abs"),
            ". Gone: ",
            _L(gone, "a missing page", kind="abs"),
            ", ",
            _L(broken, "a broken server", kind="abs"),
            ", ",
            _L(nxdomain, "a dead name", kind="abs"),
            ".</p>\n",
        ]
        b._emit(h, url, ctx)
        for name in ("redirect_script", "opaque_redirect", "shortener_link", "dead_external",
                     "external_link"):  # fmt: skip
            b._feature(name, url)
        self._special(h, url, "Recommended elsewhere")

    def redirect_301(self, h: _Host) -> None:
        url, to = h.url("/old-home.html"), h.articles[0].url
        self.b._redirect(url, 301, to, to)
        self.b._feature("redirect_301", url)
        self._special(h, url, "Our old home page")

    def images(self, h: _Host) -> None:
        b = self.b
        url = h.url("/gallery/")
        a = [self._art(h, i).url for i in range(6)]
        ctx = b._ctx(h, "Gallery")
        ctx.content = [
            "<p>",
            _L(
                a[0],
                "Sunset over the bay",
                inner='<img src="/img/sunset.jpg" alt="Sunset over the bay" width="300">',
                is_image=True,
            ),
            "\n",
            _L(
                a[1],
                "Annual report",
                inner='<img src="/img/pdf.png" alt="PDF icon"> Annual report',
                is_image=True,
            ),
            "\n",
            _L(a[2], "", inner='<img src="/img/blank.gif">', is_image=True),
            "\n",
            _L(
                a[3],
                "",
                inner='<img src="/img/thumb.jpg" alt="">',
                is_image=True,
                title="Open the gallery",
            ),
            "\n",
            _L(
                a[4],
                "Spaced alt",
                inner='<img src="/img/a.jpg" alt="  Spaced   alt ">',
                is_image=True,
            ),
            "\n",
            _L(
                a[5],
                "See the photo",
                inner='<span>See the</span> <img src="/img/c.jpg" alt="camera"> photo',
                is_image=True,
            ),
            "</p>\n",
        ]
        b._emit(h, url, ctx)
        for name in ("image_link", "text_image_link", "image_link_no_alt"):
            b._feature(name, url)
        self._special(h, url, "Gallery")

    def partners(self, h: _Host) -> None:
        b = self.b
        url = h.url("/partners/")
        other = b.hosts[(h.index + 5) % len(b.hosts)]
        for ext in (
            "partner.example",
            "ads.example",
            "social.example",
            "code.example",
            "directory.example",
        ):
            b.externals.setdefault(ext)
        ctx = b._ctx(h, "Partners")
        ctx.content = [
            "<p>",
            _L(
                "http://partner.example/",
                "Our partner",
                kind="abs",
                rel="NoFollow  EXTERNAL",
                title="Partner site",
            ),
            ", ",
            _L(
                _ADS_URL,
                "Spring sale",
                href="https://ads.example/click?id=7&campaign=spring",
                rel="Sponsored",
            ),
            ", ",
            _L(other.home, "Guest post", kind="abs", rel=" ugc\tnofollow "),
            ", ",
            _L(
                "https://social.example/@shop",
                "Follow us",
                kind="abs",
                rel="me noopener",
                attrs=' target="_blank"',
            ),
            ", ",
            _L("https://code.example/linkcrawl", "Source", kind="abs", rel=""),
            ", ",
            _L(
                "http://directory.example/listing/42",
                "Directory",
                kind="abs",
                rel="sponsored\nNOFOLLOW",
                title="Paid listing",
            ),
            ".</p>\n",
        ]
        b._emit(h, url, ctx)
        for name in (
            "rel_mixed_case",
            "rel_sponsored",
            "link_title",
            "cross_seed_link",
            "external_link",
        ):
            b._feature(name, url)
        self._special(h, url, "Partners")

    def meta_nofollow(self, h: _Host) -> None:
        b = self.b
        url = h.url("/tag/misc/")
        ctx = b._ctx(h, "Miscellaneous")
        ctx.head = '<meta name="robots" content="noarchive, nofollow">\n'
        ctx.content = b._paragraphs(h, 2, None, 2)
        b._emit(h, url, ctx, nofollow=True)
        b._feature("meta_robots_nofollow", url)
        self._special(h, url, "Miscellaneous")

    def redirect_chain(self, h: _Host) -> None:
        a, bb, c = h.url("/go/promo"), h.url("/go/landing"), self._art(h, 1).url
        self.b._redirect(a, 302, "/go/landing", bb)
        self.b._redirect(bb, 302, c, c)
        self.b._feature("redirect_302_chain", a)
        self._special(h, a, "This month's promotion")

    def x_robots(self, h: _Host) -> None:
        b = self.b
        url = h.url("/press")
        ctx = b._ctx(h, "Press")
        ctx.content = b._paragraphs(h, 2, None, 2)
        b._emit(h, url, ctx, nofollow=True, headers=(("X-Robots-Tag", "nofollow"),))
        b._feature("x_robots_nofollow", url)
        self._special(h, url, "Press")

    def non_links(self, h: _Host) -> None:
        b = self.b
        url = h.url("/help/links")
        ctx = b._ctx(h, "Things that are not links")
        ctx.content = [
            "<p>",
            _a("javascript:void(0)", "Open menu"),
            " ",
            _a("JavaScript:alert(1)", "Alert"),
            " ",
            _a("mailto:x@y.test", "Mail us"),
            " ",
            _a("tel:+1", "Call"),
            " ",
            _a("data:text/html,x", "Data"),
            " ",
            _a("#top", "Back to top"),
            " ",
            _a("", "Empty"),
            " ",
            _a("ftp://files.example/pub/", "FTP"),
            " ",
            '<a name="anchor">Named anchor</a> <a>No href</a></p>\n',
            "<p>One real link: ",
            _L(self._art(h, 0).url, "A real link"),
            ".</p>\n",
            '<!-- <a href="/from-comment">commented out</a> -->\n',
            "<script>document.write('<a href=\"/from-script\">scripted</a>');</script>\n",
            '<script type="text/template"><a href="/from-script-template">x</a></script>\n',
            '<template><a href="/from-template">templated</a></template>\n',
            '<textarea name="t"><a href="/from-textarea">in a textarea</a></textarea>\n',
            "<p>And another: ",
            _L(self._art(h, 1).url, "Second real link"),
            ".</p>\n",
        ]
        b._emit(h, url, ctx)
        for name in ("non_links", "link_in_comment", "link_in_script", "link_in_template"):
            b._feature(name, url)
        self._special(h, url, "Link help")

    def area_map(self, h: _Host) -> None:
        b = self.b
        url = h.url("/map")
        other = b.hosts[(h.index + 3) % len(b.hosts)]
        about_href = _href(h.about, url, "root", b.rng)
        ctx = b._ctx(h, "Site map")
        ctx.content = [
            '<p><img src="/img/map.png" usemap="#sitemap" alt="Site map" width="300"></p>\n'
            '<map name="sitemap">\n',
            _L(
                h.about,
                "About us",
                tag="area",
                href=about_href,
                inner="",
                close="",
                open_tag=f'<area shape="rect" coords="0,0,100,50" href="{about_href}" '
                'alt="About us">',
            ),
            "\n",
            _L(
                other.home,
                "Partner site",
                tag="area",
                href=other.home,
                inner="",
                close="",
                open_tag=f'<area shape="circle" coords="150,25,20" href="{other.home}" '
                'alt="Partner site">',
            ),
            "\n",
            '<area shape="rect" coords="200,0,300,50" nohref alt="Nothing here">\n'
            '<area shape="default" href="#top" alt="Top">\n</map>\n',
        ]
        b._emit(h, url, ctx)
        b._feature("area_map", url)
        self._special(h, url, "Site map")

    def relative(self, h: _Host) -> None:
        b = self.b
        label0, cat0 = h.categories[0]
        label1, cat1 = h.categories[1 % len(h.categories)]
        in0 = [a for a in h.articles if a.category == 0] or h.articles
        in1 = [a for a in h.articles if a.category == 1 % len(h.categories)] or h.articles
        url = cat0 + "relative-links.html"
        print_url = url + "?view=print"
        for page_url in (url, print_url):
            ctx = b._ctx(h, "Relative links")
            ctx.content = [
                "<P>",
                _L(in0[0].url, "Sibling page", kind="rel"),
                " ",
                _L(in0[-1].url, "Dot sibling", kind="dot"),
                " ",
                _L(cat1, label1, kind="rel"),
                " ",
                _L(in1[0].url, "Cousin page", kind="rel"),
                " ",
                _L(h.about, "About (two levels up)", kind="rel"),
                " ",
                _L(print_url, "Print view", kind="query"),
                " ",
                _L(cat0, label0, href="./"),
                "</P>\n",
            ]
            b._emit(h, page_url, ctx)
        b._feature("uppercase_unquoted", url)
        self._special(h, url, "Relative links")

    def private(self, h: _Host) -> None:
        b = self.b
        h.disallow.append("/private/")
        url = h.url("/private/secret.html")
        ctx = b._ctx(h, "Members only")
        ctx.content = [
            "<p>Disallowed by robots.txt. ",
            _L(h.home, "Home", kind=_NAV_KIND[h.template]),
            "</p>\n",
        ]
        exp = b._emit(h, url, ctx, disallowed=True)
        assert exp.disallowed
        b._feature("robots_disallowed", url)
        self._special(h, url, "Members area")

    def files(self, h: _Host) -> None:
        b = self.b
        pdf = h.url("/files/report.pdf")
        png = h.url("/img/photo.png")
        b._file(
            pdf,
            b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" + bytes(range(256)) + b"\n%%EOF\n",
            "application/pdf",
        )
        b._file(png, b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png")
        missing = h.url("/docs/removed.html")
        b._serve(missing, Resource(404, _NOT_FOUND_HTML, (("Content-Type", HTML_UTF8),)))
        b.pages[missing] = ExpectedPage(missing, 404, (), None, HTML_UTF8, "error", False, False)
        b._feature("pdf_file", pdf)
        b._feature("png_file", png)
        b._feature("not_found", missing)
        self._special(h, pdf, "Annual report (PDF)")
        self._special(h, png, "Photo of the team")
        self._special(h, missing, "The old manual")

    def charsets(self, h: _Host) -> None:
        b = self.b
        ru = h.url("/intl/ru.html")
        ctx = b._ctx(h, "Новости")
        ctx.lang = "ru"
        ctx.charset_meta = "windows-1251"
        b.externals.setdefault("en.wiki.example")
        ctx.content = [
            "<p>Русская страница: ",
            _L(h.home, "Главная страница"),
            ", ",
            _L(self._art(h, 0).url, "Последние новости"),
            ", ",
            _L(h.about, "О нас"),
            ", ",
            _L("http://en.wiki.example/wiki/Main_Page", "Википедия", kind="abs"),
            ".</p>\n",
        ]
        b._emit(h, ru, ctx, encoding="cp1251", content_type="text/html")
        b._feature("windows_1251", ru)
        self._special(h, ru, "По-русски")
        ja = h.url("/intl/ja.html")
        ctx = b._ctx(h, "ニュース")
        ctx.lang = "ja"
        ctx.charset_meta = None
        ctx.content = [
            "<p>日本語のページ: ",
            _L(h.home, "ホーム"),
            "、",
            _L(self._art(h, 1).url, "ニュース一覧"),
            "、",
            _L(h.about, "会社概要"),
            "。</p>\n",
        ]
        b._emit(h, ja, ctx, encoding="shift_jis", content_type="text/html; charset=Shift_JIS")
        b._feature("shift_jis", ja)
        self._special(h, ja, "日本語")

    def malformed(self, h: _Host) -> None:
        b = self.b
        url = h.url("/guides/legacy-markup.html")
        a = [self._art(h, i).url for i in range(8)]
        ext = "https://code.example/linkcrawl"
        b.externals.setdefault("code.example")
        ctx = b._ctx(h, "Legacy markup")
        ctx.content = [
            "<p>Unclosed paragraph with ",
            _L(a[0], "first link"),
            "\n<p>Another <b>bold <i>mis-nested</b> text</i> and ",
            _L(a[1], "second link"),
            "\n<ul><li>",
            _L(a[2], "item one"),
            "<li>",
            _L(a[3], "item two"),
            "</ul>\n",
            '<div class="box">',
            _L(a[4], "outer", inner="outer ", close=""),
            _L(a[5], "inner"),
            " tail</a></div>\n",
            "<p>",
            _L(a[6], "Bold start", inner="<b>Bold start"),
            " continues</b></p>\n",
            "<table><tr><td>",
            _L(a[7], "cell link"),
            "<td>no close</table>\n",
            '<div class="unclosed"><p>Unclosed div with ',
            _L(a[0], "a link"),
        ]
        # A stray </html>, then more links: an HTML5 parser appends them to <body>, after the
        # footer, outside every region (placement "content").
        ctx.tail = [
            "</body></html>\n<p>After the end: ",
            _L(a[2], "late link", kind="root"),
            " and ",
            _L(ext, "late external", kind="abs"),
            "</p>\n",
        ]
        b._emit(h, url, ctx)
        b._feature("malformed", url)
        self._special(h, url, "Legacy markup")

    def broken_bytes(self, h: _Host) -> None:
        b = self.b
        url = h.url("/guides/broken-bytes.html")
        ctx = b._ctx(h, "Broken bytes")
        ctx.content = [
            "<p>Invalid UTF-8 follows: \ue000\ue000 here.</p>\n<p>",
            _L(self._art(h, 2).url, "Caf\ufffd menu", inner="Caf\ue000 menu"),
            "</p>\n",
        ]
        b._emit(h, url, ctx, broken_bytes=True)
        b._feature("undecodable_bytes", url)
        self._special(h, url, "Broken bytes")

    def huge(self, h: _Host) -> None:
        b = self.b
        url = h.url("/huge-archive/")
        ctx = b._ctx(h, "The complete archive")
        items: list[_Item] = ["<p>Every post we ever wrote:</p>\n<ul>\n"]
        for art in h.articles:
            items += ["<li>", _L(art.url, art.title, kind="abs"), "</li>\n"]
        ctx.content = [*items, "</ul>\n"]
        para = " ".join(b.rng.choices(_WORDS, k=180))
        chunk = f"<p>{para}.</p>\n"
        count = HUGE_PAGE_FILLER_BYTES // len(chunk) + 1
        ctx.tail = ['<div class="raw-archive">\n' + chunk * count + "</div>\n"]
        b._emit(h, url, ctx)
        b._feature("huge_page", url)
        self._special(h, url, "Complete archive")

    def variants(self, h: _Host) -> None:
        b = self.b
        url = h.url("/variants")
        search = h.url(_with_query("/search", lang="en", q="boats"))
        a = [self._art(h, i).url for i in range(4)]
        other = b.hosts[(h.index + 1) % len(b.hosts)]
        for ext in ("xn--bcher-kva.example", "partner.example", "secure.example"):
            b.externals.setdefault(ext)
        ctx = b._ctx(h, "URL variants")
        written = [
            (a[0], "Absolute", "abs", None),
            (a[0], "Root-relative", "root", None),
            (a[0], "With fragment", None, "/" + a[0].split("/", 3)[3] + "#comments"),
            (
                a[1],
                "utm",
                None,
                _split(a[1])[2] + "?utm_source=newsletter&utm_medium=email&utm_campaign=spring",
            ),
            (a[1], "gclid", None, _split(a[1])[2] + "?gclid=EAIaIQobChMI"),
            (a[2], "fbclid and fragment", None, a[2] + "?fbclid=IwAR2x#top"),
            (h.home, "Mailchimp", None, "/?mc_cid=abc123&mc_eid=def456"),
            (a[0], "Uppercase", "upper", None),
            (h.categories[0][1], "Port 80", "port", None),
            (h.home, "No slash", "noslash", None),
            (h.about, "Scheme-relative", "schemerel", None),
            (a[3], "Dot segments", None, "/p/./x/../" + a[3].rsplit("/", 1)[1]),
            (search, "Unsorted query", None, "/search?q=boats&lang=en"),
            (
                search,
                "Unsorted query with tracking",
                None,
                "/search?q=boats&utm_source=x&lang=en#results",
            ),
            (h.about, "Whitespace", None, "  " + _split(h.about)[2] + " \n"),
            (other.home, other.site_title, "abs", None),
            (other.home, "Partner with tracking", None, other.home + "?utm_source=" + h.name),
            ("http://xn--bcher-kva.example/", "Bücher", None, "http://bücher.example/"),
            ("http://partner.example/", "Trailing dot", None, "http://partner.example./"),
            (
                "https://secure.example/login",
                "Default https port",
                None,
                "https://secure.example:443/login",
            ),
            (
                "https://secure.example/Account",
                "Uppercase https",
                None,
                "HTTPS://Secure.Example/Account",
            ),
        ]
        items: list[_Item] = ["<ul>\n"]
        for target, text, kind, href in written:
            lk = _L(target, text, kind=kind or "abs", href=href)
            items += ["<li>", lk, "</li>\n"]
        ctx.content = [*items, "</ul>\n"]
        b._emit(h, url, ctx)
        for name in (
            "tracking_params",
            "fragment",
            "uppercase_scheme_host",
            "default_port",
            "dot_segments",
            "scheme_relative",
            "unsorted_query",
            "whitespace_href",
            "cross_seed_link",
            "external_link",
            "idn_host",
            "trailing_dot_host",
        ):
            b._feature(name, url)
        self._special(h, url, "URL variants")
        ctx = b._ctx(h, "Search: boats")
        ctx.content = ["<p>Results for boats: ", _L(a[0], self._art(h, 0).title), ".</p>\n"]
        b._emit(h, search, ctx)


_NOT_FOUND_HTML = (
    b'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Not found</title>'
    b"</head><body><h1>Not found</h1><p>This page was removed.</p></body></html>\n"
)


# ---------------------------------------------------------------------------------------------
# Public builders
# ---------------------------------------------------------------------------------------------


def _names(n: int, base: Sequence[str]) -> list[str]:
    names = list(base[:n])
    i = len(names)
    while len(names) < n:
        i += 1
        names.append(f"site-{i}.{'test' if i % 2 else 'example'}")
    return names


def build_test_web(n_hosts: int = 24, pages_per_host: int = 6, seed: int = 0) -> SampleWeb:
    """The end-to-end test web: ``n_hosts`` (>= 8) hosts with every edge case.

    ``pages_per_host`` is the number of article pages per host; each host also has its
    listing pages (4 articles per page; the first is the home page), 2 category pages, about
    and privacy pages, a robots.txt, and hosts 0-7 carry the edge-case pages.
    """
    if n_hosts < _MIN_EDGE_HOSTS:
        raise ValueError(f"n_hosts must be >= {_MIN_EDGE_HOSTS}")
    return _Builder(_names(n_hosts, TEST_HOSTS), pages_per_host, seed, bench=False).build(True)


def build_demo_web() -> SampleWeb:
    """The ``linkcrawl demo`` web: 36 friendly hosts, 4 articles each, all edge cases."""
    return _Builder(DEMO_HOSTS, 4, 2024, bench=False).build(True)


def build_benchmark_web(n_hosts: int = 120, pages_per_host: int = 80) -> SampleWeb:
    """A throughput web: ``n_hosts`` hosts with ``pages_per_host`` articles each.

    Each host also has listing pages (10 articles per page), 4 category pages, about and
    privacy pages and a robots.txt (every 10th host disallows ``/private/``). Pages carry
    ~30-60 links; about a fifth of in-host links are variants (tracking parameters,
    fragments, ``HTTP://HOST``, ``:80``) of the same canonical pages.
    """
    if n_hosts < 1:
        raise ValueError("n_hosts must be >= 1")
    return _Builder(_names(n_hosts, DEMO_HOSTS), pages_per_host, 1, bench=True).build(False)
