"""Placement's rules per link by the native core (native/src/rules.rs, through
pipelines/native.py ``place_rules``) are Python's (pipelines/placement.py ``_Where``,
``_article``, ``_copy_blocks``, ``_place_each``): on every page kept here and the test web,
on random pages, on pagination anchors built to test the core's filter before ``_PAGER``, and
on hostile arrays; a failure of the core is logged once and Python's rules answer."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from native_checks import built, no_core, no_fallback, repository_pages  # noqa: F401 (no_fallback: autouse)

from crawler.testweb.generator import build_test_web
from pipelines import native, placement, placement_model
from pipelines.extract import extract_page


@pytest.fixture(scope="module")
def core():
    """The built core with lexbor's API; None without cargo (each test then checks that)."""
    return built(native.lexbor_core())


def _python_rules(
    tree, page, text, main, seq, links, link_keys, rels, anchors, attrs, landmark, model=None
):  # type: ignore[no-untyped-def]
    """Python's rules over the same page: its facts (where, article, copy) and placements."""
    where = placement._Where(page, main)
    article = placement._article(page, text, seq, main, where)
    facts = placement._Facts(tree, page, text, main, article, seq, where)
    facts.landmark = landmark
    return facts, placement._place_each(facts, links, link_keys, rels, anchors, attrs)


@contextmanager
def _compared() -> Iterator[list[int]]:
    """Each page's rules by the core, checked against Python's on the same page (placements,
    confidences, fingerprints, main's article, the copy blocks, each link's ``where.of``
    entry), and before them its running text (``_Text``) and voided labels; yields the links
    compared per page (a page the core did not place fails)."""
    real = placement._native_rules
    counts: list[int] = []

    def both(*args):  # type: ignore[no-untyped-def]
        got = real(*args)
        assert got is not None, "the core did not place the links"
        facts, results = got
        want_facts, want = _python_rules(*args)
        assert results == want
        assert all(type(p) is placement.Placed for p in results)
        assert [type(p.score) for p in results] == [type(p.score) for p in want]
        assert facts.article == want_facts.article
        assert facts.copy == want_facts.copy
        of = want_facts.where.of
        link_keys, anchors, model = args[6], args[8], args[11]
        if facts.located is not None:
            assert facts.modeled is None
            assert [facts.located[k] for k in link_keys] == [
                None if of[k] is None else of[k][:1] for k in link_keys
            ]
        else:  # the core ran the model's stage with its rules: Python's decisions
            anchor_len, raw, marked = model
            stage = (want_facts, raw, link_keys, anchors, want, marked, anchor_len)
            assert facts.modeled == placement_model.decide(want, placement._link_facts(*stage))
            MODELED.append(sum(a != b for a, b in zip(want, facts.modeled, strict=True)))
        counts.append(len(results))
        return got

    real_void = native.void_labels
    voided: list[int] = []

    def void_both(page, good):  # type: ignore[no-untyped-def]
        before = list(page.label)
        got = real_void(page, good)
        assert got is not None, "the core did not void the labels"
        after, page.label[:] = list(page.label), before
        native.void_labels = lambda *args: None  # Python's own, on the same page
        try:
            assert placement._void_wrapper_labels(page, good) == got
        finally:
            native.void_labels = void_both
        assert page.label == after
        voided.append(sum(a != b for a, b in zip(before, after, strict=True)))
        return got

    real_text = native.page_text
    texts: list[int] = []

    def text_both(page, paras, link_keys, anchor_len):  # type: ignore[no-untyped-def]
        got = real_text(page, paras, link_keys, anchor_len)
        assert got is not None, "the core did not measure the text"
        native.page_text = lambda *args: None  # Python's own, on the same page
        try:
            want = placement._Text(page, paras, link_keys, anchor_len)
        finally:
            native.page_text = text_both
        own, link_para, links, good = got
        assert list(own.items()) == list(want.own.items())
        assert link_para == want.link_para
        assert list(links.items()) == list(want.links.items())
        assert list(good.items()) == list(want.good.items())
        texts.append(len(link_para))
        return got

    real_thread = native.is_thread

    def thread_both(page, good, main):  # type: ignore[no-untyped-def]
        got = real_thread(page, good, main)
        assert got is not None, "the core did not tell a thread"
        native.is_thread = lambda *args: None  # Python's own, on the same page
        try:
            assert placement._is_thread(page, good, main, placement._Boiler(page)) == got
        finally:
            native.is_thread = thread_both
        THREADS.append(got)
        return got

    real_faq = native.past_faq

    def faq_both(page, path, words):  # type: ignore[no-untyped-def]
        got = real_faq(page, path, words)
        if got is None:  # left to Python only for a name that is not ASCII
            names = [n or "" for k in path for n in page.names(k)]
            assert not all(n.isascii() for n in names), "the core did not look for an FAQ"
            return None
        native.past_faq = lambda *args: None  # Python's own, on the same page
        try:
            product = words == placement._FAQ_WORDS
            assert placement._past_faq(page, path[0], product) == got
        finally:
            native.past_faq = faq_both
        FAQS.append(got != path[0])
        return got

    spies = (both, void_both, text_both, thread_both, faq_both)
    reals = (real, real_void, real_text, real_thread, real_faq)
    names = ("_native_rules", "void_labels", "page_text", "is_thread", "past_faq")
    owners = (placement, native, native, native, native)
    for owner, name, spy in zip(owners, names, spies, strict=True):
        setattr(owner, name, spy)
    try:
        yield counts
    finally:
        for owner, name, value in zip(owners, names, reals, strict=True):
            setattr(owner, name, value)
    assert len(voided) == len(counts) and texts == counts
    VOIDED.extend(voided)


#: Labels dropped per page compared, threads told (the tests check some pages drop some).
VOIDED: list[int] = []
THREADS: list[bool] = []
MODELED: list[int] = []  # placements the model overruled, per page the core's rules ran it
FAQS: list[bool] = []  # whether main was widened past an FAQ


def _same_page(body: bytes, url: str) -> int:
    """The page's rows core on and off are equal, its rules and voided labels compared; its
    links."""
    want = extract_page(body, url, native=False)
    before = native.RULES_PAGES[0]
    with _compared() as counts:
        got = extract_page(body, url)
    assert got == want, url
    assert native.RULES_PAGES[0] == before + bool(want.links), url
    assert sum(counts) == (len(want.links) if counts else 0), url
    return len(want.links)


def _test_web_pages() -> Iterator[tuple[str, bytes]]:
    web = build_test_web()
    for host, paths in web.site.items():
        for path, res in paths.items():
            if (res.header("Content-Type") or "").startswith("text/html") and res.status == 200:
                yield f"http://{host}{path}", res.body


def test_the_rules_are_pythons_on_every_page(core):
    """Every Zyte and WCXB page kept here and every HTML page of the test web."""
    if core is None:
        return no_core()
    pages = links = 0
    VOIDED.clear()
    THREADS.clear()
    MODELED.clear()
    FAQS.clear()
    for url, body in [*repository_pages(), *_test_web_pages()]:
        links += _same_page(body, url)
        pages += 1
    assert pages > 600 and links > 45_000, (pages, links)
    assert sum(n > 0 for n in VOIDED) > 20, VOIDED
    assert len(MODELED) > 550 and sum(MODELED) > 500, (len(MODELED), sum(MODELED))
    assert len(FAQS) > 450 and sum(FAQS) > 0, (len(FAQS), sum(FAQS))
    assert len(THREADS) > 100 and 0 < sum(THREADS) < len(THREADS), (len(THREADS), sum(THREADS))


_CLASSES = ["", "comment", "sidebar", "related", "content", "entry-content", "nav", "menu",
            "footer", "widget", "faq", "row", "flex gap", "post", "wp-block-button", "meta",
            "col"]  # fmt: skip
_TAGS = ["div", "p", "li", "ul", "section", "article", "main", "aside", "nav", "footer",
         "header", "td", "pre", "span", "blockquote", "dd"]  # fmt: skip
_ANCHORS = ["2", "Next »", "Older posts", "Home", "", "A long headline of a related story here"]
_TEXT = "Running text of a paragraph, long enough to count as prose on the page. "


@st.composite
def _pages(draw) -> bytes:  # type: ignore[no-untyped-def]
    """A random page of nested blocks with classes that name regions, running text and
    links (some ugc, some pagers, some to other sites)."""
    out: list[str] = []
    budget = [draw(st.integers(5, 60))]

    def block(depth: int) -> None:
        while budget[0] > 0 and draw(st.booleans()):
            budget[0] -= 1
            choice = draw(st.integers(0, 5))
            if choice == 0:
                anchor = draw(st.sampled_from(_ANCHORS))
                rel = draw(st.sampled_from(["", " rel=ugc", " role=button"]))
                href = draw(st.sampled_from(["/x", "https://other.example/y", "mailto:a@b"]))
                out.append(f'<a href="{href}"{rel}>{html.escape(anchor)}</a>')
            elif choice == 1:
                out.append(_TEXT * draw(st.integers(0, 8)))
            elif depth < 8:
                tag = draw(st.sampled_from(_TAGS))
                cls = draw(st.sampled_from(_CLASSES))
                out.append(f'<{tag} class="{cls}">' if cls else f"<{tag}>")
                block(depth + 1)
                out.append(f"</{tag}>")

    if draw(st.booleans()):
        out.append('<link rel="canonical" href="https://site.example/p">')
    block(0)
    return "".join(out).encode()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_pages())
def test_the_rules_are_pythons_on_random_pages(core, body):
    if core is None:
        return no_core()
    _same_page(body, "https://site.example/p")


# Characters _PAGER's IGNORECASE and Unicode classes match in ways a filter could miss:
# Unicode digits and spaces (\x1c-\x1f are Python's, not Rust's), case folds (Kelvin sign,
# long s, dotless and dotted i), its arrows, Cyrillic capitals.
_PAGER_PIECES = ["1", "٣", "𝟘", " ", "\x1c", "\u3000", "\xa0", "\u2028", "«", "»", "‹", "›",
                 "<", ">", "←", "→", ".", "next", "NEXT", "nEXT", "prev", "previous", "older",
                 "newer", "more", "MORE", "ſuivant", "précédent", "PRÉCÉDENT", "weiter",
                 "zurück", "siguiente", "anterior", "próximo", "avanti", "indietro",
                 "volgende", "vorige", "следующая", "ПРЕДЫДУЩАЯ", "posts", "post", "page",
                 "entries", "articles", "articoli", "seite", "página", "\u212a", "ı", "İ",
                 "x", "é"]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(anchors=st.lists(st.lists(st.sampled_from(_PAGER_PIECES), max_size=12), min_size=1,
                        max_size=12))  # fmt: skip
def test_pager_anchors_are_placed_as_by_python(core, anchors):
    """Links whose anchors reach the pagination rule (a page without running text, and
    inside main after its text): the core's filter before ``_PAGER`` misses none it matches."""
    if core is None:
        return no_core()
    links = "".join(f'<a href="/{i}">{html.escape("".join(a))}</a> '
                    for i, a in enumerate(anchors))  # fmt: skip
    _same_page(f"<div>{links}</div>".encode(), "https://site.example/p")
    article = f"<div><p>{_TEXT * 8}</p><div>{links}</div><p>{_TEXT * 8}</p></div>"
    _same_page(article.encode(), "https://site.example/p")


def test_every_pager_word_of_pythons_regex_is_the_cores(core):
    """The core answers ``_PAGER`` itself on ASCII anchors (rules.rs ``ascii_pager``, a copy
    of its words): each word read from the regex's own pattern, alone, before each of its
    page words, in any case, between arrows, and runs of 1 to 7 digits, are placed as by
    Python. A word added to ``_PAGER`` and not to rules.rs fails here (review14-p14 1)."""
    if core is None:
        return no_core()
    words = re.findall(r"[^\W\d_]{2,}", placement._PAGER.pattern)
    assert {"next", "previous", "avanti", "posts", "seite"} <= set(words)
    anchors = [digits for n in range(1, 8) for digits in ("7" * n, " ".join("7" * n))]
    for word in words:
        anchors += [word, word.upper(), f"« {word} »", f"{word}.", f"-{word}"]
        anchors += [f"{word} {page}" for page in words]
    for chunk in range(0, len(anchors), 400):
        links = "".join(f'<a href="/{i}">{html.escape(a)}</a> '
                        for i, a in enumerate(anchors[chunk:chunk + 400]))  # fmt: skip
        _same_page(f"<div>{links}</div>".encode(), "https://site.example/p")
        article = f"<div><p>{_TEXT * 8}</p><div>{links}</div><p>{_TEXT * 8}</p></div>"
        _same_page(article.encode(), "https://site.example/p")


def test_the_rules_on_big_and_deep_pages(core):
    """100,000 links in one box; links under 400 levels of nesting; a thread of comments."""
    if core is None:
        return no_core()
    url = "https://site.example/p"
    assert _same_page(b"<div>" + b'<a href="/x">a b</a>' * 100_000 + b"</div>", url) == 100_000
    deep = b"<div>" * 400 + b"<p>" + _TEXT.encode() * 5 + b'<a href="/x">x</a></p>'
    assert _same_page(deep + b'<a href="/y">y</a>', url) == 2
    post = b'<div class="comment"><p>' + _TEXT.encode() * 3 + b'<a href="/c">c</a></p></div>'
    assert _same_page(b'<div id="thread">' + post * 4 + b"</div>", url) == 4


def test_the_sides_of_main_are_pythons(core):
    """``_side`` is the core's, over the scan's parents: unlabeled links before main (the
    page's header), after it (its footer) and in a column beside it, among text nodes,
    comments and elements the scan does not record, are placed as Python places them."""
    if core is None:
        return no_core()
    unrecorded = "<img src=/i.png><!-- c --><script>var a;</script><span>words</span>"
    links = "".join(f'<a href="/{i}">link {i}</a> ' for i in range(6))
    body = (f"<div>{unrecorded}<div>{links}</div> text <div><div>{links}</div>"
            f"<div><p>{_TEXT * 12}</p></div><div>{links}</div></div>{unrecorded}"
            f"<div>{links}</div></div>")  # fmt: skip
    got = extract_page(body.encode(), "https://site.example/p")
    assert {link.placement for link in got.links} == {"nav", "sidebar", "footer"}
    assert _same_page(body.encode(), "https://site.example/p") == 24
    # Link boxes beside main's own block in main's parent, before and after it, with main's
    # parent's other children between (review14-p14 2: the index > 0 case).
    beside = (f"<div><span><a href=/1>one</a></span>{unrecorded}<p>{_TEXT * 12}</p> text "
              f"<span><a href=/2>two</a></span></div>")  # fmt: skip
    got = extract_page(beside.encode(), "https://site.example/p")
    assert [link.placement for link in got.links] == ["nav", "sidebar"]  # before, after main
    assert _same_page(beside.encode(), "https://site.example/p") == 2
    straight = f"<a href=/p>p</a> text <a href=/q>q</a><p>{_TEXT * 12}</p><a href=/r>r</a>"
    assert _same_page(straight.encode(), "https://site.example/p") == 3


def _captured_inputs() -> tuple:
    """The arguments extraction gives the core's rules on a small page."""
    captured = []
    core = native.lexbor_core()
    rules = core.placement_rules

    def spy(*args):  # type: ignore[no-untyped-def]
        captured.append(args)
        return rules(*args)

    body = b"<nav><a href=/n>n</a></nav><div><p>" + _TEXT.encode() * 8 + b"<a href=/x>x</a></p>"
    core.placement_rules = spy
    try:
        extract_page(body + b"</div><a href=/o>other</a>", "https://site.example/")
    finally:
        core.placement_rules = rules
    (args,) = captured
    return args


def test_the_rules_on_hostile_arrays(core):
    """Arrays that are no tree, keys past the page, lengths that differ, an unknown label:
    an exception the wrapper takes (never a panic), and the page's placements Python's."""
    if core is None:
        return no_core()
    *args, scan = _captured_inputs()  # the lists, then the scan's arrays kept in the core
    assert isinstance(scan, core.ScanArrays) and len(scan) == len(args[0][0])
    assert core.placement_rules(*args)[0] == ["nav", "content", "footer"]
    assert core.placement_rules(*args, scan)[:3] == core.placement_rules(*args)[:3]
    arrays, main = list(args[0]), list(args[1])
    broken = []
    for position, bad in ((0, [-1, 5, 1, 2, 3, 4, 5]), (0, [0]), (2, [10**6] * len(arrays[2])),
                          (4, ["elsewhere"] * len(arrays[4])), (5, [-1]), (4, [None])):  # fmt: skip
        wrong = list(arrays)
        wrong[position] = bad
        broken.append([tuple(wrong), *args[1:]])
    for position, bad in ((0, 10**6), (1, [])):
        wrong = list(main)
        wrong[position] = bad
        broken.append([args[0], tuple(wrong), *args[2:]])
    for position, bad in ((4, [10**6, 0, 0]), (4, [-1, 0, 0]), (5, [()]), (6, [""] * 4)):
        wrong = list(args)
        wrong[position] = bad
        broken.append(wrong)
    for wrong in broken:
        with pytest.raises((TypeError, ValueError, IndexError, OverflowError)):
            core.placement_rules(*wrong)


#: native.py's own ``_failed`` (the autouse guard replaces it during each test).
_FAILED = native._failed


def test_a_failure_of_the_core_is_logged_once_and_python_places(core, monkeypatch, caplog):
    """A panic in the core's rules: each page takes Python's rules (the same rows), and one
    line is logged however many pages fail."""
    if core is None:
        return no_core()
    body = b"<nav><a href=/n>n</a></nav><div><p>" + _TEXT.encode() * 8 + b"<a href=/x>x</a></p>"
    want = extract_page(body, "https://site.example/", native=False)
    monkeypatch.setattr(native, "_failed", _FAILED)
    monkeypatch.setattr(native, "_logged_failures", set())
    monkeypatch.setattr(core, "placement_rules", lambda *args: core._panic_for_test())
    before = native.RULES_PAGES[0]
    with caplog.at_level(logging.ERROR, logger=native.__name__):
        for _ in range(3):
            assert extract_page(body, "https://site.example/") == want
    assert native.RULES_PAGES[0] == before
    (record,) = [r for r in caplog.records if "placement rules" in r.getMessage()]
    assert "panicked" in record.getMessage()


def test_the_voided_labels_on_hostile_arrays(core):
    """Arrays that are no tree, a kind or a key past the page, an unknown label: an exception
    the wrapper takes, never a panic."""
    if core is None:
        return no_core()
    kinds = [("body", None), ("div", "widget sidebar"), ("p", None)]
    args = [[-1, 0, 1], [0, 1, 2], kinds, native._TAG_FLAGS, [None, "sidebar", None], {2: 900},
            (400, 0.5, 0.4), native._LABELS]  # fmt: skip
    raw, dropped = core.void_labels(*args)
    assert raw == [900.0, 900.0, 900.0] and dropped == [1]
    for position, bad in ((0, [-1, 2, 0]), (0, [0, 0, 1]), (1, [0, 1, 9]), (4, [None, "x", None]),
                          (5, {7: 1}), (4, [None])):  # fmt: skip
        wrong = list(args)
        wrong[position] = bad
        with pytest.raises((TypeError, ValueError, IndexError, OverflowError)):
            core.void_labels(*wrong)


def test_the_text_on_hostile_arrays(core):
    """A key past the page, a block that is no block, lengths that differ: an exception."""
    if core is None:
        return no_core()
    args = [[-1, 0, 1, 2], [-1, 1, 2, 2, -1], {1: 90, 2: 40}, [3], [5], 25, 0.5]
    assert core.page_text(*args) == ({1: 50, 2: 40}, [2], {2: 5}, {1: 50, 2: 40})
    for position, bad in ((0, [-1]), (1, [-1, 9, 9, 9, -1]), (2, {7: 1}), (3, [9]), (4, [])):
        wrong = list(args)
        wrong[position] = bad
        with pytest.raises((TypeError, ValueError, IndexError, OverflowError)):
            core.page_text(*wrong)


def test_the_thread_on_hostile_arrays(core):
    """Arrays that are no tree, a key past the page, an unknown label: an exception."""
    if core is None:
        return no_core()
    args = [[-1, 0, 1], [0, 1, 2], [None, "comment", None], {2: 125}, [], 2, (0.5, 2000),
            native._LABELS]  # fmt: skip
    assert core.is_thread(*args) is True
    for position, bad in ((0, [-1, 1, 0]), (1, [0]), (2, [None, "x", None]), (3, {9: 1}),
                          (4, [9]), (5, -1)):  # fmt: skip
        wrong = list(args)
        wrong[position] = bad
        with pytest.raises((TypeError, ValueError, IndexError, OverflowError)):
            core.is_thread(*wrong)


def _scanned_page(tree) -> placement._Page:  # type: ignore[no-untyped-def]
    """A natively scanned page of *tree* (no links: no node found before a lookup)."""
    root = tree.body or tree.root
    scanned = native.scan_page(tree, root, [])
    assert scanned is not None
    page = placement._Page(root)
    page.adopt(scanned, [], None)
    return page


def test_the_way_down_finds_every_element(core):
    """Every element a scan records, looked up in any order, is the node at its address (the
    core's way down, or the children read once a parent was stepped among): on pages kept
    here, on a box of 3,000 lists, and on elements outside the body."""
    if core is None:
        return no_core()
    from pipelines.extract import parse_page

    bodies = [body for _, body in repository_pages()[::7]]
    bodies.append(b"<div>" + b"<ul><li><p>" + _TEXT.encode() + b"</p></li></ul>" * 3000)
    bodies.append(b"<head><p>" + _TEXT.encode() + b"</p></head><body><p>" + _TEXT.encode())
    steps = native.STEPS[0]
    for body in bodies:
        tree = parse_page(body)[0]
        keys = list(range(len(_scanned_page(tree).parent)))
        for order in (keys[::-1], keys[1::3] + keys):
            page = _scanned_page(tree)
            got = [page.nodes[k].mem_id for k in order]
            assert got == [page.index_addresses[k] for k in order]
    assert native.STEPS[0] > steps + 100


def test_the_rules_with_the_callers_attributes(core):
    """A caller that gives each link's attributes (names then read from them, not the kinds):
    the core's rules call ``_place_tail`` whole, and place as Python does."""
    if core is None:
        return no_core()
    from selectolax.lexbor import LexborHTMLParser

    story = _TEXT * 8
    body = (f'<article><p>{story}</p><div class="wp-block-button"><a href="/b">Buy</a></div>'
            f'<a href="/x" role=button>x</a><a href="https://o.example/">o</a><p>{story}</p>'
            '<ul><li><a href="/1">A long headline of one story</a></li>'
            '<li><a href="/2">A long headline of another story</a></li>'
            '<li><a href="/3">A long headline of a third story</a></li></ul>'
            f"<p>{story}</p></article>")  # fmt: skip
    for html_text in (body, "<div>" + body + "</div><nav><a href=/n>n</a></nav>"):
        tree = LexborHTMLParser(html_text)
        links = tree.css("a[href]")
        rels = [() for _ in links]
        anchors = [node.text(strip=True) for node in links]
        attrs = [node.attributes for node in links]
        want = placement.place_links_scored(tree, links, rels, anchors, attrs)
        before = native.RULES_PAGES[0]
        got = placement.place_links_scored(tree, links, rels, anchors, attrs,
                                           scanner=native._scanner(None))  # fmt: skip
        assert native.RULES_PAGES[0] == before + 1
        assert got == want
        assert {p.placement for p in got} >= {"content", "sidebar"}


_ANSWER = (
    "<p>" + "Plain words of the answer to the question here. " * 12 + '<a href="/in">in</a></p>'
)
_BESIDE = ("<p>" + "Copy of the marketing page beside the FAQ, with its words. " * 6
           + '<a href="https://b.test/x">other</a></p>')  # fmt: skip


@pytest.mark.parametrize("cls", ["faqs", "faQs\ua7dc", "accordioN\ua7dc", "FAQ\u0130 x"])
def test_an_faq_named_in_letters_of_a_newer_unicode_is_pythons(core, cls):
    """review11-n18r 1: the core lowered class names with Rust's tables (Unicode 16: U+A7DC
    lowers to a letter of the token pattern), CPython 3.11 with Unicode 14's: `faQs\\uA7DC`
    was an FAQ to Python, not to the core, and the page's links were placed otherwise. A
    name that is not ASCII is left to Python."""
    body = (
        f'<main><section><div class="{cls}"><div>{_ANSWER}{_ANSWER}</div></div></section>'
        f"<section>{_BESIDE}</section></main>"
    ).encode()
    assert _same_page(body, "https://a.test/") > 0


def test_the_placements_reach_the_rows_as_columns(core, monkeypatch):
    """The core's rules answer columns (placement.py ``PlacedColumns``): extraction's rows
    take them with no ``Placed`` made (the rows' placements are the Python path's), while
    ``place_links_scored`` and ``placement_facts`` still give lists of ``Placed``; a row set
    (a product page's rules) is what the columns then read."""
    if core is None:
        return no_core()
    handed: list[object] = []
    real = placement.place_links_scored

    def spy(*args):  # type: ignore[no-untyped-def]
        placed = real(*args)
        handed.append(placed)
        return placed

    monkeypatch.setattr("pipelines.extract.place_links_scored", spy)
    pages = repository_pages()[::5]
    for url, body in pages:
        got = extract_page(body, url)
        want = extract_page(body, url, native=False)
        assert [(k.placement, k.placement_score, k.placement_block) for k in got.links] == [
            (k.placement, k.placement_score, k.placement_block) for k in want.links
        ]
    columns = [p for p in handed if isinstance(p, placement.PlacedColumns)]
    assert len(columns) > len(pages) // 2
    assert all(p._rows is None for p in columns), "a Placed was made per link"
    tree = placement.LexborHTMLParser(
        b"<nav><a href=/a>A</a></nav><main><p>" + b"Running text here. " * 30
        + b"<a href=/b>B</a></p></main>"
    )  # fmt: skip
    listed = real(tree, tree.css("a"))
    assert isinstance(listed, list) and all(isinstance(p, placement.Placed) for p in listed)
    url, body = pages[0]  # the core's walk, not asked for columns: a list too
    parsed = placement.LexborHTMLParser(body)
    walked = native.walk_page(parsed, url, "utf-8", [], None)
    assert walked is not None and walked.nodes
    listed = real(parsed, walked.nodes, walked.rels, walked.texts, walked.attrs, walked.markup,
                  walked.scanner)  # fmt: skip
    assert isinstance(listed, list) and len(listed) == len(walked.nodes)
    rules, _ = placement.placement_facts(tree, tree.css("a"))
    assert isinstance(rules, list) and len(rules) == 2
    made = placement.PlacedColumns(["nav", "content"], [0.8, 0.9], [1, 2])
    made[1] = made[1]._replace(placement="sidebar", score=0.6)
    assert made.columns() == (["nav", "sidebar"], [0.8, 0.6], [1, 2])
    assert made == [placement.Placed("nav", 0.8, 1), placement.Placed("sidebar", 0.6, 2)]
    with pytest.raises(ValueError):
        placement.PlacedColumns(["nav"], [], [1])


def test_a_page_leaves_nothing_for_the_collector(core):
    """A page on the core's path is freed when extraction returns: no cycle holds its parsed
    document (a _Page -> _Nodes -> _Page cycle kept each lexbor document, C memory the
    collector does not count, until a full collection)."""
    if core is None:
        return no_core()
    import gc

    pages = repository_pages()[::20]
    for url, body in pages:  # (lazy imports on a first use leave cycles, once)
        extract_page(body, url)
    gc.collect()
    gc.disable()
    try:
        for url, body in pages:
            page = extract_page(body, url)
            assert page.links, url
            del page
            assert gc.collect() == 0, f"{url}: a page left garbage for the collector"
    finally:
        gc.enable()


def test_placement_facts_on_the_cores_walk_gives_lists(core):
    """``placement_facts`` with the core's scanner (the rules answer columns inside) hands
    the model's callers a list of ``Placed``, one per link."""
    if core is None:
        return no_core()
    seen = 0
    for url, body in repository_pages()[::10]:
        parsed = placement.LexborHTMLParser(body)
        walked = native.walk_page(parsed, url, "utf-8", [], None)
        if walked is None or not walked.nodes:
            continue
        walk = (walked.nodes, walked.rels, walked.texts, walked.attrs, walked.markup)
        rules, _ = placement.placement_facts(parsed, *walk, walked.scanner)
        assert isinstance(rules, list) and len(rules) == len(walked.nodes)
        assert all(isinstance(p, placement.Placed) for p in rules)
        seen += 1
    assert seen > 5
