"""The data contract: Arrow schemas of `links/`, `pages/`, `texts/` and `targets/`.

Column names are a public interface (README, "The data contract"): add columns, never rename.
"""

from __future__ import annotations

import pyarrow as pa

from pipelines.page_type import PAGE_TYPES

__all__ = ["LINKS_SCHEMA", "PAGES_SCHEMA", "PAGE_TYPES", "PLACEMENTS"]

PLACEMENTS: tuple[str, ...] = ("content", "nav", "sidebar", "footer", "comment")

TIMESTAMP = pa.timestamp("ms", tz="UTC")

LINKS_SCHEMA = pa.schema(
    [
        pa.field("crawl_id", pa.string(), nullable=False),
        pa.field("fetched_at", TIMESTAMP, nullable=False),
        pa.field("source_url", pa.string(), nullable=False),
        pa.field("source_host", pa.string(), nullable=False),
        pa.field("source_domain", pa.string(), nullable=False),
        pa.field("target_url", pa.string(), nullable=False),
        pa.field("target_host", pa.string(), nullable=False),
        pa.field("target_domain", pa.string(), nullable=False),
        pa.field("anchor_text", pa.string(), nullable=False),
        pa.field("title", pa.string()),
        pa.field("rel", pa.list_(pa.string()), nullable=False),
        pa.field("nofollow", pa.bool_(), nullable=False),
        pa.field("sponsored", pa.bool_(), nullable=False),
        pa.field("ugc", pa.bool_(), nullable=False),
        pa.field("is_image", pa.bool_(), nullable=False),
        pa.field("tag", pa.string(), nullable=False),
        pa.field("placement", pa.string(), nullable=False),
        pa.field("is_internal", pa.bool_(), nullable=False),
        pa.field("position", pa.int32(), nullable=False),
        pa.field("sitewide", pa.bool_()),
        # Additions beyond the original list: the page-level placement's confidence (0.5 to 1)
        # and a fingerprint of the link's container, which the site-level pass matches.
        pa.field("placement_score", pa.float32()),
        pa.field("placement_block", pa.int32()),
        # Where the link lands (README "Links through redirects"): the target itself for a
        # direct link; the URL a redirect script's query carries (``redirect-script``) or the
        # end of the target's observed redirect chain (``http-redirect``, set by compaction).
        pa.field("final_target_url", pa.string()),
        pa.field("final_target_host", pa.string()),
        pa.field("final_target_domain", pa.string()),
        pa.field("link_kind", pa.string()),
        # The type of the source page (pages' page_type), on each of its links: queries
        # filter on it without joining pages. Null in indexes written before it.
        pa.field("source_page_type", pa.string()),
    ]
)

PAGES_SCHEMA = pa.schema(
    [
        pa.field("url", pa.string(), nullable=False),
        pa.field("final_url", pa.string()),
        pa.field("status", pa.int32()),
        pa.field("content_type", pa.string()),
        pa.field("fetched_at", TIMESTAMP, nullable=False),
        pa.field("depth", pa.int32(), nullable=False),
        pa.field("redirect_to", pa.string()),
        pa.field("title", pa.string()),
        pa.field("canonical", pa.string()),
        pa.field("meta_robots", pa.string()),
        pa.field("x_robots_tag", pa.string()),
        pa.field("out_links", pa.int32(), nullable=False),
        pa.field("error", pa.string()),
        pa.field("crawl_id", pa.string(), nullable=False),
        # Additions beyond the original list.
        pa.field("host", pa.string()),
        pa.field("domain", pa.string()),
        pa.field("content_length", pa.int64()),
        pa.field("truncated", pa.bool_(), nullable=False),
        # What a bound cut or set aside on this page (open-web safety), e.g. "body_bytes",
        # "decoded_bytes", "dom_depth", "short_body"; empty when nothing was.
        pa.field("limits_hit", pa.list_(pa.string())),
        # The WARC record a page was ingested from ("response", "resource" or "revisit": a
        # revisit row has no links); null for a page the crawl fetched (`linkcrawl ingest`).
        pa.field("warc_record_type", pa.string()),
        # Language (BCP-47 primary subtag, lowercase) and its source: html-lang,
        # content-language, detected or none; country (ISO 3166-1 alpha-2) and its source:
        # cctld, hreflang, lang-region or none (pipelines/pagelang.py). Null: not parsed.
        pa.field("lang", pa.string()),
        pa.field("lang_source", pa.string()),
        pa.field("country", pa.string()),
        pa.field("country_source", pa.string()),
        # What the page is for (pipelines/page_type.py): one of PAGE_TYPES; null for a page
        # not parsed (an error, a redirect, not HTML).
        pa.field("page_type", pa.string()),
    ]
)

# texts/: each parsed page's visible text (crawl --store-text), cut at
# pipelines.extract.MAX_PAGE_TEXT_BYTES; one row per fetch, as pages/.
TEXTS_SCHEMA = pa.schema(
    [
        pa.field("url", pa.string(), nullable=False),
        pa.field("crawl_id", pa.string(), nullable=False),
        pa.field("fetched_at", TIMESTAMP, nullable=False),
        pa.field("text", pa.string(), nullable=False),
    ]
)

# One row per check of an off-scope link target (``--check-targets``, ``checktargets``): one
# per hop, so a redirect chain is its rows joined by ``redirect_to``; compaction and the
# queries resolve the chain (``final_url``, ``redirects``, ``final_status``).
TARGETS_SCHEMA = pa.schema(
    [
        pa.field("url", pa.string(), nullable=False),
        pa.field("status", pa.int32()),  # this hop's HTTP status; null on a fetch error
        pa.field("final_url", pa.string()),  # where the chain ends (this hop's Location, raw)
        pa.field("redirects", pa.int32(), nullable=False),  # hops to final_url
        pa.field("error", pa.string()),  # DNS failure, refused connection, robots.txt...
        pa.field("checked_at", TIMESTAMP, nullable=False),
        pa.field("crawl_id", pa.string(), nullable=False),
        pa.field("host", pa.string()),
        pa.field("domain", pa.string()),
        pa.field("method", pa.string()),  # HEAD, or GET when HEAD was refused
        pa.field("redirect_to", pa.string()),  # this hop's Location
        pa.field("final_status", pa.int32()),  # the status at the chain's end (resolved)
    ]
)

LINK_COLUMNS: tuple[str, ...] = tuple(LINKS_SCHEMA.names)
PAGE_COLUMNS: tuple[str, ...] = tuple(PAGES_SCHEMA.names)
TEXT_COLUMNS: tuple[str, ...] = tuple(TEXTS_SCHEMA.names)
TARGET_COLUMNS: tuple[str, ...] = tuple(TARGETS_SCHEMA.names)
