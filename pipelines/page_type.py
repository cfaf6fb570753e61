"""Page type: what a page is for (article, listing, collection, product, forum, service,
documentation, or other), from the parse extraction already made.

Signals (:func:`page_signals`, one bounded CSS pass over rare elements, plus what extraction
already has: the links and their placements):

- schema.org types, from JSON-LD ``@type`` and microdata ``itemtype``; OpenGraph ``og:type``;
  the ``generator`` meta (Discourse, Docusaurus, WooCommerce...);
- the URL's path words (``/docs/``, ``/t/``, ``/product/``, ``/category/``, ``/blog/``...) and
  shape (root, dates, long slugs, numeric ids);
- structure: code blocks, ``<article>`` and ``<time>`` repeats, forms, buttons, price markup;
- the links: how many, their placements (content, comment, nav...), their anchors' lengths and
  how many content links repeat one target (an image and a title per card) or one path shape
  (item cards).

:func:`classify_page` turns the signals into a type with a small linear model (one weight per
signal and type, :data:`WEIGHTS`, trained by ``tests/benchmarks/train_page_type.py`` with
cross-validation on the WCXB development pages): pure, no Scrapy, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from math import log1p
from typing import Any, Literal, NamedTuple

PageType = Literal[
    "article", "listing", "collection", "product", "forum", "service", "documentation", "other"
]
PAGE_TYPES: tuple[str, ...] = (
    "article",
    "listing",
    "collection",
    "product",
    "forum",
    "service",
    "documentation",
    "other",
)

#: Bounds of the signal pass: JSON-LD scripts read per page, characters read of each, and
#: elements looked at (the rest is not counted: counts past it tell nothing more).
MAX_JSONLD_SCRIPTS = 16
MAX_JSONLD_CHARS = 65_536
MAX_SCHEMA_TYPES = 64
MAX_ITEMTYPE_CHARS = 400  # of a microdata itemtype
MAX_META_CHARS = 200
#: Links looked at for the link signals (in document order).
MAX_SIGNAL_LINKS = 5_000
#: Characters of an anchor read for the link signals.
_ANCHOR_CHARS = 100

# schema.org types (JSON-LD @type, microdata itemtype), lowercased, by the signal they give.
_SCHEMA_GROUPS: dict[str, str] = {}
for _group, _names in {
    "article": "article newsarticle blogposting reportagenewsarticle analysisnewsarticle "
    "opinionnewsarticle backgroundnewsarticle reviewnewsarticle liveblogposting "
    "scholarlyarticle socialmediaposting report review recipe howto medicalwebpage",
    "tech": "techarticle apireference softwaresourcecode",
    "product": "product offer aggregateoffer productgroup individualproduct productmodel "
    "vehicle car someproducts",
    "rating": "aggregaterating",
    "forum": "discussionforumposting qapage question answer",
    "comment": "comment",
    "collection": "collectionpage itemlist searchresultspage offercatalog",
    "service": "service localbusiness professionalservice softwareapplication webapplication "
    "mobileapplication financialservice legalservice medicalbusiness offershippingdetails "
    "howtostep",
    "organization": "organization corporation",
    "faq": "faqpage",
    "person": "person profilepage",
    "webpage": "webpage aboutpage contactpage",
    "breadcrumb": "breadcrumblist",
}.items():
    for _name in _names.split():
        _SCHEMA_GROUPS[_name] = _group
_SCHEMA_GROUP_NAMES = tuple(dict.fromkeys(_SCHEMA_GROUPS.values()))
_SCHEMA_KEYS = tuple(("s_" + group, group) for group in _SCHEMA_GROUP_NAMES)

_GENERATORS = {
    "forum": "discourse phpbb xenforo vbulletin invision mybb smf nodebb flarum vanilla "
    "discuz simple machines",
    "docs": "docusaurus mkdocs sphinx gitbook mintlify vitepress vuepress docsy mediawiki "
    "nextra starlight read the docs antora",
    "shop": "woocommerce shopify prestashop magento bigcommerce opencart shopware",
    "builder": "webflow wix squarespace framer hubspot elementor",
    "wordpress": "wordpress",
}
_GENERATOR_RE = {
    group: re.compile("|".join(re.escape(n) for n in names.split()))
    for group, names in _GENERATORS.items()
}

# Words of the URL (path segments split on - _ . and case), by the signal they give.
_URL_GROUPS: dict[str, str] = {}
for _group, _names in {
    "docs": "docs doc documentation reference api apis guide guides manual handbook learn "
    "tutorial tutorials wiki kb knowledge knowledgebase library sdk developer developers "
    "man concepts glossary",
    "forum": "forum forums t thread threads topic topics questions question community "
    "discussion discussions board boards viewtopic showthread comments discuss story",
    "product": "product products p dp item itm sku app buy detail",
    "collection": "c cat category categories collection collections shop department b browse "
    "search s tag tags catalog",
    "article": "blog blogs news article articles post posts stories insights magazine "
    "recipes recipe",
    "service": "services service solutions solution platform features pricing industries "
    "enterprise agency consulting work company about",
}.items():
    for _name in _names.split():
        _URL_GROUPS[_name] = _group
_URL_GROUP_NAMES = tuple(dict.fromkeys(_URL_GROUPS.values()))
# The signal names of a word's group ("u_" + group, "u1_" + group): made once, not per page.
_URL_KEYS = {word: ("u_" + group, "u1_" + group) for word, group in _URL_GROUPS.items()}
_HOST_GROUPS = {
    "docs": "docs doc developer developers wiki learn devcenter reference api kb help support",
    "forum": "forum forums community discuss discourse answers",
    "shop": "shop store",
    "blog": "blog news engineering",
}
_HOST_WORD = {w: g for g, names in _HOST_GROUPS.items() for w in names.split()}
_URL_SPLIT = re.compile(r"[^a-z0-9]+")
_YEAR = re.compile(r"(?:^|/)(?:19|20)\d\d(?:/|$)")
_NUMBER = re.compile(r"\d{4,}")
_TYPE_RE = re.compile(r'"@type"\s*:\s*(?:"([^"]{1,80})"|\[([^\]]{0,800})\])')
_YEAR_WORD = re.compile(r"\b20[0-3]\d\b")
_TITLE_GROUPS = {
    **{w: g for w, g in _URL_GROUPS.items() if len(w) > 3},
    **{w: "buy" for w in ["buy", "shop", "price", "sale", "order", "cart"]},
    **{w: "best" for w in ["best", "top", "review", "reviews", "vs", "how", "why", "what"]},
}
_QUOTED = re.compile(r'"([^"]{1,80})"')
_TITLE_KEYS = {word: "t_" + group for word, group in _TITLE_GROUPS.items()}

# Link anchors that tell a kind of page, as phrases counted in the page's anchors, joined one
# per line and lowercased ("\n" + phrase: at the start of an anchor; + "\n": at its end):
# str.count runs in C, where a regular expression per anchor cost a tenth of extraction.
_ANCHOR_PHRASES = {
    "more": ("\nread more", "\nlearn more", "\nsee more", "\nview more", "\nview details",
             "\nsee details", "\ncontinue reading", "\nfind out more"),
    "reply": ("\nreply\n", "\nquote\n", "\nreport\n", "\nshare\n", "\npermalink\n",
              "\nlike\n", "\nupvote\n", "\nvote\n"),
    "edit": ("\nedit this", "\nedit on", "\nimprove this", "\nview source", "\nsuggest"),
    "cart": ("add to cart", "add to bag", "add to basket", "buy now", "checkout", "in stock"),
    "signup": ("get started", "book a demo", "request a demo", "contact us", "contact sales",
               "sign up", "free trial", "get a quote", "schedule", "talk to"),
    "price": ("$", "€", "£", "¥"),
    "pager": ("\nnext\n", "\nprevious\n", "\nolder", "\nnewer", "\nload more", "\npage 2"),
}  # fmt: skip
# Path segments of content links' targets that make them product pages, or forum users/threads
# (counted in the targets joined, as the anchor phrases).
_PRODUCT_PATHS = ("/product/", "/products/", "/p/", "/dp/", "/item/", "/itm/", "/sku/", "/shop/")
_FORUM_PATHS = ("/u/", "/user/", "/users/", "/member/", "/members/", "/profile/", "/t/",
                "/thread/", "/threads/", "/topic/", "/topics/")  # fmt: skip
#: The placements whose shares of the links are signals.
_LINK_PLACES = ("content", "nav", "sidebar", "footer", "comment")
#: The link signals :func:`_link_signals` gives, in its order (the native core's too).
LINK_SIGNALS: tuple[str, ...] = (
    "l_links", "l_content", *("lp_" + place for place in _LINK_PLACES), "l_comment", "l_ugc",
    "l_words", "l_images", "l_internal", "l_repeated", "l_shape", "l_shape_share",
    "l_product_targets", "l_forum_targets", *("a_" + name for name in _ANCHOR_PHRASES),
)  # fmt: skip
#: The link signals by the native core (pipelines/native.py ``link_signals``): (page URL,
#: links) -> the values of :data:`LINK_SIGNALS`, or None (then Python's).
LinkSignals = Callable[[str, Sequence[Any]], "list[float] | None"]


class PageClass(NamedTuple):
    """A page's type, the margin of its score over the next type's, and the signals used."""

    page_type: str
    margin: float
    signals: dict[str, float]


def _url_signals(url: str, out: dict[str, float]) -> None:
    """The URL's path words and shape (host, path and query of an http(s) URL)."""
    rest = url.split("://", 1)[-1]
    host, _, path = rest.partition("/")
    host = host.rsplit("@", 1)[-1].split(":", 1)[0].lower()
    path, _, query = path.partition("?")
    path = path.split("#", 1)[0].lower()
    for label in host.split(".")[:-2]:
        group = _HOST_WORD.get(label)
        if group is not None:
            out["h_" + group] = 1.0
    segments = [s for s in path.split("/") if s]
    out["u_root"] = 1.0 if not segments else 0.0
    out["u_depth"] = float(min(len(segments), 8))
    seen = set()
    for i, segment in enumerate(segments[:16]):
        for word in _URL_SPLIT.split(segment):
            keys = _URL_KEYS.get(word)
            if keys is not None and keys[0] not in seen:
                seen.add(keys[0])
                out[keys[0]] = 1.0
                if i == 0:
                    out[keys[1]] = 1.0
    last = segments[-1] if segments else ""
    out["u_slug"] = float(min(last.count("-"), 12))
    out["u_number"] = 1.0 if _NUMBER.search(path) else 0.0
    out["u_year"] = 1.0 if _YEAR.search(path) else 0.0
    out["u_query"] = 1.0 if query else 0.0


def _schema_types(text: str) -> list[str]:
    """The schema.org types a JSON-LD script names (``@type`` values), lowercased.

    >>> _schema_types('{"@type": ["Product", "Thing"], "offers": {"@type":"Offer"}}')
    ['product', 'thing', 'offer']
    """
    types = []
    for match in _TYPE_RE.finditer(text):
        if match[1] is not None:
            types.append(match[1].lower())
        else:
            types.extend(m.lower() for m in _QUOTED.findall(match[2]))
    return types


#: The facts :meth:`PageMarkup.facts` gives the placement model, in order.
MARKUP_FACTS = ("markup_article", "markup_product", "markup_forum", "markup_comment",
                "markup_collection")  # fmt: skip


@dataclass(slots=True)
class PageMarkup:
    """What extraction's pass over the page's elements noted for the page type: schema.org
    types (JSON-LD ``@type`` and microdata ``itemtype``, lowercased, at most
    MAX_SCHEMA_TYPES), ``og:type`` and the ``generator`` meta (lowercased, cut)."""

    schema_types: list[str] = field(default_factory=list)
    og_type: str | None = None
    generator: str | None = None
    jsonld_scripts: int = 0

    def add_jsonld(self, text: str) -> None:
        """Note the types a JSON-LD script names (MAX_JSONLD_SCRIPTS scripts at most)."""
        if self.jsonld_scripts < MAX_JSONLD_SCRIPTS:
            self.jsonld_scripts += 1
            for name in _schema_types(text[:MAX_JSONLD_CHARS]):
                self._add(name)

    def add_itemtype(self, value: str) -> None:
        """Note a microdata itemtype (``https://schema.org/Product`` -> ``product``)."""
        for item in value[:MAX_ITEMTYPE_CHARS].split()[:4]:
            self._add(item.rstrip("/").rsplit("/", 1)[-1].lower())

    def add_meta(self, key: str, content: str) -> None:
        """Note an ``og:type`` (key ``og:type``) or ``generator`` meta."""
        value = content[:MAX_META_CHARS].strip().lower()
        if key == "generator":
            if self.generator is None:
                self.generator = value
        elif self.og_type is None:
            self.og_type = value

    def facts(self) -> tuple[float, ...]:
        """The markup's facts for the placement model (:data:`MARKUP_FACTS`, 1.0 or 0.0):
        what the page says it is, by schema.org types, ``og:type`` and the generator.

        >>> markup = PageMarkup()
        >>> markup.add_jsonld('{"@type": "Product", "offers": {"@type": "Offer"}}')
        >>> markup.facts()
        (0.0, 1.0, 0.0, 0.0, 0.0)
        """
        groups = {_SCHEMA_GROUPS.get(name) for name in self.schema_types}
        og, generator = self.og_type or "", self.generator or ""
        return (
            1.0 if "article" in groups or og.startswith("article") else 0.0,
            1.0 if "product" in groups or "product" in og else 0.0,
            1.0 if "forum" in groups or _GENERATOR_RE["forum"].search(generator) else 0.0,
            1.0 if "comment" in groups else 0.0,
            1.0 if "collection" in groups else 0.0,
        )

    def _add(self, name: str) -> None:
        if len(self.schema_types) < MAX_SCHEMA_TYPES:
            self.schema_types.append(name)


def page_signals(
    url: str, title: str | None = None, markup: PageMarkup | None = None, links: Any = (),
    link_signals: LinkSignals | None = None,
) -> dict[str, float]:  # fmt: skip
    """The signals of a page (see the module docstring): a name per signal, a number.

    *links* are the page's links as extraction gives them (objects with ``target_url``,
    ``anchor_text``, ``placement``, ``is_image``, ``ugc``); *link_signals*, the native core's
    (the same values), else Python's :func:`_link_signals`.

    >>> markup = PageMarkup()
    >>> markup.add_jsonld('{"@type": "Product", "name": "Red shoes"}')
    >>> s = page_signals("https://shop.acme.test/products/red-shoes", "Red shoes", markup)
    >>> s["s_product"], s["u_product"], s["h_shop"], s["u_slug"]
    (1.0, 1.0, 1.0, 1.0)
    """
    out: dict[str, float] = {}
    _url_signals(url, out)
    if title:
        _title_signals(title[:MAX_META_CHARS].lower(), out)
    markup = markup or PageMarkup()
    schema: dict[str, int] = {}
    for name in markup.schema_types:
        group = _SCHEMA_GROUPS.get(name)
        if group is not None:
            schema[group] = schema.get(group, 0) + 1
    for key, group in _SCHEMA_KEYS:
        out[key] = 1.0 if schema.get(group) else 0.0
    out["s_many_articles"] = 1.0 if schema.get("article", 0) >= 3 else 0.0
    out["s_many_products"] = 1.0 if schema.get("product", 0) >= 4 else 0.0
    og = markup.og_type
    if og:
        if og.startswith("article"):
            out["og_article"] = 1.0
        elif "product" in og:
            out["og_product"] = 1.0
        elif og == "website":
            out["og_website"] = 1.0
        else:
            out["og_other"] = 1.0
    if markup.generator:
        for group, pattern in _GENERATOR_RE.items():
            if pattern.search(markup.generator):
                out["g_" + group] = 1.0
    values = None if link_signals is None else link_signals(url, links)
    if values is None:
        _link_signals(url, links, out)
    else:
        out.update(zip(LINK_SIGNALS, values, strict=True))
    return out


def _title_signals(title: str, out: dict[str, float]) -> None:
    """The title's words, by the URL's word groups."""
    for word in _URL_SPLIT.split(title):
        key = _TITLE_KEYS.get(word)
        if key is not None:
            out[key] = 1.0
    out["t_year"] = 1.0 if _YEAR_WORD.search(title) else 0.0
    out["t_words"] = float(min(title.count(" ") + 1, 30))


def _path_shape(url: str) -> str:
    """A target's path shape: its first segment and its number of segments.

    >>> _path_shape("https://a.test/products/red-shoes?x=1")
    'products/2'
    """
    path = url.split("://", 1)[-1].partition("/")[2].split("?", 1)[0].split("#", 1)[0]
    segments = [s for s in path.split("/") if s]
    return f"{segments[0] if segments else ''}/{len(segments)}"


def _link_signals(url: str, links: Any, out: dict[str, float]) -> None:
    """Signals of the page's links: placements, anchors, repeated targets and shapes."""
    host = url.split("://", 1)[-1].split("/", 1)[0]
    total = 0
    by_place: dict[str, int] = {}
    content_targets: dict[str, int] = {}
    shapes: dict[str, int] = {}
    words = 0
    images = 0
    internal = 0
    texts: list[str] = []
    ugc = 0
    for link in islice(links, MAX_SIGNAL_LINKS):
        total += 1
        place = link.placement
        by_place[place] = by_place.get(place, 0) + 1
        target = link.target_url
        text = link.anchor_text[:_ANCHOR_CHARS]
        texts.append(text)
        if link.ugc:
            ugc += 1
        if place != "content":
            continue
        content_targets[target] = content_targets.get(target, 0) + 1
        if target.split("://", 1)[-1].split("/", 1)[0] == host:
            internal += 1
            shape = _path_shape(target)
            shapes[shape] = shapes.get(shape, 0) + 1
        words += text.count(" ") + 1 if text else 0
        images += link.is_image
    content = by_place.get("content", 0)
    out["l_links"] = log1p(total)
    out["l_content"] = log1p(content)
    for place in _LINK_PLACES:
        out["lp_" + place] = by_place.get(place, 0) / total if total else 0.0
    out["l_comment"] = log1p(by_place.get("comment", 0))
    out["l_ugc"] = log1p(ugc)
    out["l_words"] = words / content if content else 0.0
    out["l_images"] = images / content if content else 0.0
    out["l_internal"] = internal / content if content else 0.0
    repeated = sum(n for n in content_targets.values() if n > 1)
    out["l_repeated"] = repeated / content if content else 0.0
    top = max(shapes.values(), default=0)
    out["l_shape"] = log1p(top)
    out["l_shape_share"] = top / content if content else 0.0
    targets = "\n".join(content_targets)  # each distinct target once
    out["l_product_targets"] = log1p(sum(targets.count(p) for p in _PRODUCT_PATHS))
    out["l_forum_targets"] = log1p(sum(targets.count(p) for p in _FORUM_PATHS))
    # Two newlines between anchors: a phrase's "\n" at both ends counts each anchor once.
    # (Anchors hold no newline: whitespace is collapsed.)
    lines = "\n" + "\n\n".join(texts).lower() + "\n"
    for name, phrases in _ANCHOR_PHRASES.items():
        out["a_" + name] = log1p(sum(lines.count(p) for p in phrases))


#: The types' scores by the native core (pipelines/native.py ``page_type_scores``): signals ->
#: :func:`classify_signals`' scores (the same floats), or None (then Python's).
Scores = Callable[[dict[str, float]], "list[float] | None"]


def classify_signals(signals: dict[str, float], scores_of: Scores | None = None) -> PageClass:
    """The type whose score (:data:`BIAS` plus each signal times its weight in
    :data:`WEIGHTS`) is highest; "other" for a page with nothing to go on (no link, no title,
    no markup). *scores_of*: the native core's scores (the same), else Python's.

    >>> classify_signals({"s_product": 1.0, "u_product": 1.0, "l_links": 3.0}).page_type
    'product'
    >>> classify_signals({}).page_type
    'other'
    """
    if not signals.get("l_links") and not signals.get("t_words") and not _has_markup(signals):
        return PageClass("other", 0.0, signals)
    scores = None if scores_of is None else scores_of(signals)
    if scores is None:
        scores = _scores(signals)
    ranked = sorted(range(len(scores)), key=scores.__getitem__, reverse=True)
    best, second = ranked[0], ranked[1]
    return PageClass(MODEL_TYPES[best], scores[best] - scores[second], signals)


def _scores(signals: dict[str, float]) -> list[float]:
    """Each type's score: its :data:`BIAS` plus, for each signal in order whose value is not
    zero, the value times the signal's weight (the reference of native/src/classify.rs).

    >>> _scores({"l_links": 0.0}) == list(BIAS)
    True
    """
    scores = list(BIAS)
    for name, value in signals.items():
        if value:
            weights = WEIGHTS.get(name)
            if weights is not None:
                for k, weight in enumerate(weights):
                    scores[k] += weight * value
    return scores


def _has_markup(signals: dict[str, float]) -> bool:
    return any(v for k, v in signals.items() if k.startswith(("s_", "og_", "g_")))


def classify_page(
    url: str, title: str | None = None, markup: PageMarkup | None = None, links: Any = (),
    link_signals: LinkSignals | None = None, scores_of: Scores | None = None,
) -> PageClass:  # fmt: skip
    """What the page at *url* is for, from its title, markup and links (see
    :func:`page_signals`; *link_signals* and *scores_of*: the native core's): a pure function
    of them.

    >>> markup = PageMarkup()
    >>> markup.add_jsonld('{"@context": "https://schema.org", "@type": "DiscussionForumPosting"}')
    >>> classify_page("https://forum.acme.test/t/my-printer-jams/4211", "My printer jams",
    ...               markup).page_type
    'forum'
    """
    return classify_signals(page_signals(url, title, markup, links, link_signals), scores_of)


from pipelines.page_type_weights import BIAS, MODEL_TYPES, WEIGHTS  # noqa: E402
