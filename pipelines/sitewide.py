"""The site-level placement pass: links that a host's template repeats are boilerplate.

Per page, the DOM alone cannot always tell a template's link from an editor's (hashed class
names, table layouts). Across a host it can: a link with the same target and anchor on most
pages of the host is part of the template, whatever its DOM placement said. This pass runs at
compaction, as one SQL query that DuckDB executes in streaming fashion (aggregates spill to
disk), so its memory is bounded whatever the size of the crawl.

Contract with the index (compaction): :func:`site_level_sql` takes the SQL text of a relation
with the links columns and returns a SELECT over the same columns, with ``sitewide`` set for
every row and ``placement`` corrected for template links.
"""

from __future__ import annotations

MIN_HOST_PAGES = 5  # below this a host has too few pages to tell a template
SITEWIDE_SHARE = 0.5  # a link on at least this share of a host's pages is sitewide


def site_level_sql(
    links: str, *, min_pages: int = MIN_HOST_PAGES, share: float = SITEWIDE_SHARE
) -> str:
    """A DuckDB SELECT over ``links`` with ``sitewide`` and corrected ``placement``.

    A link (same crawl, source host, target URL and anchor) is sitewide when it appears on at
    least ``share`` of the pages of its source host, and the host has ``min_pages`` pages with
    links. A sitewide link that the page-level pass placed in ``content`` takes the placement
    most of its other occurrences have (nav, sidebar, footer), or, if all say content, the one
    its position on the page suggests: top third nav, bottom third footer, else sidebar.
    Comment links stay comments.
    """
    return f"""
WITH l AS (SELECT * FROM {links}),
host_pages AS (
    SELECT crawl_id, source_host, count(DISTINCT source_url) AS host_pages
    FROM l GROUP BY ALL
),
template AS (
    SELECT crawl_id, source_host, target_url, anchor_text,
           count(DISTINCT source_url) AS key_pages,
           mode(placement) FILTER (WHERE placement NOT IN ('content', 'comment')) AS boiler
    FROM l GROUP BY ALL
),
page_size AS (
    SELECT crawl_id, source_url, max(position) + 1 AS page_links FROM l GROUP BY ALL
),
flagged AS (
    SELECT l.*,
           (hp.host_pages >= {int(min_pages)}
            AND t.key_pages >= {float(share)} * hp.host_pages) AS is_template,
           t.boiler, ps.page_links
    FROM l
    JOIN host_pages hp USING (crawl_id, source_host)
    JOIN template t USING (crawl_id, source_host, target_url, anchor_text)
    JOIN page_size ps USING (crawl_id, source_url)
)
SELECT * EXCLUDE (is_template, boiler, page_links) REPLACE (
    is_template AS sitewide,
    CASE
        WHEN is_template AND placement = 'content' THEN coalesce(
            boiler,
            CASE WHEN position < page_links / 3.0 THEN 'nav'
                 WHEN position >= 2.0 * page_links / 3.0 THEN 'footer'
                 ELSE 'sidebar' END)
        ELSE placement
    END AS placement
)
FROM flagged
"""
