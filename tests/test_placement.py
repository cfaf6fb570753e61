"""Per-page placement on small pages: markup, no markup (hashed classes, tables), comments."""

from __future__ import annotations

from selectolax.lexbor import LexborHTMLParser

from pipelines.page_type import PageMarkup
from pipelines.placement import (
    Placed,
    classify_element,
    place_links,
    place_links_scored,
    placement_facts,
)

STORY = "The council met on Tuesday and voted on the new budget for the schools. " * 4


def placements(html: str) -> dict[str, str]:
    tree = LexborHTMLParser(html)
    nodes = tree.css("a[href], area[href]")
    return {n.text(strip=True) or n.attributes["href"]: p for n, p in
            zip(nodes, place_links(tree, nodes), strict=True)}  # fmt: skip


def test_semantic_page():
    got = placements(
        "<header><a href=/>Logo</a><nav><a href=/news>News</a></nav></header>"
        '<nav aria-label="Breadcrumb"><a href=/a>Crumb</a></nav>'
        f"<main><article><p>{STORY} <a href=/src>the source</a>.</p><p>{STORY}</p>"
        "<section id=comments><p>Nice! <a href=http://x.test rel='nofollow ugc'>me</a></p>"
        "</section></article></main>"
        "<aside><a href=/related>Related</a></aside><footer><a href=/legal>Legal</a></footer>"
    )
    assert got == {"Logo": "nav", "News": "nav", "Crumb": "nav", "the source": "content",
                   "me": "comment", "Related": "sidebar", "Legal": "footer"}  # fmt: skip


def test_hashed_class_names_without_any_hint():
    # A React-style page: hashed classes only. The main block is found by text density; the
    # menu before it is nav, the box beside it a sidebar, the block after all a footer.
    got = placements(
        '<div id="__next"><div class="css-a1b2c3"><div class="css-q9w8e7">'
        "<a href=/>Home</a><a href=/world>World</a><a href=/sport>Sport</a></div>"
        '<div class="css-z1y2x3"><div class="css-m4n5b6">'
        f"<p>{STORY} <a href=http://gov.test/budget>budget documents</a>.</p><p>{STORY}</p>"
        '</div><div class="css-k7j8h9"><div class="sc-jdfk tuvw"><a href=/p1>Other story one</a>'
        "</div><div class='sc-jdfk tuvw'><a href=/p2>Other story two</a></div></div></div>"
        '<div class="css-l0p9o8"><a href=/about>About us</a> <a href=/terms>Terms</a></div>'
        "</div></div>"
    )
    assert got == {"Home": "nav", "World": "nav", "Sport": "nav", "budget documents": "content",
                   "Other story one": "sidebar", "Other story two": "sidebar",
                   "About us": "footer", "Terms": "footer"}  # fmt: skip


def test_1990s_table_layout():
    got = placements(
        "<TABLE><TR><TD COLSPAN=2><A HREF=/>Home</A> | <A HREF=/links.html>Links</A></TD></TR>"
        "<TR><TD WIDTH=150><A HREF=/a.html>Cool site A</A><BR><A HREF=/b.html>Cool site B</A>"
        f"</TD><TD><H1>My page</H1><P>{STORY} <A HREF=http://x.test/>a friend</A>.</P>"
        f"<P>{STORY}</P></TD></TR>"
        "<TR><TD COLSPAN=2><A HREF=/guestbook.html>Sign my guestbook</A></TD></TR></TABLE>"
    )
    assert got == {"Home": "nav", "Links": "nav", "Cool site A": "sidebar",
                   "Cool site B": "sidebar", "a friend": "content",
                   "Sign my guestbook": "footer"}  # fmt: skip


def test_related_stories_and_promos_inside_the_article_are_not_content():
    related = "".join(
        f"<li><a href=/story{i}>A much longer headline about story number {i} today</a></li>"
        for i in range(4)
    )
    html = (
        '<link rel=canonical href="https://news.test/a/1">'
        f'<div class="story"><p>{STORY} <a href=https://other.test/r>a report</a>.</p>'
        f"<p><a href=/subscribe>Get our newsletter</a></p><p>{STORY}</p>"
        f"<ul>{related}</ul><p>{STORY}</p>"
        f"<p><a href=https://shop.test/x>Buy it at the shop</a></p><p>{STORY}</p></div>"
    )
    got = placements(html)
    assert got["a report"] == "content"
    # A promo to the same site, not in text, and a list of headlines: the rules say so; the
    # model (trained on the WCXB and Zyte pages) weighs that with the rest and may keep them.
    tree = LexborHTMLParser(html)
    rules, _ = placement_facts(tree, tree.css("a[href]"))
    assert rules[1].placement == "sidebar"
    assert got["Buy it at the shop"] == "content"  # an editor's link of its own, elsewhere
    assert {rules[i].placement for i in range(2, 6)} == {"sidebar"}  # a related list


def test_a_service_page_copy_in_several_sections_is_content():
    # A marketing page: density picks one section (the hero); the sections beside it, with
    # comparable running text and no boilerplate label, are the page's copy too.
    copy = "Our team plans, builds and runs your cloud so that you can focus on customers. "

    def section(name: str, text: str) -> str:
        cards = "".join(
            f'<div class="k{i}"><a href=/{name}/{i}>Learn more about {name} option {i}</a></div>'
            for i in range(4)
        )
        return f'<section class="s-{name}"><h2>{name}</h2>{cards}<p>{copy * 2}{text}</p></section>'

    got = placements(
        "<header><nav><a href=/>Home</a> <a href=/pricing>Pricing</a></nav></header><div>"
        f"<section><h1>Cloud, done for you</h1><p>{copy * 3} <a href=/demo>Book a demo</a>.</p>"
        "</section>"
        + section("features", "See <a href=/integrations>our integrations</a> too.")
        + section("clients", "Said <a href=https://client.test/>Client Co</a>.")
        + "</div><footer><a href=/legal>Legal</a></footer>"
    )
    assert got["Book a demo"] == "content"
    assert got["our integrations"] == "content" and got["Client Co"] == "content"
    assert got["Home"] == "nav" and got["Legal"] == "footer"


def test_an_article_related_posts_beside_it_stay_out():
    # Blurbs of other stories beside an article: running text, but far less than the story's.
    teasers = "".join(
        f'<div class="x{i}"><p>A short blurb of another story, number {i}, on the budget. '
        f"<a href=/story{i}>Read story {i}</a></p></div>"
        for i in range(3)
    )
    got = placements(
        f'<div class="a1"><div class="a2"><p>{STORY} <a href=https://gov.test/b>the budget</a>.'
        f"</p>{f'<p>{STORY}</p>' * 3}</div><div class=a3>{teasers}</div></div>"
    )
    assert got["the budget"] == "content"
    assert {got[f"Read story {i}"] for i in range(3)} == {"sidebar"}


def test_a_listing_is_content():
    items = "".join(
        f'<article class="teaser"><h2><a href=/p{i}>Post {i}</a></h2>'
        f"<p>A short blurb of post {i}, what it is about.</p></article>"
        for i in range(5)
    )
    got = placements(
        "<div class=top><a href=/>Home</a></div>"
        f'<div class="posts">{items}<a href="/page/2">Older posts »</a></div>'
    )
    assert all(got[f"Post {i}"] == "content" for i in range(5))
    assert got["Home"] == "nav" and got["Older posts »"] == "nav"


def test_other_languages_and_conventions():
    assert classify_element("div", {"class": "kommentare"}) == "comment"
    assert classify_element("div", {"id": "barra-lateral"}) == "sidebar"
    assert classify_element("div", {"class": "rodape"}) == "footer"
    assert classify_element("ul", {"class": "c-breadcrumb__list"}) == "nav"
    assert classify_element("div", {"class": "siteFooterLinks"}) == "footer"
    assert classify_element("div", {"class": "entry-content"}) is None  # not a region...
    assert classify_element("div", {"itemprop": "articleBody"}) == "content"  # ... this is


def test_scores_and_fingerprints():
    html = (
        "<ul class=menu><li><a href=/a>A</a></li><li><a href=/b>B</a></li></ul>"
        f"<div><p>{STORY} <a href=/c>C</a></p><p>{STORY}</p></div>"
    )
    tree = LexborHTMLParser(html)
    got = place_links_scored(tree, tree.css("a"))
    assert [p.placement for p in got] == ["nav", "nav", "content"]
    assert all(isinstance(p, Placed) and 0.5 <= p.score <= 1 for p in got)
    assert got[0].block == got[1].block != got[2].block  # same container, same fingerprint
    again = LexborHTMLParser(html.replace("/a>A", "/x>Another"))
    assert place_links_scored(again, again.css("a"))[0].block == got[0].block


def test_degenerate_pages():
    assert place_links(LexborHTMLParser(""), []) == []
    assert placements("<a href=/only>only</a>") == {"only": "content"}
    assert placements("<nav><a href=/n>n</a></nav><a href=/x>x</a>") == {"n": "nav", "x": "content"}


def test_a_link_around_the_whole_text_and_a_page_without_body():
    got = placements(f"<nav><a href=/>Home</a></nav><a href=/story><div><p>{STORY}</p></div></a>")
    assert got == {"Home": "nav", STORY.strip(): "content"}
    tree = LexborHTMLParser("<frameset><frame src=a.html></frameset>")
    assert place_links(tree, tree.css("a")) == []


def rule_placements(html: str, markup: PageMarkup | None = None) -> dict[str, str]:
    """The rules' placements (before the model), by anchor."""
    tree = LexborHTMLParser(html)
    nodes = tree.css("a[href]")
    rules, _ = placement_facts(tree, nodes, markup=markup)
    return {n.text(strip=True): r.placement for n, r in zip(nodes, rules, strict=True)}


COPY = "Our team plans, builds and runs your cloud so that you can focus on customers. "


def test_a_page_builder_names_every_block_a_widget_not_a_sidebar():
    # Elementor, HubSpot...: every block of the copy is a "widget", side by side in columns.
    def widget(text: str) -> str:
        return (
            '<div class="elementor-widget elementor-widget-text-editor">'
            f'<div class="elementor-widget-container"><p>{text}</p></div></div>'
        )

    html = (
        "<header><nav><a href=/>Home</a> <a href=/pricing>Pricing</a></nav></header><main>"
        + widget(f"{COPY * 3} <a href=/demo>Book a demo</a> today.")
        + widget(f"{COPY * 2} See <a href=/integrations>our integrations</a> too.")
        + widget(f"{COPY * 2} Said <a href=https://client.test/>Client Co</a>.")
        + '</main><aside class="sidebar"><div class="widget"><p>A short note on the blog. '
        "<a href=/blog>Read the blog</a></p></div></aside><footer><a href=/legal>Legal</a></footer>"
    )
    # A theme's layout wrapper named for its sidebar holds main: no region beside main.
    for page in (html, f'<div class="has-sidebar">{html}</div>'):
        got = rule_placements(page)
        assert {got[a] for a in ("Book a demo", "our integrations", "Client Co")} == {"content"}
        assert got["Read the blog"] == "sidebar" and got["Legal"] == "footer"
        assert placements(page)["our integrations"] == "content"


def test_a_site_widget_wrapper_that_nests_stays_a_sidebar():
    # One class name on every region of a shop's page (description, carousels), nested:
    # a region wrapper, not a builder's blocks; the carousel beside the text stays a sidebar.
    card = '<div class="celwidget"><p>{} <a href=/p{}>Item {}</a> is on sale.</p></div>'
    html = (
        f'<div class="celwidget"><div class="celwidget"><p>{STORY}</p></div>'
        f'<div class="celwidget"><p>{STORY}</p></div></div>'
        '<div class="celwidget"><div class="celwidget">'
        + "".join(card.format(STORY[:150], i, i) for i in range(3))
        + "</div></div>"
    )
    got = rule_placements(html)
    assert {got[f"Item {i}"] for i in range(3)} == {"sidebar"}


NOTE = "I write about gardening and small kitchens in a cold climate, from my allotment. "


def test_a_wordpress_sidebar_of_text_widgets_stays_a_sidebar_when_it_holds_most_text():
    # WordPress's standard sidebar beside a short post, in an aside or a div#sidebar: its
    # text widgets hold more running text than the post, yet are no page builder's blocks.
    post = "".join(f"<p>{STORY} See <a href=/post{i}>post link {i}</a>.</p>" for i in range(2))
    widgets = "".join(
        f'<section class="widget widget_text"><h2>Box {i}</h2>'
        f"<p>{NOTE * 2} <a href=https://friend{i}.test/>side {i}</a></p></section>"
        for i in range(6)
    )
    for side in ('aside id="secondary" class="widget-area"', 'div id="sidebar"'):
        html = (
            "<header><nav><a href=/>Home</a></nav></header><div class=site><main id=primary>"
            f"<article><h1>Beans</h1>{post}</article></main><{side}>{widgets}</{side.split()[0]}>"
            "</div><footer><a href=/legal>Legal</a></footer>"
        )
        got = rule_placements(html)
        assert {got[f"side {i}"] for i in range(6)} == {"sidebar"}, side
        assert {got["post link 0"], got["post link 1"]} == {"content"}, side
        model = placements(html)
        assert {model[f"side {i}"] for i in range(6)} == {"sidebar"}, side


PAN = "This cast iron pan holds heat evenly and goes from the stove to the oven for years. "


def product_page(beside: str, offers: str = "") -> str:
    """A shop's product page: the site's menu, then the product's item (its microdata scope)
    with breadcrumbs, the description (and maybe offers of other products in it) and a
    column beside it; the footer."""
    return (
        "<header><nav><a href=/>Home</a> <a href=/shop>Shop</a></nav></header>"
        '<div class="page" itemscope itemtype="https://schema.org/Product">'
        '<div class="crumbs breadcrumb"><a href=/shop/pans>Pans</a></div>'
        f'<div class="left"><h1>Skillet</h1><p>{PAN * 2}<a href=/care>care guide</a>.</p>'
        f"{offers}<p>{PAN * 2}</p></div>"
        f'<div class="right product-meta">{beside}</div></div>'
        "<footer><a href=/legal>Legal</a></footer>"
    )


def marked_product() -> PageMarkup:
    markup = PageMarkup()
    markup.add_itemtype("https://schema.org/Product")
    return markup


SPECS = (
    "<div class=row><b>Brand:</b> <a href=/brand/acme>Acme Foundry</a></div>"
    "<div class=row><b>Material:</b> <a href=/material/iron>Cast iron</a></div>"
)


def test_a_product_item_holds_its_specifications():
    # The attributes beside the description, in the product's item: content, though density
    # chose the description and the column is named "meta" (an article's byline word).
    got = rule_placements(product_page(SPECS), marked_product())
    assert got["Acme Foundry"] == got["Cast iron"] == got["care guide"] == "content"
    assert got["Home"] == got["Shop"] == got["Pans"] == "nav"  # labels inside it still count
    assert got["Legal"] == "footer"
    # Not a product's page (no markup), or a grid of several products: no such rule.
    assert rule_placements(product_page(SPECS), None)["Acme Foundry"] == "nav"
    other = '<p itemscope itemtype="http://schema.org/Product">Wok</p>'
    grid = product_page(SPECS).replace("<footer>", other * 2 + "<footer>")
    assert rule_placements(grid, marked_product())["Acme Foundry"] == "nav"


def test_offers_of_other_products_on_a_product_page_are_not_its_content():
    offers = "".join(
        f"<div class=offer><a href=/p/{i}>Lid number {i} $19.99</a></div>" for i in range(4)
    )
    html = product_page("", offers)
    tree = LexborHTMLParser(html)
    nodes = tree.css("a[href]")
    placed = place_links_scored(tree, nodes, markup=marked_product())  # the model's say too
    got = {n.text(strip=True): p.placement for n, p in zip(nodes, placed, strict=True)}
    assert {got[f"Lid number {i} $19.99"] for i in range(4)} == {"sidebar"}
    assert got["care guide"] == "content"
    # On a page not marked up as a product's, they stay where the other rules put them.
    assert {placements(html)[f"Lid number {i} $19.99"] for i in range(4)} == {"content"}


def faq_page(faq_class: str, main: str = "<main>") -> str:
    """A marketing page: the site's menu; in ``<main>`` a hero, a grid of the site's own
    services (cards of links, little text) and an FAQ whose answers are the page's longest
    prose; the footer."""
    answer = "You can hire a designer in about two days: we match you, you interview them. "
    questions = "".join(
        f"<li class=q><h3>Question {i}?</h3><div class=a><p>{answer * 3}</p></div></li>"
        for i in range(4)
    )
    cards = "".join(
        f'<div class="card"><a href=/designers/kind-{i}>Kind {i} designers</a></div>'
        for i in range(4)
    )
    return (
        f"<header><nav><a href=/>Home</a> <a href=/pricing>Pricing</a></nav></header>{main}"
        f"<section class=hero><h1>Hire designers</h1><p>{COPY}</p>"
        "<a class=go href=/start>Start hiring</a></section>"
        f"<section class=kinds><h2>Kinds</h2>{cards}</section>"
        f'<section class="{faq_class}"><ul class=list>{questions}</ul></section></main>'
        "<footer><a href=/legal>Legal</a></footer>"
    )


def test_an_faq_is_not_the_main_block_of_a_marketing_page():
    # Density picks the FAQ (its answers are the longest prose); the page's copy is all of
    # <main>: the cards of its own services are content, not a sidebar beside the FAQ.
    got = placements(faq_page("faq"))
    assert {got[f"Kind {i} designers"] for i in range(4)} == {"content"}
    assert got["Start hiring"] == "content"
    assert got["Home"] == "nav" and got["Legal"] == "footer"
    # Without the FAQ's name, the list of answers is the main block, the cards beside it.
    assert {placements(faq_page("more"))[f"Kind {i} designers"] for i in range(4)} != {"content"}
    # On a product's page an accordion is its description: no widening there.
    widened = rule_placements(faq_page("accordion"))
    kept = rule_placements(faq_page("accordion"), marked_product())
    assert widened["Kind 0 designers"] == "content" != kept["Kind 0 designers"]
    # A page that is all FAQ (its <main> named so): nothing to widen to.
    whole = placements(faq_page("faq", '<main class="faq-page">'))
    assert {whole[f"Kind {i} designers"] for i in range(4)} != {"content"}


def test_a_posts_faq_category_or_a_faq_article_does_not_widen_main():
    # WordPress files a post's taxonomy on its <article>: "category-faq tag-accordion" name no
    # FAQ block. An <article> named FAQ is all of the text: no sections either. Same
    # placements as the "category-news" post's.
    def post(classes: str) -> str:
        return (
            "<header><nav><a href=/>Home</a></nav></header>"
            f"<main id=main><article class='post-9 post {classes}'><div class=entry-content>"
            "<p>By <a href=/author/jane>Jane Doe</a>, follow <a href=https://x.test/j>@jane</a></p>"
            f"<p>{STORY} See the <a href=/blog/vote>earlier vote</a>.</p><p>{STORY}</p>"
            "<p>Share: <a href=https://x.test/s>X</a> <a href=https://fb.test/s>Facebook</a>"
            "</p></div></article><div class=more><ul>"
            + "".join(
                f"<li><a href=/blog/{i}>Related headline number {i}</a></li>" for i in range(3)
            )
            + "</ul></div></main><footer><a href=/legal>Legal</a></footer>"
        )

    news = rule_placements(post("category-news"))
    assert news["Jane Doe"] == news["@jane"] == "nav" and news["earlier vote"] == "content"
    assert news["X"] == news["Facebook"] == "sidebar"
    assert {news[f"Related headline number {i}"] for i in range(3)} == {"footer"}
    for classes in ("category-faq tag-accordion", "tag-faq", "faq"):
        assert rule_placements(post(classes)) == news, classes


def test_an_faq_named_by_its_id_or_in_a_role_main_element_widens_main():
    for faq_class, main in (('x" id="FAQs', "<main>"), ("faq", "<div role=main>")):
        html = faq_page(faq_class, main)
        got = rule_placements(html.replace("</main>", "</div>") if "role" in main else html)
        assert {got[f"Kind {i} designers"] for i in range(4)} == {"content"}, (faq_class, main)
        assert got["Home"] == "nav" and got["Legal"] == "footer"
    # The same page, its FAQ not named so: the cards are beside main.
    got = rule_placements(faq_page("x"))
    assert {got[f"Kind {i} designers"] for i in range(4)} == {"nav"}


def marked_article() -> PageMarkup:
    markup = PageMarkup()
    markup.add_itemtype("https://schema.org/Article")
    return markup


def test_running_text_beside_main_in_the_pages_main_element_is_its_copy():
    # A short note beside the main block (too little text to be a block of copy), in <main>:
    # the page's copy. On a page marked up as an article, <main> holds related stories and
    # teasers too; and without a <main>, nothing says the note is the page's.
    def page(landmark: str) -> str:
        return (
            "<header><nav><a href=/>Home</a> <a href=/blog>Blog</a></nav></header>"
            f"<{landmark}><div class=a>{f'<p>{STORY}</p>' * 3}</div><div class=b><p>Our work"
            " is audited every year, see <a href=https://audit.test/>the auditor</a>.</p></div>"
            f"</{landmark}><footer><a href=/legal>Legal</a></footer>"
        )

    assert rule_placements(page("main"))["the auditor"] == "content"
    # A column beside main, in a <main> laid out as a row (a blog's about-me box): a sidebar.
    for row in ("main class='flex gap-8'", "main class=row"):
        got = rule_placements(page(row).replace(f"</{row}>", "</main>"))
        assert got["the auditor"] == "sidebar", row
    stacked = page("main class='flex flex-col'").replace("</main class='flex flex-col'>", "</main>")
    assert rule_placements(stacked)["the auditor"] == "content"
    assert rule_placements(page("main"), marked_article())["the auditor"] == "sidebar"
    assert rule_placements(page("div"))["the auditor"] == "sidebar"
    assert rule_placements(page("main"))["Home"] == "nav"


def test_a_main_block_that_is_the_whole_main_element_is_no_article():
    # Density chose all of <main> (a course's page: copy, cards of its own courses, copy):
    # a page of sections, where the site's own links are its copy, not an article's promos.
    def page(landmark: str) -> str:
        cards = "".join(
            f"<div class=card><a href=/courses/{i}>Course {i}</a></div>" for i in range(3)
        )
        return (
            "<header><nav><a href=/>Home</a></nav></header>"
            f"<{landmark}><p>{COPY * 3}</p><p>{COPY * 3}</p>{cards}<p>{COPY * 3}</p></{landmark}>"
            "<footer><a href=/legal>Legal</a></footer>"
        )

    assert {rule_placements(page("main"))[f"Course {i}"] for i in range(3)} == {"content"}
    marked = rule_placements(page("main"), marked_article())
    assert {marked[f"Course {i}"] for i in range(3)} == {"sidebar"}
    assert {rule_placements(page("div"))[f"Course {i}"] for i in range(3)} == {"sidebar"}


def test_a_main_element_holding_a_posts_paragraphs_is_an_article():
    # A hand-written blog: <main> holds the post's title, byline, paragraphs and related
    # stories straight, no article markup: an article, not a page of sections.
    related = "".join(
        f"<li><a href=/blog/{i}>Related headline number {i}</a></li>" for i in range(3)
    )
    html = (
        "<header><nav><a href=/>Home</a> <a href=/blog>Blog</a></nav></header><main><h1>Budget</h1>"
        "<p>By <a href=/about>Jane Doe</a> - <a href=https://x.test/jane>@jane</a></p>"
        f"<p>{STORY} The <a href=/blog/vote>earlier vote</a> matters.</p><p>{STORY}</p>"
        f"<ul>{related}</ul><p>{STORY}</p></main><footer><a href=/legal>Legal</a></footer>"
    )
    got = rule_placements(html)
    assert got["Jane Doe"] == got["@jane"] == "nav"
    assert got["earlier vote"] == "content"
    assert {got[f"Related headline number {i}"] for i in range(3)} == {"sidebar"}


def json_ld_product() -> PageMarkup:
    markup = PageMarkup()  # a Shopify page: JSON-LD only, no microdata item
    markup.add_jsonld('{"@type": "Product", "name": "Skillet", "offers": {"@type": "Offer"}}')
    return markup


def test_calls_to_action_on_a_product_page_are_not_its_description():
    # In the description's paragraphs and beside them, in the product's item: buttons and
    # policies. But a bare "here" in its running text: the text says what it is, its own.
    actions = (
        f"<p>{PAN * 2}</p><div class=buy><a href=/cart/add>Add to cart</a></div>"
        f"<p>{PAN} <a href=/seasoning>Learn more about seasoning</a></p>"
        f"<ul class=policies><li><a href=/pages/shipping>Shipping</a></li></ul>"
        f"<p>{PAN} The seasoning steps are <a href=/steps>here</a>.</p>"
    )
    html = product_page(SPECS, actions)
    for markup in (marked_product(), json_ld_product()):
        got = rule_placements(html, markup)
        assert got["Add to cart"] == got["Learn more about seasoning"] == "sidebar"
        assert got["Shipping"] == "sidebar"
        assert got["care guide"] == got["here"] == "content"  # the description's own links
    assert rule_placements(html, None)["here"] == "content"  # not a product's page: the same


def test_a_priced_button_in_the_products_own_article_leaves_its_description_alone():
    # A theme wraps the whole product in <article class=product>: its priced "Add to cart"
    # does not make that article another product's card.
    html = (
        "<header><nav><a href=/>Home</a></nav></header><main><article class=product>"
        f"<h1>Skillet</h1><div class=desc><p>{PAN * 2} Read the <a href=/care>care guide</a>.</p>"
        f"<p>{PAN * 2}</p></div>"
        "<div class=buy><a href=/cart/add>Add to cart - $29.99</a></div></article></main>"
        "<footer><a href=/legal>Legal</a></footer>"
    )
    got = rule_placements(html, json_ld_product())
    assert got == {
        "Home": "nav",
        "care guide": "content",
        "Add to cart - $29.99": "sidebar",
        "Legal": "footer",
    }


def test_the_card_of_a_priced_offer_on_a_product_page_is_a_sidebar():
    # A related item's card: its picture's link (an alt text) and its maker, beside the price.
    cards = "".join(
        f"<li class=card><a href=/p/{i}><img alt='Lid {i} in glass'></a>"
        f"<div><a href=/brand/{i}>Maker {i}</a></div><div><a href=/p/{i}>Lid {i} $19.99</a></div>"
        "</li>"
        for i in range(4)
    )
    html = product_page("", f"<ul class=more>{cards}</ul>")
    tree = LexborHTMLParser(html)
    nodes = tree.css("a[href]")
    rules, _ = placement_facts(tree, nodes, markup=json_ld_product())
    got = {n.text(strip=True) or n.css_first("img").attributes["alt"]: r.placement
           for n, r in zip(nodes, rules, strict=True)}  # fmt: skip
    assert {got[f"Maker {i}"] for i in range(4)} == {"sidebar"}
    assert {got[f"Lid {i} in glass"] for i in range(4)} == {"sidebar"}
    assert got["care guide"] == "content"


def test_a_grid_of_priced_cards_is_the_content_of_a_catalogue_not_of_a_products_page():
    # A product's page whose description is short: density takes the grid of other products
    # (priced cards) as main. Marked up as one product: they are offers beside it; as several
    # (a catalogue marked up per product): the grid is the page's content.
    cards = "".join(
        f"<li class=card><a href=/p/{i}>Skillet number {i} with a lid, 30 cm</a> "
        f"<a href=/p/{i}/buy>Buy it for $2{i}.99</a></li>"
        for i in range(6)
    )
    html = (
        "<header><nav><a href=/>Home</a></nav></header><main><h1>Skillet</h1>"
        f"<p>A pan.</p><ul class=grid>{cards}</ul></main><footer><a href=/legal>Legal</a></footer>"
    )

    def grid(products: int) -> set[str]:
        markup = PageMarkup()
        for i in range(products):
            markup.add_jsonld(f'{{"@type": "Product", "name": "Skillet {i}"}}')
        got = rule_placements(html, markup)
        assert got["Home"] == "nav" and got["Legal"] == "footer"
        return {p for anchor, p in got.items() if "$" in anchor or "number" in anchor}

    assert grid(1) == {"sidebar"}
    assert grid(2) == {"content"}


def test_a_grid_whose_cards_title_a_link_is_the_content():
    # A shop's best sellers: the longest text is one card's title, inside its link, boxes deep
    # in the card; the grid of cards is the page's content, not that title.
    def card(i: int) -> str:
        title = f"Cast iron skillet number {i}, pre-seasoned, 30 cm" + " with lid" * (i == 0) * 9
        return (
            f"<li class=cell><div class=root><div class=card><div class=face><span>"
            f"<div class=pic><a href=/img/{i}>Picture {i}</a></div>"
            f"<a href=/p/{i}><div class=clamp>{title}</div></a>"
            f"<div class=price><a href=/offers/{i}>{i + 2} offers from $9.99</a></div>"
            "</span></div></div></div></li>"
        )

    html = (
        "<header><nav><a href=/>Home</a> <a href=/best>Best sellers</a></nav></header>"
        f"<div class=page><h1>Best sellers in kitchen</h1><ol class=grid>"
        f"{''.join(card(i) for i in range(8))}</ol></div>"
        "<footer><a href=/legal>Legal</a></footer>"
    )
    got = rule_placements(html)
    assert {got[f"Picture {i}"] for i in range(8)} == {"content"}
    assert {got[f"{i + 2} offers from $9.99"] for i in range(8)} == {"content"}
    assert got["Home"] == "nav" and got["Legal"] == "footer"
