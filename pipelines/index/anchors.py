"""Anchor-text classes, as link explorers show them, and the over-optimisation signal."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

CLASSES = ("image", "empty", "naked_url", "generic", "branded", "exact", "partial", "other")

# Calls to action and filler that say nothing of the target, in several languages.
GENERIC = frozenset(
    w.strip()
    for w in """
    click here|here|this|this link|link|this site|this page|website|web site|site|read more|
    more|learn more|see more|more info|more information|find out more|details|source|visit|
    visit site|visit website|go|go to|continue|continue reading|download|check it out|homepage|
    home page|home|see here|view|view more|article|post|blog|page|info|official site|
    hier|hier klicken|klicken sie hier|mehr|weiterlesen|mehr lesen|mehr erfahren|quelle|webseite|
    cliquez ici|ici|lire la suite|en savoir plus|plus|voir plus|source|site web|
    haga clic aquí|clic aquí|aquí|leer más|más|más información|ver más|fuente|sitio web|
    clicca qui|qui|leggi di più|continua a leggere|scopri di più|fonte|
    clique aqui|aqui|leia mais|saiba mais|ver mais|fonte|
    klik hier|lees meer|meer|meer informatie|bron|
    kliknij tutaj|tutaj|czytaj więcej|więcej|źródło|
    здесь|тут|подробнее|читать далее|источник|ссылка|
    ここ|こちら|詳細|続きを読む|点击这里|这里|更多|阅读更多|
    """.replace("\n", "").split("|")
    if w.strip()
)

_WORD = re.compile(r"\w+", re.UNICODE)
_URLISH = re.compile(r"^(https?://|www\.)\S+$|^[\w-]+(\.[\w-]+)+(/\S*)?$", re.IGNORECASE)
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "the",
        "of",
        "for",
        "to",
        "in",
        "on",
        "at",
        "by",
        "with",
        "best",
        "top",
        "cheap",
        "buy",
        "your",
        "our",
        "my",
        "new",
    ]
)
OVER_OPTIMISED_EXACT_SHARE = 0.20  # share of referring domains with exact-match anchors
OVER_OPTIMISED_MONEY_SHARE = 0.50  # exact + partial


def normalize(text: str) -> str:
    """Lowercase, accents kept, punctuation to spaces, whitespace collapsed.

    >>> normalize("  Click HERE! ")
    'click here'
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_WORD.findall(text.replace("_", " ")))


def words(text: str) -> list[str]:
    return [w for w in normalize(text).split() if w]


def brand_terms(domain: str) -> set[str]:
    """Brand spellings of a registered domain: its first label, with and without hyphens.

    >>> sorted(brand_terms("acme-tools.co.uk"))
    ['acme tools', 'acmetools']
    """
    label = domain.split(".")[0]
    return {normalize(label.replace("-", " ")), label.replace("-", "")} - {""}


def classify(
    anchor: str | None, *, is_image: bool, domain: str | None, target_url: str = "",
    keywords: Iterable[str] = (),
) -> str:  # fmt: skip
    """The class of one anchor, given the target's domain and keywords.

    Branded: the anchor holds the target's own name, the label of its registered domain
    (``acme-tools.co.uk`` -> "acme tools", "acmetools"). ``keywords``: the target's money
    keywords (``--keyword``); without them no anchor is exact or partial. The target URL's
    slug is not a keyword: people cite a page by its title, whose words the slug repeats.
    ``target_url`` is accepted for callers and not used.

    >>> classify("Click here", is_image=False, domain="shop.test")
    'generic'
    >>> classify(None, is_image=False, domain=None)  # a NULL from another writer's file
    'empty'
    >>> classify("www.shop.test", is_image=False, domain="shop.test")
    'naked_url'
    >>> classify("Shop", is_image=False, domain="shop.test")
    'branded'
    >>> classify("blue widgets", is_image=False, domain="shop.test", keywords=["blue widgets"])
    'exact'
    >>> classify("the best widgets", is_image=False, domain="shop.test",
    ...          keywords=["blue widgets"])
    'partial'
    >>> classify("Blue widgets", is_image=False, domain="shop.test",
    ...          target_url="http://shop.test/blue-widgets")
    'other'
    """
    if is_image:
        return "image"
    anchor = anchor or ""
    norm = normalize(anchor)
    if not norm:
        return "empty"
    if _URLISH.match(anchor.strip()):
        return "naked_url"
    if norm in GENERIC:
        return "generic"
    brands = brand_terms(domain or "")
    squashed = norm.replace(" ", "")
    if any(b in norm or b.replace(" ", "") in squashed for b in brands if len(b) >= 3):
        return "branded"
    del target_url  # see the docstring
    kws = [normalize(k) for k in keywords if normalize(k)]
    for kw in kws:
        if norm == kw:
            return "exact"
    anchor_words = set(norm.split()) - STOPWORDS
    for kw in kws:
        kw_words = set(kw.split()) - STOPWORDS
        if kw_words and anchor_words & kw_words:
            return "partial"
    return "other"


def over_optimisation(class_domains: dict[str, int], total_domains: int) -> str | None:
    """Why an anchor profile looks over-optimised (or None), from refdomains per class.

    >>> over_optimisation({"exact": 3, "branded": 7}, 10) is not None
    True
    >>> over_optimisation({"exact": 1, "branded": 9}, 10) is None
    True
    """
    if total_domains <= 0:
        return None
    exact = class_domains.get("exact", 0) / total_domains
    money = exact + class_domains.get("partial", 0) / total_domains
    if exact > OVER_OPTIMISED_EXACT_SHARE:
        return (
            f"{exact:.0%} of referring domains use exact-match anchors "
            f"(natural profiles stay under {OVER_OPTIMISED_EXACT_SHARE:.0%}, most anchors "
            "being branded, naked URLs or generic)"
        )
    if money > OVER_OPTIMISED_MONEY_SHARE:
        return (
            f"{money:.0%} of referring domains use keyword (exact or partial) anchors "
            f"(over {OVER_OPTIMISED_MONEY_SHARE:.0%})"
        )
    return None
