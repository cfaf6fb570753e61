"""The native core's link rows held as columns (``pipelines.extract.LinkRows``): the same
links, rows and columns as the Python path's list of ``Link``, with no ``Link`` made unless a
caller asks for one."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import datetime, timezone

import pytest
from native_checks import built, repository_pages

from pipelines import native
from pipelines.extract import LINK_FIELDS, Link, LinkRows, extract_page
from pipelines.rows import link_columns, link_rows

WHEN = datetime(2026, 12, 7, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def core():
    """The built core; on a machine without cargo, None (the tests then check the list)."""
    return built(native.core())


def _pages() -> list[tuple[str, bytes]]:
    """A third of the repository's pages (every kind: Zyte, WCXB sample, page-type pages)."""
    return repository_pages()[::3]


def test_the_core_hands_columns_and_python_a_list(core):
    body, url = b'<p>x <a href="/a" rel="UGC nofollow" title=" T ">A</a></p>', "http://s.test/"
    python = extract_page(body, url, native=False)
    page = extract_page(body, url)
    assert isinstance(python.links, list)
    if core is None:
        assert isinstance(page.links, list)
        return
    assert isinstance(page.links, LinkRows) and page.links._rows is None  # none made yet
    assert page.links.column("rel") == [["ugc", "nofollow"]]
    assert page.links == python.links and python.links == page.links and page == python
    assert page.links._rows is not None and page.links[0] is page.links[0]  # made once


def test_rows_and_columns_are_the_python_paths_on_every_page(core):
    """On a third of the repository's pages: the rows a crawl writes (``link_rows``) and the
    columns ingest writes (``link_columns``) are the Python path's, value for value, and the
    column readers make no ``Link``."""
    columns_read = 0
    for url, body in _pages():
        want = extract_page(body, url, native=False)
        got = extract_page(body, url)
        if isinstance(got.links, LinkRows):
            columns = link_columns(got, url, crawl_id="c", fetched_at=WHEN)
            assert got.links._rows is None, url  # read as columns
            columns_read += bool(got.links)
        else:
            columns = link_columns(got, url, crawl_id="c", fetched_at=WHEN)
        assert columns == link_columns(want, url, crawl_id="c", fetched_at=WHEN), url
        rows = link_rows(got, url, crawl_id="c", fetched_at=WHEN)
        assert rows == link_rows(want, url, crawl_id="c", fetched_at=WHEN), url
        assert [dataclasses.astuple(k) for k in got.links] == [
            dataclasses.astuple(k) for k in want.links
        ], url
    assert core is None or columns_read > 50


def test_a_changed_link_is_what_the_columns_give(core):
    """A caller that changes a row it was given: the columns read after are the rows'."""
    links = LinkRows([[value] for value in _link_values()])
    links[0].placement = "nav"
    assert links.column("placement") == ["nav"]
    cols = link_columns(_page(links), "http://s.test/", crawl_id="c", fetched_at=WHEN)
    assert cols["placement"] == ["nav"]


def test_columns_given_out_are_copies(core):
    links = LinkRows([[value] for value in _link_values()])
    cols = link_columns(_page(links), "http://s.test/", crawl_id="c", fetched_at=WHEN)
    cols["anchor_text"][0] = "changed"
    assert links[0].anchor_text == "A" and links.column("anchor_text") == ["A"]


def test_pickled_and_compared_as_a_list(core):
    links = LinkRows([[value, value] for value in _link_values()])
    back = pickle.loads(pickle.dumps(links))
    assert isinstance(back, LinkRows) and back == links and back._rows is None
    assert links == links.rows() and repr(links) == repr(links.rows())
    assert pickle.loads(pickle.dumps(links)) == links  # made rows travel too
    assert links != links.rows()[:1] and links != tuple(links.rows()) and links != "x"
    assert links[1:] == links.rows()[1:] and list(reversed(links)) == links.rows()[::-1]
    other = LinkRows([[value, value] for value in _link_values()])
    other[1].anchor_text = "B"
    assert other != links and links != other
    back = pickle.loads(pickle.dumps(other))  # a row changed once made travels
    assert back[1].anchor_text == "B" and back == other and back.column("anchor_text")[1] == "B"
    with pytest.raises(TypeError):
        hash(links)


def test_a_malformed_column_set_is_refused():
    with pytest.raises(ValueError):
        LinkRows([["x"]])
    with pytest.raises(ValueError):
        LinkRows([[1, 2]] + [[1]] * (len(LINK_FIELDS) - 1))


def _link_values() -> tuple[object, ...]:
    link = Link("http://s.test/a", "A", None, ["ugc"], False, False, True, False, "a", "content",
                0, 0.5, 3)  # fmt: skip
    return dataclasses.astuple(link)


def _page(links: LinkRows):
    page = extract_page(b"", "http://s.test/")
    page.links = links
    return page


# --- The links' elements found only when a rule reads one (placement.LinkNodes) -------------


def _walked(body: bytes, url: str = "http://s.test/p"):
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(body.decode())
    return tree, native.walk_page(tree, url, "utf-8", [], None)


def test_link_nodes_are_found_only_when_read(core):
    """A page whose links the core's rules place alone: no node made for them, and the same
    placements as with every node found first (the eager list)."""
    from pipelines.placement import LinkNodes, place_links_scored

    story = b"Running text of the story, sentence after sentence. " * 6
    body = (b"<div><a href='/'>Home</a> <a href='/n'>News</a></div><div><p>" + story
            + b"<a href='/x'>a source</a>.</p><p>" + story + b"</p></div>")  # fmt: skip
    tree, walked = _walked(body)
    if core is None:
        assert walked is None
        return
    nodes = walked.nodes
    assert isinstance(nodes, LinkNodes) and list(nodes.hrefs) == ["/", "/n", "/x"]
    lazily = place_links_scored(tree, nodes, walked.rels, walked.texts, walked.attrs,
                                walked.markup, walked.scanner)  # fmt: skip
    assert not nodes.made
    tree2, walked2 = _walked(body)
    eager = list(walked2.nodes)
    assert [n.mem_id for n in eager] == [n.mem_id for n in tree2.css("a[href]")]
    assert lazily == place_links_scored(tree2, eager, walked2.rels, walked2.texts, walked2.attrs,
                                        walked2.markup, walked2.scanner)  # fmt: skip


def test_pages_whose_rules_read_links_find_them(core):
    """On a third of the repository's pages: every page's placements are those made with the
    nodes found first (the core's rules read the walk's hrefs, not the links' elements: no
    page here finds them)."""
    from pipelines.placement import LinkNodes, place_links_scored

    made = unmade = 0
    for url, body in _pages():
        tree, walked = _walked(body, url)
        if walked is None or not isinstance(walked.nodes, LinkNodes):
            continue
        got = place_links_scored(tree, walked.nodes, walked.rels, walked.texts, walked.attrs,
                                 walked.markup, walked.scanner)  # fmt: skip
        made, unmade = made + walked.nodes.made, unmade + (not walked.nodes.made)
        tree2, walked2 = _walked(body, url)
        want = place_links_scored(tree2, list(walked2.nodes), walked2.rels, walked2.texts,
                                  walked2.attrs, walked2.markup, walked2.scanner)  # fmt: skip
        assert got == want, url
    assert core is None or (made == 0 and unmade > 90), (made, unmade)


def test_a_lookup_under_a_link_not_yet_found(core):
    """``_Nodes`` with the links pending: an element inside a link, then the link itself,
    then everything: each the element at its address."""
    from pipelines import placement

    body = b"<div><p><a href='/x'><span><img alt=i src=a.png></span></a></p>" * 3 + b"</div>"
    tree, walked = _walked(body)
    if core is None:
        return
    scanned = walked.scanner(tree, tree.body, walked.nodes)
    page = placement._Page(tree.body)
    page.adopt(scanned, walked.nodes, None)
    assert page.nodes.links is not None and not walked.nodes.made
    for key, address in reversed(list(enumerate(scanned.addresses))):
        assert page.nodes[key].mem_id == address, key
    assert walked.nodes.made and page.nodes.links is None


# --- The scan's per-element lists made by the core (native/src/element_lists.rs) -----------


def test_the_cores_element_lists_are_adopts(core):
    """On a third of the repository's pages: the tag, label, bits and body lists the core
    makes with its scan are those ``_Page.adopt`` makes from the kinds' facts."""
    from selectolax.lexbor import LexborHTMLParser

    from pipelines import placement

    compared = 0
    for url, body in _pages():
        tree = LexborHTMLParser(body.decode("utf-8", "replace"))
        links = tree.css("a[href]")
        scanned = native.scan_page(tree, tree.body or tree.root, links)
        if scanned is None:
            assert core is None or not links, url
            continue
        pages = []
        for given in (scanned, scanned._replace(lists=None)):
            page = placement._Page(tree.body or tree.root)
            page.adopt(given, links, None)
            pages.append((page.tag, page.label, page.bits, page.body))
        assert pages[0] == pages[1], url
        compared += scanned.lists is not None
    assert core is None or compared > 90


def test_placement_leaves_the_cached_scan_as_it_was():
    """review12-n18c 2: placement took the core's scan lists as its own and voided labels in
    them; the scan is cached (a second placement of the walked page started from voided
    labels). The lists stay as the core made them, and a second placement is the first."""
    from native_checks import built, repository_pages
    from selectolax.lexbor import LexborHTMLParser

    from pipelines import native
    from pipelines.placement import place_links_scored

    if built(native.core()) is None:
        return
    seen = 0
    for url, body in repository_pages():
        tree = LexborHTMLParser(body.decode("utf-8", "replace"))
        walked = native.walk_page(tree, url, "utf-8", [], None)
        if walked is None or not len(walked.nodes):
            continue
        scanned = walked.scanner(tree, tree.body or tree.root, walked.nodes)
        if scanned is None or scanned.lists is None:
            continue
        seen += 1
        before = [list(x) for x in scanned.lists[:3]]
        args = (tree, walked.nodes, walked.rels, walked.texts, walked.attrs, walked.markup)
        first = place_links_scored(*args, walked.scanner)
        assert [list(x) for x in scanned.lists[:3]] == before, url
        assert place_links_scored(*args, walked.scanner) == first, url
    assert seen > 100


def test_links_found_when_python_rules_read_them(core, monkeypatch):
    """review12-n18c 3: the lazy nodes when they ARE read: with the core's rules off, Python's
    rules read every link's element; the placements are those made with the nodes found
    first, on a third of the repository's pages."""
    from pipelines import placement
    from pipelines.placement import LinkNodes, place_links_scored

    monkeypatch.setattr(placement, "_native_rules", lambda *args, **kwargs: None)
    made = 0
    for url, body in _pages():
        tree, walked = _walked(body, url)
        if walked is None or not isinstance(walked.nodes, LinkNodes):
            continue
        got = place_links_scored(tree, walked.nodes, walked.rels, walked.texts, walked.attrs,
                                 walked.markup, walked.scanner)  # fmt: skip
        made += bool(walked.nodes.made)
        tree2, walked2 = _walked(body, url)
        want = place_links_scored(tree2, list(walked2.nodes), walked2.rels, walked2.texts,
                                  walked2.attrs, walked2.markup, walked2.scanner)  # fmt: skip
        assert got == want, url
    assert core is None or made > 90, made
