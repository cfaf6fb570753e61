"""A web with spam planted by construction, beside natural links, and its ground truth.

Two target sites (money sites) are linked by:

- natural blogs: blogrolls (sitewide sidebars, site names), content links with page titles,
  brand names, naked URLs, "read more", one natural exact-match anchor here and there, comment
  links (``rel=ugc nofollow``), sponsored footers declared ``rel=sponsored``, a "partners" page,
  a resources page with a few dozen links;
- planted spam: link farms (pages linking to well over 100 sites), paid posts without a rel
  (sponsored post, advertorial, Anzeige), a private blog network (blogs linked only from each
  other, each post with a money anchor), and exact-match anchor bursts (throw-away pages, a
  few links each, one exact-match anchor).

``SpamWeb.spam[target]`` names the referring domains planted as spam, ``natural[target]`` the
others; everything is served on loopback by :class:`crawler.testweb.WebServer`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from html import escape

from crawler.testweb.resource import Resource

_WORDS = ("quiet", "harbor", "maple", "copper", "river", "meadow", "lantern", "granite", "willow",
          "ember", "cedar", "falcon", "juniper", "saffron", "thistle", "cobalt", "orchid",
          "summit", "tidal", "velvet")  # fmt: skip
_TOPICS = ("gardening", "cycling", "photography", "cooking", "birdwatching", "hiking",
           "woodworking", "astronomy", "knitting", "chess")  # fmt: skip
_TLDS = ("test", "example")


@dataclass(frozen=True)
class Target:
    domain: str
    name: str  # the site's name, as its title shows
    keyword: str  # the money keyword spammers push
    pages: tuple[tuple[str, str], ...]  # (url, title)


@dataclass
class SpamWeb:
    """The served web and the ground truth of its planted spam."""

    site: dict[str, dict[str, Resource]]
    seeds: list[str]
    targets: dict[str, Target]
    spam: dict[str, set[str]]  # target domain -> planted spam referring domains
    natural: dict[str, set[str]]  # target domain -> natural referring domains
    kinds: dict[str, str] = field(default_factory=dict)  # spam domain -> how it was planted


def _page(title: str, nav: str, main: str, aside: str = "", footer: str = "") -> Resource:
    html = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f"</title></head><body><header><nav>{nav}</nav></header>"
        f"<main><article><h1>{escape(title)}</h1>{main}</article></main>"
        + (f"<aside><h3>Elsewhere</h3><ul>{aside}</ul></aside>" if aside else "")
        + (f"<footer>{footer}</footer>" if footer else "")
        + "</body></html>"
    )
    return Resource(200, html.encode(), (("Content-Type", "text/html; charset=utf-8"),))


def _a(url: str, text: str, rel: str = "") -> str:
    r = f' rel="{rel}"' if rel else ""
    return f'<a href="{escape(url)}"{r}>{escape(text)}</a>'


class _Web:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.site: dict[str, dict[str, Resource]] = {}
        self.used: set[str] = set()

    def name(self, prefix: str = "") -> str:
        while True:
            a, b = self.rng.sample(_WORDS, 2)
            host = f"{prefix}{a}-{b}.{self.rng.choice(_TLDS)}"
            if host not in self.used:
                self.used.add(host)
                return host

    def text(self, n: int = 3) -> str:
        """Running text: sentences long enough to be a page's main content."""
        out = []
        for _ in range(n):
            w = [self.rng.choice(_WORDS + _TOPICS) for _ in range(14)]
            out.append(" ".join(w).capitalize() + ".")
        return " ".join(out)

    def para(self, link: str = "") -> str:
        t = self.text()
        if not link:
            return f"<p>{t}</p>"
        cut = t.find(" ", len(t) // 2)
        return f"<p>{t[:cut]} {link} {t[cut + 1 :]}</p>"

    def serve(self, host: str, path: str, res: Resource) -> None:
        self.site.setdefault(host, {})[path] = res


def _title(host: str) -> str:
    return " ".join(x.capitalize() for x in host.split(".")[0].split("-"))


def build_spam_web(seed: int = 0, n_natural: int = 16) -> SpamWeb:
    """Two money sites, ``n_natural`` natural blogs and the planted spam around them.

    >>> w = build_spam_web()
    >>> sorted(w.targets) == sorted(w.spam) and all(w.spam.values())
    True
    """
    web = _Web(seed)
    rng = web.rng
    targets: dict[str, Target] = {}
    for name, kw, products in (
        ("Lumen Lamps", "led desk lamps", ("Arc desk lamp", "Clamp reading light", "Lamp care")),
        ("Harbor Bakery", "sourdough bread delivery", ("Rye sourdough", "Seeded loaf",
                                                        "Our ovens")),
    ):  # fmt: skip
        label = name.lower().replace(" ", "")
        domain = f"{label}.{rng.choice(_TLDS)}"
        web.used.add(domain)
        pages = [(f"http://{domain}/", f"{name} - home")]
        pages += [(f"http://{domain}/p/{t.lower().replace(' ', '-')}", t) for t in products]
        targets[domain] = Target(domain, name, kw, tuple(pages))
        nav = " ".join(_a(u, t) for u, t in pages)
        for u, t in pages:
            web.serve(domain, u.split(domain, 1)[1], _page(t, nav, web.para() + web.para()))
    spam: dict[str, set[str]] = {d: set() for d in targets}
    natural: dict[str, set[str]] = {d: set() for d in targets}
    kinds: dict[str, str] = {}

    # -- natural blogs -----------------------------------------------------------------------
    blogs = [web.name() for _ in range(n_natural)]
    articles: dict[str, list[tuple[str, str]]] = {}
    for b in blogs:
        topic = rng.choice(_TOPICS)
        articles[b] = [(f"http://{b}/{i}-{topic}-{w}", f"{w.capitalize()} {topic} notes {i}")
                       for i, w in enumerate(rng.sample(_WORDS, 3))]  # fmt: skip
    for i, b in enumerate(blogs):
        tlist = list(targets.values())
        nav = _a(f"http://{b}/", "Home") + _a(f"http://{b}/about", "About")
        nav += "".join(_a(u, t) for u, t in articles[b])
        roll = [_a(f"http://{o}/", _title(o)) for o in rng.sample([x for x in blogs if x != b], 4)]
        if i % 2 == 0:  # a blogroll that names a target site: sitewide, natural
            t = tlist[i % 4 // 2]
            roll.append(_a(t.pages[0][0], t.name))
            natural[t.domain].add(b)
        aside = "".join(f"<li>{x}</li>" for x in roll)
        footer = _a(f"http://{b}/about", "About") + " &copy; 2024 " + _title(b)
        if i % 4 == 1:  # a sponsored footer, declared: not spam
            t = tlist[i % 2]
            footer += " Sponsor: " + _a(t.pages[0][0], f"best {t.keyword}", "sponsored")
            natural[t.domain].add(b)
        for k, (url, title) in enumerate(articles[b]):
            links = []
            other = rng.choice([x for x in blogs if x != b])
            ou, ot = rng.choice(articles[other])
            links.append(_a(ou, ot))
            t = tlist[(i + k) % 2]
            pu, pt = rng.choice(t.pages[1:])
            style = (i * 3 + k) % 6
            if style == 0:
                links.append(_a(pu, pt))  # the page's title
            elif style == 1:
                links.append(_a(t.pages[0][0], t.name))  # the brand
            elif style == 2:
                links.append(_a(pu, pu.split("://", 1)[1]))  # a naked URL
            elif style == 3:
                links.append(_a(pu, "read more"))
            elif style == 4 and i % 5 == 0:
                links.append(_a(t.pages[0][0], t.keyword))  # one natural exact match
            else:
                links.append(_a(pu, f"{pt.lower()} by {t.name}"))
            natural[t.domain].add(b)
            main = "".join(web.para(x) for x in links) + web.para()
            comment = _a(t.pages[0][0], "Jo from " + t.name, "ugc nofollow")
            main += f'<section class="comments"><p>Nice post! {comment}</p></section>'
            web.serve(b, url.split(b, 1)[1], _page(title, nav, main, aside, footer))
        home_main = "".join(f"<h2>{_a(u, t)}</h2>{web.para()}" for u, t in articles[b])
        web.serve(b, "/", _page(_title(b), nav, home_main, aside, footer))
        about = web.para() + web.para()
        if i == 3:  # a partners page, links followed: a hint, not proof
            about = "<p>Our partners:</p>" + "".join(
                web.para(_a(t.pages[0][0], t.name)) for t in tlist
            )
            for t in tlist:
                natural[t.domain].add(b)
        if i == 5:  # a resources page: a few dozen links, not a farm
            about = "<ul>" + "".join(f"<li>{_a(f'http://{o}/', _title(o))}</li>"
                                     for o in blogs) + "</ul>" + web.para()  # fmt: skip
            about += "<ul>" + "".join(f"<li>{_a(f'http://ref-{k}.example/', f'Reference {k}')}"
                                      "</li>" for k in range(20)) + "</ul>"  # fmt: skip
        web.serve(b, "/about", _page(f"About {_title(b)}" + (" - partners" if i == 3 else ""),
                                     nav, about, aside, footer))  # fmt: skip

    def plant(domain: str, t: Target, kind: str) -> None:
        spam[t.domain].add(domain)
        kinds[domain] = kind

    # -- link farms: one page, 120+ other sites, every target -------------------------------
    for f in range(3):
        host = web.name("links-")
        for p in range(2):
            items = [_a(f"http://lf-{f}-{p}-{k}.example/", f"site {k}") for k in range(120)]
            for t in targets.values():
                items.insert(rng.randrange(len(items)), _a(t.pages[0][0], t.keyword))
                plant(host, t, "link_farm")
            body = "<ul>" + "".join(f"<li>{x}</li>" for x in items) + "</ul>"
            nav = _a(f"http://{host}/", "Links") + _a(f"http://{host}/more", "More links")
            web.serve(host, "/" if p == 0 else "/more", _page(f"Directory page {p + 1}", nav,
                                                               body))  # fmt: skip

    # -- paid posts without rel: normal-looking blogs, one paid post each --------------------
    paid_titles = ("Sponsored post: {kw} for everyone", "Anzeige: {kw} im Test", "{kw} guide")
    for k in range(6):
        t = list(targets.values())[k % 2]
        host = web.name()
        path = "/advertorial/" + t.keyword.replace(" ", "-") if k % 3 == 2 else "/post/paid"
        nav = _a(f"http://{host}/", "Home") + _a(f"http://{host}{path}", "Latest")
        nav += _a(f"http://{host}/about", "About")
        roll = "".join(f"<li>{_a(f'http://{o}/', _title(o))}</li>" for o in rng.sample(blogs, 3))
        if k == 1:  # a paid sidebar link too, on every page: sitewide, a money anchor
            roll += f"<li>{_a(t.pages[0][0], f'cheap {t.keyword}')}</li>"
        title = paid_titles[k % 3].format(kw=t.keyword.capitalize())
        main = web.para() + web.para(_a(t.pages[0][0], t.keyword)) + web.para()
        web.serve(host, path, _page(title, nav, main, roll))
        web.serve(host, "/", _page(_title(host), nav, web.para(_a(f"http://{host}{path}",
                                                                    title)), roll))  # fmt: skip
        web.serve(host, "/about", _page(f"About {_title(host)}", nav, web.para(), roll))
        plant(host, t, "paid_without_rel")

    # -- private blog networks: linked only from each other, money anchors in every post ----
    for t, size in zip(targets.values(), (5, 4), strict=True):
        hosts = [web.name() for _ in range(size)]
        variants = (t.keyword, f"best {t.keyword}", f"cheap {t.keyword}", f"{t.keyword} online")
        for i, host in enumerate(hosts):
            nav = _a(f"http://{host}/", "Home") + "".join(
                _a(f"http://{host}/post-{k}", f"Post {k}") for k in range(3)
            )
            ring = "".join(f"<li>{_a(f'http://{o}/', _title(o))}</li>" for o in hosts if o != host)
            for k in range(3):
                anchor = variants[(i + k) % len(variants)]
                main = web.para() + web.para(_a(rng.choice(t.pages)[0], anchor)) + web.para()
                web.serve(host, f"/post-{k}", _page(f"{anchor.capitalize()} tips {k}", nav,
                                                    main, ring))  # fmt: skip
            web.serve(host, "/", _page(_title(host), nav, web.para() + web.para(), ring))
            plant(host, t, "network")

    # -- exact-match anchor bursts: throw-away pages, one anchor -----------------------------
    for t in targets.values():
        for _ in range(6):
            host = web.name("my-")
            body = f"<p>{web.text(1)} {_a(t.pages[0][0], t.keyword)}. {web.text(1)}</p>"
            web.serve(host, "/", _page(f"Profile of {_title(host)}", _a(f"http://{host}/", "Me"),
                                       body))  # fmt: skip
            plant(host, t, "anchor_burst")

    for t in targets.values():
        natural[t.domain] -= spam[t.domain]
    seeds = [f"http://{h}/" for h in web.site]
    return SpamWeb(web.site, seeds, targets, spam, natural, kinds)
