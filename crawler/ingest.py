"""`linkcrawl ingest`: build the index from web archives (WARC, ARC), one file (or span of a
large file) per process.

:func:`ingest_file` is the unit of work (the cluster's workers call it too): it reads one
archive, local or on an object store, record by record (pipelines/warc.py), and publishes its
rows atomically as one ``links`` and one ``pages`` part whose names depend only on the file and
the crawl id: a file ingested again replaces its parts, so an interrupted run is simply run
again. :func:`run_ingest` spreads files over worker processes, draws the live line, and the CLI
compacts at the end as a crawl does (sitewide and the site-level placement pass happen there).
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import hashlib
import io
import os
import re
import sys
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from crawler import defaults
from crawler.liveline import LiveLine

FALLBACK_CRAWL_ID = defaults.INGEST_CRAWL_ID
MAX_MESSAGES = defaults.INGEST_MAX_ERROR_LINES
_PROGRESS_SECONDS = 0.5  # how often a worker reports its counters


# -- inputs ------------------------------------------------------------------------------
def expand_inputs(paths: list[str], *, list_file: str | None = None, prefix: str = "") -> list[str]:
    """The archives to read: ``paths`` (globs expanded; a pattern matching nothing is kept, to
    fail as a missing file), then the lines of ``list_file`` (``.gz`` allowed; blank lines and
    ``#`` comments skipped), each after ``prefix`` (a directory, ``s3://bucket/``,
    ``https://host/``).

    >>> expand_inputs(["/no/such/*.warc.gz", "s3://b/x.warc.gz"])
    ['/no/such/*.warc.gz', 's3://b/x.warc.gz']
    """
    out: list[str] = []
    for p in paths:
        matches = sorted(glob.glob(p)) if "://" not in p and glob.has_magic(p) else []
        out.extend(matches or [p])
    if list_file is not None:
        opener: Any = gzip.open if list_file.endswith(".gz") else open
        with opener(list_file, "rt", encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if line and not line.startswith("#"):
                    out.append(join_prefix(prefix, line))
    return out


def join_prefix(prefix: str, path: str) -> str:
    """``path`` under ``prefix`` (unless it is already absolute or a URI).

    >>> join_prefix("s3://commoncrawl/", "crawl-data/a.warc.gz")
    's3://commoncrawl/crawl-data/a.warc.gz'
    >>> join_prefix("/data", "a.warc.gz"), join_prefix("", "a.warc.gz")
    ('/data/a.warc.gz', 'a.warc.gz')
    """
    if not prefix or "://" in path or path.startswith("/"):
        return path
    if "://" in prefix:
        return prefix.rstrip("/") + "/" + path.lstrip("/")
    return str(Path(prefix) / path)


class InputError(Exception):
    """An archive that cannot be opened."""


class PoolError(RuntimeError):
    """The worker processes failed (a task raised, or they could not run): the text says how,
    with the worker's traceback when there is one."""


@contextlib.contextmanager
def open_input(source: str) -> Iterator[IO[bytes]]:
    """A buffered binary stream of a local path, an ``http(s)://`` URL, or a pyarrow
    filesystem URI (``s3://``, ``gs://``...)."""
    if source.startswith(("http://", "https://")):
        import urllib.error
        import urllib.request

        try:
            req = urllib.request.Request(source, headers={"User-Agent": defaults.USER_AGENT})
            resp = urllib.request.urlopen(req, timeout=defaults.DOWNLOAD_TIMEOUT)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise InputError(f"cannot fetch it ({exc})") from None
        with resp:
            yield io.BufferedReader(resp, 1 << 20)  # type: ignore[arg-type]
        return
    if "://" in source:
        import pyarrow.fs as pafs

        try:
            fs, path = pafs.FileSystem.from_uri(source)
            stream = fs.open_input_stream(path)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot open it ({' '.join(str(exc).split())[:200]})") from None
        with stream:
            yield stream  # wrapped with a buffer by pipelines.warc.gunzipped
        return
    p = Path(source)
    if not p.exists():
        raise InputError("file not found")
    if not p.is_file():
        raise InputError("not a file")
    try:
        fh = p.open("rb", buffering=1 << 20)
    except OSError as exc:
        raise InputError(f"cannot open it ({exc.strerror})") from None
    with fh:
        yield fh


# -- one file ----------------------------------------------------------------------------
@dataclass
class FileResult:
    """What one archive gave (sums over files with :meth:`add`)."""

    files: int = 0
    files_failed: int = 0
    records: int = 0
    pages: int = 0
    links: int = 0
    http_errors: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # records that are no page
    limits: Counter[str] = field(default_factory=Counter)  # limits_hit tokens of the pages
    errors: Counter[str] = field(default_factory=Counter)
    crawl_ids: set[str] = field(default_factory=set)
    messages: list[str] = field(default_factory=list)  # one line per error (capped per file)
    cpu_seconds: float = 0.0  # the CPU its process spent on it
    #: A span of a file (read by :func:`ingest_file` with ``span``): see :class:`_Spans`.
    span: dict[str, Any] | None = None

    def add(self, other: FileResult) -> None:
        for name in ("files", "files_failed", "records", "pages", "links", "http_errors",
                     "cpu_seconds"):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.skipped.update(other.skipped)
        self.limits.update(other.limits)
        self.errors.update(other.errors)
        self.crawl_ids |= other.crawl_ids


def part_name(source: str, crawl_id: str, part: int = 0) -> str:
    """The name of a file's parts: the same file and crawl always give the same name (a file
    ingested again replaces its rows), distinct files distinct names; ``part``: the span of
    a file read in several (see :func:`plan_spans`), from 0.

    >>> part_name("s3://commoncrawl/crawl-data/CC-MAIN-2024-22/x/CC-MAIN-1-00000.warc.gz",
    ...           "CC-MAIN-2024-22")
    'part-CC-MAIN-2024-22-warc-CC-MAIN-1-00000-f4b9a1f628ca-00000.parquet'
    """
    from pipelines.parquet_sink import safe_name

    base = source.rstrip("/").rsplit("/", 1)[-1]
    for ext in (".gz", ".warc", ".arc"):
        base = base.removesuffix(ext)
    digest = hashlib.sha1(source.encode("utf-8")).hexdigest()[:12]
    return f"part-{safe_name(crawl_id)}-warc-{safe_name(base)[:80]}-{digest}-{part:05d}.parquet"


# Links' columns of one value per page (rows.link_columns gives it on each of the page's
# links): buffered once per page and repeated by Arrow, not converted link by link (-0.1 CPU
# s of bench_ingest's ~11: fetched_at's datetimes alone were a fifth of the conversion).
_PER_PAGE = ("crawl_id", "fetched_at", "source_url", "source_host", "source_domain", "sitewide",
             "source_page_type")  # fmt: skip


class _Parts:
    """One input file's ``links`` and ``pages`` parts, streamed to hidden temporary files and
    renamed into place together at the end (pages last): memory holds one batch at most."""

    def __init__(self, out: str, name: str, flush_rows: int, job: str = "") -> None:
        import pyarrow.fs as pafs

        from pipelines.parquet_sink import is_uri
        from pipelines.schema import LINKS_SCHEMA, PAGES_SCHEMA

        self.schemas = {"links": LINKS_SCHEMA, "pages": PAGES_SCHEMA}
        if is_uri(out):
            self.fs, root = pafs.FileSystem.from_uri(out)
        else:
            self.fs, root = pafs.LocalFileSystem(), str(Path(out).resolve())
        self.root = root.rstrip("/")
        self.name = name
        self.flush_rows = flush_rows
        # ``job``: the pool's mark on its temporary names (see :func:`_sweep`)
        self.tmp = f".{name}.{uuid.uuid4().hex[:8]}{'.' + job if job else ''}.tmp"
        self.pages: list[dict[str, Any]] = []
        # Links as columns (pipelines/rows.py link_columns): no dict per link to build, keep
        # alive for the collector to walk, and take apart again in from_pylist.
        self.links: dict[str, list[Any]] = {
            name: [] for name in LINKS_SCHEMA.names if name not in _PER_PAGE
        }
        self.per_page: dict[str, list[Any]] = {name: [] for name in _PER_PAGE}  # a value a page
        self.run_ends: list[int] = []  # each page's last link's row + 1
        self.buffered = 0  # links in self.links
        self.writers: dict[str, Any] = {}
        self.streams: dict[str, Any] = {}
        self.written = {"links": 0, "pages": 0}

    def add(self, page: dict[str, Any], links: dict[str, list[Any]] | None) -> None:
        """A page's row and its links' columns (None: no links)."""
        self.pages.append(page)
        if links and links["target_url"]:
            for name, column in self.links.items():
                column.extend(links[name])
            for name, values in self.per_page.items():
                values.append(links[name][0])
            self.buffered += len(links["target_url"])
            self.run_ends.append(self.buffered)
        if self.buffered >= self.flush_rows or len(self.pages) >= 10_000:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        tables = {
            "links": pa.Table.from_pydict(self._link_columns(), schema=self.schemas["links"])
            if self.buffered
            else None,
            "pages": pa.Table.from_pylist(self.pages, schema=self.schemas["pages"])
            if self.pages
            else None,
        }
        for column in (*self.links.values(), *self.per_page.values(), self.run_ends):
            column.clear()
        self.buffered = 0
        self.pages.clear()
        for kind, table in tables.items():
            if table is None:
                continue
            schema = self.schemas[kind]
            if kind not in self.writers:
                self.fs.create_dir(f"{self.root}/{kind}", recursive=True)
                stream = self.fs.open_output_stream(f"{self.root}/{kind}/{self.tmp}")
                self.streams[kind] = stream
                self.writers[kind] = pq.ParquetWriter(
                    stream, schema, compression=defaults.PARQUET_COMPRESSION,
                    write_statistics=True,
                )  # fmt: skip
            self.writers[kind].write_table(table, row_group_size=128 * 1024)
            self.written[kind] += table.num_rows

    def _link_columns(self) -> dict[str, Any]:
        """The buffered links' columns: lists, and Arrow arrays of the per-page columns, each
        page's value repeated for its links by Arrow."""
        import pyarrow as pa
        import pyarrow.compute as pc

        ends = pa.array(self.run_ends, pa.int32())
        schema = self.schemas["links"]
        repeated = {
            name: pc.run_end_decode(pa.RunEndEncodedArray.from_arrays(
                ends, pa.array(values, schema.field(name).type)))
            for name, values in self.per_page.items()
        }  # fmt: skip
        return {**self.links, **repeated}

    def seal(self) -> list[str]:
        """Close the parts and sync them to disk; the kinds written ("links", "pages")."""
        self.flush()
        kinds = [kind for kind in ("links", "pages") if kind in self.writers]
        for kind in kinds:
            self.writers[kind].close()
            self.streams[kind].close()
            if self.fs.type_name == "local":
                with open(f"{self.root}/{kind}/{self.tmp}", "rb") as fh:
                    os.fsync(fh.fileno())
        self.writers.clear()
        self.streams.clear()
        return kinds

    def publish(self) -> None:
        """Close the parts, then rename them into place, links first (a reader never sees
        pages without their links), with SIGINT and SIGTERM held between the two renames: a
        stop there would publish links without their pages. The parts of the file's spans
        that an earlier run wrote (:func:`plan_spans`) go: this run's rows replace them."""
        kinds = self.seal()
        with _signals_held():  # the drop too: a stop raised at the renames' end skipped it,
            for kind in kinds:  # leaving an earlier run's rows beside these (review15-i14 3)
                self.fs.move(f"{self.root}/{kind}/{self.tmp}", f"{self.root}/{kind}/{self.name}")
            if self.fs.type_name == "local":
                _drop_spans(self.root, self.name, {f"{self.root}/{k}/{self.name}" for k in kinds})

    def sealed(self) -> list[tuple[str, str]]:
        """:meth:`seal`, then each part's (temporary path, final path): for a span, whose
        parts the pool's parent renames once every span of the file is read."""
        return [(f"{self.root}/{kind}/{self.tmp}", f"{self.root}/{kind}/{self.name}")
                for kind in self.seal()]  # fmt: skip

    def abort(self) -> None:
        for kind in list(self.writers):
            with contextlib.suppress(Exception):
                self.writers.pop(kind).close()
                self.streams.pop(kind).close()
            with contextlib.suppress(OSError):
                self.fs.delete_file(f"{self.root}/{kind}/{self.tmp}")


def _drop_spans(root: str, name: str, written: set[str]) -> None:
    """Delete the parts of ``name``'s file (any span k, ``-0000k.parquet``) in ``root``'s
    links/ and pages/ that are not ``written`` (their paths) by this run: an earlier ingest
    of the same file and crawl wrote them, and a new ingest's parts replace the file's rows,
    also when the new one wrote no part k (its span k, or the whole file, holds no page:
    review14-i14 2). A local index only: span parts are only written there. 2 x
    ``DROP_SPANS`` unlink calls."""
    stem = name[: -len("00000.parquet")]
    for kind in ("links", "pages"):
        for k in range(DROP_SPANS):
            path = f"{root}/{kind}/{stem}{k:05d}.parquet"
            if path not in written:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM held until the end, then raised again with their handlers (the
    main thread only: their Python handlers run there; elsewhere they interrupt nothing)."""
    import signal
    import threading

    kinds = (signal.SIGINT, signal.SIGTERM)
    foreign = any(signal.getsignal(s) is None for s in kinds)  # a handler set outside Python
    if foreign or threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    before: dict[int, Any] = {}
    try:
        for s in kinds:  # inside the try: a signal between the two installs restores both
            before[s] = signal.signal(s, lambda signum, frame: got.append(signum))
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
        _raise_each(list(dict.fromkeys(got)))


def _raise_each(signals: list[int]) -> None:
    """Raise each of ``signals`` with its handler, every one even when one's handler raises
    (review12-i18c 5: a SIGTERM held beside a SIGINT was dropped)."""
    import signal

    if signals:
        try:
            signal.raise_signal(signals[0])
        finally:
            _raise_each(signals[1:])


def _limits(max_body_bytes: int | None, page_cpu_budget: float | None) -> Any:
    from pipelines.warc import Limits

    return Limits(
        # 0: no cap, as for a crawl (still bounded, by Scrapy's backstop there).
        max_body_bytes=defaults.MAX_BODY_BYTES
        if max_body_bytes is None
        else max_body_bytes or defaults.DOWNLOAD_MAXSIZE,
        max_header_bytes=defaults.MAX_HEADER_BYTES,
        max_header_lines=defaults.MAX_HEADER_LINES,
        page_cpu_budget=defaults.PAGE_CPU_BUDGET if page_cpu_budget is None else page_cpu_budget,
    )


def ingest_file(
    source: str,
    out: str,
    *,
    crawl_id: str | None = None,
    max_body_bytes: int | None = None,
    page_cpu_budget: float | None = None,
    flush_rows: int = defaults.FLUSH_ROWS,
    progress: Callable[[FileResult], None] | None = None,
    span: tuple[int, int, int | None] | None = None,
    job: str = "",
    refused: Callable[[], bool] | None = None,
) -> FileResult:
    """Ingest one archive into the index at ``out`` (a directory or a pyarrow filesystem URI)
    and return its counts. Its rows are published only once the whole file is read (a broken
    record is an error row or a message; a broken stream ends the file, what came before it
    is kept). ``crawl_id``: else the file's leading warcinfo ``isPartOf``, else ``ingest``.
    ``progress`` gets the running counts every half second or so.

    ``span`` (part, start, until): only the records of a local file from offset ``start``
    to the record at ``until`` (None: to the end), with ``crawl_id`` given; its parts are
    written but not published: the result's ``span`` says where it ended and what to rename
    (:class:`_Spans` publishes a file's spans together); it reads at most
    ``SPAN_OVERRUN`` bytes past ``until``, and stops once ``refused()`` says its file is to be
    read whole (:class:`_SpanFile`). ``job``: a mark in the names of its temporary parts
    (:func:`_sweep`)."""
    from pipelines.warc import ArchiveError, iter_records, record_rows

    cpu0 = time.process_time()
    limits = _limits(max_body_bytes, page_cpu_budget)
    res = FileResult(files=1)
    parts: _Parts | None = None
    cid = crawl_id
    last = time.monotonic()

    def say(line: str) -> None:
        if len(res.messages) < MAX_MESSAGES:
            res.messages.append(f"{source}: {line}")
        elif len(res.messages) == MAX_MESSAGES:
            res.messages.append(f"{source}: (more errors, counted in the summary)")

    part, start, until = span or (0, 0, None)
    seam: list[Any] = []
    keys = bytearray()  # _page_key of each page, 8 bytes each
    broke: int | None = None
    try:
        with open_input(source) as fh:
            if span is not None:
                reader = _SpanFile(fh, start, until, refused)
                fh = io.BufferedReader(reader, 256 * 1024)  # type: ignore[assignment]
            try:
                for rec in iter_records(fh, start=start, until=until, seam=seam):
                    res.records += 1
                    if rec.warning is not None:
                        res.errors["warc: record not followed by a blank line"] += 1
                        say(rec.warning)
                    if cid is None:
                        cid = _crawl_id_of(rec)
                    got = record_rows(rec, crawl_id=cid, limits=limits, columns=True)
                    _count(res, got, rec.index, say)
                    if got.page is not None:
                        if parts is None:
                            parts = _Parts(out, part_name(source, cid, part), flush_rows, job)
                        parts.add(got.page, got.columns)
                        if span is not None:
                            keys += _page_key(got.page)
                    if progress is not None and time.monotonic() - last >= _PROGRESS_SECONDS:
                        last = time.monotonic()
                        progress(res)
            except ArchiveError as exc:
                res.files_failed += 1
                res.errors[_reason(str(exc))] += 1
                say(str(exc))
                broke = exc.index
        if seam and seam[0][1] is not None:  # the next span's first record says it of ours
            res.errors["warc: record not followed by a blank line"] += 1
            say(seam[0][1])
        if res.records == 0 and not res.files_failed and not part:
            res.files_failed += 1
            res.errors["empty file"] += 1
            say("no record in it (empty file)")
        if span is not None:
            # stopped (its file refused): its rows would be thrown away; they go now
            sealed = parts.sealed() if parts is not None and not reader.stopped else []
            parts = None if sealed else parts
            res.span = _span_result(source, part, seam[0][0] if seam else None, broke, sealed,
                                    bytes(keys))  # fmt: skip
        else:
            _publish(parts, res, out, source, cid)
            parts = None
    except InputError as exc:
        res.files_failed += 1
        res.errors[str(exc).split(" (", 1)[0]] += 1
        say(str(exc))
        if span is not None:  # a span that cannot open its file: the file is read whole
            # and counted once, not as a file of its own (review14-i14 3)
            res.span = _span_result(source, part, None, 0, [], b"")
    finally:
        if parts is not None:
            parts.abort()
    if cid is not None and res.pages:  # the crawls this file wrote rows of
        res.crawl_ids.add(cid)
    res.cpu_seconds = time.process_time() - cpu0
    return res


def _count(res: FileResult, got: Any, index: int, say: Callable[[str], None]) -> None:
    """Count record ``index``'s rows ``got`` (:func:`pipelines.warc.record_rows`) in ``res``;
    its error and notice lines to ``say``."""
    if got.skipped is not None:
        res.skipped[got.skipped] += 1
    if got.error is not None:
        res.errors[_reason(got.error)] += 1
        say(f"record {index}: {got.error}")
    if got.notice is not None:
        say(f"record {index}: {got.notice}")
    if got.page is not None:
        res.pages += 1
        res.links += got.link_count
        res.http_errors += int((got.page.get("status") or 0) >= 400)
        res.limits.update(got.page["limits_hit"])


def _publish(parts: _Parts | None, res: FileResult, out: str, source: str,
             cid: str | None) -> None:  # fmt: skip
    """A file read whole: its parts published; with no page, the parts an earlier run wrote
    of it deleted if it was read to its end (a local index), kept if it broke before its
    first page (a cut download, review15-i14)."""
    if parts is not None:
        parts.publish()
    elif cid is not None and not res.files_failed and "://" not in out:
        _drop_spans(str(Path(out).resolve()), part_name(source, cid), set())


def _span_result(source: str, part: int, end: int | None, broke: int | None,
                 parts: list[tuple[str, str]], keys: bytes) -> dict[str, Any]:  # fmt: skip
    """A span's :attr:`FileResult.span`: where it ended (the next record's file offset, None
    if not at a record start), the record it broke at, its sealed parts (temporary path,
    final path) and its pages' :func:`_page_key` (8 bytes each), see :class:`_Spans`."""
    return {"source": source, "part": part, "end": end, "broke": broke, "parts": parts,
            "keys": keys}  # fmt: skip


def _crawl_id_of(rec: Any) -> str:
    """The crawl id of a file's rows when none is given, from its first record: the
    ``isPartOf`` of a leading warcinfo record if it is a valid crawl id, else ``ingest``."""
    from crawler.runner import crawl_id_error
    from pipelines.warc import warcinfo_fields

    if rec.index == 0 and rec.rec_type == "warcinfo":
        part_of = warcinfo_fields(rec).get("ispartof", "")
        if part_of and crawl_id_error(part_of) is None:
            return part_of
    return FALLBACK_CRAWL_ID


def _page_key(page: dict[str, Any]) -> bytes:
    """8 bytes standing for a page row's (url, fetched_at): compaction keeps one fetch of a
    URL, the latest, ties going to the greater part name, so spans of a file may not hold
    the same fetch twice (in one file, both stay)."""
    text = f"{page['url']}\0{page['fetched_at']}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(text, digest_size=8).digest()


def _reason(error: str) -> str:
    """An error line's reason, without its detail, for the summary's counts.

    >>> _reason("after record 3: truncated gzip member (the file ends inside ...)")
    'truncated gzip member'
    >>> _reason("http: bad status line 'x'"), _reason("headers too large: over 500 lines")
    ('http: bad status line', 'headers too large')
    """
    text = error.split(": ", 1)[1] if error.startswith("after record ") else error
    for sep in (" (", " '", ": over"):
        text = text.split(sep, 1)[0]
    return text[:60]


# -- a file in several processes ---------------------------------------------------------------
# A local file of at least twice this many bytes is read in spans of about this size, each by
# any worker process (a pool of whole files idles its other workers while the last, largest
# one is read: on bench_ingest's six files, 2 workers were slower than 1).
SPLIT_BYTES = 4 << 20
MAX_SPANS = 64  # spans of one file at most (larger spans then)
# Span parts k < this that a publication deletes (_drop_spans): not MAX_SPANS, so that lowering
# it orphans no part an older run wrote (review15-i14 note c).
DROP_SPANS = 64
# Pages of a file read in spans at most: past them it is read whole. The pool's parent keeps
# 8 bytes a page of the file's spans read so far (32 MB at this cap) to find a fetch in two.
MAX_SPAN_PAGES = 4_000_000
# Spans no smaller than the job's bytes over this many per worker: the last task then idles
# the others ~1/16 of the job at most, and a job of many files is not cut into many parts.
SPANS_PER_WORKER = 8


def span_bytes(sources: list[str], workers: int, floor: int) -> int:
    """The span size of a job: ``floor``, or the local files' bytes over ``SPANS_PER_WORKER``
    tasks per worker when that is more (0: no spans).

    >>> span_bytes(["s3://b/x.warc.gz"], 2, 4 << 20)
    4194304
    """
    if floor <= 0:
        return 0
    return max(floor, sum(map(_size, sources)) // (max(1, workers) * SPANS_PER_WORKER))


def plan_spans(source: str, split_bytes: int, crawl_id: str | None) -> tuple[str, list[int]] | None:
    """(the crawl id, the offsets where each span starts) of a local file to read in spans,
    None to read it whole: too small, not WARC, no place found to cut, its first record
    unreadable. Each start after the first is a guess (:func:`pipelines.warc.span_start`)
    confirmed by the reader of the span before it (:class:`_Spans`)."""
    from pipelines.warc import ArchiveError, iter_records, span_start

    if split_bytes <= 0 or "://" in source:
        return None
    try:
        size = os.stat(source).st_size
        if size < 2 * split_bytes:
            return None
        n = min(MAX_SPANS, size // split_bytes)
        with open(source, "rb", buffering=0) as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
            starts = [0]
            for k in range(1, n):
                at = span_start(raw, max(size * k // n, starts[-1] + 1), size * (k + 1) // n,
                                gzipped)  # fmt: skip
                if at is not None:
                    starts.append(at)
        if len(starts) < 2:
            return None
        if crawl_id is None:
            with open(source, "rb", buffering=1 << 16) as fh:
                crawl_id = _crawl_id_of(next(iter_records(fh)))
    except (OSError, ArchiveError, StopIteration):
        return None
    return crawl_id, starts


# Bytes a span reads at most past its end (a real seam needs only the next record's WARC
# head there): a seam inside a large record (a payload holding WARC records, review15-i14 1)
# made the span before it read that record to its end, and each span guessed inside it too.
SPAN_OVERRUN = 64 * 1024


class _SpanFile(io.RawIOBase):
    """A span's local file from ``start``: it ends (EOF) ``SPAN_OVERRUN`` bytes past the
    span's end ``until`` (None: the file's), and at its next read once ``refused()`` (then
    :attr:`stopped`): a span refused or cut there does not end at the next span's start, so
    its file is read whole (:class:`_Spans`), and a refused file is read twice at most, and
    ``SPAN_OVERRUN`` a span. Reads bypass ``fh``'s buffer (no read-ahead past the cap).

    >>> f = _SpanFile(io.BytesIO(bytes(range(10)) * 10_000), 5, 6, None)
    >>> len(io.BufferedReader(f).read()) == 1 + SPAN_OVERRUN, f.stopped
    (True, False)
    >>> refused = [False]
    >>> f = _SpanFile(io.BytesIO(bytes(100)), 0, None, lambda: refused[0])
    >>> r = io.BufferedReader(f, 10)
    >>> len(r.read(10)), f.stopped
    (10, False)
    >>> refused[0] = True  # its file refused: the next read ends the span
    >>> r.read(10), f.stopped
    (b'', True)
    """

    def __init__(self, fh: Any, start: int, until: int | None,
                 refused: Callable[[], bool] | None) -> None:  # fmt: skip
        self.fh = getattr(fh, "raw", fh)
        self.fh.seek(start)
        self.at = start
        self.limit = None if until is None else until + SPAN_OVERRUN
        self.refused = refused
        self.stopped = False

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.at

    def readinto(self, buffer: Any) -> int:
        if self.refused is not None and self.refused():
            self.stopped = True
        n = len(buffer) if self.limit is None else min(len(buffer), self.limit - self.at)
        if n <= 0 or self.stopped:
            return 0
        got = self.fh.readinto(memoryview(buffer)[:n]) or 0
        self.at += got
        return got


class _Spans:
    """The spans of the files read in spans, in the pool's parent: a file's parts are renamed
    into place once all its spans are read and each span ended exactly where the next began
    (the first record past its end starts at the next span's start; then the next span read
    the records a whole-file read would). Else (a guessed start inside a record, a broken
    stream before the end, the same fetch of a URL in two spans: compaction would keep one
    where a whole file keeps both) the spans' parts are deleted and the file is read whole,
    as soon as one span shows it (its other spans not yet begun are not read)."""

    def __init__(self, out: str) -> None:
        self.out = out
        self.files: dict[str, list[FileResult | None]] = {}
        self.names: dict[str, str] = {}  # a file's part name (span 0)
        self.starts: dict[str, list[int]] = {}
        #: the fetches of a file's spans read so far (:func:`_page_key` as sorted uint64)
        self.keys: dict[str, Any] = {}
        self.failed: set[str] = set()  # files whose spans' results are thrown away
        self.index: dict[str, int] = {}  # a file's slot in ``flags``
        #: Shared with the workers (a byte a file, see :meth:`refuse`): set by the pool's
        #: parent once the spans' tasks are made.
        self.flags: Any = None

    def tasks(self, source: str, crawl_id: str, starts: list[int]) -> list[tuple[Any, ...]]:
        """The span tasks of ``source``: ("span", source, part, start, until, crawl id, the
        file's slot in :attr:`flags`)."""
        i = self.index.setdefault(source, len(self.index))
        self.files[source] = [None] * len(starts)
        self.names[source] = part_name(source, crawl_id)
        self.starts[source] = starts
        self.keys[source] = _no_keys()
        ends = [*starts[1:], None]
        return [("span", source, k, starts[k], ends[k], crawl_id, i) for k in range(len(starts))]

    def add(self, source: str, res: FileResult) -> tuple[str, FileResult | None]:
        """Take a span's result: ("wait", None) until the file's last; then ("done", the
        file's result) with its parts published, or ("whole", None): read it whole."""
        assert res.span is not None
        if source in self.failed:
            self._delete([res])
            return "wait", None
        if not self._seamless(source, res):
            self._delete([res])
            self.lost(source)
            return "whole", None
        got = self.files[source]
        got[res.span["part"]] = res
        if any(r is None for r in got):
            return "wait", None
        done = [r for r in got if r is not None]
        name = self.names[source]
        self._forget(source)
        written = {final for r in done for _, final in r.span["parts"]}  # type: ignore[index]
        joined = _joined(source, done)
        with _signals_held():  # all links parts first: no pages without their links
            for kind in ("links", "pages"):
                for r in done:
                    for tmp, final in r.span["parts"]:  # type: ignore[index]
                        if f"/{kind}/" in final:
                            os.replace(tmp, final)
            # held too: a stop at the renames' end skipped it (review15-i14 3); span 0's too
            # (no page), not when no page came before the last span broke (as a whole read)
            if written or not joined.files_failed:
                _drop_spans(str(Path(self.out).resolve()), name, written)
        return "done", joined

    def lost(self, source: str) -> None:
        """``source`` is to be read whole (a span died with its worker, or showed that the
        spans do not give a whole read's rows): its spans' parts are deleted, those still
        running when they end, which stop at their next read (review15-i14 1)."""
        if self.flags is not None and source in self.index:
            self.flags[self.index[source]] = 1
        self.failed.add(source)
        got = self.files.get(source, [])
        self._forget(source)
        self._delete([r for r in got if r is not None])

    def _forget(self, source: str) -> None:
        for table in (self.files, self.names, self.starts, self.keys):
            table.pop(source, None)  # type: ignore[attr-defined]

    def _seamless(self, source: str, res: FileResult) -> bool:
        """Whether span ``res`` ended where the next span begins (the last: anywhere), did
        not break before it (nor at its first record, where a whole read says "after record
        N", not "not a WARC file"), and holds no fetch of the file's spans read before it
        (nor takes them past ``MAX_SPAN_PAGES``). Its keys are dropped (review15-i14 2: the
        result kept them until the file's last span). Two distinct fetches whose 8-byte keys
        are equal (about 1 in 2**64 a pair) only have the file read whole."""
        import numpy as np

        span, starts = res.span, self.starts[source]
        assert span is not None
        new = np.unique(np.frombuffer(span["keys"] or b"", dtype="<u8"))  # sorted, once each
        span["keys"] = None
        k = span["part"]
        if k + 1 < len(starts) and (span["end"] != starts[k + 1] or span["broke"] is not None):
            return False
        if k and span["broke"] == 0:
            return False
        seen = self.keys[source]
        if len(seen) + len(new) > MAX_SPAN_PAGES:
            return False
        if len(seen) and np.any(seen[np.minimum(np.searchsorted(seen, new), len(seen) - 1)] == new):
            return False
        # pages at this rate past twice the cap: refused now, not after every span's work (a
        # file far over it was read almost twice: review15-i14b 3a); twice, as spans are cut by
        # bytes and a dense one may come first (review16-final 1)
        read = 1 + sum(r is not None for r in self.files[source])
        if (len(seen) + len(new)) * len(starts) > 2 * MAX_SPAN_PAGES * read:
            return False
        # two sorted runs: the stable sort (a merge, for them) is linear
        self.keys[source] = np.sort(np.concatenate([seen, new]), kind="stable")
        return True

    @staticmethod
    def _delete(results: list[FileResult]) -> None:
        for r in results:
            for tmp, _ in r.span["parts"] if r.span else ():
                with contextlib.suppress(OSError):
                    os.remove(tmp)

    def discard(self) -> None:
        """Delete the parts of every file not published (the pool stops)."""
        for source in list(self.files):
            self.lost(source)


def _no_keys() -> Any:
    import numpy as np

    return np.empty(0, dtype="<u8")


_RECORD_NO = re.compile(r"(after record |record )(\d+)")


def _joined(source: str, spans: list[FileResult]) -> FileResult:
    """The result of a file read in ``spans`` (in order), as reading it whole gives it: the
    counts summed, the record numbers of messages counted from the file's start, at most
    ``MAX_MESSAGES`` lines."""
    out = FileResult(files=1)
    lines: list[str] = []
    more = False
    head = f"{source}: "
    base = 0
    for r in spans:
        out.add(r)
        for line in r.messages:
            text = line[len(head) :]
            if text == "(more errors, counted in the summary)":
                more = True
                continue
            m = _RECORD_NO.match(text)
            if m is not None and base:
                text = f"{m.group(1)}{int(m.group(2)) + base}{text[m.end() :]}"
            lines.append(head + text)
        base += r.records
    out.files = 1
    out.messages = lines[:MAX_MESSAGES]
    if more or len(lines) > MAX_MESSAGES:
        out.messages.append(f"{head}(more errors, counted in the summary)")
    return out


# -- many files, many processes --------------------------------------------------------------
@dataclass
class IngestSummary:
    total: FileResult
    files: int
    seconds: float

    @property
    def pages_per_second(self) -> float:
        return self.total.pages / self.seconds if self.seconds > 0 else 0.0

    def format(self) -> str:
        t = self.total
        failed = f" ({t.files_failed} failed)" if t.files_failed else ""
        lines = [
            f"ingest {', '.join(sorted(t.crawl_ids)) or '-'}: {t.files} files{failed}, "
            f"{t.records} records, {t.pages} pages, {t.links} links, "
            f"{t.http_errors} HTTP errors, {self.seconds:.1f} s, "
            f"{self.pages_per_second:.1f} pages/s"
        ]
        for title, counts in (("errors", t.errors), ("skipped records", t.skipped),
                              ("limits", t.limits)):  # fmt: skip
            if counts:
                top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                lines.append(f"{title}: " + ", ".join(f"{k} {n}" for k, n in top))
        return "\n".join(lines)


class IngestProgress(LiveLine):
    """The live line on stderr, drawn as a crawl's (crawler/liveline.py): files, records/s,
    pages/s, links written."""

    def __init__(self, total_files: int, stream: Any = None, enabled: bool = True) -> None:
        super().__init__(stream or sys.stderr, enabled)
        self.total_files = total_files

    def update(self, files: int, counts: list[int], errors: int, force: bool = False) -> None:
        if not self.enabled:
            return
        elapsed = self.elapsed()
        records, pages, links = counts
        self.show(
            f"files {files}/{self.total_files} | records {records} ({records / elapsed:.1f}/s)"
            f" | pages {pages} ({pages / elapsed:.1f}/s) | links written {links}"
            f" | errors {errors}",
            force,
        )


_shared: Any = None  # a worker process's live counters (records, pages, links), see _init
_refused: Any = None  # a worker process's view of _Spans.flags


# A young collection every this many new container objects (Python's default: 700): a page's
# extraction makes tens of thousands, most freed by reference counting before a larger
# threshold comes round (the collector: 0.65 -> 0.16 CPU s over 2000 pages, full passes gone).
GC_THRESHOLD = 10_000


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Run with the young generation's threshold at :data:`GC_THRESHOLD` (restored after)."""
    import gc

    before = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _init(shared: Any, parent: int, refused: Any = None) -> None:
    import gc
    import signal

    global _shared, _refused
    _shared, _refused = shared, refused
    signal.signal(signal.SIGTERM, _worker_stop)  # before _die_with, which may send it
    _die_with(parent)  # the pool's parent killed (out of memory): no orphan reads on
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])  # a worker process of ours
    # Ctrl-C is the pool parent's to handle: it ends the workers (SIGTERM, which deletes the
    # parts of a file not finished), without a traceback from each.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _die_with(parent: int) -> None:
    """Have the kernel send this process SIGTERM when its parent ``parent`` dies (Linux
    ``PR_SET_PDEATHSIG``; its handler deletes the parts of an unfinished file and ends it),
    and send it now if that parent is already gone."""
    import ctypes
    import signal

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return
    prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # died before the line above
        os.kill(os.getpid(), signal.SIGTERM)


def _task(task: str | tuple[Any, ...], out: str, options: dict[str, Any]) -> FileResult:
    """One file (or span of a file, see :meth:`_Spans.tasks`) in a worker process; its
    running counts go to the shared counters."""
    sent = [0, 0, 0]

    def report(res: FileResult) -> None:
        now = [res.records, res.pages, res.links]
        with _shared.get_lock():
            for i in range(3):
                _shared[i] += now[i] - sent[i]
        sent[:] = now

    if isinstance(task, tuple):
        _, source, part, start, until, crawl_id, i = task
        flags = _refused
        options = {**options, "crawl_id": crawl_id, "span": (part, start, until),
                   "refused": None if flags is None else lambda: flags[i] != 0}  # fmt: skip
    else:
        source = task
    global _reading
    try:  # all of it: a SystemExit past it is sent back as a result, and the worker lives on
        _reading = True
        try:
            res = ingest_file(source, out, progress=report, **options)
        finally:
            _reading = False
        if _stopping:  # a stop the read swallowed
            os._exit(1)
        report(res)
        return res
    except SystemExit:  # stopped (SIGTERM): the file's parts are deleted; take no other file
        os._exit(1)


_reading = False  # a worker process inside ingest_file (see _worker_stop)
_stopping = False  # a worker process told to stop inside ingest_file


def _worker_stop(signum: int, frame: Any) -> None:
    """A worker's SIGTERM handler (the pool stops, or its parent died), in force for its
    life: inside a file's read, SystemExit (the read deletes its unfinished parts, then
    :func:`_task` ends the process; a second SIGTERM meanwhile is ignored); elsewhere the
    process ends at once. One-shot (``_stop_once``) it left a worker whose parent was
    SIGKILLed ignoring SIGTERM, alive for ever and holding the results' pipe, when the
    parent's death came after the read (review15-i14b 1)."""
    global _stopping
    if not _reading:
        os._exit(1)
    if not _stopping:
        _stopping = True
        raise SystemExit(1)


# A page that takes a file's ingest through everything it loads on its first page.
_WARM_PAGE = (
    b"<html><head><title>Warm</title></head><body><nav><a href='/'>Home</a></nav><p>"
    + b"The quick brown fox jumps over the lazy dog and runs away into the woods. " * 4
    + b"<a href='https://www.warm.test/a?url=https%3A%2F%2Fb.test%2F'>a link</a></p></body>"
)


_warm = False  # warm_up done in this process


def warm_up() -> None:
    """Load what a file's ingest loads for its first page: the extraction modules and the
    native core, the language model (~0.4 CPU s), the Public Suffix List, and pyarrow's
    conversion of Python lists (its first imports pandas, ~0.25 s, unless in
    :func:`pandas_unseen`). The pool's parent does it
    once (or the caller it is forked from); the workers it forks start with all of it."""
    global _warm
    if _warm:
        return
    import pyarrow as pa
    import pyarrow.parquet

    import crawler.runner  # noqa: F401  (crawl_id_error)
    import pipelines.parquet_sink  # part_name
    import pipelines.warc  # noqa: F401  (the reader)
    from pipelines.rows import extract_rows
    from pipelines.schema import LINKS_SCHEMA, PAGES_SCHEMA

    got = extract_rows(_WARM_PAGE, "http://warm.test/", content_type="text/html",
                       x_robots_tag=None, crawl_id="warm", fetched_at=None,
                       page_cpu_budget=None, columns=True)  # fmt: skip
    pa.Table.from_pydict(got.columns, schema=LINKS_SCHEMA)
    pa.Table.from_pylist([], schema=PAGES_SCHEMA)
    _warm = True


@contextlib.contextmanager
def pandas_unseen() -> Iterator[None]:
    """Within this block ``import pandas`` fails, unless pandas is loaded already.

    pyarrow imports pandas (~0.2 CPU s, a fifth of ingest's start-up) where it may meet a
    pandas object: its first conversion of a Python list, ``to_numpy``, type inference.
    Ingest and its compaction convert lists and write Arrow, never pandas: with pandas
    unseen, pyarrow takes it for absent there and does the same without it. Its pandas calls
    (``to_pandas``) import pandas as before once the block is left."""
    if "pandas" in sys.modules:
        yield
        return
    finder = _NoPandas()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


class _NoPandas:
    """An import finder under which ``import pandas`` fails (:func:`pandas_unseen`)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"{name} left out of ingest (pandas_unseen)", name=name)


def _pool_parent(
    sources: list[str], out: str, options: dict[str, Any], workers: int, shared: Any, conn: Any,
    caller: int, split_bytes: int = 0, job: str = "",
) -> None:  # fmt: skip
    """The parent of the worker processes (forked from a caller that runs no other thread,
    else spawned): loads what a file needs once (:func:`warm_up`), forks ``workers`` processes
    from itself (they start with it loaded, in milliseconds, instead of each loading it),
    and sends each file's :class:`FileResult` on ``conn`` as the file ends, ``("error",
    text)`` if a task raised. Every process is a child that its parent waits for, so the CPU
    of all of them is counted where the caller's is (``time``, the benchmark): a fork
    server's workers are reaped by the server, which nobody waits for."""
    import gc
    import multiprocessing
    import signal
    import traceback

    # Stopped by the caller (an interrupt): leave through the pool's exit, which ends the
    # workers, instead of dying at once and leaving them. Once: a second SIGTERM must not
    # interrupt that exit. Ctrl-C (SIGINT to the whole group) is the caller's, which stops
    # this process with SIGTERM (review12-i18c 1: a SIGINT beside it replaced the stop by an
    # exit that waited for the workers' files, and a second Ctrl-C hung every process).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop_once)
    _die_with(caller)  # the caller killed (SIGKILL, out of memory): stop the workers too
    spans = _Spans(out)
    job = job or uuid.uuid4().hex[:16]  # this job's temporary parts: what _sweep may delete
    options = {**options, "job": job}
    try:
        warm_up()
        gc.freeze()  # what is loaded stays out of the workers' collections (and shared)
        ctx = multiprocessing.get_context("fork")
        queue: deque[Any] = deque(_tasks(sources, out, options, split_bytes, spans, workers))
        spans.flags = ctx.RawArray("b", max(1, len(spans.index)))  # inherited by the forks
        workers = min(workers, len(queue))
        suspects = deque[str]()
        sent, idle_rounds = [0], 0
        reported: set[str] = set()  # files whose whole read was sent

        def send(result: FileResult, task: str | tuple[Any, ...]) -> None:
            if isinstance(task, str):
                reported.add(task)
            if result.span is not None:
                source = result.span["source"]
                what, whole = spans.add(source, result)
                if what == "whole":  # its spans not begun go; it is read again, whole
                    kept = [t for t in queue if not (isinstance(t, tuple) and t[1] == source)]
                    queue.clear()
                    queue.extend(kept)
                    queue.appendleft(source)
                if whole is None:
                    return
                result = whole
            sent[0] += 1
            conn.send(result)

        while queue or suspects:
            # After a worker died, the files it may have been reading run one at a time: the
            # one that kills its worker alone is reported; the others are read again whole.
            alone, before = bool(suspects), sent[0]
            todo = deque([suspects.popleft()]) if alone else queue
            lost = _pool_round(ctx, todo, 1 if alone else workers, out, options, shared, send,
                               spans.flags)  # fmt: skip
            died = bool(lost)
            for task in lost:  # a span lost: its file is read whole (and alone)
                if isinstance(task, tuple):
                    spans.lost(task[1])
            lost, kept = _after_round(lost, queue, reported)
            queue.clear()  # the same deque: `send` appends to it
            queue.extend(kept)
            if alone and lost:
                send(_died(lost[0]), lost[0])
            else:
                suspects.extend(lost)
                suspects.extendleft(todo if alone else ())  # its pool broke before it began
            # Rounds whose pool broke before any file ended or died: bounded.
            idle_rounds = 0 if died or sent[0] > before else idle_rounds + 1
            if idle_rounds >= MAX_IDLE_ROUNDS:
                raise RuntimeError("the worker processes die before they read any file")
    except KeyboardInterrupt:
        pass  # the caller was interrupted too, and says so
    except Exception:
        conn.send(("error", traceback.format_exc(limit=-8)))
    finally:
        spans.discard()
        _sweep(out, job)
        conn.close()


def _sweep(out: str, job: str) -> None:
    """Delete the temporary parts in a local index ``out`` named with the mark ``job``: the
    pool that made them has ended its workers, so none is still written or to be renamed.
    A stop of the pool leaves the parts of spans already sealed whose results it never took,
    and of workers killed (review14-i14 4); another job's, marked otherwise, stay."""
    if "://" in out:
        return
    tail = f".{job}.tmp"
    for kind in ("links", "pages"):
        with contextlib.suppress(OSError), os.scandir(Path(out) / kind) as entries:
            for entry in entries:
                if entry.name.startswith(".part-") and entry.name.endswith(tail):
                    with contextlib.suppress(OSError):
                        os.remove(entry.path)


def _tasks(
    sources: list[str], out: str, options: dict[str, Any], split_bytes: int, spans: _Spans,
    workers: int,
) -> list[str | tuple[Any, ...]]:  # fmt: skip
    """The pool's tasks, the largest first: each file whole, or its spans (a local file of at
    least 2 x :func:`span_bytes` into a local index, see :func:`plan_spans`)."""
    tasks: list[tuple[int, str | tuple[Any, ...]]] = []
    local = "://" not in out
    split_bytes = span_bytes(sources, workers, split_bytes)
    for source in sources:
        plan = plan_spans(source, split_bytes, options.get("crawl_id")) if local else None
        if plan is None:
            tasks.append((_size(source), source))
            continue
        size = _size(source)
        for task in spans.tasks(source, *plan):
            tasks.append(((task[4] or size) - task[3], task))
    tasks.sort(key=lambda t: -t[0])  # stable: files of equal size keep their order
    return [task for _, task in tasks]


def _after_round(
    lost: list[Any], queue: deque[Any], reported: set[str]
) -> tuple[list[str], deque[Any]]:
    """After a pool round whose worker died: the files to read alone (``lost``: the tasks in
    flight, files or spans), each once and not one whose whole read was already sent
    (``reported``, review14-i14 5), and ``queue`` without them (a lost span's file may be
    queued whole after a refusal, and its spans not begun).

    >>> span = ("span", "F", 1, 0, 9, "C", 0)
    >>> _after_round([span], deque([("span", "F", 2, 9, None, "C", 0), "F", "G"]), set())
    (['F'], deque(['G']))
    >>> _after_round([span, "F"], deque(["G"]), set())  # its whole read in flight too
    (['F'], deque(['G']))
    >>> _after_round([span], deque(["G"]), {"F"})  # read whole and sent: not again
    ([], deque(['G']))
    >>> _after_round(["G", span], deque(["H"]), set())  # a whole file in flight stays
    (['G', 'F'], deque(['H']))
    """

    def file_of(task: Any) -> str:
        return task[1] if isinstance(task, tuple) else task

    files = [f for f in dict.fromkeys(map(file_of, lost)) if f not in reported]
    return files, deque(t for t in queue if file_of(t) not in files)


def _stop_once(signum: int, frame: Any) -> None:
    """The pool parent's SIGTERM handler: exit (through the pool's exit, which ends the
    workers), ignoring any later SIGTERM."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(1)


def _pool_round(
    ctx: Any, queue: deque[str], workers: int, out: str, options: dict[str, Any], shared: Any,
    send: Callable[[FileResult, Any], None], refused: Any = None,
) -> list[str]:  # fmt: skip
    """Read the files of ``queue`` (taken from it as they start) in ``workers`` forked
    processes, at most one file each in flight, sending each file's result as it ends, until
    the queue is empty or a worker dies (killed: out of memory, a signal, a crash in native
    code); then the files that were in flight, whose rows none of them published."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    lost: list[str] = []
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init,
                             initargs=(shared, os.getpid(), refused)) as pool:  # fmt: skip
        running: dict[Any, str] = {}
        procs: dict[int, Any] = {}  # the workers (the pool forgets them once broken)
        broken = False
        try:
            while queue or running:
                while queue and len(running) < workers and not lost:
                    source = queue.popleft()
                    try:
                        running[pool.submit(_task, source, out, options)] = source
                    except BrokenProcessPool:  # a worker died since the last wait: its
                        queue.appendleft(source)  # file, if any, is in `running`
                        broken = True
                        break
                    procs.update(getattr(pool, "_processes", None) or {})
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    source = running.pop(fut)
                    try:
                        send(fut.result(), source)
                    except BrokenProcessPool:
                        lost.append(source)
                        broken = True
        except Exception:
            raise  # a file's error: the file in flight beside it ends, then the pool
        except BaseException:  # stopped (SIGTERM: an interrupt): end the workers, not wait
            _end_workers(list((getattr(pool, "_processes", None) or {}).values()))
            raise
        if broken:  # a worker killed inside the call queue's lock leaves it held: the
            _end_workers([p for p in procs.values() if p.is_alive()])  # others wait for ever
    return lost


# Pools in a row that break before any file ends: then the workers cannot run at all.
MAX_IDLE_ROUNDS = 3

# Seconds stopped workers get to delete their unfinished parts before they are killed.
WORKER_STOP_SECONDS = 5.0


def _end_workers(procs: list[Any]) -> None:
    """SIGTERM (each deletes the parts of the file it read), then SIGKILL for any that has
    not ended within ``WORKER_STOP_SECONDS``: one stopped inside the result queue's lock
    would otherwise hold its siblings and the pool's shutdown for ever."""
    for proc in procs:
        proc.terminate()
    deadline = time.monotonic() + WORKER_STOP_SECONDS
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
    for proc in procs:
        if proc.is_alive():
            proc.kill()
            proc.join()


def _died(source: str) -> FileResult:
    """The result of a file whose worker process died reading it, alone, twice."""
    reason = "the worker process died reading it"
    return FileResult(
        files=1, files_failed=1, errors=Counter({reason: 1}),
        messages=[f"{source}: {reason} (killed, out of memory, or a crash in native code);"
                  " nothing of it was written"],
    )  # fmt: skip


def by_size(sources: list[str]) -> list[str]:
    """``sources``, the largest local files first (a pool that takes them in this order ends
    its last files together); sizes unknown (URIs, missing files) count as 0.

    >>> by_size(["s3://b/x.warc.gz", "/no/such.warc.gz"])
    ['s3://b/x.warc.gz', '/no/such.warc.gz']
    """

    return sorted(sources, key=lambda s: -_size(s))


def _size(source: str) -> int:
    """A local file's size; 0 for URIs and missing files."""
    if "://" in source:
        return 0
    try:
        return os.stat(source).st_size
    except OSError:
        return 0


def run_ingest(
    sources: list[str],
    out: str,
    *,
    workers: int = 1,
    crawl_id: str | None = None,
    max_body_bytes: int | None = None,
    page_cpu_budget: float | None = None,
    progress: bool = True,
    messages: Any = None,
    meanwhile: Callable[[], None] | None = None,
    split_bytes: int = SPLIT_BYTES,
) -> IngestSummary:
    """Ingest ``sources`` into ``out`` with ``workers`` processes (one file each at a time;
    1: in this process). Each file's error lines go to ``messages`` (stderr) as it ends.
    ``meanwhile``: called once in this process while the worker processes start (the
    caller's own loading, on a core they leave idle); with one worker, not called. With
    several, a local file of at least 2 x ``split_bytes`` (0: none) is read in spans by
    any of them (:func:`plan_spans`), with the rows reading it whole gives."""
    messages = messages or sys.stderr
    # A file named twice (a glob and its own name, a list repeating a line) is read once: its
    # parts' names are its own, so a second read only replaces the first (review14-i14 1).
    sources = list(dict.fromkeys(sources))
    options = {"crawl_id": crawl_id, "max_body_bytes": max_body_bytes,
               "page_cpu_budget": page_cpu_budget}  # fmt: skip
    total = FileResult()
    bar = IngestProgress(len(sources), enabled=progress)
    started = time.monotonic()

    def finished(res: FileResult) -> None:
        total.add(res)
        bar.stream.write("\r\x1b[2K" if bar.enabled and bar.tty else "")
        for line in res.messages:
            print(f"linkcrawl: {line}", file=messages, flush=True)

    if workers <= 1 or (len(sources) <= 1 and not _splits(sources, out, crawl_id, workers,
                                                          split_bytes)):  # fmt: skip
        # SIGTERM as Ctrl-C: the file's unfinished parts are deleted (review12-i18c 2).
        with _fewer_collections(), _term_as_interrupt():
            _ingest_here(sources, out, options, total, bar, finished)
    else:
        _in_pool(by_size(sources), out, options, workers, total, bar, finished, meanwhile,
                 split_bytes)  # fmt: skip
    bar.update(total.files, [total.records, total.pages, total.links],
               sum(total.errors.values()), force=True)  # fmt: skip
    bar.done()
    return IngestSummary(total=total, files=len(sources), seconds=time.monotonic() - started)


def _splits(sources: list[str], out: str, crawl_id: str | None, workers: int,
            split_bytes: int) -> bool:  # fmt: skip
    """Whether the job's one file would be read in spans (else it is read in this process:
    a pool of one worker is a fork and a warm-up for nothing, review14-i14 8). The pool's
    parent plans it again (a few inflated gzip headers a cut)."""
    return (len(sources) == 1 and "://" not in out
            and plan_spans(sources[0], span_bytes(sources, workers, split_bytes), crawl_id)
            is not None)  # fmt: skip


def _ingest_here(
    sources: list[str], out: str, options: dict[str, Any], total: FileResult,
    bar: IngestProgress, finished: Callable[[FileResult], None],
) -> None:  # fmt: skip
    """``run_ingest`` with one worker: every file in this process, one after the other."""
    live = [0, 0, 0]
    for source in sources:
        base = [total.records, total.pages, total.links]

        def report(res: FileResult, base: list[int] = base) -> None:
            live[:] = [base[0] + res.records, base[1] + res.pages, base[2] + res.links]
            bar.update(total.files, live, sum(total.errors.values()))

        finished(ingest_file(source, out, progress=report, **options))
        bar.update(total.files, [total.records, total.pages, total.links],
                   sum(total.errors.values()))  # fmt: skip


def _in_pool(
    sources: list[str], out: str, options: dict[str, Any], workers: int, total: FileResult,
    bar: IngestProgress, finished: Callable[[FileResult], None],
    meanwhile: Callable[[], None] | None = None, split_bytes: int = 0,
) -> None:  # fmt: skip
    """``run_ingest`` with ``workers`` processes, forked by one parent process
    (:func:`_pool_parent`); each file's result is taken as it ends. The parent is forked from
    this process, warmed up first, when this process runs no other thread (the CLI: no
    second interpreter to start and load ~1 CPU s of modules while the cores wait, no
    resource tracker); else started fresh (spawn), inheriting no thread or socket."""
    import multiprocessing

    if _forks_safely():
        warm_up()
        ctx = multiprocessing.get_context("fork")
    else:
        ctx = multiprocessing.get_context("spawn")
    shared = ctx.Array("q", 3)
    results, send = ctx.Pipe(duplex=False)
    job = uuid.uuid4().hex[:16]  # this job's temporary parts: what _sweep may delete
    parent = ctx.Process(target=_pool_parent, name="linkcrawl ingest pool",
                         args=(sources, out, options, workers, shared, send,
                               os.getpid(), split_bytes, job))  # fmt: skip
    parent.start()
    send.close()  # the parent's end only (and its workers'): their exits end the results
    with _term_as_interrupt():
        try:
            failed = _take_results(parent, results, sources, total, bar, finished, shared,
                                   meanwhile)  # fmt: skip
        finally:
            _sweep_after(parent, results, out, job)
    if failed is not None or total.files < len(sources):
        raise PoolError(f"ingest's worker processes failed (exit code {parent.exitcode})"
                        + (f":\n{failed}" if failed else ""))  # fmt: skip


def _sweep_after(parent: Any, results: Any, out: str, job: str) -> None:
    """The pool's ``parent`` killed (SIGKILL, the OOM killer) swept none of the job's
    temporary parts (:func:`_sweep`): they go here once its workers have ended too (they
    hold the results' pipe open: its end is theirs), within ``WORKER_STOP_SECONDS`` + 5 s;
    a worker that outlives that leaves them (review15-i14 4). Closes ``results``."""
    try:
        with _signals_ignored():  # a second Ctrl-C must not stop the sweep half-way
            killed = parent.exitcode is not None and parent.exitcode < 0
            if killed and _ended(results, WORKER_STOP_SECONDS + 5.0):
                _sweep(out, job)
    finally:
        results.close()


def _ended(conn: Any, seconds: float) -> bool:
    """Whether every writer of ``conn`` has closed it (read to its end) within ``seconds``."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0 and conn.poll(left):
        try:
            conn.recv()
        except (EOFError, OSError):
            return True
    return False


def _forks_safely() -> bool:
    """Whether this process may fork its pool's parent: on Linux (a forked process may crash
    in macOS's system libraries), with no thread but this one (a fork copies the locks
    other threads hold, held for ever in the child)."""
    import threading

    return sys.platform.startswith("linux") and threading.active_count() == 1


@contextlib.contextmanager
def _term_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, ``timeout``) taken as Ctrl-C while the pool runs: the caller's
    interrupt path then stops the pool's processes, which would otherwise read on, orphaned."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def _take_results(
    parent: Any, results: Any, sources: list[str], total: FileResult, bar: IngestProgress,
    finished: Callable[[FileResult], None], shared: Any, meanwhile: Callable[[], None] | None,
) -> str | None:  # fmt: skip
    """Each file's result from the pool's ``parent`` as it ends; the pool's error, if any."""
    failed = None
    gone = None  # when the parent was first seen ended
    try:
        if meanwhile is not None:
            meanwhile()
        while True:
            if results.poll(0.25):
                try:
                    got = results.recv()
                except EOFError:
                    break
                if isinstance(got, FileResult):
                    finished(got)
                else:
                    failed = got[1]
                gone = None  # results still waiting: a slow reader is never cut off
            elif not parent.is_alive():
                # The parent ended and the pipe is idle: its workers get as long as a stop
                # gives them. One alive past that (holding the pipe open) must not hold this
                # call for ever (review15-i14b 1): the pool failed.
                gone = gone or time.monotonic()
                if time.monotonic() - gone > WORKER_STOP_SECONDS + 5.0:
                    break
            bar.update(total.files, list(shared[:]), sum(total.errors.values()))
    finally:
        stopping = parent.is_alive() and failed is None and total.files < len(sources)
        if stopping:
            parent.terminate()  # an interrupt: the parent stops its workers
        with _signals_ignored():  # a second Ctrl-C must not leave the pool behind
            parent.join(WORKER_STOP_SECONDS + 5.0 if stopping else None)
            if parent.is_alive():  # its workers die with it (PR_SET_PDEATHSIG)
                parent.kill()
                parent.join()
    return failed


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    """SIGINT and SIGTERM ignored inside (the main thread only: elsewhere they are not
    ours to set)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before: dict[int, Any] = {}
    try:
        for s in (signal.SIGINT, signal.SIGTERM):
            before[s] = signal.signal(s, signal.SIG_IGN)
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
