"""Language and country of pages, --lang/--country, and unlinked brand mentions, end to end.

One crawl (``--store-text``) of the language web (crawler/testweb/langweb.py) on loopback; every
answer is computed from the web's model of what it served.
"""

from __future__ import annotations

import csv
import io
import shutil
from collections import Counter

import indexdata
import pyarrow.parquet as pq
import pytest
from crawling import crawl_env, run_crawl

from crawler.cli import main
from crawler.testweb import WebServer
from crawler.testweb.langweb import BRAND, BRAND_DOMAIN, build_lang_web
from pipelines.index.layout import parse_target
from pipelines.index.queries import Filters, Index
from pipelines.index.textskip import SIDECAR_NAME
from pipelines.urls import registered_domain, url_host


@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    web = build_lang_web()
    out = tmp_path_factory.mktemp("lang") / "index"
    with WebServer(web.site) as server:
        run_crawl(web.seeds, out, "--workers", "1", "--delay", "0", "--host-concurrency", "4",
                  "--allow-private", "--store-text", "--crawl-id", "lang1", "-q",
                  env=crawl_env(server.proxy_url))  # fmt: skip
    assert main(["rank", str(out)]) == 0
    return web, out


def rows(capsysbinary, *args: str) -> tuple[int, list[dict], str]:
    capsysbinary.readouterr()
    code = main([*args, "--format", "csv"])
    cap = capsysbinary.readouterr()
    return code, list(csv.DictReader(io.StringIO(cap.out.decode()))), cap.err.decode()


def test_pages_lang_and_country_as_the_model_says(crawled, capsysbinary):
    web, index = crawled
    code, got, _ = rows(capsysbinary, "sql", "SELECT url, lang, lang_source, country, "
                        "country_source FROM pages", "-i", str(index))  # fmt: skip
    assert code == 0
    by = {r["url"]: r for r in got}
    assert set(by) == set(web.pages)
    for url, p in web.pages.items():
        r = by[url]
        assert (r["lang"] or None, r["lang_source"]) == (p.lang, p.lang_source), url
        assert (r["country"] or None, r["country_source"]) == (p.country, p.country_source), url
    # Every source is planted at least once.
    assert {p.lang_source for p in web.pages.values()} == {"html-lang", "content-language",
                                                           "detected"}  # fmt: skip
    assert {p.country_source for p in web.pages.values()} == {"cctld", "hreflang", "lang-region",
                                                              "none"}  # fmt: skip


def _linking(web) -> dict[str, object]:
    return {u: p for u, p in web.pages.items() if p.links_brand}


def test_backlinks_and_refdomains_filter_and_show_lang_country(crawled, capsysbinary):
    web, index = crawled
    linking = _linking(web)
    assert len({p.lang for p in linking.values()}) > 1  # the filter has something to drop
    for lang in sorted({p.lang for p in linking.values()}):
        code, got, _ = rows(capsysbinary, "backlinks", BRAND_DOMAIN, "-i", str(index), "--all",
                            "--lang", lang)  # fmt: skip
        assert code == 0
        assert {r["source_url"] for r in got} == {u for u, p in linking.items() if p.lang == lang}
    for country in sorted({p.country for p in linking.values() if p.country}):
        code, got, _ = rows(capsysbinary, "backlinks", BRAND_DOMAIN, "-i", str(index), "--all",
                            "--country", country.lower())  # fmt: skip
        want = {u for u, p in linking.items() if p.country == country}
        assert code == 0 and {r["source_url"] for r in got} == want
    # A language nobody links in: an empty result (exit 1, one line).
    code, got, err = rows(capsysbinary, "refdomains", BRAND_DOMAIN, "-i", str(index),
                          "--lang", "ja")  # fmt: skip
    assert code == 1 and got == [] and err.strip().count("\n") == 0
    # refdomains: the most common lang and country of each domain's referring pages.
    code, got, _ = rows(capsysbinary, "refdomains", BRAND_DOMAIN, "-i", str(index))
    want: dict[str, tuple[Counter, Counter]] = {}
    for u, p in linking.items():
        langs, countries = want.setdefault(registered_domain(url_host(u)), (Counter(), Counter()))
        langs[p.lang] += 1
        if p.country:
            countries[p.country] += 1
    assert code == 0 and {r["source_domain"] for r in got} == set(want)
    for r in got:
        langs, countries = want[r["source_domain"]]
        assert r["lang"] == min(langs, key=lambda k: (-langs[k], k))
        assert (r["country"] or None) == (
            min(countries, key=lambda k: (-countries[k], k)) if countries else None
        )


@pytest.mark.parametrize(
    "options",
    [{}, {"case_sensitive": True}, {"exact_accents": True}],
    ids=["default", "case-sensitive", "exact-accents"],
)
def test_unlinked_mentions_as_the_model_says(crawled, capsysbinary, options):
    web, index = crawled
    flags = [f"--{k.replace('_', '-')}" for k in options]
    code, got, err = rows(capsysbinary, "mentions", BRAND, "--domain", BRAND_DOMAIN,
                          "-i", str(index), *flags)  # fmt: skip
    want = web.unlinked(**options)
    assert code == 0 and {r["url"] for r in got} == set(want), err
    assert len(got) == len(want)  # one row per page
    for r in got:
        p = want[r["url"]]
        assert r["sentence"] == p.sentence
        assert (r["lang"], r["country"] or None) == (p.lang, p.country)
        assert r["mentions"] == "1" and r["authority"] != ""  # ranked: 0 or more
    # The legend names what was left out: the pages that link, and the brand's own page.
    legend_code = main(["mentions", BRAND, "--domain", BRAND_DOMAIN, "-i", str(index), *flags])
    legend = capsysbinary.readouterr().err.decode()
    linking = sum(1 for p in web.pages.values() if p.matches(**options) and p.links_brand)
    assert legend_code == 0 and f"{linking} link to {BRAND_DOMAIN}" in legend
    assert f"1 on {BRAND_DOMAIN} itself" in legend


@pytest.mark.parametrize("flags", [[], ["--case-sensitive"], ["--exact-accents"]])
def test_mentions_read_through_the_skip_index_as_a_full_scan(crawled, capsysbinary, tmp_path,
                                                              flags):  # fmt: skip
    """The crawl's compaction wrote texts' skip index; without it (an older index) the answer
    is the same, every brand spelling and option alike."""
    _, index = crawled
    (side,) = (index / "compacted").rglob(SIDECAR_NAME)
    old = tmp_path / "old"
    shutil.copytree(index, old)
    (old / side.relative_to(index)).unlink()
    for brand in (BRAND, BRAND.upper(), BRAND.split()[0], "Tools"):
        args = ["mentions", brand, "--domain", BRAND_DOMAIN, *flags, "--sort", "url"]
        new = rows(capsysbinary, *args, "-i", str(index))
        assert new[0] in (0, 1) and new == rows(capsysbinary, *args, "-i", str(old)), brand
    assert new[0] == 0 and new[1]  # "Tools": found


def test_mentions_filters_sort_and_formats(crawled, capsysbinary, tmp_path):
    web, index = crawled
    want = web.unlinked()
    for lang in sorted({p.lang for p in want.values()}):
        code, got, _ = rows(capsysbinary, "mentions", BRAND, "--domain", BRAND_DOMAIN,
                            "-i", str(index), "--lang", lang)  # fmt: skip
        assert {r["url"] for r in got} == {u for u, p in want.items() if p.lang == lang}
    code, got, _ = rows(capsysbinary, "mentions", BRAND, "--domain", BRAND_DOMAIN, "-i",
                        str(index), "--country", "FR", "--sort", "url", "--limit", "1")  # fmt: skip
    assert [r["url"] for r in got] == sorted(u for u, p in want.items() if p.country == "FR")[:1]
    # Without --domain nothing is told apart: every page that names the brand.
    code, got, _ = rows(capsysbinary, "mentions", BRAND, "-i", str(index))
    assert {r["url"] for r in got} == {u for u, p in web.pages.items() if p.matches()}
    # --since after the crawl: nothing; parquet needs -o and writes the same rows.
    code, got, err = rows(capsysbinary, "mentions", BRAND, "-i", str(index), "--since",
                          "2999-01-01")  # fmt: skip
    assert code == 1 and got == [] and f"no page names {BRAND!r}" in err
    out = tmp_path / "m.parquet"
    assert main(["mentions", BRAND, "--domain", BRAND_DOMAIN, "-i", str(index), "--format",
                 "parquet", "-o", str(out)]) == 0  # fmt: skip
    assert set(pq.read_table(out)["url"].to_pylist()) == set(want)


def test_texts_are_compacted_and_deleted_with_their_crawl(crawled, tmp_path):
    web, index = crawled
    copy = tmp_path / "ix"
    shutil.copytree(index, copy)
    texts = pq.read_table(copy / "texts")
    html_pages = len(web.pages)
    assert texts.num_rows == html_pages and set(texts["url"].to_pylist()) == set(web.pages)
    assert all(t.count("\n") >= 2 for t in texts["text"].to_pylist())  # lines kept
    assert main(["delete", "lang1", "--files", "--out", str(copy)]) == 0
    assert not list((copy / "texts").glob("*.parquet"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["mentions", "!!!"], "no letter or digit"),
        (["mentions", "x" * 300], "brand too long"),
        (["mentions", BRAND, "--lang", "123"], "malformed language"),
        (["mentions", BRAND, "--country", "XX"], "unknown country"),
        (["backlinks", BRAND_DOMAIN, "--country", "Germany"], "unknown country"),
        (["mentions", BRAND, "--domain", "https://acme-tools.test/x"], "not a URL"),
    ],
)
def test_bad_input_gets_one_clear_line(crawled, capsysbinary, args, message):
    _, index = crawled
    capsysbinary.readouterr()
    code = main([*args, "-i", str(index)])
    err = capsysbinary.readouterr().err.decode()
    assert code == 2 and message in err and err.strip().count("\n") == 0, err


def test_an_index_without_texts_says_how_to_get_them(tmp_path, capsysbinary):
    out = tmp_path / "ix"
    indexdata.build(out, refetch=False)  # written without texts, as before --store-text
    code = main(["mentions", "widgets", "-i", str(out)])
    err = capsysbinary.readouterr().err.decode()
    assert code == 2 and "--store-text" in err and err.strip().count("\n") == 0


def test_an_index_written_before_lang_columns_is_still_read(tmp_path, capsysbinary):
    out = tmp_path / "ix"
    indexdata.build(out, refetch=False)
    new = ["lang", "lang_source", "country", "country_source"]
    for f in (out / "pages").glob("*.parquet"):  # pages as written before the columns
        pq.write_table(pq.read_table(f).drop_columns(new), f)
    assert main(["compact", str(out)]) == 0
    for f in (out / "compacted").rglob("b*.parquet"):  # and links compacted before them
        pq.write_table(pq.read_table(f).drop_columns(["source_lang", "source_country"]), f)
    code, got, _ = rows(capsysbinary, "refdomains", "shop.test", "-i", str(out))
    assert code == 0 and got and all(r["lang"] == r["country"] == "" for r in got)
    target = parse_target("shop.test")
    with Index(out, fast_rows=0) as slow, Index(out, fast_rows=10**9) as fast:
        a, b = slow.refdomains(target, Filters()), fast.refdomains(target, Filters())
        assert a.to_pylist() == b.to_pylist() and a.num_rows == len(got)
    code, got, _ = rows(capsysbinary, "backlinks", "shop.test", "-i", str(out), "--lang", "de")
    assert code == 1 and got == []
