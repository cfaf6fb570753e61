"""The site-level placement pass: links that a host's template repeats are boilerplate.

Per page, the DOM alone cannot always tell a template's link from an editor's (hashed class
names, table layouts). Across a host it can: a link with the same target and anchor in the
same structural position on most pages of the host is part of the template, whatever its DOM
placement said. This pass runs at compaction, as one SQL query that DuckDB executes in
streaming fashion, so its memory is bounded whatever the size of the crawl: only plain hash
aggregates and hash joins, which spill to disk under ``SET memory_limit`` (no DISTINCT, no
holistic aggregate such as median or mode, no materialized CTE: the source is scanned once
per aggregate instead); distinct pages are counted by grouping per page first.
Run it with ``SET preserve_insertion_order = false``.

Contract with the index (compaction): :func:`site_level_sql` takes the SQL text of a relation
with the links columns and returns a SELECT over the same columns (any extra column passes
through), with ``sitewide`` set and ``placement`` corrected for template links.

Structural position. Without more columns, a link's position on its page stands for it: an
occurrence is the template's only near the key's mean relative position (a menu link at the
top of every page, not the same URL cited once in an article). With the optional
per-link container fingerprint of :func:`pipelines.placement.place_links_scored`
(``block_column``), the key is the fingerprint itself, and a second rule applies: a container
that the page-level pass places in one region on most of a host's pages (a related-posts box
whose links change from page to page, a hashed-class menu) takes that region on every page,
for the links the page-level pass was not sure of (``score_column`` below ``SURE``).
"""

from __future__ import annotations

MIN_HOST_PAGES = 3  # below this a host has too few pages to tell a template: sitewide is NULL
MIN_TEMPLATE_PAGES = 3  # a template link is on at least this many pages...
SITEWIDE_SHARE = 0.5  # ... and on at least this share of its host's pages
POSITION_SLACK = 0.15  # an occurrence this far (in relative position) from the key's usual
# place is not the template's link
BLOCK_SHARE = 0.7  # a container's majority region, by confidence-weighted votes, wins from here
SURE = 0.9  # page-level placements at this confidence or above (markup, rel=ugc) are kept


def _same(a: str, b: str, columns: str) -> str:
    """SQL: rows ``a`` and ``b`` agree on ``columns``, a NULL matching a NULL (a column an
    older writer left null must not drop its rows from an inner join).

    >>> _same("s", "k", "crawl_id, x")
    's.crawl_id IS NOT DISTINCT FROM k.crawl_id AND s.x IS NOT DISTINCT FROM k.x'
    """
    return " AND ".join(
        f"{a}.{c} IS NOT DISTINCT FROM {b}.{c}" for c in (c.strip() for c in columns.split(","))
    )


def site_level_sql(
    links: str,
    *,
    min_pages: int = MIN_HOST_PAGES,
    share: float = SITEWIDE_SHARE,
    min_template_pages: int = MIN_TEMPLATE_PAGES,
    block_column: str | None = None,
    score_column: str | None = None,
) -> str:
    """A DuckDB SELECT over ``links`` with ``sitewide`` set and ``placement`` corrected.

    ``sitewide`` (README): the row's link (target URL and anchor) is on at least
    ``max(min_template_pages, share * host pages)`` pages of its host; NULL for hosts with
    fewer than ``min_pages`` pages. A row is a *template* row when its structural key
    (target, anchor and ``block_column`` if given) is that frequent and the row sits within
    ``POSITION_SLACK`` of the key's mean relative position on the page.

    A template row that the page-level pass placed in ``content`` takes the placement most of
    the key's other occurrences have (nav, sidebar, footer), or the container's majority
    region, or the one its position suggests: top third nav, bottom third footer, else
    sidebar. Comment rows stay. With ``block_column``, rows of a container with a clear
    majority region (see the module docstring) take it unless sure of their own
    (``score_column``; without it all rows but comments count as unsure).
    """
    need = f"greatest({int(min_template_pages)}, ceil({float(share)} * hp.host_pages))"
    blk = f'"{block_column}"' if block_column else None
    key = "crawl_id, source_host, target_url, anchor_text" + (f", {blk}" if blk else "")
    score = f'coalesce("{score_column}", 0.5)' if score_column else "0.5"
    regions = ("content", "nav", "sidebar", "footer", "comment")
    # Keys, links and containers on fewer pages than this can be no template (``need`` is at
    # least this): left out of the stats, a row of one joins none (0 pages; is_template NULL,
    # false in the CASE). Most rows' keys are on one page: the joins' tables shrink to the
    # repeated ones (at 2M links, 1.1 s of the pass's 6.2 s CPU). The stats are counted over
    # the rows of links with that many rows only (``repeated``): one grouping of the rows,
    # not three.
    few = int(min_template_pages)
    ctes, joins = "", ""
    sitewide = "coalesce(ks.key_pages, 0)"
    block_region, block_weight = "NULL::VARCHAR", "NULL::DOUBLE"
    if blk:
        # The link's pages whatever its container (README: sitewide), and the votes of each
        # container: confidence-weighted rows per region.
        votes = ", ".join(f"sum(w) FILTER (WHERE placement = '{r}') AS w_{r}" for r in regions)
        sums = ", ".join(f"sum(w_{r}) AS w_{r}" for r in regions)
        ctes = f"""
link_stats AS (
    -- count(DISTINCT): one grouping, not a DISTINCT then a grouping (-0.1 CPU s of the
    -- compaction's 2.7 on bench_ingest). A page's URL is never NULL (dedup joins on it).
    SELECT crawl_id, source_host, target_url, anchor_text,
           count(DISTINCT source_url) AS link_pages
    FROM key_page GROUP BY ALL HAVING count(DISTINCT source_url) >= {few}
),
block_page AS (
    SELECT crawl_id, source_host, {blk}, source_url, sum(w) AS w_all, {votes}
    FROM scored GROUP BY ALL
),
block_stats AS (
    SELECT crawl_id, source_host, {blk}, count(*) AS block_pages, sum(w_all) AS w_all,
           {sums}
    FROM block_page GROUP BY ALL HAVING count(*) >= {few}
),"""
        joins = f"""
    LEFT JOIN link_stats ls
        ON {_same("s", "ls", "crawl_id, source_host, target_url, anchor_text")}
    LEFT JOIN block_stats bs ON {_same("s", "bs", "crawl_id, source_host")}
        AND bs.{blk} = s.{blk}"""
        sitewide = "coalesce(ls.link_pages, 0)"
        best = "greatest(" + ", ".join(f"coalesce(bs.w_{r}, 0)" for r in regions) + ")"
        block_weight = f"{best} / bs.w_all"
        block_region = (
            "CASE "
            + " ".join(f"WHEN coalesce(bs.w_{r}, 0) = {best} THEN '{r}'" for r in regions)
            + " END"
        )
    boiler = (
        "CASE WHEN greatest(ks.n_nav, ks.n_sidebar, ks.n_footer) = 0 THEN NULL"
        " WHEN ks.n_nav >= greatest(ks.n_sidebar, ks.n_footer) THEN 'nav'"
        " WHEN ks.n_sidebar >= ks.n_footer THEN 'sidebar' ELSE 'footer' END"
    )
    return f"""
WITH page_size AS (
    SELECT crawl_id, source_url, any_value(source_host) AS source_host, count(*) AS page_links
    FROM {links} GROUP BY ALL
),
host_pages AS (
    SELECT crawl_id, source_host, count(*) AS host_pages FROM page_size GROUP BY ALL
),
repeated AS (
    -- Links of at least ``few`` rows: only they (and their keys) can be on ``few`` pages.
    SELECT crawl_id, source_host, target_url, anchor_text FROM {links}
    GROUP BY ALL HAVING count(*) >= {few}
),
scored AS NOT MATERIALIZED (
    SELECT l.*, (l.position + 0.5) / ps.page_links AS rel_pos,
           CASE WHEN l.placement = 'comment' THEN 1.0 ELSE {score} END AS w
    FROM {links} l JOIN page_size ps ON {_same("l", "ps", "crawl_id, source_url")}
),
key_page AS (
    SELECT {key}, source_url, avg(rel_pos) AS pos,
           count(*) FILTER (WHERE placement = 'nav') AS n_nav,
           count(*) FILTER (WHERE placement = 'sidebar') AS n_sidebar,
           count(*) FILTER (WHERE placement = 'footer') AS n_footer
    FROM scored s SEMI JOIN repeated r
        ON {_same("s", "r", "crawl_id, source_host, target_url, anchor_text")}
    GROUP BY ALL
),
key_stats AS (
    SELECT {key}, count(*) AS key_pages, avg(pos) AS key_pos, sum(n_nav) AS n_nav,
           sum(n_sidebar) AS n_sidebar, sum(n_footer) AS n_footer
    FROM key_page GROUP BY ALL HAVING count(*) >= {few}
),{ctes}
flagged AS (
    SELECT s.*, {boiler} AS boiler, {block_region} AS block_region,
           {block_weight} AS block_weight,
           CASE WHEN hp.host_pages < {int(min_pages)} THEN NULL
                ELSE {sitewide} >= {need} END AS is_sitewide,
           hp.host_pages >= {int(min_pages)} AND ks.key_pages >= {need}
               AND abs(s.rel_pos - ks.key_pos) <= {float(POSITION_SLACK)} AS is_template
    FROM scored s
    JOIN host_pages hp ON {_same("s", "hp", "crawl_id, source_host")}
    LEFT JOIN key_stats ks ON {_same("s", "ks", key)}{joins}
)
SELECT * EXCLUDE (rel_pos, w, boiler, block_region, block_weight, is_sitewide, is_template)
    REPLACE (
    is_sitewide AS sitewide,
    CASE
        WHEN placement = 'comment' THEN placement
        WHEN is_template AND placement = 'content' AND w < {float(SURE)} THEN coalesce(
            boiler,
            CASE WHEN block_region NOT IN ('content', 'comment') THEN block_region END,
            CASE WHEN rel_pos < 1 / 3 THEN 'nav'
                 WHEN rel_pos >= 2 / 3 THEN 'footer'
                 ELSE 'sidebar' END)
        WHEN block_weight >= {float(BLOCK_SHARE)} AND w < {float(SURE)}
             AND block_region <> 'comment' THEN block_region
        ELSE placement
    END AS placement
)
FROM flagged
"""
