"""CPU time of extraction on hostile pages, at growing sizes: each should grow linearly.

Not a test (no timing assertion): a measurement to run by hand when extraction changes.
Each case runs in a child process, killed after ``--timeout`` seconds of wall time.

    PYTHONPATH=. python tests/benchmarks/hostile_pages.py [--only deep_table] [--sizes 10000,20000]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

URL = "http://hostile.test/p"


def _links(n: int, text: bytes = b"x") -> bytes:
    return b"".join(b'<a href="/p%d">%s</a>' % (i, text) for i in range(n))


def _wide(n: int) -> bytes:
    return b"<a href=/x " + b" ".join(b"a%d" % i for i in range(n)) + b">x</a>"


A = b"<a href=/x>x</a>"
TEXT = b"running text of a paragraph, long enough to count."
BIG = (100_000, 300_000)
MANY = (50_000, 200_000)
#: name -> (page of size n, the sizes to measure)
CASES = {
    "deep_table": (lambda n: b"<table><tr><td>" * n + A, (10_000, 20_000, 100_000)),
    "deep_div": (lambda n: b"<div>" * n + A, BIG),
    "deep_inline_in_a": (lambda n: b"<a href=/x>" + b"<span>" * n + b"text", BIG),
    "deep_inline": (lambda n: b"<span>" * n + A, BIG),
    "deep_b": (lambda n: b"<b>" * n + A, BIG),
    "deep_li": (lambda n: b"<ul><li>" * n + A, (100_000, 200_000)),
    "deep_p_in_td": (lambda n: b"<table><tr><td><p>" * n + A, (10_000, 20_000, 100_000)),
    "deep_font": (lambda n: b"<font>" * n + A, BIG),
    "span_then_stray_end": (lambda n: b"<span>" * n + b"</x>" * n, (20_000, 40_000)),
    "span_then_divs": (lambda n: b"<span>" * n + b"<div></div>" * n, (20_000, 40_000)),
    "wide_divs": (lambda n: b"<div>" + b"<div>some text here</div>" * n, BIG),
    "wide_paras": (lambda n: b"<p>" + TEXT * 2 + b"".join(b"<p>" + TEXT for _ in range(n)), BIG),
    "links": (_links, (100_000, 300_000, 1_000_000)),
    "links_in_paras": (
        lambda n: b"".join(
            b"<p>text before the link %d <a href=/p%d>x</a>" % (i, i) for i in range(n)
        ),
        (50_000, 150_000),
    ),
    "huge_anchor": (lambda n: b"<a href=/x>" + b"word " * n + b"</a>", (200_000, 1_600_000)),
    "huge_attr": (lambda n: b'<a href="/x" title="' + b"t" * n + b'">x</a>', (10**6, 7 * 10**6)),
    "huge_href": (lambda n: b'<a href="/' + b"h" * n + b'">x</a>', (10**6, 7 * 10**6)),
    "huge_class": (
        lambda n: b'<div class="' + b" ".join(b"c%d" % i for i in range(n)) + b'">' + A,
        (100_000, 800_000),
    ),
    "classes_per_el": (
        lambda n: b"".join(
            b'<div class="w%d navy sidebarx"><a href=/p%d>x</a></div>' % (i, i) for i in range(n)
        ),
        (30_000, 100_000),
    ),
    "many_meta": (lambda n: b'<meta name=robots content="noindex">' * n + A, MANY),
    "many_base": (lambda n: b"".join(b"<base href=/b%d/>" % i for i in range(n)) + A, MANY),
    "many_canonical": (lambda n: b"<link rel=canonical href=/c>" * n + A, MANY),
    "many_title": (lambda n: b"<title>t</title>" * n + A, MANY),
    "many_hidden": (lambda n: b"<div hidden>h</div>" * n + A, MANY),
    "many_svg": (lambda n: b"<svg><a href=/s>s</a></svg>" * n + A, (20_000, 100_000)),
    "deep_svg": (lambda n: b"<svg>" * n + b"<a href=/s>s</a>", (10_000, 100_000)),
    "deep_details_in_a": (lambda n: b"<a href=/d>" + b"<details><summary>" * n, (10**4, 10**5)),
    "deep_ul_links": (lambda n: b"<ul><li><a href=/x>x</a>" * n, (10_000, 50_000, 100_000)),
    "links_at_depth_250": (lambda n: b"<div>" + b"<span>" * 250 + _links(n), (20_000, 100_000)),
    "bodies_at_depth_250": (
        lambda n: (
            b"<span>" * 240 + b"<div class=entry-content><p>" + TEXT + b"<a href=/x>x</a></div>" * n
        ),
        (20_000, 60_000),
    ),
    # Each new block re-opens every formatting element left open (n x n elements from 2n
    # tags, in one lexbor call the CPU budget cannot interrupt): bounded by MAX_REOPENED.
    "formatting_reopened": (
        lambda n: b"<p>" + b"".join(b"<b class=c%d>" % i for i in range(n)) + b"</p><p>x" * n,
        (2000, 20_000, 100_000),
    ),
    "formatting_alike": (
        lambda n: (
            b"<p>"
            + b"<b><i><u><s><em><tt><big><code><font><nobr><small><strike>" * 3
            + b"</p><p>x" * n
        ),
        (20_000, 100_000),
    ),
    # One formatting tag of 100 KB left open, cloned with its attributes into n blocks.
    "formatting_heavy": (
        lambda n: b"<p><b itemtype='" + b"x" * 100_000 + b"'>a</p>" + b"<p>y</p>" * n + A,
        (1000, 4000),
    ),
    # Links nested through <object> (a marker: an <a> does not close the one open): the text
    # of each holds all those below it.
    "links_nested_object": (
        lambda n: b"".join(b"<a href=/%d>w%d <object>" % (i, i) for i in range(n)),
        (1000, 4000),
    ),
    # One tag of n distinct attributes: each is checked against the others (quadratic in one
    # parser call): past MAX_ATTRS_PER_TAG they are dropped.
    "attributes": (
        lambda n: b"<a href=/x " + b" ".join(b"a%d" % i for i in range(n)) + b">x</a>",
        (10_000, 20_000, 40_000),
    ),
    # The same, after a ">" in a quoted value (the tag goes on), one in each value, or a "<".
    "attributes_quoted_gt": (
        lambda n: b'<a title="1>0" href=/x ' + b" ".join(b"a%d" % i for i in range(n)) + b">x</a>",
        (10_000, 40_000),
    ),
    "attributes_gt_each": (
        lambda n: b"<a href=/x " + b" ".join(b'a%d=">"' % i for i in range(n)) + b">x</a>",
        (10_000, 40_000),
    ),
    "attributes_gt_lt": (
        lambda n: (
            b"<a t='<b x=\"' y='>' href=/x " + b" ".join(b"a%d" % i for i in range(n)) + b">x</a>"
        ),
        (10_000, 40_000),
    ),
    # The same tag in text that the tokenizer reads as markup (raw text in SVG or MathML, after
    # a <frameset>, after a script escaped twice), or after a CDATA section in SVG.
    "attributes_in_svg_style": (lambda n: b"<svg><style>" + _wide(n), (10_000, 40_000)),
    "attributes_in_math_style": (lambda n: b"<math><style>" + _wide(n), (10_000, 40_000)),
    "attributes_in_svg_script": (lambda n: b"<svg><script>" + _wide(n), (10_000, 40_000)),
    "attributes_after_frameset": (
        lambda n: b"<frameset><style>" + _wide(n).replace(b"<a ", b"<frame "),
        (10_000, 40_000),
    ),
    "attributes_script_escape": (
        lambda n: b'<script><!--<script></script><b x="</script>' + _wide(n),
        (10_000, 40_000),
    ),
    "attributes_after_cdata": (
        lambda n: b'<svg><![CDATA[ > <b x=" ]]>' + _wide(n),
        (10_000, 40_000),
    ),
    "attributes_island_closed": (
        lambda n: b"<svg><g><foreignObject><div></foreignObject></svg></div></g><style>" + _wide(n),
        (10_000, 40_000),
    ),
    # Raw text starts that never end, in SVG (each read both ways), then a suspect tag.
    "raw_starts_in_svg": (lambda n: b"<svg>" + b"<style>" * n + _wide(300), (100_000, 400_000)),
    "huge_title": (lambda n: b"<title>" + b"t" * n + b"</title>" + A, (10**6, 7 * 10**6)),
    "deep_table_links": (
        lambda n: b"<table><tr><td><a href=/x>some link text</a> and some running text" * n,
        (2_000, 10_000, 20_000),
    ),
}


def _run(name: str, n: int, queue: mp.Queue) -> None:
    from pipelines.extract import extract_page

    body = CASES[name][0](n)
    start = time.process_time()
    page = extract_page(body, URL)
    cpu = time.process_time() - start
    queue.put((len(body), cpu, len(page.links), list(getattr(page, "limits_hit", []))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", help="comma-separated case names")
    parser.add_argument("--sizes", help="comma-separated sizes, instead of each case's own")
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(CASES)
    for name in names:
        sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else CASES[name][1]
        for n in sizes:
            queue: mp.Queue = mp.Queue()
            proc = mp.Process(target=_run, args=(name, n, queue))
            proc.start()
            proc.join(args.timeout)
            if proc.is_alive():
                proc.kill()
                proc.join()
                print(f"{name:18} n={n:>9}  > {args.timeout:.0f} s (killed)", flush=True)
                continue
            if queue.empty():
                print(f"{name:18} n={n:>9}  failed (exit {proc.exitcode})", flush=True)
                continue
            size, cpu, links, limits = queue.get()
            print(
                f"{name:18} n={n:>9} {size / 1e6:7.2f} MB {cpu:8.3f} s CPU "
                f"{cpu / size * 1e9:9.1f} ns/B  links={links:<7} limits={limits}",
                flush=True,
            )


if __name__ == "__main__":
    main()
