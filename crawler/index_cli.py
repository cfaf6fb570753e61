"""The index subcommands of `linkcrawl`: compact, rank, queries, spam review, disavow, export.

Thin: argument parsing and output; the logic is in :mod:`pipelines.index`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from crawler.defaults import AGGREGATE_MIN_LINKS, AGGREGATE_TOP_ROWS
from crawler.errors import UsageError

if TYPE_CHECKING:
    import pyarrow as pa

    from pipelines.index.layout import Target

# pyarrow, DuckDB and numpy are imported when a command runs, not to parse its arguments.
INDEX_ENV = "LINKCRAWL_INDEX"
# pipelines.schema.PLACEMENTS (which imports pyarrow), for --placement's choices; tests check
# that they agree.
PLACEMENTS = ("content", "nav", "sidebar", "footer", "comment")
# pipelines.page_type.PAGE_TYPES, for --source-type (tests check that they agree).
PAGE_TYPES = ("article", "listing", "collection", "product", "forum", "service",
              "documentation", "other")  # fmt: skip
FARM_LINKS = 100  # as pipelines.index.spam.FARM_LINKS (not imported: it loads DuckDB)
MIN_CONFIDENCE = 0.8  # as pipelines.index.spam.MIN_CONFIDENCE


@contextmanager
def _errors() -> Iterator[None]:
    from pipelines.index.layout import IndexError_

    try:
        yield
    except IndexError_ as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:  # a missing index file, an output directory that does not exist
        raise UsageError(_os_error(exc)) from None


@contextmanager
def progress_bar(unit: str, *, show: bool = True) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr when it is a terminal (erased when done), else None: nothing
    is added to a log or a pipe. tqdm is imported here, not to parse arguments."""
    if not (show and sys.stderr.isatty()):
        yield None
        return
    from tqdm import tqdm

    scale = unit != "steps"  # 1.2M rows, but 7/208 steps
    with tqdm(unit=unit, unit_scale=scale, leave=False, file=sys.stderr, dynamic_ncols=True) as bar:

        def update(done: int, total: int) -> None:
            known = bar.total == total
            bar.total = total
            bar.update(done - bar.n)
            if not known:  # drawn now: tqdm redraws at most every 0.1 s, a short job never
                bar.refresh()

        yield update


def _os_error(exc: OSError) -> str:
    """``/missing/f.txt: No such file or directory`` rather than ``[Errno 2] ...``."""
    return f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc)


def _writable(path: str | None) -> None:
    """Refuse an output file in a directory that does not exist, before the work."""
    parent = os.path.dirname(os.path.abspath(path)) if path not in (None, "-") else None
    if parent is not None and not os.path.isdir(parent):
        raise UsageError(f"cannot write {path}: directory {parent} does not exist")


def _need_pages(ix: Any, command: str) -> None:
    """Spam signals read the referring pages (titles, their outbound links): without the
    pages of a crawl (a partial copy, pages/ lost) the review would be wrong, so refuse."""
    if not ix.snap.page_files():
        raise UsageError(
            f"{command}: the index at {ix.snap.index} has links but no pages; spam signals "
            "need the referring pages (copy pages/ along with links/, or crawl again)"
        )


def _open(args: argparse.Namespace) -> Any:
    from pipelines.index.queries import Index

    return Index(args.index)


def _filters(args: argparse.Namespace) -> Any:
    from pipelines.index.queries import Filters

    # diff has no --crawl: its crawls are OLD and NEW.
    return Filters(crawl=getattr(args, "crawl", None), dofollow=args.dofollow,
                   placement=args.placement, internal=args.internal,
                   lang=getattr(args, "lang", None),
                   country=getattr(args, "country", None),
                   direct_only=getattr(args, "direct_only", False),
                   source_types=_source_types(args))  # fmt: skip


def _source_types(args: argparse.Namespace) -> tuple[str, ...]:
    """--source-type's values (repeated, or comma-separated), checked."""
    types: list[str] = []
    for value in getattr(args, "source_type", None) or ():
        types += [t.strip() for t in value.split(",") if t.strip()]
    for t in types:
        if t not in PAGE_TYPES:
            raise UsageError(f"--source-type: unknown page type {t!r} "
                             f"(one of {', '.join(PAGE_TYPES)})")  # fmt: skip
    return tuple(dict.fromkeys(types))


def _target(text: str) -> Target:
    from pipelines.index.layout import parse_target

    with _errors():
        return parse_target(text)


def _emit(args: argparse.Namespace, table: pa.Table, empty: str) -> int:
    from pipelines.index.export import emit

    if args.format == "parquet" and not args.output:
        raise UsageError("--format parquet needs --output FILE")
    if table.num_rows == 0 and args.format == "table":
        print(f"linkcrawl: {empty}", file=sys.stderr)
        return 1
    emit(table, args.format, out=sys.stdout.buffer, output=args.output, width=_terminal_width())
    if table.num_rows == 0:
        print(f"linkcrawl: {empty}", file=sys.stderr)
        return 1
    return 0


def _terminal_width() -> int | None:
    """The terminal's width when stdout is one (tables are cut to fit it), else None: output
    piped or redirected to a file is never cut."""
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def _sort(ix: Any, a: argparse.Namespace, fallback: str) -> str:
    """``--sort``; its default, authority, needs ranks/: without them say so and use
    ``fallback``; an explicit ``--sort authority`` without ranks is refused."""
    if ix.ranks_sql("domain") is not None:
        return a.sort or "authority"
    if a.sort == "authority":
        raise UsageError("--sort authority needs ranks: run `linkcrawl rank INDEX` first")
    if a.sort is None:
        print(f"linkcrawl: no ranks in the index (run `linkcrawl rank INDEX`): sorted by "
              f"{fallback}, authority left empty", file=sys.stderr)  # fmt: skip
        return fallback
    return str(a.sort)


def _query(fn: Callable[[Any, argparse.Namespace], tuple[pa.Table, str]]) -> Callable[..., int]:
    def run(args: argparse.Namespace) -> int:
        if args.limit is not None and args.limit < 1:
            # 0 would print "no backlinks" where there are some.
            raise UsageError(f"--limit must be at least 1, got {args.limit} (leave it out for "
                             "every row)")  # fmt: skip
        _writable(args.output)
        with _errors(), _open(args) as ix:
            table, empty = fn(ix, args)
            return _emit(args, table, empty)

    return run


def _backlinks(ix: Any, a: argparse.Namespace) -> tuple[pa.Table, str]:
    t = _target(a.target)
    sort = _sort(ix, a, "similar" if not a.all else "source")
    table = ix.backlinks(t, _filters(a), grouped=not a.all, limit=a.limit, sort=sort)
    return table, f"no backlinks to {t.describe()}"


def _refdomains(ix: Any, a: argparse.Namespace) -> tuple[pa.Table, str]:
    t = _target(a.target)
    sort = _sort(ix, a, "backlinks")
    return ix.refdomains(t, _filters(a), limit=a.limit, sort=sort), (
        f"no referring domains for {t.describe()}"
    )


def _anchors(ix: Any, a: argparse.Namespace) -> tuple[pa.Table, str]:
    t = _target(a.target)
    table, classes, total, over = ix.anchors(t, _filters(a), keywords=tuple(a.keyword),
                                             limit=a.limit)  # fmt: skip
    if table.num_rows and a.format == "table":
        shares = ", ".join(f"{k} {v / total:.0%}" for k, v in
                           sorted(classes.items(), key=lambda kv: -kv[1]))  # fmt: skip
        print(f"{total:,} referring domains; by anchor class: {shares}", file=sys.stderr)
        print(f"over-optimised: {over}" if over else "anchor profile looks natural",
              file=sys.stderr)  # fmt: skip
        if not a.keyword:
            print("no --keyword given: no anchor counts as exact or partial; branded ones name "
                  f"{t.domain.split('.')[0]}", file=sys.stderr)  # fmt: skip
    return table, f"no anchors for {t.describe()}"


def _pages(ix: Any, a: argparse.Namespace) -> tuple[pa.Table, str]:
    t = _target(a.target)
    if t.kind == "prefix":
        raise UsageError(f"pages takes a domain or host, not a URL or a port: {a.target!r}")
    only = "broken" if a.broken else "redirects" if a.redirects else None
    what = {"broken": "broken", "redirects": "redirecting", None: "linked"}[only]
    return ix.pages(t, _filters(a), only=only, limit=a.limit), (
        f"no {what} pages for {t.describe()}"
    )


def _outlinks(ix: Any, a: argparse.Namespace) -> tuple[pa.Table, str]:
    t = _target(a.target)
    grouped = not a.all and t.kind != "prefix"
    return ix.outlinks(t, _filters(a), grouped=grouped, limit=a.limit), (
        f"no outlinks from {t.describe()}"
    )


def _diff(ix: Any, a: argparse.Namespace) -> tuple[pa.Table, str]:
    t = _target(a.target)
    table = ix.diff(a.old, a.new, t, _filters(a))
    if a.limit is not None:
        table = table.slice(0, a.limit)
    return table, f"no new or lost backlinks to {t.describe()} from {a.old} to {a.new}"


def _since(text: str) -> Any:
    """``--since``: a date or an ISO 8601 time, UTC unless it says otherwise."""
    from datetime import datetime, timezone

    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a date or time: {text!r} (e.g. 2026-12-01 or 2026-12-01T12:00:00Z)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _intersect(ix: Any, a: argparse.Namespace) -> tuple[pa.Table, str]:
    from pipelines.index.queries import Filters

    mine = _target(a.mysite)
    sites = [(text.strip(), _target(text)) for text in a.competitors]
    names = [n for n, _ in sites]
    targets = [mine, *(t for _, t in sites)]
    for name, t in sites:
        if targets.count(t) > 1:
            raise UsageError(f"intersect: {name} is given twice (MYSITE and COMPETITORs differ)")
    if a.min > len(sites):
        raise UsageError(f"--min {a.min} is more than the {len(sites)} competitors given")
    if a.sort == "authority" and ix.ranks_sql("domain") is None:
        raise UsageError("--sort authority needs ranks: run `linkcrawl rank INDEX` first")
    filters = _filters(a)
    filters.since = a.since
    table, counts, total = ix.intersect(mine, sites, filters, min_sites=a.min, limit=a.limit,
                                 sort=a.sort or "competitors")  # fmt: skip
    for name, t in sites:
        if counts[name] == 0 and not ix.referring_domains(t, Filters()):
            raise UsageError(f"intersect: no backlinks to {name} in the index (unknown site? "
                             "give a domain, host or URL prefix as crawled)")  # fmt: skip
    if ix.ranks_sql("domain") is None:
        print("linkcrawl: no ranks in the index (run `linkcrawl rank INDEX`): authority left "
              "empty", file=sys.stderr)  # fmt: skip
    if table.num_rows and (a.format == "table" or a.output):
        per_site = ", ".join(f"{n} {counts[n]:,}" for n in names)
        print(f"intersect: {total:,} referring domains link to at least {a.min} of the "
              f"{len(sites)} competitors and not to {a.mysite} (its {counts['']:,} referring "
              f"domains left out); referring domains per competitor: {per_site}",
              file=sys.stderr)  # fmt: skip
        print("legend: backlinks: distinct (page, target URL, anchor) to the competitors; "
              "competitors: how many it links to; shares: of those backlinks; one column per "
              "competitor: its backlinks there", file=sys.stderr)  # fmt: skip
    return table, (f"no referring domain links to at least {a.min} of the competitors "
                   f"without linking to {a.mysite}")  # fmt: skip


def _broken(ix: Any, a: argparse.Namespace) -> tuple[pa.Table, str]:
    sources = tuple(_target(d) for d in a.sources)
    table = ix.broken(_filters(a), sources=sources, kind=a.kind, limit=a.limit, sort=a.sort)
    if table.num_rows and a.format == "table":
        print(f"{table.num_rows:,} dead targets. status: the check's HTTP status at the end "
              "of its redirects (empty: no answer); why: HTTP status or the failure (DNS, "
              "connection, timeout); refdomains, pages, backlinks: referring domains, pages "
              "and distinct links (page, anchor) to it, dofollow_backlinks of them followed; "
              "sample_*: the first few, A to Z; redirects: hops before the dead end "
              "(final_url)", file=sys.stderr)  # fmt: skip
    where = f" from {', '.join(a.sources)}" if a.sources else ""
    return table, f"no dead link targets{where}"


def _sql(ix: Any, a: argparse.Namespace) -> tuple[pa.Table, str]:
    return ix.sql(a.query, limit=a.limit), "the query returned no rows"


def _spam(ix: Any, a: argparse.Namespace) -> tuple[pa.Table, str]:
    from pipelines.index.spam import review

    t = _target(a.target)
    _need_pages(ix, "spam")
    table = _signal_lists(
        review(ix, t, _filters(a), farm_links=a.farm_links, keywords=tuple(a.keyword))
    )
    if a.limit is not None:
        table = table.slice(0, a.limit)
    return table, f"no spam signals in the backlinks of {t.describe()}"


def _signal_lists(table: pa.Table) -> pa.Table:
    """``signals`` as a list of strings (the review may give them comma-joined)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if "signals" not in table.column_names or not pa.types.is_string(table["signals"].type):
        return table
    i = table.column_names.index("signals")
    return table.set_column(i, "signals", pc.split_pattern(table["signals"], ","))


def cmd_mentions(args: argparse.Namespace) -> int:
    from pipelines.index.layout import parse_target
    from pipelines.index.mentions import SORTS, MentionQuery, mentions
    from pipelines.index.queries import Filters

    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    _writable(args.output)
    with _errors(), _open(args) as ix:
        domain = args.domain
        if domain is None and "." in args.brand and " " not in args.brand.strip():
            domain = args.brand  # `mentions acme.example`: the brand is its site
        if domain is not None:
            t = parse_target(domain)
            if t.kind == "prefix":
                raise UsageError(f"--domain takes a domain, not a URL: {domain!r}")
            domain = t.domain
        q = MentionQuery(args.brand, domain=domain, case_sensitive=args.case_sensitive,
                         fold_accents=not args.exact_accents, since=args.since)  # fmt: skip
        filters = Filters(crawl=args.crawl, lang=args.lang, country=args.country)
        table, stats = mentions(ix, q, filters)
        sort = args.sort or ("authority" if ix.ranks_sql("domain") is not None else "mentions")
        if sort == "authority" and ix.ranks_sql("domain") is None:
            raise UsageError("--sort authority needs ranks: run `linkcrawl rank INDEX` first")
        from pipelines.index.lookup import sort_limit

        table = sort_limit(table, SORTS[sort], args.limit)
        if args.format == "table" and table.num_rows:
            left = [
                f"{stats.linking:,} link to {domain}" if domain else "",
                f"{stats.own_site:,} on {domain} itself" if domain else "",
                f"{stats.other:,} of another language or country" if stats.other else "",
            ]
            left_out = "; ".join(x for x in left if x)
            print(f"{stats.pages:,} pages name {q.brand!r}"
                  + (f" ({left_out}: left out)" if left_out else "")
                  + f"; sorted by {sort}. sentence: the first mention; mentions: times named "
                  "on the page; authority: the page's domain, 0-100; lang, country: the "
                  "page's (README, Language and country)", file=sys.stderr)  # fmt: skip
            if domain is None:
                print("no --domain: pages that link to the brand are not told apart",
                      file=sys.stderr)  # fmt: skip
        empty = f"no page names {q.brand!r}" + (f" without linking to {domain}" if domain else "")
        return _emit(args, table, empty)


def _since(text: str) -> Any:
    from datetime import datetime, timezone

    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (e.g. 2026-12-01)") from None
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def _confidence(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"not a confidence between 0 and 1: {text!r}")
    return value


def _positive(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return int(text)


def cmd_disavow(args: argparse.Namespace) -> int:
    from pipelines.index.export import emit
    from pipelines.index.spam import disavow_file, judge, review_domains

    _writable(args.output)
    with _errors(), _open(args) as ix:
        t = _target(args.target)
        _need_pages(ix, "disavow")
        _, judged = judge(ix, t, _filters(args), farm_links=args.farm_links,
                          keywords=tuple(args.keyword))  # fmt: skip
    result = disavow_file(judged, t, min_confidence=args.min_confidence)
    listed = sum(1 for j in judged.values() if j.signals)
    summary = (f"{len(judged):,} referring domains, {listed:,} with spam evidence; "
               f"{result.domains:,} domains and {result.urls:,} URLs at confidence >= "
               f"{args.min_confidence}" + (f"; {result.dropped:,} lines left out (Google's "
                                           "limits: 100,000 lines, 2 MB)"
                                           if result.dropped else ""))  # fmt: skip
    if args.output is None:  # the default: the review list, a confidence per domain
        table = review_domains(judged, args.min_confidence)
        if table.num_rows:
            emit(table, args.format, out=sys.stdout.buffer, output=None)
        print(f"disavow: {summary}" + ("" if table.num_rows else "; nothing to review")
              + "; write the file with -o FILE", file=sys.stderr)  # fmt: skip
        return 0
    data = result.text.encode("utf-8")
    if args.output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        try:
            with open(args.output, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    print(f"disavow: {summary}", file=sys.stderr)
    return 0


def _spark(args: argparse.Namespace) -> Any:
    """The SparkSession of ``--spark [--master URL]`` (pyspark imported only then)."""
    try:
        from pipelines.index.spark import session
    except ImportError as exc:
        raise UsageError(f"--spark needs PySpark: pip install 'linkcrawl[spark]' ({exc})") from None
    index = getattr(args, "index", None)  # compact, rank: the index through the filesystem
    if index is not None and "://" in str(index):
        raise UsageError(
            f"--spark: {index}: give INDEX as a path every Spark node sees (a shared mount such "
            "as NFS, EFS or Filestore), not a URI: compaction publishes by renames under a "
            'lock (README, "The index on Spark")'
        )
    try:
        return session(args.master)
    except RuntimeError as exc:  # no Java
        raise UsageError(f"--spark: {exc}") from None


def spark_args(p: argparse.ArgumentParser) -> None:
    """``--spark`` and ``--master``, for compact, rank and ingest."""
    p.add_argument("--spark", action="store_true",
                   help="run the job on Spark (pip install 'linkcrawl[spark]'; see README, "
                   "\"The index on Spark\")")  # fmt: skip
    p.add_argument("--master", metavar="URL",
                   help="with --spark: the Spark master, e.g. local[4], yarn, spark://host:7077 "
                   "(default: spark-submit's, else local[*])")  # fmt: skip


def cmd_compact(args: argparse.Namespace) -> int:
    from pipelines.index.compact import compact

    if args.spark:
        from pipelines.index.spark import compact_spark

        spark = _spark(args)
        with _errors():
            stats = compact_spark(spark, args.index, crawl=args.crawl,
                                  row_group_rows=args.row_group_rows,
                                  aggregates=args.aggregates,
                                  aggregate_min_links=args.aggregate_min_links,
                                  aggregate_top_rows=args.aggregate_rows)  # fmt: skip
        print(stats.format())
        return 0
    with _errors(), progress_bar("links") as progress:
        stats = compact(args.index, crawl=args.crawl, row_group_rows=args.row_group_rows,
                        memory_limit=args.memory_limit, progress=progress,
                        aggregates=args.aggregates,
                        aggregate_min_links=args.aggregate_min_links,
                        aggregate_top_rows=args.aggregate_rows)  # fmt: skip
    print(stats.format())
    return 0


def cmd_rank(args: argparse.Namespace) -> int:
    from pipelines.index.rank import rank_index

    with _errors():
        if args.spark:
            from pipelines.index.spark import rank_spark

            if args.registers < 16 or args.registers & (args.registers - 1):
                raise UsageError(f"--registers {args.registers}: a power of two >= 16")

            ranked = rank_spark(_spark(args), args.index, crawl=args.crawl,
                                registers=args.registers)  # fmt: skip
        else:
            with progress_bar("steps") as progress:
                ranked = rank_index(args.index, crawl=args.crawl, samples=args.samples,
                                    progress=progress)  # fmt: skip
        for s in ranked:
            print(f"{s.level}: {s.nodes:,} nodes, {s.edges:,} edges, ranked in {s.seconds:.1f}s")
    print(f"wrote {os.path.join(args.index, 'ranks')}/host.parquet and domain.parquet")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from pipelines.index.export import export

    _writable(args.output)
    bar = bool(args.output) or not sys.stdout.isatty()  # not amid rows on the screen
    with _errors(), _open(args) as ix, progress_bar("rows", show=bar) as progress:
        n = export(ix, args.table, args.format, sys.stdout.buffer, filters=_filters(args),
                   output=args.output, progress=progress)  # fmt: skip
    if args.output:
        print(f"exported {n:,} {args.table} rows to {args.output}", file=sys.stderr)
    return 0


def _index_arg(p: argparse.ArgumentParser, positional: bool) -> None:
    if positional:
        p.add_argument("index", help="index directory (links/, pages/)")
    else:
        p.add_argument("-i", "--index", default=os.environ.get(INDEX_ENV, "."),
                       help=f"index directory (default: ${INDEX_ENV} or .)")  # fmt: skip


def _filter_args(p: argparse.ArgumentParser, *, crawl: bool = True, direct: bool = True) -> None:
    if crawl:
        p.add_argument("--crawl", help="only this crawl (default: all crawls)")
    if direct:
        p.add_argument("--direct-only", action="store_true",
                       help="only links that point at the target itself, not those that land "
                       "there through a redirect script or an HTTP redirect")  # fmt: skip
    p.add_argument("--dofollow", action="store_true", help="only dofollow links")
    p.add_argument("--placement", choices=PLACEMENTS, help="only links placed here")
    p.add_argument("--source-type", action="append", metavar="TYPE",
                   help="only links from pages of this page_type (repeatable, or a comma list: "
                   f"{', '.join(PAGE_TYPES)})")  # fmt: skip
    p.add_argument("--internal", action="store_true",
                   help="include links within one registered domain")  # fmt: skip
    _lang_args(p)


def _lang_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lang", help="only links from pages in this language (de, pt-BR: its "
                   "primary subtag)")  # fmt: skip
    p.add_argument("--country", help="only links from pages of this country (ISO 3166: DE, GB)")


def _output_args(p: argparse.ArgumentParser, formats: tuple[str, ...]) -> None:
    p.add_argument("--format", choices=formats, default=formats[0],
                   help=f"{'|'.join(formats)} (default: {formats[0]}: aligned, for people;"
                   " csv, jsonl and parquet for tools; parquet needs -o)")  # fmt: skip
    p.add_argument("-o", "--output", help="write to this file (required for parquet)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="at most N rows, N >= 1 (default: every row)")  # fmt: skip


def add_index_commands(sub: Any) -> None:
    """Register compact, rank, the queries, spam, disavow and export on ``sub``."""
    formats = ("table", "csv", "jsonl", "parquet")

    p = sub.add_parser("compact", help="merge raw files into the query layout (atomic)")
    _index_arg(p, True)
    p.add_argument("--crawl", help="only this crawl's raw files (default: all)")
    p.add_argument("--row-group-rows", type=int, default=8 * 1024,
                   help="rows per row group of the compacted files (default 8192)")  # fmt: skip
    p.add_argument("--memory-limit", help="DuckDB memory limit, e.g. 4GB (it spills beyond)")
    spark_args(p)
    p.add_argument("--aggregates", action=argparse.BooleanOptionalAction, default=None,
                   help="store answers ahead of the question for the largest targets (default: "
                   "on, unless the index has them off); --no-aggregates drops them and keeps "
                   "them off for later compactions, --aggregates turns them on again",
                   )  # fmt: skip
    p.add_argument("--aggregate-min-links", type=int, default=None,
                   help="with aggregates: store them for the domains and hosts with at least "
                   f"this many links (default: the index's, else {AGGREGATE_MIN_LINKS:,}); 0: all",
                   )  # fmt: skip
    p.add_argument("--aggregate-rows", type=int, default=None,
                   help="of each such target, store the first N referring domains and grouped "
                   f"backlinks in the default order (default: the index's, else "
                   f"{AGGREGATE_TOP_ROWS:,}): a --limit up to N reads them",
                   )  # fmt: skip
    p.set_defaults(func=cmd_compact)

    p = sub.add_parser("rank", help="host and domain authority (PageRank, harmonic) to ranks/")
    _index_arg(p, True)
    p.add_argument("--crawl", help="only this crawl's links (default: all)")
    p.add_argument("--samples", type=int, default=256,
                   help="BFS sources for the harmonic centrality estimate")  # fmt: skip
    spark_args(p)
    p.add_argument("--registers", type=int, default=256,
                   help="with --spark: HyperLogLog registers per node for harmonic "
                   "centrality (HyperBall; a power of two >= 16; default 256)")  # fmt: skip
    p.set_defaults(func=cmd_rank)

    sort_help = {
        "backlinks": "authority: the source domain's, highest first (then oldest first);"
        " first_seen, last_seen: newest first; similar: most similar links first;"
        " source: by source URL",
        "refdomains": "authority: highest first (then most backlinks); backlinks: most first;"
        " first_seen: newest first; domain: A to Z",
    }
    queries: list[tuple[str, str, Callable[..., Any], tuple[str, ...]]] = [
        ("backlinks", "referring pages of a domain, host or URL prefix", _backlinks,
         ("authority", "first_seen", "last_seen", "similar", "source")),
        ("refdomains", "referring domains of a domain, host or URL prefix", _refdomains,
         ("authority", "backlinks", "first_seen", "domain")),
        ("anchors", "anchor texts by referring domains, classified", _anchors, ()),
        ("pages", "most linked pages of a site; broken and redirected targets", _pages, ()),
        ("outlinks", "what a page, host or domain links to", _outlinks, ()),
        ("spam", "backlinks with spam signals, explained (for a disavow review)", _spam, ()),
    ]  # fmt: skip
    for name, help_text, fn, sorts in queries:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("target", help="domain, host or URL prefix")
        _index_arg(p, False)
        _filter_args(p)
        _output_args(p, formats)
        if sorts:
            fallback = {"backlinks": "similar (source with --all)"}.get(name, sorts[1])
            p.add_argument(
                "--sort", choices=sorts, default=None,
                help=f"{sort_help[name]} (default: {sorts[0]}, highest first, when the index "
                f"has ranks, else {fallback}, said on stderr)",
            )  # fmt: skip
        if name in ("backlinks", "outlinks"):
            p.add_argument("--all", action="store_true", help="one row per link, not grouped")
        if name in ("anchors", "spam"):
            p.add_argument("--keyword", action="append", default=[],
                           help="a money keyword of the target (repeatable)")  # fmt: skip
        if name == "pages":
            g = p.add_mutually_exclusive_group()
            g.add_argument("--broken", action="store_true", help="only 4xx/5xx/error targets")
            g.add_argument("--redirects", action="store_true", help="only redirecting targets")
        if name == "spam":
            p.add_argument("--farm-links", type=_positive, default=FARM_LINKS,
                           help=f"links to other sites from one page that make it a link farm "
                           f"(default {FARM_LINKS})")  # fmt: skip
        p.set_defaults(func=_query(fn))

    p = sub.add_parser("intersect", help="referring domains of competitors that do not link to "
                       "MYSITE (link intersect)")  # fmt: skip
    p.add_argument("mysite", metavar="MYSITE", help="your domain, host or URL prefix")
    p.add_argument("competitors", metavar="COMPETITOR", nargs="+",
                   help="a competitor's domain, host or URL prefix (one or more)")  # fmt: skip
    _index_arg(p, False)
    _filter_args(p)
    p.add_argument(
        "--since",
        type=_since,
        metavar="DATE",
        help="only links seen on or after DATE (2026-12-01, or an ISO time; UTC)",
    )
    p.add_argument(
        "--min",
        type=_positive,
        default=1,
        metavar="K",
        help="referring domains linking to at least K competitors (default 1, as "
        "Ahrefs: any of them; 2 or more: the domains that link to several)",
    )
    _output_args(p, formats)
    p.add_argument(
        "--sort",
        choices=("competitors", "authority", "backlinks", "domain"),
        default=None,
        help="competitors: most competitors linked first, then "
        "authority and backlinks (default); authority: highest first (needs ranks); "
        "backlinks: most first; domain: A to Z",
    )
    p.set_defaults(func=_query(_intersect))

    p = sub.add_parser("diff", help="new and lost backlinks between two crawls")
    p.add_argument("old", help="the earlier crawl's ID")
    p.add_argument("new", help="the later crawl's ID")
    p.add_argument("target", help="domain, host or URL prefix")
    _index_arg(p, False)
    _filter_args(p, crawl=False)  # the crawls are OLD and NEW
    _output_args(p, formats)
    p.set_defaults(func=_query(_diff))

    views = "links, pages, ranks_domain, ranks_host"
    p = sub.add_parser("sql", help=f"one read-only DuckDB SELECT over the views {views}")
    p.add_argument("query", help=f"one SELECT statement; views: {views} (ranks_* after"
                   " `linkcrawl rank`), e.g. \"SELECT count(*) FROM links\"")  # fmt: skip
    _index_arg(p, False)
    _output_args(p, formats)
    p.set_defaults(func=_query(_sql))

    p = sub.add_parser("disavow", help="review referring domains with a confidence each; "
                       "-o FILE writes a Google disavow file of the confident ones")  # fmt: skip
    p.add_argument("target", help="domain, host or URL prefix")
    _index_arg(p, False)
    _filter_args(p)
    p.add_argument("-o", "--output", help="write the disavow file here ('-': stdout); without "
                   "it, print the review list")  # fmt: skip
    p.add_argument("--format", choices=("table", "csv", "jsonl"), default="table",
                   help="format of the review list (default: table)")  # fmt: skip
    p.add_argument("--min-confidence", type=_confidence, default=MIN_CONFIDENCE,
                   help="domains at this confidence or more go into the file "
                   f"(0-1, default {MIN_CONFIDENCE})")  # fmt: skip
    p.add_argument("--keyword", action="append", default=[],
                   help="a money keyword of the target (repeatable)")  # fmt: skip
    p.add_argument("--farm-links", type=_positive, default=FARM_LINKS,
                   help=f"links to other sites from one page that make it a link farm "
                   f"(default {FARM_LINKS})")  # fmt: skip
    p.set_defaults(func=cmd_disavow)

    p = sub.add_parser("mentions", help="pages that name a brand and do not link to its site "
                       "(unlinked mentions; needs crawl --store-text)")  # fmt: skip
    p.add_argument("brand", help="the brand's name as written (words match whole words)")
    p.add_argument("--domain", help="the brand's site: pages that link to it, and its own pages,"
                   " are left out (default: BRAND itself when it is a domain)")  # fmt: skip
    _index_arg(p, False)
    p.add_argument("--crawl", help="only this crawl (default: the latest text of each page)")
    p.add_argument("--lang", help="only pages in this language (de, pt-BR: its primary subtag)")
    p.add_argument("--country", help="only pages of this country (ISO 3166: DE, GB)")
    p.add_argument(
        "--since",
        type=_since,
        metavar="DATE",
        help="only pages fetched at or after DATE (ISO 8601, UTC by default)",
    )
    p.add_argument(
        "--case-sensitive",
        action="store_true",
        help="match the brand's case exactly (default: any case)",
    )
    p.add_argument(
        "--exact-accents",
        action="store_true",
        help="match accents exactly (default: folded, Nestle finds Nestlé)",
    )
    _output_args(p, formats)
    p.add_argument("--sort", choices=("authority", "mentions", "fetched_at", "url"),
                   help="authority: the page's domain, highest first; mentions: most first; "
                   "fetched_at: newest first; url: A to Z (default: authority when the index "
                   "has ranks, else mentions)")  # fmt: skip
    p.set_defaults(func=cmd_mentions)

    p = sub.add_parser("export", help="CSV or JSON lines of links, pages or ranks")
    _index_arg(p, True)
    p.add_argument("--table", choices=("links", "pages", "ranks"), default="links",
                   help="which table (default: links)")  # fmt: skip
    p.add_argument("--format", choices=("csv", "jsonl"), default="csv",
                   help="csv (default) or jsonl, one JSON object per line")  # fmt: skip
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    _filter_args(p, direct=False)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("broken", help="dead link targets (4xx, 5xx, DNS and connection "
                       "failures) with their referring pages and domains")  # fmt: skip
    p.add_argument(
        "--from",
        dest="sources",
        action="append",
        default=[],
        metavar="DOMAIN",
        help="only links from this referring domain or host (repeatable)",
    )
    _index_arg(p, False)
    _filter_args(p, direct=False)
    _output_args(p, formats)
    p.add_argument(
        "--kind",
        choices=("4xx", "5xx", "error"),
        help="only targets dead this way (error: DNS, connection, timeout)",
    )
    p.add_argument("--sort", choices=("refdomains", "backlinks", "url", "checked_at"),
                   default="refdomains", help="refdomains (default), backlinks: most first; "
                   "url: A to Z; checked_at: latest first")  # fmt: skip
    p.set_defaults(func=_query(_broken))
