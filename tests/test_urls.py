"""Tests of pipelines.urls: each DESIGN.md normalization rule as a table of input -> output."""

from __future__ import annotations

import ada_url
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipelines.extract import extract_page
from pipelines.urls import (
    DEFAULT_TRACKING_PARAMS,
    DEFAULT_TRACKING_PREFIXES,
    encode_query,
    host_and_domain,
    is_same_document,
    is_skipped_href,
    normalize_url,
    registered_domain,
    resolve_href,
    resolve_link,
    url_host,
)

BASE = "https://www.example.com/dir/page.html?x=1#frag"


# --- resolve_href: WHATWG, nothing more ----------------------------------------------------


@pytest.mark.parametrize(
    ("href", "base", "expected"),
    [
        # relative references
        ("other.html", BASE, "https://www.example.com/dir/other.html"),
        ("../up", BASE, "https://www.example.com/up"),
        ("../../../../up", BASE, "https://www.example.com/up"),
        ("./a/./b/../c", BASE, "https://www.example.com/dir/a/c"),
        ("/abs", BASE, "https://www.example.com/abs"),
        ("?y=2", BASE, "https://www.example.com/dir/page.html?y=2"),
        ("#top", BASE, "https://www.example.com/dir/page.html?x=1#top"),
        ("", BASE, "https://www.example.com/dir/page.html?x=1"),
        # protocol-relative: the base's scheme
        ("//Other.EXAMPLE.org/x", BASE, "https://other.example.org/x"),
        ("//other.example.org", "http://a.test/", "http://other.example.org/"),
        # absolute: the base does not matter
        ("HTTP://A.TEST/P", BASE, "http://a.test/P"),
        ("http://a.test", BASE, "http://a.test/"),
        # no normalization beyond WHATWG: fragment, user info, escapes, query order kept
        (
            "http://u:p@a.test/%7e?b=1&a=2&utm_source=x#f",
            BASE,
            "http://u:p@a.test/%7e?b=1&a=2&utm_source=x#f",
        ),
        # a scheme of its own is kept
        ("mailto:a@b.test", BASE, "mailto:a@b.test"),
        ("javascript:void(0)", BASE, "javascript:void(0)"),
        # backslashes are slashes in special URLs
        ("\\\\a.test\\b\\c", BASE, "https://a.test/b/c"),
        ("http:\\\\a.test\\x", BASE, "http://a.test/x"),
        # whitespace and controls around are stripped, tabs and newlines inside removed
        ("  /x  ", BASE, "https://www.example.com/x"),
        ("\t\n\f\r /x\f", BASE, "https://www.example.com/x"),
        ("\x00\x1f/x\x01", BASE, "https://www.example.com/x"),
        ("/a\n/b\t/c\r", BASE, "https://www.example.com/a/b/c"),
        ("java\nscript:alert(1)", BASE, "javascript:alert(1)"),
        ("/a b", BASE, "https://www.example.com/a%20b"),
        # non-breaking space is not stripped: it is encoded
        ("\xa0/x", BASE, "https://www.example.com/dir/%C2%A0/x"),
        # IDN, IPv4 and IPv6 hosts
        ("http://BÜCHER.de/", BASE, "http://xn--bcher-kva.de/"),
        ("http://0x7f.1/", BASE, "http://127.0.0.1/"),
        ("http://2130706433/", BASE, "http://127.0.0.1/"),
        ("http://[0:0::1]:8080/", BASE, "http://[::1]:8080/"),
        # non-ASCII path and query are UTF-8 percent-encoded
        ("/ä?q=ü", BASE, "https://www.example.com/%C3%A4?q=%C3%BC"),
        # lone surrogates become U+FFFD, as in a browser
        ("/\ud800", BASE, "https://www.example.com/%EF%BF%BD"),
        ("/\ud83d\ude00", BASE, "https://www.example.com/%F0%9F%98%80"),
        # no base: absolute only
        ("https://a.test/x", None, "https://a.test/x"),
        ("/x", None, None),
        # failures
        ("http://a.test:99999/", BASE, None),
        ("http://a b.test/", BASE, None),
        ("http://[::1/", BASE, None),
        ("http://", BASE, None),
        ("/x", "not a url", None),
        ("http://a.test/", "not a url", None),
    ],
)
def test_resolve_href(href: str, base: str | None, expected: str | None) -> None:
    assert resolve_href(href, base) == expected


# --- normalize_url: each rule of DESIGN.md -------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # only http and https
        ("http://a.test/", "http://a.test/"),
        ("https://a.test/", "https://a.test/"),
        ("ftp://a.test/", None),
        ("ws://a.test/", None),
        ("file:///etc/passwd", None),
        ("mailto:a@a.test", None),
        ("javascript:alert(1)", None),
        ("data:text/html,x", None),
        ("about:blank", None),
        # not an absolute URL, or not one at all
        ("/relative", None),
        ("a.test/x", None),
        ("", None),
        ("http://", None),
        ("http://a b/", None),
        # scheme and host lowercased, path case kept
        ("HTTP://WWW.Example.COM/Path/File.HTML", "http://www.example.com/Path/File.HTML"),
        ("HtTpS://A.Test", "https://a.test/"),
        # host in punycode
        ("http://bücher.de/", "http://xn--bcher-kva.de/"),
        ("http://BÜCHER.DE/", "http://xn--bcher-kva.de/"),
        ("http://xn--bcher-kva.DE/", "http://xn--bcher-kva.de/"),
        ("http://例え.テスト/", "http://xn--r8jz45g.xn--zckzah/"),
        ("http://faß.de/", "http://xn--fa-hia.de/"),
        ("http://a%2Eb.test/", "http://a.b.test/"),
        # without a trailing dot
        ("http://a.test./", "http://a.test/"),
        ("http://a.test../x", "http://a.test/x"),
        ("http://a.test.:8080/", "http://a.test:8080/"),
        ("http://./", None),
        ("http://...:81/", None),
        ("http://foo.09../", None),
        # ... and a host that then reads as an IPv4 address is one
        ("http://0x7f../", "http://0.0.0.127/"),
        ("http://1.2.3.4../", "http://1.2.3.4/"),
        # IPv4 in dotted decimal, whatever the form
        ("http://0x7f.1/", "http://127.0.0.1/"),
        ("http://0x7F000001/", "http://127.0.0.1/"),
        ("http://2130706433/", "http://127.0.0.1/"),
        ("http://0177.0.0.1/", "http://127.0.0.1/"),
        ("http://127.1/", "http://127.0.0.1/"),
        ("http://127.0.0.1./", "http://127.0.0.1/"),
        ("http://256.256.256.256/", None),
        # IPv6 compressed, lowercase
        ("http://[0:0:0:0:0:0:0:1]/", "http://[::1]/"),
        ("http://[2001:DB8::A]:8080/", "http://[2001:db8::a]:8080/"),
        ("http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/"),
        # default port removed, others kept
        ("http://a.test:80/", "http://a.test/"),
        ("https://a.test:443/", "https://a.test/"),
        ("http://a.test:/", "http://a.test/"),
        ("http://a.test:0080/", "http://a.test/"),
        ("http://a.test:443/", "http://a.test:443/"),
        ("https://a.test:80/", "https://a.test:80/"),
        ("http://a.test:8080/", "http://a.test:8080/"),
        ("http://[::1]:80/", "http://[::1]/"),
        # an empty path is /
        ("http://a.test", "http://a.test/"),
        ("http://a.test?q", "http://a.test/?q"),
        # dot segments resolved, // kept
        ("http://a.test/a/./b/../c", "http://a.test/a/c"),
        ("http://a.test/../../x", "http://a.test/x"),
        ("http://a.test/a/%2e%2E/b/%2e/c", "http://a.test/b/c"),
        ("http://a.test/a/b/..", "http://a.test/a/"),
        ("http://a.test/a//b", "http://a.test/a//b"),
        ("http://a.test//", "http://a.test//"),
        ("http://a.test/a//../b", "http://a.test/a/b"),
        ("http://a.test/...", "http://a.test/..."),
        ("http://a.test/%2e%2e%2e", "http://a.test/..."),
        # backslashes are slashes
        ("http:\\\\a.test\\a\\b", "http://a.test/a/b"),
        # fragment removed
        ("http://a.test/p#frag", "http://a.test/p"),
        ("http://a.test/p?q=1#frag", "http://a.test/p?q=1"),
        ("http://a.test/p#", "http://a.test/p"),
        ("http://a.test/p#a?b=1", "http://a.test/p"),
        # user info removed
        ("http://user:pass@a.test/", "http://a.test/"),
        ("http://user@a.test:8080/", "http://a.test:8080/"),
        ("http://@a.test/", "http://a.test/"),
        ("http://a%40b:c@a.test/", "http://a.test/"),
        # www. kept: a host of its own
        ("http://www.a.test/", "http://www.a.test/"),
        ("http://WWW.a.test/", "http://www.a.test/"),
        # escapes of unreserved characters decoded
        ("http://a.test/%7euser", "http://a.test/~user"),
        ("http://a.test/%41%5a%61%7A%30%39%2D%2E%5F%7E", "http://a.test/AZaz09-._~"),
        ("http://a.test/?q=%7e%41", "http://a.test/?q=~A"),
        # other escapes kept, their hex uppercased
        ("http://a.test/a%2fb", "http://a.test/a%2Fb"),
        ("http://a.test/%3f%23%25%26%3d%2b%20", "http://a.test/%3F%23%25%26%3D%2B%20"),
        ("http://a.test/%c3%a4", "http://a.test/%C3%A4"),
        ("http://a.test/?a%3db=c%26d", "http://a.test/?a%3Db=c%26d"),
        ("http://a.test/?q=%2525", "http://a.test/?q=%2525"),
        # characters a browser encodes are encoded
        ("http://a.test/ä ö", "http://a.test/%C3%A4%20%C3%B6"),
        ("http://a.test/?q=a b&r=€", "http://a.test/?q=a%20b&r=%E2%82%AC"),
        ("http://a.test/a<b>", "http://a.test/a%3Cb%3E"),
        # a stray % is sent as is; an escape beside it cannot make a new escape
        ("http://a.test/100%", "http://a.test/100%"),
        ("http://a.test/%zz", "http://a.test/%zz"),
        ("http://a.test/%%7e", "http://a.test/%~"),
        ("http://a.test/%%34%31", "http://a.test/%%34%31"),
        ("http://a.test/%4%31", "http://a.test/%4%31"),
        ("http://a.test/?a=%&b=%41", "http://a.test/?a=%&b=A"),
        # + is not a space here: kept
        ("http://a.test/?q=a+b", "http://a.test/?q=a+b"),
        ("http://a.test/a+b", "http://a.test/a+b"),
        # query parameters sorted by name, then value; each kept as encoded
        ("http://a.test/?b=2&a=1", "http://a.test/?a=1&b=2"),
        ("http://a.test/?a=2&a=1&a=10", "http://a.test/?a=1&a=10&a=2"),
        ("http://a.test/?b&a=1&c=", "http://a.test/?a=1&b&c="),
        ("http://a.test/?a-b=1&a=2", "http://a.test/?a=2&a-b=1"),
        ("http://a.test/?b=1&B=2&a=3", "http://a.test/?B=2&a=3&b=1"),
        ("http://a.test/?q=%20&q=+", "http://a.test/?q=%20&q=+"),
        ("http://a.test/?q=+&q=%20", "http://a.test/?q=%20&q=+"),
        ("http://a.test/?a=1=2&a=1", "http://a.test/?a=1&a=1=2"),
        # ... a name without = before the same name with an empty value: one URL
        ("http://a.test/?a=&a", "http://a.test/?a&a="),
        ("http://a.test/?a&a=", "http://a.test/?a&a="),
        ("http://a.test/?a=1&a&a=&a", "http://a.test/?a&a&a=&a=1"),
        # ... names compared whole: a before a-b, a.b, a0 and a%2B
        (
            "http://a.test/?a%2B=1&a0=2&a.b=3&a-b=4&a=5",
            "http://a.test/?a=5&a%2B=1&a-b=4&a.b=3&a0=2",
        ),
        # empty query and empty parameters removed
        ("http://a.test/?", "http://a.test/"),
        ("http://a.test/?#f", "http://a.test/"),
        ("http://a.test/?&&", "http://a.test/"),
        ("http://a.test/?&b=1&&a=1&", "http://a.test/?a=1&b=1"),
        ("http://a.test/?=", "http://a.test/?="),
        # ? in a query is data
        ("http://a.test/?a=?&b", "http://a.test/?a=?&b"),
        # tracking parameters removed
        ("http://a.test/?utm_source=x&utm_medium=y&utm_campaign=z", "http://a.test/"),
        ("http://a.test/?id=3&utm_term=x&utm_content=y", "http://a.test/?id=3"),
        ("http://a.test/?gclid=1&fbclid=2&mc_cid=3&mc_eid=4&p=5", "http://a.test/?p=5"),
        ("http://a.test/?UTM_Source=x&GCLID=1&Fbclid=2", "http://a.test/"),
        ("http://a.test/?utm%5Fsource=x&utm%5fmedium=y", "http://a.test/"),
        ("http://a.test/?utm_source", "http://a.test/"),
        (
            "http://a.test/?utm=1&xutm_source=2&gclid_x=3",
            "http://a.test/?gclid_x=3&utm=1&xutm_source=2",
        ),
        ("http://a.test/p?utm_source=x#top", "http://a.test/p"),
    ],
)
def test_normalize_url(url: str, expected: str | None) -> None:
    assert normalize_url(url) == expected


@pytest.mark.parametrize(
    ("url", "params", "prefixes", "expected"),
    [
        ("http://a.test/?ref=1&b=2", frozenset({"ref"}), (), "http://a.test/?b=2"),
        ("http://a.test/?utm_x=1&gclid=2", frozenset(), (), "http://a.test/?gclid=2&utm_x=1"),
        ("http://a.test/?pk_a=1&pk_b=2&c=3", frozenset(), ("pk_",), "http://a.test/?c=3"),
        ("http://a.test/?Ref=1", frozenset({"ref"}), DEFAULT_TRACKING_PREFIXES, "http://a.test/"),
    ],
)
def test_normalize_url_tracking_configurable(
    url: str, params: frozenset[str], prefixes: tuple[str, ...], expected: str
) -> None:
    assert normalize_url(url, tracking_params=params, tracking_prefixes=prefixes) == expected
    assert (
        resolve_link(url, "http://b.test/", tracking_params=params, tracking_prefixes=prefixes)
        == expected
    )


def test_default_tracking_params() -> None:
    assert frozenset({"gclid", "fbclid", "mc_cid", "mc_eid"}) == DEFAULT_TRACKING_PARAMS
    assert DEFAULT_TRACKING_PREFIXES == ("utm_",)


# --- resolve_link: both ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("href", "base", "expected"),
    [
        (
            "../b/?z=1&a=%7e#frag",
            "https://www.example.com/x/y/z.html",
            "https://www.example.com/x/b/?a=~&z=1",
        ),
        ("//CDN.example.com/a//b?utm_medium=x", BASE, "https://cdn.example.com/a//b"),
        ("http://user:pw@A.TEST:80/./x/", BASE, "http://a.test/x/"),
        ("  /x?b=1&a=1 ", BASE, "https://www.example.com/x?a=1&b=1"),
        ("http://0x7f.1/", BASE, "http://127.0.0.1/"),
        ("\\\\a.test\\b", BASE, "https://a.test/b"),
        ("http://a.test./", BASE, "http://a.test/"),
        ("/p", "HTTP://User@WWW.Example.COM.:80/q#f", "http://www.example.com/p"),
        # the page itself (is_skipped_href filters these before)
        ("#top", BASE, "https://www.example.com/dir/page.html?x=1"),
        ("", BASE, "https://www.example.com/dir/page.html?x=1"),
        # not http(s), or not a URL
        ("mailto:a@b.test", BASE, None),
        ("javascript:void(0)", BASE, None),
        ("java\nscript:void(0)", BASE, None),
        ("ftp://a.test/", BASE, None),
        ("http://a.test:99999/", BASE, None),
        ("/x", "about:blank", None),
        ("/x", "not a url", None),
        ("http://a.test/", "not a url", None),
        ("http://a.test/", None, "http://a.test/"),
        ("/x", None, None),
    ],
)
def test_resolve_link(href: str, base: str | None, expected: str | None) -> None:
    assert resolve_link(href, base) == expected


# --- is_skipped_href -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        # schemes other than http(s), whatever the case and the whitespace
        ("javascript:void(0)", True),
        ("JavaScript:void(0)", True),
        ("  javascript:void(0)", True),
        ("\x00\x1fjavascript:x", True),
        ("java\nscript:x", True),
        ("java\tscript:x", True),
        ("java\r\nscript:x", True),
        ("mailto:a@b.test", True),
        ("MAILTO:a@b.test", True),
        ("tel:+15551234", True),
        ("sms:+15551234", True),
        ("data:text/html,<p>", True),
        ("about:blank", True),
        ("blob:https://a.test/uuid", True),
        ("vbscript:msgbox", True),
        ("file:///etc/passwd", True),
        ("ftp://a.test/", True),
        ("ws://a.test/", True),
        ("chrome-extension://abc/x", True),
        ("c:\\file.txt", True),
        ("a:b", True),
        # the page itself
        ("", True),
        ("   ", True),
        ("\n", True),
        ("#", True),
        ("#top", True),
        (" #top ", True),
        ("\t#top", True),
        # links
        ("http://a.test/", False),
        ("HTTPS://a.test/", False),
        (" https://a.test/", False),
        ("ht\ntp://a.test/", False),
        ("http:/a.test/", False),
        ("http:page", False),
        ("//a.test/x", False),
        ("/x", False),
        ("x", False),
        ("x/y:z", False),
        ("./a:b", False),
        ("?page=2", False),
        ("../", False),
        ("1a:b", False),
        ("\xa0#x", False),
        ("/#top", False),
    ],
)
def test_is_skipped_href(href: str, expected: bool) -> None:
    assert is_skipped_href(href) is expected


@pytest.mark.parametrize("href", ["", "   ", "\n", "#", "#top", " #top ", "\t#top", "#\x00"])
def test_under_a_base_naming_another_document_self_hrefs_are_links(href: str) -> None:
    assert is_skipped_href(href) is True
    assert is_skipped_href(href, same_document=False) is False
    # ... to that document, without the fragment
    assert resolve_link(href, "http://a.test/other?q#b") == "http://a.test/other?q"


@pytest.mark.parametrize("href", ["javascript:x", "mailto:a@b.test", "ftp://a.test/"])
def test_other_schemes_stay_skipped_whatever_the_base(href: str) -> None:
    assert is_skipped_href(href, same_document=False) is True


@pytest.mark.parametrize(
    ("base", "url", "expected"),
    [
        ("http://a.test/p", "http://a.test/p", True),
        ("http://a.test/p#x", "http://a.test/p#y", True),
        ("HTTP://A.TEST:80/./p", "http://a.test/p", True),  # as the URL parser serializes them
        # What normalization removes does not make another document (review B8): a link
        # to such a base would be a link to the page itself.
        ("http://a.test/p?", "http://a.test/p", True),
        ("http://a.test/d/p?utm_source=z", "http://a.test/d/p", True),
        ("http://a.test/d/%70", "http://a.test/d/p#x", True),
        ("http://a.test/p?b=2&a=1", "http://a.test/p?a=1&b=2", True),
        ("http://a.test/p?a", "http://a.test/p", False),
        ("http://a.test/", "http://a.test/p", False),
        ("https://a.test/p", "http://a.test/p", False),
        ("http://cdn.test/p", "http://a.test/p", False),
        ("http://a.test/p", "", False),
        ("not a url", "not a url", True),
    ],
)
def test_is_same_document(base: str, url: str, expected: bool) -> None:
    assert is_same_document(base, url) is expected


@pytest.mark.parametrize("base", ["/d/p?utm_source=z", "/d/%70", "/d/p?", "/d/p#y"])
def test_base_naming_the_page_itself_makes_no_self_link(base: str) -> None:
    page = extract_page(
        b"<base href='%s'><a href='#x'>x</a><a href=''>y</a><a href=/o>o</a>" % base.encode(),
        "http://c.test/d/p",
    )
    assert [link.target_url for link in page.links] == ["http://c.test/o"]


# --- hosts and domains -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://a.test/", "a.test"),
        ("https://www.example.com:8443/a?b#c", "www.example.com"),
        ("http://xn--bcher-kva.de/", "xn--bcher-kva.de"),
        ("http://127.0.0.1:8080/", "127.0.0.1"),
        ("http://[::1]/", "[::1]"),
        ("http://[::1]:8080/x", "[::1]"),
        ("http://[2001:db8::a]/", "[2001:db8::a]"),
        ("http://u:p@a.test:81/", "a.test"),
    ],
)
def test_url_host(url: str, expected: str) -> None:
    assert url_host(url) == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("example.com", "example.com"),
        ("www.example.com", "example.com"),
        ("a.b.c.example.com", "example.com"),
        ("www.bbc.co.uk", "bbc.co.uk"),
        ("bbc.co.uk", "bbc.co.uk"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("www.xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("www.bücher.de", "xn--bcher-kva.de"),
        ("WWW.Example.COM", "example.com"),
        ("www.example.com.", "example.com"),
        # the private section counts: different owners
        ("alice.blogspot.com", "alice.blogspot.com"),
        ("www.alice.blogspot.com", "alice.blogspot.com"),
        ("bob.github.io", "bob.github.io"),
        # wildcard and exception rules
        ("a.b.c.kawasaki.jp", "b.c.kawasaki.jp"),
        ("www.city.kawasaki.jp", "city.kawasaki.jp"),
        # a TLD missing from the list is a suffix (the default rule *)
        ("a.test", "a.test"),
        ("shop.a.test", "a.test"),
        ("x.y.localhost", "y.localhost"),
        # no registered domain: the host itself
        ("localhost", "localhost"),
        ("test", "test"),
        ("co.uk", "co.uk"),
        ("com", "com"),
        ("blogspot.com", "blogspot.com"),
        ("127.0.0.1", "127.0.0.1"),
        ("10.1.2.3", "10.1.2.3"),
        ("[::1]", "[::1]"),
        ("[2001:db8::a]", "[2001:db8::a]"),
        ("", ""),
    ],
)
def test_registered_domain(host: str, expected: str) -> None:
    assert registered_domain(host) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.example.co.uk/a", ("www.example.co.uk", "example.co.uk")),
        ("http://alice.blogspot.com/", ("alice.blogspot.com", "alice.blogspot.com")),
        ("http://127.0.0.1:8080/", ("127.0.0.1", "127.0.0.1")),
        ("http://[::1]:8080/", ("[::1]", "[::1]")),
        ("http://site1.test:8001/", ("site1.test", "site1.test")),
    ],
)
def test_host_and_domain(url: str, expected: tuple[str, str]) -> None:
    assert host_and_domain(url) == expected


# --- properties --------------------------------------------------------------------------------

_LABELS = ["a", "WWW", "example", "bücher", "xn--bcher-kva", "Ａ", "0x7f", "1", "256", "co", "uk"]
_CHARS = st.sampled_from(
    [
        *"aAzZ09-._~!$&'()*+,;=:@/?#[]%% \t\n\\\"<>^`{|}",
        *["%2e", "%2E", "%41", "%7e", "%25", "%2f", "%3d", "%26", "%zz", "%4"],
        *["ä", "€", "\x00", "\x7f", "..", "/./", "/../", "//", "&", "=", "?", "\ud800"],
        *["utm_source=1", "UTM_x", "gclid"],
    ]
)
_PIECE = st.lists(_CHARS, max_size=20).map("".join)


@st.composite
def url_like(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "hTTps"]))
    userinfo = draw(st.sampled_from(["", "u@", "u:p@", "@", "%40:x@"]))
    labels = draw(st.lists(st.sampled_from(_LABELS), min_size=1, max_size=4))
    host = ".".join(labels) + draw(st.sampled_from(["", ".", ".."]))
    host = draw(st.sampled_from([host, "[::1]", "[0:0::FFFF:7f00:1]", "127.0.0.1", "0x7f.1"]))
    port = draw(st.sampled_from(["", ":", ":80", ":443", ":8080", ":0"]))
    return f"{scheme}://{userinfo}{host}{port}/{draw(_PIECE)}"


@settings(max_examples=1000, deadline=None)
@given(url_like())
@example("http://a.test/%%34%31")
@example("http://a.test/?utm_x=%&a=%41")
@example("http://a.test/%2e%2e%2e/%2E./x")
@example("http://a.test./?b=%7e&a=%7E&&")
def test_normalize_url_is_idempotent(url: str) -> None:
    once = normalize_url(url)
    if once is not None:
        assert normalize_url(once) == once
        assert once.startswith(("http://", "https://"))
        assert "#" not in once
        assert once.isascii()


@settings(max_examples=1000, deadline=None)
@given(st.text(max_size=40))
def test_normalize_url_is_idempotent_any_path(text: str) -> None:
    once = normalize_url("http://a.test/" + text)
    if once is not None:
        assert normalize_url(once) == once


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(_PIECE, st.text(max_size=30), url_like()),
    st.sampled_from([BASE, "http://a.test", "https://u@b.test:8443/x/y?q#f", "http://[::1]/a/"]),
)
def test_resolve_link_is_normalize_of_resolve_href(href: str, base: str) -> None:
    resolved = resolve_href(href, base)
    link = resolve_link(href, base)
    assert link == (None if resolved is None else normalize_url(resolved))
    if link is not None:
        assert normalize_url(link) == link
        host = url_host(link)
        assert host and host == host.lower()
        assert host_and_domain(link) == (host, registered_domain(host))


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(_PIECE, st.text(max_size=30), url_like(), st.from_regex(r"\s*[a-zA-Z][a-z+.-]*:.*")),
)
def test_is_skipped_href_agrees_with_resolution(href: str) -> None:
    resolved = resolve_href(href, BASE)
    if is_skipped_href(href):
        # not a link: another scheme, or the page itself
        assert (
            resolved is None
            or not resolved.startswith("http")
            or (resolve_link(href, BASE) == normalize_url(BASE))
        )
    else:
        assert resolved is None or resolved.startswith(("http://", "https://"))


def _ada_reference(href: str, base: str) -> str | None:
    """ada's own public API, without resolve_href's shortcuts."""
    try:
        return ada_url.URL(href, base).href
    except (ValueError, UnicodeEncodeError):
        return None


_SHORTCUT_HREFS = st.one_of(
    _PIECE,
    st.builds("/".__add__, _PIECE),
    st.builds("http://".__add__, _PIECE),
    st.builds("https://".__add__, _PIECE),
    st.sampled_from(["/", "//", "/\\x", "/\t/x", "/\n/x", "/\r/x", "http:/x", "http:x", "https:x"]),
)


@settings(max_examples=1000, deadline=None)
@given(
    _SHORTCUT_HREFS,
    st.sampled_from(
        [
            BASE,
            "http://a.test",
            "https://u:p@b.test:8443/x/y?q#f",
            "http://[::1]:81/a/",
            "http://0x7f.1/",
            "HTTP://B%C3%BCcher.DE./a",
            "file:///tmp/x",
            "foo://host/a/b",
            "data:text/html,x",
        ]
    ),
)
@example("/\t/evil.test/x", BASE)
@example("/\\evil.test/x", BASE)
@example("/x", "https://u:p@b.test:8443/x/y?q#f")
def test_resolve_href_shortcuts_agree_with_ada(href: str, base: str) -> None:
    # resolve_href skips parsing the base for "http(s)://..." and "/path" hrefs: same result
    resolved = resolve_href(href, base)
    if "\ud800" not in href:
        assert resolved == _ada_reference(href, base)


@pytest.mark.parametrize(
    ("href", "encoding", "expected"),
    [
        ("/s?q=привет", "cp1251", "/s?q=%EF%F0%E8%E2%E5%F2"),
        ("/s?q=検索", "cp932", "/s?q=%8C%9F%8D%F5"),
        ("/s?q=中文", "gb18030", "/s?q=%D6%D0%CE%C4"),
        ("/путь?a=b", "cp1251", "/путь?a=b"),  # the path is always UTF-8: left to the parser
        ("/s?q=€#frag€", "cp1252", "/s?q=%80#frag€"),  # so is the fragment
        ("/s?q=✓", "cp1251", "/s?q=%26%2310003%3B"),  # not in the encoding: &#N;
        ("/s?q=%D0%BF", "cp1251", "/s?q=%D0%BF"),
        ("/s", "cp1251", "/s"),
    ],
)
def test_encode_query(href: str, encoding: str, expected: str) -> None:
    assert encode_query(href, encoding) == expected
