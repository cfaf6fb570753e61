"""The language and country of a page, from what it declares and where it is hosted.

Pure functions, no network: ``lang`` from ``<html lang>``, then the ``Content-Language``
header, then an offline detector (py3langid) on a capped sample of the visible text, only when
neither is declared; ``country`` from the host's country-code TLD (not one sold as a generic
TLD), then the region of the page's own hreflang, then the region of its declared language.
README: "Language and country".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

# ISO 3166-1 alpha-2 codes (officially assigned), the regions a ccTLD or a language tag names.
ISO_COUNTRIES = frozenset(
    """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO
    DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU
    GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW
    KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU
    MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW
    PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF
    TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA
    ZM ZW""".split()  # noqa: SIM905
)
# Country-code TLDs sold and used as generic ones: a site there says nothing of its country.
# Google's list of "generic ccTLDs" (Search Central, "Managing multi-regional sites": .ad .as
# .bz .cc .cd .co .dj .fm .io .la .me .ms .nu .sc .sr .su .tv .tk .ws) and those used the same
# way since (.ai .gg .sh .to .ly .vc .ac .im .gl .so .gd .fo... are marketed to everyone; we
# keep the ones commonly seen: .ai .gg .sh .to .ly .vc .ac .im).
GENERIC_CCTLDS = frozenset(
    "ad as bz cc cd co dj fm io la me ms nu sc sr su tv tk ws ai gg sh to ly vc ac im".split()  # noqa: SIM905
)
# The ccTLDs that are not the country's ISO code.
_TLD_COUNTRY = {"uk": "GB"}
# Deprecated ISO 639 codes still met in lang attributes, and their current ones.
_LANG_ALIASES = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "mo": "ro"}
_LANG = re.compile(r"[a-z]{2,3}")
_SPLIT = re.compile(r"[-_]")
_NOT_LETTERS = re.compile(r"[\W\d_]+")

#: Characters of visible text the detector reads at most (its cost is linear in them: ~0.3 ms
#: per 1,000 characters); the prose lines (5 words or more) come first.
DETECT_SAMPLE_CHARS = 1000
#: Fewer letters than this in the sample: no detection (a guess on a menu is noise).
DETECT_MIN_LETTERS = 40


def parse_lang(tag: str | None) -> tuple[str | None, str | None]:
    """The primary language subtag (lowercase) and region (ISO 3166, uppercase) of a BCP-47
    tag, or None for what is not a language (empty, ``x-default``, ``und``, ``*``).

    >>> parse_lang("en-US"), parse_lang(" DE_at "), parse_lang("zh-Hant-TW"), parse_lang("fr")
    (('en', 'US'), ('de', 'AT'), ('zh', 'TW'), ('fr', None))
    >>> parse_lang("x-default"), parse_lang("und"), parse_lang("iw-IL"), parse_lang("es-419")
    ((None, None), (None, None), ('he', 'IL'), ('es', None))
    """
    if not tag:
        return None, None
    parts = _SPLIT.split(tag.strip().lower()[:64])
    lang = parts[0]
    if not _LANG.fullmatch(lang) or lang in ("und", "mul", "zxx", "mis"):
        return None, None
    region = None
    for part in parts[1:]:
        if len(part) == 2 and part.upper() in ISO_COUNTRIES:
            region = part.upper()
            break
        if len(part) == 1:  # an extension or private use: no region past it
            break
    return _LANG_ALIASES.get(lang, lang), region


def first_language(header: str | None) -> str | None:
    """The first language of a ``Content-Language`` header (a list, most relevant first).

    >>> first_language("de-DE, en"), first_language(" , fr"), first_language(None)
    ('de-DE', 'fr', None)
    """
    if not header:
        return None
    for item in header[:256].split(","):
        item = item.split(";")[0].strip()
        if item:
            return item
    return None


def host_country(host: str) -> str | None:
    """The country of a host's country-code TLD, unless it is sold as a generic one.

    >>> host_country("shop.example.de"), host_country("www.example.co.uk")
    ('DE', 'GB')
    >>> host_country("app.example.io"), host_country("example.com"), host_country("10.0.0.1")
    (None, None, None)
    """
    tld = host.rstrip(".").rsplit(".", 1)[-1].lower()
    if len(tld) != 2 or tld in GENERIC_CCTLDS or not tld.isalpha():
        return None
    country = _TLD_COUNTRY.get(tld, tld.upper())
    return country if country in ISO_COUNTRIES else None


def text_sample(text: str, max_chars: int = DETECT_SAMPLE_CHARS) -> str:
    """What the detector reads of a page's visible text (lines separated by newlines): its
    prose lines (5 words or more) first, then the rest, up to *max_chars* characters.

    >>> text_sample("Home\\nNews\\nDas ist ein Satz mit vielen Wörtern.\\nKontakt", 30)
    'Das ist ein Satz mit vielen Wö'
    """
    prose: list[str] = []
    rest: list[str] = []
    size = 0
    for line in text[: 64 * max_chars].splitlines():  # a Python step per line: bounded
        line = line.strip()
        if not line:
            continue
        if line.count(" ") >= 4:
            prose.append(line)
            size += len(line) + 1
            if size >= max_chars:
                break
        elif size < max_chars:
            rest.append(line)
    sample = "\n".join(prose) if size >= max_chars else "\n".join(prose + rest)
    return sample[:max_chars]


#: The detector's feature counts by the native core (``pipelines.native.langid_visits``:
#: py3langid's ``visit_counts``, the same dict in the same order, or None: then py3langid's
#: own), for the detection running in this context; None: py3langid's.
Visits = Callable[[Any, bytes], "dict[int, int] | None"]
_VISITS: ContextVar[Visits | None] = ContextVar("linkcrawl_langid_visits", default=None)


@lru_cache(maxsize=1)
def _identifier():  # type: ignore[no-untyped-def]
    # Loaded once per process (~1.5 s, ~30 MB), on the first page that needs it.
    import numpy as np  # py3langid's own dependency
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    # Each of the 65,536 float16 values as float32 (numpy's cast of each: exact), by its bits.
    _HALF_TO_SINGLE = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)

    class Identifier(LanguageIdentifier):  # type: ignore[misc]
        """py3langid's, whose feature counts the native core may make (:data:`_VISITS`):
        the scores from them are py3langid's own (``_sparse_score``, numpy, bit for bit)."""

        __slots__ = ()

        def _raw_score(self, text: bytes) -> Any:
            visits = _VISITS.get()
            found = visits(self, text) if visits is not None else None
            if not found:  # no core (or it failed), or no feature: py3langid's own
                return super()._raw_score(text)
            return self._sparse_score(found, self.nb_ptc)  # as py3langid's _raw_score

        def _sparse_score(self, visits: dict[int, int], table: Any) -> Any:
            # py3langid's, its float16 rows widened by a lookup (numpy's own cast, which the
            # product makes, costs ~0.1 ms a page detected: 3x this): the same float32 rows,
            # so the same product, bit for bit (tests/test_native_langid.py).
            if table.dtype != np.float16 or not table.flags.c_contiguous:
                return super()._sparse_score(visits, table)
            idx = np.fromiter(visits.keys(), dtype=np.intp, count=len(visits))
            counts = np.fromiter(visits.values(), dtype=np.float32, count=len(visits))
            return np.log1p(counts) @ _HALF_TO_SINGLE.take(table.view(np.uint16)[idx]) + self.nb_pc

    return Identifier.from_model_file(MODEL_FILE)


def _letters(text: str, enough: int = DETECT_MIN_LETTERS) -> int:
    """How many letters *text* has, or some number >= *enough* when it has that many (counted
    in C on a prefix first: a prose sample has them in its first lines; a prefix never has
    more letters than the whole, so the answer to ``>= enough`` is the whole's).

    >>> _letters("Home | News | 2024"), _letters("a" * 300) >= 40, _letters("1 ²" + "a" * 39)
    (8, True, 40)
    """
    found = len(_NOT_LETTERS.sub("", text[: 4 * enough]))
    return found if found >= enough or len(text) <= 4 * enough else len(_NOT_LETTERS.sub("", text))


def detect(text: str, visits: Visits | None = None) -> str | None:
    """The language of *text* by py3langid (97 languages, offline), or None when it has fewer
    than DETECT_MIN_LETTERS letters. *visits*: the native core's feature counts (the same
    answer), else py3langid's own.

    >>> detect("Der schnelle braune Fuchs springt über den faulen Hund und läuft davon.")
    'de'
    >>> detect("Home | News | 2024") is None
    True
    """
    sample = text[:DETECT_SAMPLE_CHARS]
    if _letters(sample) < DETECT_MIN_LETTERS:
        return None
    identifier = _identifier()
    if visits is None:
        lang, _score = identifier.classify(sample)
    else:
        token = _VISITS.set(visits)
        try:
            lang, _score = identifier.classify(sample)
        finally:
            _VISITS.reset(token)
    return parse_lang(lang)[0]


def page_lang(
    html_lang: str | None, content_language: str | None, text: str | None,
    visits: Visits | None = None,
) -> tuple[str | None, str, str | None]:  # fmt: skip
    """(lang, lang_source, declared region) of a page. The rule: ``<html lang>`` first (the
    document's own word), then ``Content-Language`` (often a server-wide default), then the
    detector on *text* (visible text, or None when not computed) when neither declares a
    language. When both declare one and they disagree, the detector decides between them
    (source ``detected``), and ``<html lang>`` stands if it names neither. A lone declared
    language is not second-guessed: detection on every page would cost ~1 ms a page, and the
    evaluation (tests/benchmarks/eval_lang.py) finds declared tags right on 97-99.9% of pages.

    >>> page_lang("en-GB", "de", None), page_lang(None, "de-AT, en", None)
    (('en', 'html-lang', 'GB'), ('de', 'content-language', 'AT'))
    >>> page_lang("en", "fr-CA", "Ceci est une phrase en français, écrite pour le test.")
    ('fr', 'detected', 'CA')
    >>> page_lang("", None, "Ceci est une phrase en français, écrite pour le test.")
    ('fr', 'detected', None)
    >>> page_lang(None, None, "")
    (None, 'none', None)
    """
    lang, region = parse_lang(html_lang)
    header, header_region = parse_lang(first_language(content_language))
    if lang is not None and header is not None and header != lang and text:
        found = detect(text_sample(text), visits)
        if found == header:
            return header, "detected", header_region
        if found == lang:
            return lang, "detected", region
    if lang is not None:
        return lang, "html-lang", region
    if header is not None:
        return header, "content-language", header_region
    if text:
        lang = detect(text_sample(text), visits)
        if lang is not None:
            return lang, "detected", None
    return None, "none", None


def page_country(
    host: str, hreflang_region: str | None, lang_region: str | None
) -> tuple[str | None, str]:
    """(country, country_source): the ccTLD, else the region of the page's own hreflang, else
    the region of its declared language.

    >>> page_country("a.example.fr", "BE", "BE"), page_country("a.example.com", "BE", "FR")
    (('FR', 'cctld'), ('BE', 'hreflang'))
    >>> page_country("a.example.io", None, "US"), page_country("a.example", None, None)
    (('US', 'lang-region'), (None, 'none'))
    """
    country = host_country(host)
    if country is not None:
        return country, "cctld"
    if hreflang_region is not None:
        return hreflang_region, "hreflang"
    if lang_region is not None:
        return lang_region, "lang-region"
    return None, "none"
