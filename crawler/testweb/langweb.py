"""A web of pages in several languages and countries, with brand mentions, and its model.

Hosts on country-code TLDs (``.de``, ``.fr``, ``.co.uk``), on a ccTLD sold as generic
(``.io``) and on ``.test``/``.example``; pages that declare their language in ``<html lang>``,
in a ``Content-Language`` header, in neither (the detector's case), with their own hreflang
region; and pages that name the brand "Acme Tools" (whose site is ``acme-tools.test``) with a
link to it, without one, in another case or with accents, or in words that are not the brand
("AcmeTools", "Acme Toolsmith"). Served on loopback by :class:`crawler.testweb.WebServer`
(the names never reach DNS: the server is the crawler's proxy).

``LangWeb.pages[url]`` says what the index must hold for each page: its language and country
with their sources, and whether and how it mentions the brand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from crawler.testweb.resource import Resource

BRAND = "Acme Tools"
BRAND_DOMAIN = "acme-tools.test"

# Prose per language, long enough for the detector (its sentences end with a full stop).
PROSE = {
    "en": ("The weather was fine and we spent the whole afternoon in the garden. "
           "Our neighbours came over with a basket of apples from their old tree."),
    "de": ("Das Wetter war schön und wir haben den ganzen Nachmittag im Garten verbracht. "
           "Unsere Nachbarn kamen mit einem Korb voller Äpfel von ihrem alten Baum vorbei."),
    "fr": ("Le temps était beau et nous avons passé tout l'après-midi dans le jardin. "
           "Nos voisins sont venus avec un panier de pommes de leur vieil arbre."),
    "es": ("El tiempo era bueno y pasamos toda la tarde en el jardín con la familia. "
           "Nuestros vecinos vinieron con una cesta de manzanas de su viejo árbol."),
    "it": ("Il tempo era bello e abbiamo passato tutto il pomeriggio in giardino. "
           "I nostri vicini sono venuti con un cesto di mele dal loro vecchio albero."),
    "pt": ("O tempo estava bom e passamos a tarde inteira no jardim com a família. "
           "Os nossos vizinhos vieram com um cesto de maçãs da sua velha árvore."),
}  # fmt: skip
# A sentence that names the brand (written as given), per language.
MENTION = {
    "en": "We fixed the fence with the drill from {brand} and it worked well.",
    "de": "Wir haben den Zaun mit dem Bohrer von {brand} repariert.",
    "fr": "Nous avons réparé la clôture avec la perceuse de {brand} hier.",
    "es": "Arreglamos la valla con el taladro de {brand} ayer por la tarde.",
    "it": "Abbiamo riparato la recinzione con il trapano di {brand} ieri.",
    "pt": "Consertamos a cerca com a furadeira da {brand} ontem à tarde.",
}


@dataclass(frozen=True)
class LangPage:
    """What the index must say of one served page."""

    url: str
    lang: str | None
    lang_source: str
    country: str | None
    country_source: str
    written: str | None = None  # how the brand is written on the page (None: not named)
    links_brand: bool = False  # the page links to BRAND_DOMAIN
    sentence: str | None = None  # the sentence of its first mention

    def matches(self, *, case_sensitive: bool = False, exact_accents: bool = False) -> bool:
        """Whether a search for BRAND finds the page's mention, under these options."""
        w = self.written
        if w is None or w in ("AcmeTools", "Acme Toolsmith"):  # not the brand's words
            return False
        if exact_accents and w != w.encode("ascii", "ignore").decode():
            return False
        return not case_sensitive or " ".join(w.replace("Á", "A").split()) == BRAND


@dataclass
class LangWeb:
    site: dict[str, dict[str, Resource]]
    seeds: list[str]
    pages: dict[str, LangPage] = field(default_factory=dict)

    def unlinked(self, **options: bool) -> dict[str, LangPage]:
        """The pages `mentions BRAND --domain BRAND_DOMAIN` lists, under ``options``."""
        return {
            u: p for u, p in self.pages.items()
            if p.matches(**options) and not p.links_brand
            and not u.startswith(f"http://{BRAND_DOMAIN}/")
        }  # fmt: skip


def _html(lang_attr: str | None, title: str, body: str, head: str = "") -> bytes:
    lang = f' lang="{lang_attr}"' if lang_attr is not None else ""
    return (
        f'<!DOCTYPE html><html{lang}><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'{head}</head><body><nav><a href="/">Home</a></nav><main><article>'
        f"<h1>{escape(title)}</h1>{body}</article></main><footer>Contact</footer></body></html>"
    ).encode()


def build_lang_web() -> LangWeb:
    """The web and its model (deterministic)."""
    web = LangWeb(site={}, seeds=[])
    # (host, <html lang>, Content-Language, language written, expected lang, lang source,
    #  hreflang region of the page itself, expected country, country source)
    hosts = [
        ("garten.example.de", "de", None, "de", "de", "html-lang", None, "DE", "cctld"),
        ("jardin.example.fr", "fr-BE", None, "fr", "fr", "html-lang", None, "FR", "cctld"),
        ("garden.example.co.uk", "en", None, "en", "en", "html-lang", None, "GB", "cctld"),
        ("jardim.example.io", "pt-BR", None, "pt", "pt", "html-lang", None, "BR", "lang-region"),
        ("giardino.test", None, "it-IT", "it", "it", "content-language", None, "IT",
         "lang-region"),
        ("jardin.test", None, None, "es", "es", "detected", None, None, "none"),
        ("garten.example", "de", None, "de", "de", "html-lang", "CH", "CH", "hreflang"),
        ("plain.test", "en", None, "en", "en", "html-lang", None, None, "none"),
        # <html lang> and Content-Language disagree: the detector decides (German prose).
        ("streit.example", "en", "de-DE", "de", "de", "detected", None, "DE", "lang-region"),
    ]  # fmt: skip
    # Per host, the pages: (path, how the brand is written or None, links to the brand).
    plans = {
        "garten.example.de": [("/a", BRAND, False), ("/b", BRAND, True), ("/c", None, False)],
        "jardin.example.fr": [("/a", "ACME TOOLS", False), ("/b", "Ácme Tools", False)],
        "garden.example.co.uk": [("/a", "acme tools", False), ("/b", "AcmeTools", False),
                                 ("/c", "Acme Toolsmith", False)],
        "jardim.example.io": [("/a", BRAND, True)],
        "giardino.test": [("/a", BRAND, False)],
        "jardin.test": [("/a", "Acme  Tools", False), ("/b", None, False)],
        "garten.example": [("/a", BRAND, False)],
        "plain.test": [("/a", None, True)],
        "streit.example": [("/a", None, True)],
    }  # fmt: skip
    for host, html_lang, content_lang, written_lang, lang, lsrc, region, country, csrc in hosts:
        site: dict[str, Resource] = {}
        items = []
        for path, written, links in plans[host]:
            url = f"http://{host}{path}"
            title = f"{host} {path}"
            paras = [PROSE[written_lang]]
            sentence = None
            if written is not None:
                sentence = MENTION[written_lang].format(brand=written)
                paras.append(
                    f"{PROSE[written_lang].split('. ')[0]}. {sentence} {PROSE[written_lang]}"
                )
            if links:
                paras.append(f'<a href="http://{BRAND_DOMAIN}/">{BRAND_DOMAIN}</a>')
            body = "".join(f"<p>{p if p.startswith('<a') else escape(p)}</p>" for p in paras)
            head = ""
            if region is not None:
                head = (f'<link rel="alternate" hreflang="{lang}-{region}" href="{path}">'
                        f'<link rel="alternate" hreflang="en" href="/en{path}">')  # fmt: skip
            headers = [("Content-Type", "text/html; charset=utf-8")]
            if content_lang:
                headers.append(("Content-Language", content_lang))
            site[path] = Resource(200, _html(html_lang, title, body, head), tuple(headers))
            # The sentence as the index shows it: whitespace collapsed.
            shown = " ".join(sentence.split()) if sentence else None
            web.pages[url] = LangPage(url, lang, lsrc, country, csrc, written, links, shown)
            items.append(f'<li><a href="{path}">{escape(title)}</a></li>')
        root = f"<p>{escape(PROSE[written_lang])}</p><ul>{''.join(items)}</ul>"
        site["/"] = Resource(200, _html(html_lang, host, root),
                             tuple([("Content-Type", "text/html; charset=utf-8")]
                                   + ([("Content-Language", content_lang)] if content_lang
                                      else [])))  # fmt: skip
        # The root page has no hreflang of its own.
        root_country = (country, csrc) if csrc != "hreflang" else (None, "none")
        web.pages[f"http://{host}/"] = LangPage(f"http://{host}/", lang, lsrc, *root_country)
        web.site[host] = site
        web.seeds.append(f"http://{host}/")
    # The brand's own site names itself (not an unlinked mention).
    own = f"<p>{escape(MENTION['en'].format(brand=BRAND))}</p>"
    web.site[BRAND_DOMAIN] = {
        "/": Resource(200, _html("en", BRAND, own), (("Content-Type", "text/html; charset=utf-8"),))
    }
    web.pages[f"http://{BRAND_DOMAIN}/"] = LangPage(
        f"http://{BRAND_DOMAIN}/", "en", "html-lang", None, "none", BRAND, False,
        MENTION["en"].format(brand=BRAND),
    )  # fmt: skip
    web.seeds.append(f"http://{BRAND_DOMAIN}/")
    return web
