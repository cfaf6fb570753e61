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
