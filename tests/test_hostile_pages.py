"""Hostile pages: extraction's work is bounded by the page's size, bounds say they were hit,
and a per-page CPU budget abandons what still costs too much (issue 12, "No page can hold a
worker"). Speed is asserted as growth (time for 5x the page against time for 1x, CPU time),
not as absolute times; bounded work as the depth of the tree that extraction walks."""

from __future__ import annotations

import gc
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest
from crawling import crawl_env, run_crawl

import pipelines.extract
from crawler.cli import main
from crawler.testweb import Resource, WebServer
from pipelines.budget import PageBudgetExceeded, cpu_budget
from pipelines.extract import MAX_DOM_DEPTH, extract_page, parse_page
from pipelines.report import load_links, load_pages

ROOT = Path(__file__).resolve().parent.parent
URL = "http://hostile.test/p"
LINK = b"<a href=/deep>deep</a>"


def tree_depth(body: bytes) -> int:
    tree, _ = parse_page(body)
    deepest = 0
    stack = [(tree.root, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        child = node.child
        while child is not None:
            stack.append((child, depth + 1))
            child = child.next
    return deepest


def cpu(fn, *args) -> float:
    """The CPU seconds of ``fn(*args)``, the least of three runs: a ratio of two such times
    tests how the work grows, not when the collector or a neighbour on the machine struck."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        fn(*args)
        best = min(best, time.process_time() - start)
    return best


@pytest.mark.parametrize(
    "unit",
    [b"<table><tr><td>", b"<table><tr><td><p>", b"<span>", b"<b>", b"<font>", b"<ul><li>"],
)
def test_deep_nesting_is_flattened_with_its_link_kept(unit):
    body = unit * 100_000 + LINK
    page = extract_page(body, URL)
    assert [(k.target_url, k.anchor_text) for k in page.links] == [
        ("http://hostile.test/deep", "deep")
    ]
    assert page.limits_hit == ["dom_depth"]
    # What extraction and placement walk: no deeper than the bound (plus the flat wrapper).
    assert tree_depth(body) <= MAX_DOM_DEPTH + 3


def test_deep_table_cpu_grows_linearly():
    """Before: 10,000 levels 2.8 s, 20,000 10 s, 100,000 432 s (quadratic, in placement).
    Both sizes lie past MAX_REOPENED tags (33,334 levels), where the parse bound starts its
    re-open estimate: a step that took 20,000 against 100,000 levels to 13 under load (CI)."""
    small, big = (b"<table><tr><td>" * n + LINK for n in (40_000, 200_000))
    extract_page(small, URL)  # warm the memos
    ratio = min(cpu(extract_page, big, URL) for _ in range(2)) / max(
        min(cpu(extract_page, small, URL) for _ in range(2)), 1e-3
    )
    assert ratio < 12  # 5x the bytes: ~5 when linear, 25 when quadratic


@pytest.mark.parametrize(
    "page",
    [
        lambda n: b"<a href=/x>" + b"<span>" * n + b"text",  # before: 300,000 took 18 s
        lambda n: b"<span>" * n + b"<div></div>" * n,  # before: 40,000 took 7 s
        lambda n: b"<span>" * n + b"</x>" * n,  # before: 40,000 took 7 s
    ],
)
def test_deep_open_elements_parse_linearly(page):
    """lexbor walks the stack of open elements on many tags: it is bounded before the parse."""
    small, big = page(20_000), page(100_000)
    extract_page(small, URL)
    ratio = cpu(extract_page, big, URL) / max(cpu(extract_page, small, URL), 1e-3)
    assert ratio < 12
    assert extract_page(big, URL).limits_hit == ["dom_depth"]


def test_links_at_every_level_of_a_deep_table_are_all_kept():
    n = 3000
    body = b"".join(
        b"<table><tr><td><a href=/p%d class=c%d>link <b>%d</b></a> and text %d" % (i, i, i, i)
        for i in range(n)
    )
    small = body[: len(body) // 5]
    page = extract_page(body, URL)
    assert page.limits_hit == ["dom_depth"]
    assert [(k.target_url, k.anchor_text, k.position) for k in page.links] == [
        (f"http://hostile.test/p{i}", f"link {i}", i) for i in range(n)
    ]
    extract_page(small, URL)
    assert cpu(extract_page, body, URL) / max(cpu(extract_page, small, URL), 1e-3) < 12


def test_flattening_keeps_what_links_need():
    deep = b"<span>" * (MAX_DOM_DEPTH + 50)
    body = (
        deep
        + b'<a href="/img" rel="NoFollow" title="T &quot;x&quot;"><img alt="Logo"></a>'
        + b"<svg><a href=/svg>s</a></svg><div hidden><a href=/h>hid<b>den</b></a></div>"
        + b"<map><area href=/area alt=Area></map><script>x</script>"
    )
    got = [
        (k.target_url, k.anchor_text, k.rel, k.title, k.is_image, k.tag)
        for k in extract_page(body, URL).links
    ]
    assert got == [
        ("http://hostile.test/img", "Logo", ["nofollow"], 'T "x"', True, "a"),
        ("http://hostile.test/h", "hidden", [], None, False, "a"),
        ("http://hostile.test/area", "Area", [], None, False, "area"),
    ]


def test_honest_pages_hit_no_limit():
    body = b"<div><p>" + b"text " * 100 + b"<a href=/x>x</a></p></div>" * 3000
    assert extract_page(body, URL).limits_hit == []


def test_limits_say_links_and_bytes_were_cut(monkeypatch):
    monkeypatch.setattr(pipelines.extract, "MAX_LINKS_PER_PAGE", 3)
    monkeypatch.setattr(pipelines.extract, "MAX_PARSE_BYTES", 60)
    page = extract_page(b"<a href=/1>1</a>" * 5, URL)
    assert len(page.links) == 3 and page.limits_hit == ["parse_bytes", "links"]


def test_limits_say_tags_were_cut(monkeypatch):
    monkeypatch.setattr(pipelines.extract, "MAX_TAGS", 7)
    page = extract_page(b"<p>" + b"".join(b"<a href=/%d>%d</a>" % (i, i) for i in range(5)), URL)
    assert [k.anchor_text for k in page.links] == ["0", "1", "2"]  # the 7th "<" starts </a>
    assert page.limits_hit == ["dom_nodes"]


def _many_attributes(n: int) -> bytes:
    attrs = b" ".join(b"a%d" % i for i in range(n))
    return b'<p>before <a href=/x title="t" %s>many</a> after <a href=/y>y</a>' % attrs


def test_attributes_per_tag_are_bounded_and_the_tag_kept():
    """One tag of 50,000 attributes: the parsers check each against the others (quadratic:
    40,000 took 3 s); past MAX_ATTRS_PER_TAG they are dropped, the tag and its links stay."""
    body = _many_attributes(50_000)
    start = time.process_time()
    page = extract_page(body, URL)
    assert time.process_time() - start < 0.5
    assert [(k.target_url, k.anchor_text, k.title) for k in page.links] == [
        ("http://hostile.test/x", "many", "t"),
        ("http://hostile.test/y", "y", None),
    ]
    assert page.limits_hit == ["attributes"]
    tree, _ = parse_page(body)
    assert len(tree.css_first("a").attributes) == pipelines.extract.MAX_ATTRS_PER_TAG


def _attrs(n: int, value: bytes = b"") -> bytes:
    return b" ".join(b"a%d%s" % (i, value) for i in range(n))


# A ">" in a quoted value does not end the tag: the attributes after it are the tag's too.
# Before, only a tag's first ">" was looked for: these kept all 5,000 (quadratic: 40,000 in
# one tag took 3.7 s).
@pytest.mark.parametrize(
    "tag",
    [
        b'<a href=/x title="1>0" %s>' % _attrs(5000),
        b"<a href=/x title='1>0' %s>" % _attrs(5000),
        b"<a href=/x %s>" % _attrs(5000, b'=">"'),  # one in every value
        b'x=\'y <a href=/x title=">" %s>' % _attrs(5000),  # an opposite quote in the text
        b"<a t='<b x=\"' y='>' href=/x %s>" % _attrs(5000),  # a "<" in a value
        # Text that looks like a tag with an unclosed quote: read as one, it hid every tag after.
        b'<!-- a <b x="c> --><a href=/x %s>' % _attrs(5000),
        b'<script>if (a <b) x="c></script><a href=/x %s>' % _attrs(5000),
        b'<textarea><b x="c></textarea><a href=/x %s>' % _attrs(5000),
        b"<!--><a href=/x %s -->" % _attrs(5000),  # "<!-->" is a whole comment
        # What opens a comment or raw text in other text opens none (the tag is no text).
        b'<script>"<!--"</script><a href=/x %s -->' % _attrs(5000),
        b"<!-- <script> --><a href=/x %s></script>" % _attrs(5000),
        b'<b title="<style>"><a href=/x %s></style>' % _attrs(5000),
    ],
)
def test_a_quoted_gt_does_not_hide_a_tags_attributes(tag):
    body = b"<p>before " + tag + b"many</a> after <a href=/y>y</a>"
    page = extract_page(body, URL)
    assert page.limits_hit == ["attributes"]
    assert [(k.target_url, k.anchor_text) for k in page.links] == [
        ("http://hostile.test/x", "many"),
        ("http://hostile.test/y", "y"),
    ]
    tree, _ = parse_page(body)
    assert len(tree.css_first("a").attributes) == pipelines.extract.MAX_ATTRS_PER_TAG


# Where the tokenizer's state depends on the tree: raw text in SVG or MathML is markup (and a
# CDATA section there hides tags), and so is a <style> after a <frameset>; a script escaped by
# "<!--" then "<script" is not ended by its first "</script>". Each hid a tag of 5,000
# attributes from the bound (its parse was quadratic: 40,000 took 3 s).
@pytest.mark.parametrize(
    "page",
    [
        b"<svg><style><a %s></style></svg>",
        b"<math><style><a %s></style></math>",
        b"<svg><script><a %s></script></svg>",
        b"<svg><textarea><a %s></textarea></svg>",
        b'<script><!--<script></script><b x="</script><a %s>',
        b'<svg><![CDATA[ > <b x=" ]]><a %s>',
        b"<frameset><style><frame %s></style>",
        # An island of HTML that held an element as it closed: the parser went back to SVG.
        b"<svg><g><foreignObject><div></foreignObject></svg></div></g><style><a %s>",
        b"<svg><foreignObject><div></svg></div></foreignObject><style><a %s>",
        # An end tag that names no open root closes nothing (the parser ignores it).
        b"<svg></math><style><a %s></style>",
        b"<math></svg><style><a %s></style>",
        b"<svg><g></math></g><style><a %s></style>",
        b"<table><svg></math><style><a %s></style>",
        b"<svg ><g/></MATH ><style><a %s></style>",
        b"<svg></math\t/><style><a %s></style>",
        b"<math></svg/><textarea><a %s></textarea>",
        b"<math></svg><xmp><a %s></xmp>",
        b"<math></svg><script><a %s></script>",
        b"<svg><foreignObject></foreignObject></math><style><a %s></style>",
        b"<math><p><svg></math><style><a %s></style>",  # the <p> closed the <math>
    ],
)
def test_a_tag_in_text_that_is_markup_is_bounded(page):
    body = page % _attrs(5000)
    limits: list[str] = []
    tree = parse_page(body, limits=limits)[0]
    assert limits == ["attributes"]
    widest = max(len(node.attributes) for node in tree.root.traverse(include_text=False))
    assert widest == pipelines.extract.MAX_ATTRS_PER_TAG


def test_text_that_is_text_keeps_its_tags_attributes():
    """What the tokenizer reads as text stays as it is: a raw text element in HTML (after an SVG
    that closed), a script escaped twice, a CDATA section out of SVG (a bogus comment)."""
    many = b"<b %s>" % _attrs(300)
    body = b"<svg><title>t</title></svg><style>%s</style>" % many
    body += b"<script><!--<script></script>%s</script>-->" % many
    assert pipelines.extract._limit_attributes(body) is body


@pytest.mark.parametrize(
    "head",
    [  # An island that closed balanced; icons built in scripts (an SVG more, read as markup).
        b"<svg><foreignObject><div>label</div></foreignObject></svg><script>b.innerHTML = "
        b'\'<svg viewBox="0 0 24 24"><use href="#i"/>\' + label;</script>\n' * 9,
        b'<svg viewBox="0 0 9 9"><script>el.insertAdjacentHTML("beforeend", "<svg class=" + c'
        b' + ">")</script><path d="M0 0"/></svg>\n' * 9,
    ],
)
def test_an_honest_page_whose_readings_part_is_kept_whole(head):
    """Scripts that build SVG in strings, in SVG or after an island: each is also read as
    markup, one more SVG open in that reading, past MAX_READINGS; a later quoted ">" is read
    in every reading. The page was cut there (its last link lost); it stays as it is."""
    body = b"<html><body>" + head + b'<p>after</p><a href="/next" title="a > b">next</a>'
    assert pipelines.extract._limit_attributes(body) is body
    assert [k.target_url for k in extract_page(body, URL).links] == ["http://hostile.test/next"]


@pytest.mark.parametrize(
    "island",
    [
        b"<foreignObject><div>label <br><b>x</b></div></foreignObject>",
        b"<desc><p>a</p></desc><foreignObject/><title>t</title>",
    ],
)
def test_an_island_that_closed_balanced_leaves_html(island):
    """An island whose elements all closed in it closes with them: after its SVG the page is
    read as HTML again, one reading (it made the rest of the page unsure, read both ways)."""
    extract = pipelines.extract
    body = b"<svg>%s</svg><style>a<b></style><p title='x > y'>" % island
    lowered = body.lower()
    at = body.index(b"title=")
    readings = extract._readings_past(
        body, lowered, [(0, extract._HTML)], at, set(), extract._Ends(lowered)
    )
    assert [context for _, context in readings] == [extract._HTML]


def test_an_island_of_many_tags_is_followed_only_so_far():
    """Each tag in an island is read (what it holds open): 200,000 took 2 s of CPU. Past
    MAX_ISLAND_TAGS a page, the island is taken as holding anything; its long tag is bounded."""
    body = b"<svg><foreignObject>" + b"<b>x</b>" * 200_000 + b"<a %s></svg><style>" % _attrs(5000)
    start = time.process_time()
    kept = pipelines.extract._limit_attributes(body)
    assert time.process_time() - start < 1
    tree = parse_page(kept)[0]
    assert (
        max(len(node.attributes) for node in tree.css("a")) == pipelines.extract.MAX_ATTRS_PER_TAG
    )


def test_readings_that_part_too_often_are_read_unsure():
    """Each <style> read both as raw text and as markup, with a <svg> in it: the two readings
    never meet again in the same context (one more SVG open in one). Past MAX_READINGS all
    are read as unsure (raw text both ways), and meet again: the tag is bounded, not the page."""
    parts = b"<style><svg></style>" * (pipelines.extract.MAX_READINGS + 1)
    body = b"<svg>" + parts + b"<a href=/x %s>x</a><a href=/y>y</a>" % _attrs(5000)
    limits: list[str] = []
    tree = parse_page(body, limits=limits)[0]
    assert limits == ["attributes"]
    widths = [len(a.attributes) for a in tree.css("a")]  # each tag kept, the long one bounded
    assert widths == [pipelines.extract.MAX_ATTRS_PER_TAG, 1]


def test_readings_that_part_too_often_when_unsure_cut_the_page():
    """Each raw text element opened in another's text, where it may be markup: each reading
    ends at a different end tag, past the long tag. Past MAX_READINGS, unsure or not, the page
    is cut where they part."""
    names = pipelines.extract._RAW_TEXT_NAMES
    opens = b"".join(b"<%s>" % name for name in names)
    body = b"<frameset>" + opens + b"<a href=/x %s>x</a>" % _attrs(5000)
    body += b"".join(b"</%s>" % name for name in reversed(names))
    cut = pipelines.extract._limit_attributes(body)
    assert body.startswith(cut) and len(cut) < len(b"<frameset>" + opens)


def test_raw_text_that_never_ends_is_searched_once():
    """A <style> that never ends, 100,000 times in SVG: one search for its end, not one each."""
    body = b"<svg>" + b"<style>" * 100_000 + b"<a href=/x %s>x</a>" % _attrs(5000)
    start = time.process_time()
    assert pipelines.extract._limit_attributes(body) != body
    assert time.process_time() - start < 5  # (one search each: minutes)


def test_comments_that_never_end_are_searched_once():
    """A "<!--" in a script in SVG (read as markup too) that never ends, 4,000 times: each was
    searched to the end of the page (5 s of CPU once the readings went on past MAX_READINGS)."""
    body = b"<p>" + b'<svg><script><!--</script><b x=">"><style>' * 4000
    start = time.process_time()
    pipelines.extract._limit_attributes(body)
    assert time.process_time() - start < 1.5


def test_quoted_gts_in_text_are_skipped_without_a_reading():
    """Quoted values with a ">" in text, 500,000 of them after a few tags: each was read on in
    Python (1.7 s of CPU here, 7 s at 8 MB); a value before the next "<" is text to every
    reading."""
    body = b"<p>x" * 30 + b'a=">' * 500_000
    start = time.process_time()
    assert pipelines.extract._limit_attributes(body) is body
    assert time.process_time() - start < 0.6


def test_a_long_bogus_end_tag_is_no_tag():
    """A "</ " starts a bogus comment, not a tag: it was taken for one, then failed to read."""
    page = extract_page(b"<p></ " + b"x" * 600 + b"><a href=/y>y</a>", URL)
    assert [k.target_url for k in page.links] == ["http://hostile.test/y"]
    assert page.limits_hit == []


def test_attribute_cut_never_falls_in_a_quoted_value():
    body = b"<a href=/x " + b" ".join(b'a%d="v w"' % i for i in range(1000)) + b">x</a>"
    cut = pipelines.extract._limit_attributes(body)
    assert cut.endswith(b' a254="v w">x</a>')  # href and 255 more


def test_tags_of_honest_size_keep_their_attributes():
    attrs = b" ".join(b"data-a%d='x y >'" % i for i in range(200))
    body = b"<div %s><a href=/x %s>x</a></div><script>a<b %s</script>" % (attrs, attrs, b"c " * 900)
    assert pipelines.extract._limit_attributes(body) is body


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_cpu_budget_stops_a_cpu_bound_function_and_restores_the_previous_timer():
    calls: list[int] = []
    previous = signal.signal(signal.SIGPROF, lambda *_: calls.append(1))
    try:
        signal.setitimer(signal.ITIMER_PROF, 100.0)
        start = time.process_time()
        budget = r"CPU budget exceeded \(0.2 s\)"
        with pytest.raises(PageBudgetExceeded, match=budget), cpu_budget(0.2):
            _spin(30)
        # ITIMER_PROF is charged by scheduler ticks, process_time exactly: on a loaded
        # machine the timer fired at 0.13 s of process_time (CI, load ~10).
        assert 0.05 < time.process_time() - start < 5
        assert 90 < signal.getitimer(signal.ITIMER_PROF)[0] < 100  # the outer timer is back
        assert signal.getsignal(signal.SIGPROF) is not None and calls == []
        with cpu_budget(0.2):  # within budget: nothing happens, even after the block
            _spin(0.05)
        _spin(0.3)
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def test_cpu_budget_raises_again_when_its_exception_was_swallowed():
    """Python discards an exception raised in a garbage collector callback (hypothesis installs
    one): the poison page of the next test then ran to its end. The budget raises again."""
    swallowed: list[float] = []
    start = time.process_time()
    with pytest.raises(PageBudgetExceeded), cpu_budget(0.1):
        while time.process_time() - start < 30:
            try:
                _spin(0.01)
            except PageBudgetExceeded:
                if swallowed:
                    raise
                swallowed.append(time.process_time() - start)
    assert len(swallowed) == 1 and time.process_time() - start < 5
    assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)  # no timer left running


def test_cpu_budget_is_a_no_op_off_the_main_thread():
    done: list[bool] = []

    def work() -> None:
        with cpu_budget(0.05):
            _spin(0.2)
        done.append(True)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert done == [True]


@pytest.fixture
def no_gc_callbacks():
    """No other library's garbage-collector callbacks (hypothesis, loaded in this process,
    times collections with one): the budget's exception may land in one, where Python
    discards it (the budget raises again, by design) and pytest's unraisable hook, itself
    interrupted by the next raise, fails the test (a fresh clone's CI did)."""
    saved = gc.callbacks[:]
    gc.callbacks.clear()  # (in place: the collector holds this very list)
    yield
    gc.callbacks[:] = saved


def test_extract_manifest_skips_a_poison_page(tmp_path, capsysbinary, no_gc_callbacks):
    (tmp_path / "ok.html").write_bytes(b"<a href=/ok>ok</a>")
    # 100,000 links take seconds: past a budget of 0.2 s.
    (tmp_path / "poison.html").write_bytes(
        b"".join(b"<a href=/p%d>p</a>" % i for i in range(10**5))
    )
    manifest = tmp_path / "m.jsonl"
    manifest.write_bytes(
        b"".join(
            orjson.dumps({"path": name, "url": f"http://m.test/{name}"}) + b"\n"
            for name in ("ok.html", "poison.html", "ok.html")
        )
    )
    assert main(["extract", "--input", str(manifest), "--page-cpu-budget", "0.2"]) == 1
    out, err = capsysbinary.readouterr()
    rows = [orjson.loads(line) for line in out.splitlines()]
    assert [r["target_url"] for r in rows] == ["http://m.test/ok", "http://m.test/ok"]
    assert b"poison.html: CPU budget exceeded (0.2 s), skipped" in err


HTML = (("Content-Type", "text/html"),)


def test_crawl_survives_poison_pages(tmp_path):
    """A page past the CPU budget gets an error row; a 20,000-deep table (10 s before) is
    flattened; the honest pages' links are all there and the crawl ends."""
    honest = {
        f"/h{i}.html": b"<nav><a href=/>home</a></nav><p>"
        + b"Honest text of a page. " * 5
        + b"".join(b'<a href="/out%d-%d">out %d</a> ' % (i, j, j) for j in range(5))
        + b"</p>"
        for i in range(3)
    }
    pages = {
        "/": b"".join(b'<a href="%s">%s</a>' % (p.encode(), p.encode()) for p in honest)
        + b'<a href="/poison.html">poison</a><a href="/deep.html">deep</a>',
        # 200,000 links: seconds of CPU, past a budget of 1 s.
        "/poison.html": b"".join(b"<a href=/p%d>p</a>" % i for i in range(2 * 10**5)),
        # Flattened: a fraction of the budget (before: minutes).
        "/deep.html": b"<table><tr><td>" * 20_000 + b"<a href=/h0.html>back</a>",
        **{p: body for p, body in honest.items()},
    }
    site = {"poison.test": {p: Resource(200, body, HTML) for p, body in pages.items()}}
    site["poison.test"].update({f"/out{i}-{j}": Resource(404) for i in range(3) for j in range(5)})
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("http://poison.test/\n")
    out = tmp_path / "index"
    # A budget of 1 s of CPU is many seconds of wall time on a loaded machine (47 s at load 18),
    # when the worker sends no heartbeat: a long ttl, or it is killed as hung.
    with WebServer(site) as server:
        run_crawl(seeds, out, "--workers", "1", "--delay", "0", "--allow-private", "--max-depth",
                  "1", "--page-cpu-budget", "1", "--no-compact", "--heartbeat-ttl", "300",
                  env=crawl_env(server.proxy_url), timeout=300)  # fmt: skip
    rows = {p["url"].rsplit("/", 1)[1]: p for p in load_pages(out).to_pylist()}
    poison, deep = rows["poison.html"], rows["deep.html"]
    assert poison["error"] == "extract: CPU budget exceeded (1 s)"
    assert poison["limits_hit"] == ["cpu"] and poison["out_links"] == 0
    assert deep["error"] is None and deep["limits_hit"] == ["dom_depth"]
    links = load_links(out).to_pylist()
    by_source: dict[str, set[str]] = {}
    for link in links:
        by_source.setdefault(link["source_url"].rsplit("/", 1)[1], set()).add(link["target_url"])
    assert "poison.html" not in by_source
    assert by_source["deep.html"] == {"http://poison.test/h0.html"}
    for i in range(3):
        want = {"http://poison.test/"} | {f"http://poison.test/out{i}-{j}" for j in range(5)}
        assert by_source[f"h{i}.html"] == want
        # Its links past --max-depth 1 are set aside, and the row says so; nothing else is.
        assert rows[f"h{i}.html"]["limits_hit"] == ["depth"] and rows[f"h{i}.html"]["error"] is None


def test_budget_docstring_examples():
    import doctest

    import pipelines.budget

    result = doctest.testmod(pipelines.budget)
    assert result.attempted > 0 and result.failed == 0


# -- formatting elements left open, re-opened in each new block ----------------------------


def formatting_bomb(n: int) -> bytes:
    """n distinct formatting elements left open, then n new blocks: lexbor alone builds n x n
    elements (n = 3,000: 9 s, 3.5 GB) in one call the CPU budget cannot interrupt."""
    return b"<p>" + b"".join(b"<b class=c%d>" % i for i in range(n)) + b"</p><p>x" * n


def count_nodes(body: bytes) -> int:
    tree, _ = parse_page(body)
    return sum(1 for _ in tree.root.traverse(include_text=True))


@pytest.mark.parametrize(
    "page",
    [
        formatting_bomb,
        # Alike elements: three of each name are kept (Noah's ark), 39 per block.
        lambda n: (
            b"<p>"
            + b"<b><i><u><s><em><tt><big><code><font><nobr><small><strike>" * 3
            + b"</p><p>x" * (n * 10)
        ),
        # Start tags alone re-open them too (each <li> closes the last).
        lambda n: b"<li>" + b"".join(b"<i data-n=%d>" % i for i in range(n)) + b"<li>x" * n,
        # End tags that close nothing: out of scope (in a table), or inside an attribute.
        lambda n: (
            b"<p>"
            + b"".join(b"<b class=c%d>" % i for i in range(n))
            + b"<table>"
            + b"</b>" * n
            + b"</table>"
            + b"</p><p>x" * n
        ),
        lambda n: (
            b"<p>" + b"".join(b"<b class=c%d x='>'</b>'>" % i for i in range(n)) + b"</p><p>x" * n
        ),
        # Start tags in what looks like a quoted value, but is an attribute's name.
        lambda n: (
            b'<p><b ="' + b"".join(b"<i c%d>" % i for i in range(n)) + b'">' + b"</p><p>x" * n
        ),
    ],
)
def test_formatting_elements_reopened_are_bounded(page):
    body = page(3000)
    tags = body.count(b"<")
    # Every tag makes one element, plus the re-opened ones: at most MAX_REOPENED (+ one <a>).
    assert count_nodes(body) <= 2 * tags + pipelines.extract.MAX_REOPENED
    assert extract_page(body, URL).limits_hit[:1] == ["formatting"]


def test_formatting_bomb_cpu_grows_linearly():
    small, big = formatting_bomb(4000), formatting_bomb(20_000)
    extract_page(small, URL)
    assert cpu(extract_page, small, URL) < 1  # before: 3,000 took 9 s
    ratio = cpu(extract_page, big, URL) / max(cpu(extract_page, small, URL), 1e-3)
    assert ratio < 12  # 5x the bytes: 25 (and 25x the memory) were it quadratic


def peak_memory(page: str) -> tuple[int, str]:
    """Peak RSS growth (KiB) of a fresh process extracting the page the expression *page*
    builds (with this module's names), and its limits_hit."""
    code = (
        "import resource, sys\n"
        "from pipelines.extract import extract_page\n"
        "from tests.test_hostile_pages import *\n"
        f"body = {page}\n"
        "extract_page(b'<p>warm <b>up</b>', URL)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "page = extract_page(body, URL)\n"
        "grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
        "print(grown, page.limits_hit)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}", "PATH": "/usr/bin:/bin"},  # its imports
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    grown_kib, limits = res.stdout.split(" ", 1)
    return int(grown_kib), limits


def test_formatting_bomb_peak_memory_is_small():
    """Peak RSS of a fresh process extracting 3,000 x 3,000 (before: +3.5 GB)."""
    grown_kib, limits = peak_memory("formatting_bomb(3000)")
    assert grown_kib < 100 * 1024 and "formatting" in limits


def heavy_formatting(name: bytes, size: int, blocks: int) -> bytes:
    """One formatting element (or link) of *size* bytes of attributes left open, re-opened
    (cloned with its attributes) in each of *blocks* blocks."""
    value = b"/" + b"x" * size if name == b"a" else b"x" * size
    return b"<p><%s href='%s'>a</p>" % (name, value) + b"<p>y</p>" * blocks + b"<a href=/z>z</a>"


@pytest.mark.parametrize("name", [b"b", b"a"])
def test_formatting_elements_reopened_are_bounded_in_bytes(name):
    """Before: each of the 2,000 blocks cloned the 100 KB tag (+200 MB; 1 MB x 20,000: 20 GB)."""
    body = heavy_formatting(name, 100_000, 2000)
    assert b"x" * 100_000 not in pipelines.extract.bound_body(body, [])[0]  # that tag dropped
    page = extract_page(body, URL)
    assert page.limits_hit == ["formatting"]
    assert [link.target_url for link in page.links] == ["http://hostile.test/z"]
    grown_kib, limits = peak_memory(f"heavy_formatting({name!r}, 100_000, 2000)")
    assert grown_kib < 40 * 1024 and "formatting" in limits


def test_honest_long_formatting_tags_are_kept():
    """A long link (3.5 KB, the benchmark pages' longest <a>) re-opened in a few blocks."""
    body = heavy_formatting(b"a", 3500, 50)
    assert pipelines.extract.bound_body(body, [])[0] is body
    assert extract_page(body, URL).limits_hit == []


@pytest.mark.parametrize("level", [b"<object>", b"<table><tr><td>"])
def test_links_nested_through_markers_are_flattened(level):
    """An <a> in an <object> or a table cell does not close the open one: 2,000 nested links
    (4,000 tags, too few for the nesting check by tags) walked n x n / 2 of anchor text (8 s at
    4,000); now what nests past MAX_DOM_DEPTH is flattened after the parse."""
    body = b"".join(b"<a href=/%d>w%d %s" % (i, i, level) for i in range(2000))
    page = extract_page(body, URL)
    assert page.limits_hit[:1] == ["dom_depth"]
    n = len(page.links)
    assert 0 < n <= MAX_DOM_DEPTH
    assert [link.target_url for link in page.links] == [
        f"http://hostile.test/{i}" for i in range(n)
    ]
    assert page.links[-1].anchor_text.startswith(f"w{n - 1} w{n}")  # the flattened text kept


def test_links_in_table_cells_are_not_flattened():
    """Many links in many cells (not nested): flattened after the parse only past the depth."""
    body = b"<table>" + b"".join(b"<tr><td><a href=/%d>w%d</a>" % (i, i) for i in range(400))
    page = extract_page(body, URL)
    assert page.limits_hit == [] and len(page.links) == 400
    assert page.links[399].anchor_text == "w399"


def test_links_inside_dropped_formatting_elements_are_all_kept():
    n = 2000
    body = (
        b"<p>"
        + b"".join(b"<b class=c%d><a href=/p%d>link %d</a> " % (i, i, i) for i in range(n))
        + b"</p><p>x" * n
        + b'<p><a href="/last" rel=ugc>last <b>one</b></a>'
    )
    page = extract_page(body, URL)
    assert page.limits_hit == ["formatting"]
    want = [(f"http://hostile.test/p{i}", f"link {i}") for i in range(n)]
    assert [(k.target_url, k.anchor_text) for k in page.links] == [
        *want,
        ("http://hostile.test/last", "last one"),
    ]
    assert page.links[-1].ugc


def test_honest_formatting_left_open_is_untouched():
    """Old pages leave <font>/<b> open: a few, re-opened in every paragraph, are parsed as
    they are (the same DOM as without the bound)."""
    body = (
        b"<font face=Arial size=2><b>"
        + b"".join(
            b"<p>para %d <a href=/p%d>l</a><i class=n%d>x</i>" % (i, i, i) for i in range(3000)
        )
        + b"<font color=red><u>"
        + b"<li>item <strong>a</strong></li>" * 1000
    )
    tags = body.count(b"<")
    assert pipelines.extract._limit_reopened(body, tags) is body
    page = extract_page(body, URL)
    assert page.limits_hit == [] and len(page.links) == 3000


# -- strings a row stores are bounded -------------------------------------------------------


def test_long_strings_are_cut_and_said():
    cap = pipelines.extract.MAX_TEXT_CHARS
    huge = "w" * 10**6
    body = (
        f"<title>{huge}</title>"
        f'<meta name=robots content="{huge}"><meta name=robots content=nofollow>'
        f'<a href=/a title="{huge}">anchor {huge}</a>'
        f'<a href=/r rel="sponsored {huge} ugc">r</a>'
        f'<a href=/img><img alt="{huge}"></a>'
        "<a href=/ok title=t rel=ugc>ok</a>"
    ).encode()
    page = extract_page(body, URL)
    assert page.limits_hit == ["long_strings"]
    assert page.title == huge[:cap] and page.meta_robots == huge[:cap]
    assert page.nofollow_page  # read from the whole directives, past the cut
    a, r, img, ok = page.links
    assert a.anchor_text == ("anchor " + huge)[:cap] and a.title == huge[:cap]
    assert r.rel == ["sponsored"] and r.sponsored and r.ugc
    assert img.anchor_text == huge[:cap] and img.is_image
    assert (ok.anchor_text, ok.title, ok.rel, ok.position) == ("ok", "t", ["ugc"], 3)


def test_links_to_huge_urls_are_dropped_not_cut():
    long_path = "/" + "h" * pipelines.extract.MAX_URL_CHARS
    body = (
        f'<link rel=canonical href="{long_path}">'
        f'<a href=/1>1</a><a href="{long_path}">long</a>'
        f'<a href="http://other.test{long_path}">long</a><a href=/2>2</a>'
    ).encode()
    page = extract_page(body, URL)
    assert page.limits_hit == ["long_strings"] and page.canonical is None
    assert [(k.target_url, k.position) for k in page.links] == [
        ("http://hostile.test/1", 0),
        ("http://hostile.test/2", 1),
    ]
    # At the bound exactly: kept whole.
    at_bound = "/" + "h" * (pipelines.extract.MAX_URL_CHARS - len("http://hostile.test/"))
    page = extract_page(
        f'<link rel=canonical href="{at_bound}"><a href="{at_bound}">x</a>'.encode(), URL
    )
    assert page.limits_hit == [] and len(page.canonical) == pipelines.extract.MAX_URL_CHARS
    assert page.links[0].target_url == page.canonical


def test_no_row_holds_a_huge_string(tmp_path, capsysbinary):
    """Through `linkcrawl extract` (the crawler's extraction and rows): every string bounded."""
    huge = b"z" * 10**6
    (tmp_path / "p.html").write_bytes(
        b"<title>" + huge + b"</title><a href=/x title=" + huge + b" rel=" + huge + b">"
        + huge + b"</a><a href=/" + huge + b">y</a><a href=/ok>ok</a>"
    )  # fmt: skip
    manifest = tmp_path / "m.jsonl"
    manifest.write_bytes(orjson.dumps({"path": "p.html", "url": "http://m.test/p"}) + b"\n")
    assert main(["extract", "--input", str(manifest)]) == 0
    out, _ = capsysbinary.readouterr()
    rows = [orjson.loads(line) for line in out.splitlines()]
    assert [r["target_url"] for r in rows] == ["http://m.test/x", "http://m.test/ok"]
    cap = pipelines.extract.MAX_TEXT_CHARS
    strings = [v for r in rows for v in r.values() if isinstance(v, str)]
    strings += [v for r in rows for v in r["rel"]]
    assert max(map(len, strings)) == cap
    assert rows[0]["anchor_text"] == rows[0]["title"] == "z" * cap and rows[0]["rel"] == ["z" * cap]


def test_huge_hrefs_and_bases_are_not_kept_in_memos():
    """The memos of URL resolution outlive a page: a page's huge href or base stays out."""
    from pipelines.extract import _resolve_absolute
    from pipelines.urls import _parse_base

    _resolve_absolute.cache_clear()
    _parse_base.cache_clear()
    long_path = "/" + "q" * 10**6
    body = (
        f'<a href="http://o.test{long_path}">x</a><base href="{long_path}/">'
        '<a href="http://o.test/short">s</a><a href=/rel>r</a>'
    ).encode()
    page = extract_page(body, URL, native=False)  # the Python path's memos (the core has none)
    assert [k.target_url for k in page.links] == ["http://o.test/short", "http://hostile.test/rel"]
    assert _resolve_absolute.cache_info().currsize == 1
    assert _parse_base.cache_info().currsize == 1  # the page URL only


def test_memos_stay_bounded_in_entries_over_many_tiny_names():
    """Millions of tiny distinct class names (8 characters a key) cost ~400 bytes an entry:
    a budget in key characters alone held ~1 GB (review9). Each entry is charged ENTRY_CHARS."""
    from pipelines import memo, placement

    placement._FACTS.clear()
    for i in range(12):
        divs = "".join(f'<div class="c{i}x{j}"><a href="/{j}">a</a></div>' for j in range(12_000))
        extract_page(
            f"<html><body>{divs}</body></html>".encode(), f"http://t{i}.test/", native=False
        )
    most = placement._FACTS.max_chars // memo.ENTRY_CHARS
    assert 0 < len(placement._FACTS) <= most < 12 * 12_000


def test_memos_stay_bounded_in_bytes_over_many_hostile_pages():
    """Pages choose the class names, ids and hosts that placement and the domain look-up
    memoize: distinct megabyte-long ones on page after page must not pile up in a worker."""
    from pipelines import placement, urls

    long_class = "x" * 200_000
    for i in range(40):
        links = "".join(
            f'<div class="{long_class}{i}-{j}" id="{long_class}{j}"><a href="http://h{j}-'
            f'{"y" * 3000}{i}.test/">a</a></div>'
            for j in range(5)
        )
        extract_page(f"<html><body>{links}</body></html>".encode(), f"http://s{i}.test/")
    for memo in (placement._FACTS, placement._VALUE_FACTS, placement._WORD_FACTS,
                 placement._TOKEN_LABEL, urls._DOMAINS):  # fmt: skip
        assert memo.chars <= memo.max_chars
        assert sum(len(k) if isinstance(k, str) else 0 for k in memo) <= memo.max_chars
