"""Extraction on ordinary pages: input HTML -> expected link rows."""

from __future__ import annotations

import encodings.aliases

from pipelines.extract import extract_page, robots_nofollow, split_rel

URL = "http://site.test/dir/page.html"


def links(html: str | bytes, url: str = URL, **kw):
    body = html.encode("utf-8") if isinstance(html, str) else html
    return extract_page(body, url, **kw).links


def test_relative_urls_resolve_against_the_page():
    got = [k.target_url for k in links(
        '<a href="a.html">1</a><a href="../b/">2</a><a href="./c?q=1">3</a>'
        '<a href="?x=2">4</a><a href="/root">5</a><a href="//other.test/p">6</a>'
    )]  # fmt: skip
    assert got == [
        "http://site.test/dir/a.html",
        "http://site.test/b/",
        "http://site.test/dir/c?q=1",
        "http://site.test/dir/page.html?x=2",
        "http://site.test/root",
        "http://other.test/p",
    ]


def test_first_base_href_wins_and_is_itself_resolved():
    got = links('<head><base href="/x/"><base href="http://no.test/"></head><a href="y">y</a>')
    assert [k.target_url for k in got] == ["http://site.test/x/y"]


def test_entities_and_whitespace_in_anchor():
    (k,) = links("<a href=/a>\n  Caf&eacute;&nbsp;&amp; &#233;t&eacute;\t<b>bold</b> </a>")
    assert k.anchor_text == "Café & été bold"


def test_image_links_use_alt_and_text_links_keep_text():
    a, b, c = links(
        '<a href=/1><img src=x alt=" The  Logo "></a>'
        '<a href=/2>Text <img src=y alt="ignored"></a>'
        "<a href=/3><img src=z></a>"
    )
    assert (a.anchor_text, a.is_image) == ("The Logo", True)
    assert (b.anchor_text, b.is_image) == ("Text", True)
    assert (c.anchor_text, c.is_image) == ("", True)


def test_rel_tokens_any_case_and_flags():
    a, b = links(
        '<a href=/1 rel="NoFollow  EXTERNAL" title=" T ">x</a><a href=/2 rel="Sponsored UGC">y</a>'
    )
    assert a.rel == ["nofollow", "external"] and a.nofollow and a.title == "T"
    assert b.rel == ["sponsored", "ugc"] and b.sponsored and b.ugc and not b.nofollow


def test_rel_is_not_split_on_commas():
    (k,) = links('<a href=/1 rel="external,nofollow">x</a>')
    assert k.rel == ["external,nofollow"] and not k.nofollow


def test_skipped_hrefs_are_not_links():
    got = links(
        '<a href="javascript:void(0)">j</a><a href="mailto:a@b.test">m</a>'
        '<a href="tel:+1">t</a><a href="data:text/html,x">d</a><a href="#top">f</a>'
        '<a href="">e</a><a>no href</a><a href="/real">r</a>'
    )
    assert [k.anchor_text for k in got] == ["r"]
    assert got[0].position == 0


SELF_HREFS = '<a href="#x">f</a><a href=" \t#">h</a><a href="">e</a><a href="\n">n</a>'


def test_under_a_base_naming_another_document_fragment_and_empty_hrefs_link_to_it():
    """A browser resolves them against the base: document.links has them, to that document."""
    for base, target in [
        ("/other.html?q=1#b", "http://site.test/other.html?q=1"),
        ("http://cdn.test/dir/", "http://cdn.test/dir/"),
        ("/dir/page.html?x", "http://site.test/dir/page.html?x"),  # another query: another page
    ]:
        got = links(f'<base href="{base}">{SELF_HREFS}<a href="http://r.test/">r</a>')
        assert [(k.target_url, k.anchor_text) for k in got] == [
            (target, "f"), (target, "h"), (target, "e"), (target, "n"),
            ("http://r.test/", "r"),
        ]  # fmt: skip
        assert [k.position for k in got] == [0, 1, 2, 3, 4]


def test_under_no_base_or_a_base_naming_the_page_itself_fragment_hrefs_are_not_links():
    for head in [
        "",
        '<base href="page.html">',
        '<base href="HTTP://SITE.test:80/dir/page.html#top">',
        '<base href="">',
        '<base href="http://[bad">',  # unparsable: the document URL
        '<base target="_top">',
    ]:
        got = links(f"{head}{SELF_HREFS}<a href=/r>r</a>", url=URL + "#frag")
        assert [k.anchor_text for k in got] == ["r"], head


def test_meta_robots_and_x_robots_tag_make_every_link_nofollow():
    html = '<meta name="robots" content="index, NOFOLLOW"><a href=/a>a</a>'
    assert all(k.nofollow for k in links(html))
    assert all(k.nofollow for k in links("<a href=/a>a</a>", x_robots_tag="nofollow"))
    assert all(k.nofollow for k in links("<meta name=googlebot content=none><a href=/a>a</a>"))
    assert not any(k.nofollow for k in links("<a href=/a>a</a>"))


def test_links_in_comments_scripts_templates_are_not_links():
    got = links(
        '<!-- <a href="/c">c</a> --><script>x="<a href=/s>s</a>"</script>'
        '<template><a href="/t">t</a></template><a href="/ok">ok</a>'
    )
    assert [k.target_url for k in got] == ["http://site.test/ok"]


def test_area_links_take_their_alt():
    (k,) = links('<map name=m><area href="/zone" alt="Zone A" shape=rect></map>')
    assert (k.tag, k.anchor_text, k.target_url) == ("area", "Zone A", "http://site.test/zone")


def test_malformed_html_is_parsed_as_html5():
    got = links(
        "<DIV><A HREF=/up>Upper</A><p><a href=/1>one <b>two <a href=/2>three</a> four</b>"
        "</html><a href=/after>after</a>"
    )
    assert [(k.target_url.rsplit("/", 1)[1], k.anchor_text) for k in got] == [
        ("up", "Upper"), ("1", "one two"), ("2", "three"), ("after", "after"),
    ]  # fmt: skip


def test_charsets_from_meta_and_header():
    cyr = "<meta charset=windows-1251><a href=/r>Привет</a>".encode("cp1251")
    assert links(cyr)[0].anchor_text == "Привет"
    sjis = "<a href=/j>日本語</a>".encode("shift_jis")
    assert links(sjis, content_type="text/html; charset=Shift_JIS")[0].anchor_text == "日本語"
    gb = "<meta charset=gb2312><a href=/g>中文链接</a>".encode("gb18030")
    assert links(gb)[0].anchor_text == "中文链接"


def test_undeclared_latin_pages_stay_windows_1252():
    """chardet reads these as Cyrillic or Greek; a browser in a Western locale does not."""
    for text, encoding in [
        ("Perché è così difficile? La città è bellissima.", "cp1252"),
        ("Già fatto, però è tardi. Qualità e velocità. L'università è aperta lunedì.", "cp1252"),
        ("Grüße aus Köln, ça va? " * 5, "cp1252"),
        ("aé " * 50, "cp1252"),
    ]:
        got = links(f"<title>t</title><a href=/x>{text}</a>".encode(encoding))
        assert got[0].anchor_text == text.strip(), text


def test_undeclared_utf8_page_with_a_stray_byte_stays_utf8():
    text = "Привет, это обычный текст на русском языке. " * 3
    got = links(f"<a href=/x>{text}</a>".encode() + b"<p>\xff</p>")
    assert got[0].anchor_text == text.strip()


def test_late_meta_in_head_revises_a_guess_in_any_form_the_prescan_reads():
    script = "<script>" + "var x = 1;\n" * 600 + "</script>"  # past the prescan's reach
    text = "Привет, это обычный текст на русском языке."
    for meta in [
        '<meta charset="koi8-r">',
        "<meta http-equiv=content-type content=\"text/html;charset='koi8-r'\">",
        '<meta http-equiv="Content-Type" content="text/html; charset = koi8-r">',
    ]:
        # The bytes are windows-1251 (what a guess finds), the late <meta> says KOI8-R: the
        # browser follows the <meta>, mojibake included.
        body = f"<head><title>t</title>{script}{meta}</head><a href=/x>{text}</a>"
        koi8 = text.encode("cp1251").decode("koi8-r")
        assert links(body.encode("cp1251"))[0].anchor_text == koi8, meta
        # Only the head counts: a <meta> in the body leaves the guess (windows-1251) alone.
        in_body = f"<head><title>t</title>{script}</head><p>x</p>{meta}<a href=/x>{text}</a>"
        assert links(in_body.encode("cp1251"))[0].anchor_text == text, meta


def test_every_charset_a_label_may_name_decodes_or_is_ignored():
    # A hostile server may name any Python codec: each one decodes the page (EBCDIC, UTF-32:
    # to no links, as its bytes say) or, if it is no page encoding, is ignored as a browser
    # ignores a label it does not know.
    names = set(encodings.aliases.aliases) | set(encodings.aliases.aliases.values())
    body = b"<p>caf\xe9 \\x41 <a href=/x>\xff\xfe\x00x</a>"
    for name in sorted(names):
        for content_type, page in ((f"text/html; charset={name}", body),
                                   (None, f"<meta charset={name}>".encode() + body)):  # fmt: skip
            extract_page(page, "http://a.test/", content_type=content_type)  # never raises
    for name in ("zlib", "base64", "rot13", "hex", "undefined", "idna", "punycode"):
        got = extract_page(body, "http://a.test/", content_type=f"text/html; charset={name}")
        assert (got.encoding, len(got.links)) == ("cp1252", 1), name


def test_replacement_encodings_give_no_links():
    """WHATWG decodes a page labelled ISO-2022-KR or HZ as one U+FFFD: nothing to extract."""
    body = b"<a href=/x>x</a>"
    assert links(body, content_type="text/html; charset=iso-2022-kr") == []
    assert links(b"<meta charset=hz-gb-2312>" + body) == []


def test_undecodable_bytes_do_not_raise():
    got = links(b"<meta charset=utf-8><a href=/x>bad \xff\xfe bytes</a>")
    assert got[0].anchor_text.startswith("bad")


def test_garbage_and_empty_input():
    assert links(b"") == []
    assert links(bytes(range(256)) * 100) == []


def test_urls_are_normalized():
    (k,) = links('<a href="HTTP://WWW.Site.TEST:80/a/./b/../c?b=2&utm_source=x&a=1#frag">x</a>')
    assert k.target_url == "http://www.site.test/a/c?a=1&b=2"


def test_positions_are_document_order():
    got = links("<a href=/a>a</a><a href='javascript:x'>j</a><a href=/b>b</a>")
    assert [(k.anchor_text, k.position) for k in got] == [("a", 0), ("b", 1)]


def test_page_metadata():
    page = extract_page(
        b'<title> My  Page </title><link rel="Canonical" href="/canon?utm_source=x">'
        b'<meta name="robots" content="noindex"><a href=/a>a</a>',
        URL,
    )
    assert page.title == "My Page"
    assert page.canonical == "http://site.test/canon"
    assert page.meta_robots == "noindex" and not page.nofollow_page


def test_split_rel_and_robots_helpers():
    assert split_rel("a\tB\nc  d") == ["a", "b", "c", "d"]
    assert robots_nofollow("googlebot: nofollow")
    assert not robots_nofollow("noindex")


def test_placement_from_semantic_markup():
    got = links(
        "<header><a href=/logo>Logo</a></header><nav><a href=/menu>Menu</a></nav>"
        "<main><article><p>Text <a href=/in>inline</a></p>"
        "<section id=comments><a href=/c rel=ugc>commenter</a></section></article></main>"
        "<aside><a href=/side>side</a></aside><footer><nav><a href=/f>f</a></nav></footer>"
    )
    assert [(k.anchor_text, k.placement) for k in got] == [
        ("Logo", "nav"), ("Menu", "nav"), ("inline", "content"), ("commenter", "comment"),
        ("side", "sidebar"), ("f", "footer"),
    ]  # fmt: skip


def test_docstring_examples():
    import doctest

    import pipelines.encoding
    import pipelines.extract
    import pipelines.linktext
    import pipelines.memo
    import pipelines.placement
    import pipelines.urls

    modules = (
        pipelines.extract, pipelines.encoding, pipelines.linktext, pipelines.memo,
        pipelines.placement, pipelines.urls,
    )  # fmt: skip
    for module in modules:
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def test_a_page_without_a_url_is_extracted():
    """A page handed over with no URL (a WARC resource without a target URI, a benchmark
    page without one): absolute links are kept, nothing raises on the missing host."""
    page = extract_page(b'<p>hello <a href="http://a.example/x">x</a></p>', "")
    assert [link.target_url for link in page.links] == ["http://a.example/x"]
    assert page.country is None
