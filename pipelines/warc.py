"""Web archives to the rows a crawl writes: WARC 1.0/1.1 and ARC records, one at a time.

:func:`iter_records` reads an archive stream (gzip per record, whole-file gzip or
uncompressed: we gunzip, warcio splits records, ARC included) and yields
:class:`ArchiveRecord` objects whose block is read lazily. :func:`record_rows` turns one record
into the ``pages`` row and ``links`` rows a crawl writes for the same response (the very
functions of pipelines/rows.py), under the crawl's byte limits: the HTTP head is parsed with
the crawl's header caps, the payload is read up to ``max_body_bytes`` and de-chunked and
decoded with the bounded decoders of pipelines/decompress.py. Nothing here knows Scrapy, Redis
or files.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Any

from pipelines.decompress import decode_body, parse_encodings
from pipelines.rows import extract_rows, fill_page, is_html, page_row
from pipelines.urls import normalize_url, resolve_link

PAGE_TYPES = frozenset({"response", "resource", "revisit"})  # the records that are pages
REDIRECTS = frozenset({301, 302, 303, 307, 308})
WARCINFO_MAX_BYTES = 64 * 1024  # of a warcinfo block read for its fields
_GZIP_MAGIC = b"\x1f\x8b"
_READ = 256 * 1024  # compressed bytes read at a time
_CHUNK = 1 << 20  # decompressed bytes made at a time (a gzip bomb costs no more)
_BLOCK = 256 * 1024  # warcio's reads (its default, 16 KiB, costs many Python calls a page)


def _inflater() -> tuple[Any, tuple[type[Exception], ...]]:
    """The zlib module that inflates archives, and the errors it raises: zlib-ng's when the
    optional ``zlib-ng`` package is installed (``pip install linkcrawl[fast]``; about half
    the CPU of zlib 1.2's inflate, the same bytes and the same errors), else the standard
    library's. ``LINKCRAWL_ZLIB_NG=0`` keeps the standard library's (to compare).

    >>> _inflater()[1][0] is zlib.error
    True
    """
    if os.environ.get("LINKCRAWL_ZLIB_NG", "1") != "0":
        try:
            from zlib_ng import zlib_ng
        except ImportError:
            pass
        else:
            return zlib_ng, (zlib.error, zlib_ng.error)
    return zlib, (zlib.error,)


_ZLIB, _ZLIB_ERRORS = _inflater()


@dataclass(frozen=True)
class Limits:
    """The crawl's bounds, applied to each record (crawler/defaults.py has their values)."""

    max_body_bytes: int
    max_header_bytes: int
    max_header_lines: int
    page_cpu_budget: float | None


@dataclass
class ArchiveRecord:
    """One record: its WARC headers and a stream of its block (read at most once)."""

    rec_type: str
    url: str | None
    date: str | None
    headers: dict[str, str]
    stream: IO[bytes]
    index: int  # the record's number in its file, from 0
    #: What warcio found wrong on the way to this record (the previous one's end), or None.
    warning: str | None = None

    @property
    def truncated(self) -> str | None:
        return self.headers.get("warc-truncated")


class ArchiveError(Exception):
    """The archive stream itself is broken (not WARC/ARC, a cut gzip member...): the records
    after it cannot be found. ``index``: the record it broke at (or after)."""

    def __init__(self, text: str, index: int = 0) -> None:
        super().__init__(text)
        self.index = index


def gunzipped(fh: IO[bytes], start: int = 0, mark: int | None = None) -> IO[bytes]:
    """``fh``, gunzipped when it starts with a gzip member: gzip per record and whole-file
    gzip read alike (every member in turn), buffered (``peek`` works). ``start``: the file
    offset ``fh`` is at; ``mark``: see :attr:`_Gunzip.seam`.

    >>> import gzip, io
    >>> gunzipped(io.BytesIO(gzip.compress(b"WARC/1.1") + gzip.compress(b"\\r\\n"))).read()
    b'WARC/1.1\\r\\n'
    """
    if not hasattr(fh, "peek"):
        fh = io.BufferedReader(_RawReader(fh), 256 * 1024)  # type: ignore[assignment]
    if fh.peek(2)[:2] == _GZIP_MAGIC:  # type: ignore[attr-defined]
        return _Gunzip(fh, start, mark)  # type: ignore[return-value]
    return fh


class TruncatedGzip(OSError):
    """The stream ends inside a gzip member (not EOFError: warcio takes that for the end)."""


class _Gunzip:
    """A gzip stream of any number of members, decoded in bounded pieces. Unlike GzipFile it
    gives every byte of a cut last member before it raises :class:`TruncatedGzip` (a read
    returns what is decoded, short), so that each record before the cut is read."""

    def __init__(self, fh: IO[bytes], start: int = 0, mark: int | None = None) -> None:
        self.fh = fh
        self.at = start  # the file offset of the next byte read from fh
        self.made = 0  # bytes decoded so far
        self.mark = mark
        #: (file offset, decoded offset) of the first member that starts at ``mark`` or after
        self.seam: tuple[int, int] | None = None
        self.d = _ZLIB.decompressobj(31)
        self.fresh = True  # no byte of the current member fed yet
        self.tail = b""  # input read but not fed
        self.out = b""
        self.pos = 0
        self.error: Exception | None = None
        self.ended = False

    def _ready(self) -> bool:
        """Whether decoded bytes wait (decoding more if none do)."""
        while self.pos >= len(self.out) and self.error is None and not self.ended:
            self._fill()
        return self.pos < len(self.out)

    def peek(self, n: int = 1) -> bytes:
        self._ready()
        return self.out[self.pos : self.pos + max(n, 1)]

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            return b"".join(iter(lambda: self.read(_CHUNK), b""))
        if not self._ready():
            if self.error is not None:
                raise self.error
            return b""
        data = self.out[self.pos : self.pos + n]
        self.pos += len(data)
        return data

    def _fill(self) -> None:
        data = self.tail
        if not data:
            data = self.fh.read(_READ)
            self.at += len(data)
        self.made += len(self.out)
        self.tail, self.out, self.pos = b"", b"", 0
        if not data:
            if self.fresh:
                self.ended = True
            else:
                self.error = TruncatedGzip("truncated gzip member")
            return
        if self.fresh:
            data = data.lstrip(b"\0")  # zero padding between members
            if not data:
                return
            if not _GZIP_MAGIC.startswith(data[:2]):
                self.error = OSError("corrupt gzip data (not a gzip member after a member)")
                return
            self.fresh = False
            if self.mark is not None and self.seam is None and self.at - len(data) >= self.mark:
                self.seam = (self.at - len(data), self.made)
        try:
            self.out = self.d.decompress(data, _CHUNK)
        except _ZLIB_ERRORS as exc:
            self.error = OSError(f"corrupt gzip data ({exc})")
            return
        if self.d.eof:
            self.tail = self.d.unused_data
            self.d, self.fresh = _ZLIB.decompressobj(31), True
        else:
            self.tail = self.d.unconsumed_tail


class _RawReader(io.RawIOBase):
    """Any object with ``read(n)`` (a pyarrow stream, an HTTP response) as a raw stream."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self.fh.read(len(b))
        b[: len(data)] = data
        return len(data)


def iter_records(
    fh: IO[bytes], *, start: int = 0, until: int | None = None, seam: list[Any] | None = None
) -> Iterator[ArchiveRecord]:
    """The records of an archive stream (buffered: ``peek`` is used), in order. The block of
    each is skipped when the next record is asked for, whether it was read or not. Raises
    :class:`ArchiveError` where the stream stops making sense.

    A span of a local file (``fh`` at file offset ``start``): the records up to the first
    that starts at file offset ``until`` or after (a gzip member's start for gzip per
    record), which is read but not yielded; ``seam`` then gets (that record's file offset,
    or None where it does not start a member; the warning about the record before it). The
    record numbers count from the span's start.

    >>> import io
    >>> raw = (b"WARC/1.0\\r\\nWARC-Type: resource\\r\\nWARC-Target-URI: http://a.test/\\r\\n"
    ...        b"WARC-Date: 2024-05-18T01:02:03Z\\r\\nContent-Length: 4\\r\\n\\r\\n<p>x\\r\\n\\r\\n")
    >>> [(r.rec_type, r.url, r.stream.read()) for r in iter_records(io.BufferedReader(io.BytesIO(raw)))]
    [('resource', 'http://a.test/', b'<p>x')]
    """  # noqa: E501
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    try:
        stream = gunzipped(fh, start, until)
        head = stream.peek(64)[:64].lstrip()  # type: ignore[attr-defined]
    except (EOFError, OSError) as exc:
        raise ArchiveError(_archive_error(exc, 0), 0) from None
    if head and not head.startswith((b"WARC/", b"filedesc:")):
        raise ArchiveError(f"not a WARC or ARC file (it starts with {head[:20]!r})")
    archive = ArchiveIterator(stream, no_record_parse=True, arc2warc=True, block_size=_BLOCK)
    it = iter(archive)
    index = 0
    while True:
        said = io.StringIO()
        try:
            with contextlib.redirect_stderr(said):  # warcio prints its warnings: we say them
                rec = next(it)
        except StopIteration:
            return
        except (ArchiveLoadFailed, EOFError, OSError, ValueError) as exc:
            raise ArchiveError(_archive_error(exc, index), index) from None
        warning = None
        if "not followed by newline" in said.getvalue() and index:
            warning = f"record {index - 1}: not followed by a blank line (a wrong Content-Length?)"
        if until is not None and seam is not None:
            at = _span_end(stream, archive.offset, until)
            if at is not False:
                seam.append((at, warning))
                return
        h = rec.rec_headers
        headers = {k.lower(): v for k, v in h.headers}
        url = headers.get("warc-target-uri")
        yield ArchiveRecord(
            rec_type=(rec.rec_type or "unknown").lower(),
            url=url.strip().strip("<>") if url else None,  # wget writes <http://...>
            date=headers.get("warc-date"),
            headers=headers,
            stream=_Guarded(rec.raw_stream, index),
            index=index,
            warning=warning,
        )
        index += 1


def _span_end(stream: Any, offset: int, until: int) -> int | bool | None:
    """Whether the record at ``offset`` of ``stream`` (decoded offset for gzip, else file
    offset) is past a span's end ``until``: False if not; else its file offset, or None if
    it does not start where a member does (gzip) or at ``until`` (uncompressed)."""
    if isinstance(stream, _Gunzip):
        if stream.seam is None or offset < stream.seam[1]:
            return False
        return stream.seam[0] if offset == stream.seam[1] else None
    if offset < until:
        return False
    return offset if offset == until else None


class _Guarded:
    """A record's block, whose read raises :class:`ArchiveError` where the archive breaks."""

    def __init__(self, stream: Any, index: int) -> None:
        self.stream, self.index = stream, index

    def read(self, n: int | None = -1) -> bytes:
        try:
            return self.stream.read() if n is None or n < 0 else self.stream.read(n)
        except (EOFError, OSError, ValueError, *_ZLIB_ERRORS) as exc:
            raise ArchiveError(_archive_error(exc, self.index), self.index) from None


def _archive_error(exc: BaseException, index: int) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, (EOFError, TruncatedGzip)) or "end-of-stream" in text:
        what = "truncated gzip member (the file ends inside a compressed record)"
    elif text.startswith("corrupt gzip data"):
        what = text[:160]
    elif index == 0:
        what = f"not a WARC or ARC file ({text[:120]})"
    else:
        what = f"unreadable record ({text[:160]})"
    return f"after record {index}: {what}" if index else what


# -- the HTTP head of a response record ---------------------------------------------------
@dataclass
class HttpHead:
    """A parsed HTTP response head: status and headers (names lower-cased, in order)."""

    status: int
    headers: list[tuple[str, str]]

    def get(self, name: str) -> str | None:
        """The header's last value, as Scrapy's ``Headers.get`` gives the crawl."""
        for k, v in reversed(self.headers):
            if k == name:
                return v
        return None

    def get_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]


class HeadError(Exception):
    """An HTTP head that a crawl would have refused too."""


_STATUS = re.compile(rb"HTTP/\d(?:\.\d)?[ \t]+(\d{3})(?:[ \t]|$)")
_HEAD_END = re.compile(rb"\r?\n\r?\n")


def split_head(data: bytes, *, max_bytes: int, eof: bool) -> tuple[bytes, int] | None:
    """(the head's bytes, where the payload starts) in the first bytes of a block; None when
    the head does not end within ``data`` and more may come. The whole block is the head when
    it ends without a blank line (``eof``).

    >>> split_head(b"HTTP/1.1 200 OK\\r\\nA: b\\r\\n\\r\\n<p>", max_bytes=100, eof=False)
    (b'HTTP/1.1 200 OK\\r\\nA: b', 25)
    >>> split_head(b"HTTP/1.1 200 OK\\r\\nA: b", max_bytes=100, eof=True)
    (b'HTTP/1.1 200 OK\\r\\nA: b', 21)
    """
    m = _HEAD_END.search(data, 0, max_bytes + 4)
    if m is not None and m.start() <= max_bytes:
        return data[: m.start()], m.end()
    if len(data) > max_bytes:
        raise HeadError(f"headers too large: over {max_bytes} bytes")
    if eof:
        return data.rstrip(b"\r\n"), len(data)
    return None


def parse_http_head(head: bytes, *, max_lines: int) -> HttpHead:
    """Status and headers of an HTTP response head (obsolete line folding joined).

    >>> h = parse_http_head(b"HTTP/1.1 301 Moved\\r\\nLocation: /b\\r\\nX-A: 1\\r\\n  2",
    ...                     max_lines=10)
    >>> h.status, h.get("location"), h.get("x-a")
    (301, '/b', '1 2')
    >>> parse_http_head(b"GET / HTTP/1.1", max_lines=10)
    Traceback (most recent call last):
    ...
    pipelines.warc.HeadError: http: bad status line 'GET / HTTP/1.1'
    """
    if not head.strip():
        raise HeadError("http: no HTTP head (an empty record)")
    lines = head.split(b"\n")
    if len(lines) > max_lines:
        raise HeadError(f"headers too large: over {max_lines} lines")
    first = lines[0].strip()
    m = _STATUS.match(first)
    if m is None:
        raise HeadError(f"http: bad status line {first[:60].decode('latin-1')!r}")
    headers: list[tuple[str, str]] = []
    for raw in lines[1:]:
        line = raw.rstrip(b"\r")
        if line[:1] in (b" ", b"\t") and headers:  # obs-fold
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip().decode('latin-1')}")
            continue
        name, sep, value = line.partition(b":")
        if sep and name.strip():
            headers.append((name.strip().lower().decode("latin-1"),
                            value.strip().decode("latin-1")))  # fmt: skip
    return HttpHead(int(m.group(1)), headers)


_CHUNK_SIZE = re.compile(rb"[ \t]*([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?\r?\n")


def dechunk(data: bytes, limit: int) -> tuple[bytes, bool, bool] | None:
    """Undo ``Transfer-Encoding: chunked``, keeping at most ``limit`` bytes: (body, cut,
    short). None when ``data`` does not start as a chunked body (archives often store it
    de-chunked with the header kept: it is then read as is).

    >>> dechunk(b"3\\r\\nabc\\r\\n2;x=1\\r\\nde\\r\\n0\\r\\n\\r\\n", 100)
    (b'abcde', False, False)
    >>> dechunk(b"3\\r\\nabc\\r\\n9\\r\\nde", 100), dechunk(b"<html>", 100)
    ((b'abcde', False, True), None)
    >>> dechunk(b"5\\r\\nabcde\\r\\n0\\r\\n\\r\\n", 2)
    (b'ab', True, False)
    """
    m = _CHUNK_SIZE.match(data)
    if m is None:
        return None
    out = bytearray()
    pos = 0
    while m is not None:
        size = int(m.group(1), 16)
        pos = m.end()
        if size == 0:
            return bytes(out), False, False
        piece = data[pos : pos + size]
        room = limit - len(out)
        if len(piece) > room:
            out += piece[:room]
            return bytes(out), True, False
        out += piece
        if len(piece) < size:
            return bytes(out), False, True
        pos += size
        if data.startswith(b"\r\n", pos):
            pos += 2
        elif data.startswith(b"\n", pos):
            pos += 1
        m = _CHUNK_SIZE.match(data, pos)
    return bytes(out), False, True  # no last chunk: the body was cut


# -- dates -----------------------------------------------------------------------------------
_DATE = re.compile(
    r"(\d{4})-?(\d\d)-?(\d\d)(?:T|\s*)(\d\d):?(\d\d):?(\d\d)(?:\.(\d{1,9}))?\s*(?:Z|[+-]00:?00)?"
)


def warc_date(text: str | None) -> datetime | None:
    """A WARC-Date (WARC 1.0 seconds, 1.1 fractions; ARC's 14 digits) at the index's
    millisecond precision, UTC; None if it is not a date.

    >>> warc_date("2024-05-18T01:58:10.123456Z")
    datetime.datetime(2024, 5, 18, 1, 58, 10, 123000, tzinfo=datetime.timezone.utc)
    >>> warc_date("20140216050221"), warc_date("yesterday")
    (datetime.datetime(2014, 2, 16, 5, 2, 21, tzinfo=datetime.timezone.utc), None)
    """
    m = _DATE.fullmatch(text.strip()) if text else None
    if m is None:
        return None
    y, mo, d, h, mi, s, frac = m.groups()
    ms = int((frac or "0")[:3].ljust(3, "0"))
    try:
        return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), ms * 1000, timezone.utc)
    except ValueError:
        return None


def warcinfo_fields(rec: ArchiveRecord) -> dict[str, str]:
    """The ``name: value`` fields of a warcinfo record (its first 64 KiB).

    >>> import io
    >>> rec = ArchiveRecord("warcinfo", None, None, {}, io.BytesIO(
    ...     b"isPartOf: CC-MAIN-2024-22\\r\\noperator: Common Crawl\\r\\n"), 0)
    >>> warcinfo_fields(rec)["ispartof"]
    'CC-MAIN-2024-22'
    """
    text = rec.stream.read(WARCINFO_MAX_BYTES).decode("utf-8", "replace")
    out: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip():
            out.setdefault(name.strip().lower(), value.strip())
    return out


# -- from a record to rows -----------------------------------------------------------------
@dataclass
class RecordRows:
    """What a record gave: a page row and its links; or why it gave none (``skipped``: not a
    page; ``error``: a broken record, said once per record)."""

    page: dict[str, Any] | None = None
    links: list[dict[str, Any]] = field(default_factory=list)
    skipped: str | None = None
    error: str | None = None
    #: A bound cut the record (e.g. "body_bytes"): the page row is still written.
    notice: str | None = None
    #: With ``columns=True``: the links as columns (pipelines/rows.py ``link_columns``).
    columns: dict[str, list[Any]] | None = None

    @property
    def link_count(self) -> int:
        """How many links the record gave (rows or columns)."""
        return len(self.columns["target_url"]) if self.columns else len(self.links)


def record_rows(
    rec: ArchiveRecord, *, crawl_id: str, limits: Limits, columns: bool = False
) -> RecordRows:
    """The rows a crawl writes for the response ``rec`` archived, the same bytes, URL and
    headers giving the same rows (depth 0: an archive says nothing of link hops).
    ``columns``: the links as columns in ``columns`` (what ingest writes), not as rows.

    >>> import io
    >>> block = (b"HTTP/1.1 200 OK\\r\\nContent-Type: text/html\\r\\n\\r\\n"
    ...          b'<a href="/x" rel="nofollow">X</a>')
    >>> rec = ArchiveRecord("response", "http://a.test/", "2024-05-18T01:02:03Z", {},
    ...                     io.BytesIO(block), 1)
    >>> out = record_rows(rec, crawl_id="c", limits=Limits(1000, 1000, 10, None))
    >>> out.page["status"], out.page["out_links"], out.page["warc_record_type"]
    (200, 1, 'response')
    >>> [(r["target_url"], r["nofollow"]) for r in out.links]
    [('http://a.test/x', True)]
    """
    kind = rec.rec_type
    if kind not in PAGE_TYPES:
        return RecordRows(skipped=kind)
    url = normalize_url(rec.url) if rec.url else None
    if url is None:
        return RecordRows(skipped="not_http_url")
    fetched_at = warc_date(rec.date)
    if fetched_at is None:
        return RecordRows(error=f"warc: bad WARC-Date {str(rec.date)[:40]!r} ({url[:200]})")
    page = page_row(url, crawl_id=crawl_id, fetched_at=fetched_at, depth=0,
                    warc_record_type=kind)  # fmt: skip
    out = RecordRows(page=page)
    if rec.truncated:
        page["truncated"] = True
        page["limits_hit"].append("warc_truncated")
    stream = rec.stream
    if kind == "resource":  # no HTTP: the WARC Content-Type is the page's
        status: int | None = None
        content_type = rec.headers.get("content-type")
        head = HttpHead(200, [])
        rest, start = b"", 0
    else:
        try:
            head, rest, start = _read_head(stream, limits)
        except HeadError as exc:
            if kind == "revisit":  # a revisit may hold no HTTP head at all
                return out
            page["error"] = str(exc)
            out.error = str(exc)
            return out
        status = head.status
        content_type = head.get("content-type")
    page["status"] = status
    page["content_type"] = content_type
    x_robots = head.get("x-robots-tag")
    page["x_robots_tag"] = x_robots
    with contextlib.suppress(ValueError):  # the stored size, for a payload not read
        page["content_length"] = max(int(rec.headers.get("content-length", "")) - start, 0)
    if kind == "revisit":
        return out  # the payload is elsewhere: a revisit row has no links
    if status in REDIRECTS:
        location = head.get("location")
        target = resolve_link(location, url) if location else None
        page["redirect_to"] = target
        page["final_url"] = target
        return out
    if status is not None and not 200 <= status < 300:
        return out
    if content_type and not is_html(content_type, b""):
        return out  # recorded, and its payload never read
    body = _read_body(stream, rest, head, page, out, limits)
    page["content_length"] = len(body)
    if not is_html(content_type, body) or (not body and page.get("error")):
        return out
    done = extract_rows(body, url, content_type=content_type, x_robots_tag=x_robots,
                        crawl_id=crawl_id, fetched_at=fetched_at,
                        page_cpu_budget=limits.page_cpu_budget,
                        content_language=head.get("content-language"),
                        columns=columns)  # fmt: skip
    out.links = done.links
    out.columns = done.columns
    if done.page is None:
        page["error"] = done.error
        page["limits_hit"].extend(done.limits_hit)
        out.error = f"{done.error} ({url[:200]})"
    else:
        fill_page(page, done.page)
    return out


def _read_head(stream: IO[bytes], limits: Limits) -> tuple[HttpHead, bytes, int]:
    """The HTTP head at the start of a block, the payload bytes read past it, and the
    payload's offset in the block."""
    want = limits.max_header_bytes + 4
    data = stream.read(want)
    found = split_head(data, max_bytes=limits.max_header_bytes, eof=len(data) < want)
    if found is None:  # pragma: no cover - split_head raises when data is full
        raise HeadError(f"headers too large: over {limits.max_header_bytes} bytes")
    head_bytes, start = found
    head = parse_http_head(head_bytes, max_lines=limits.max_header_lines)
    return head, data[start:], start


def _read_body(
    stream: IO[bytes], rest: bytes, head: HttpHead, page: dict[str, Any], out: RecordRows,
    limits: Limits,
) -> bytes:  # fmt: skip
    """The payload as the crawl's parser gets it: cut, de-chunked, decoded, flags set."""
    limit = limits.max_body_bytes
    chunked = "chunked" in ",".join(head.get_all("transfer-encoding")).lower()
    # Chunk framing costs a few bytes per chunk: read a little more to keep `limit` of payload.
    want = limit + 1 + (limit // 16 + 1024 if chunked else 0) - len(rest)
    raw = rest + stream.read(max(want, 0)) if want > 0 else rest
    cut = False
    if chunked and (plain := dechunk(raw, limit)) is not None:
        raw, cut, short = plain
        if short:
            page["limits_hit"].append("short_body")
            page["truncated"] = True
    elif len(raw) > limit:
        raw, cut = raw[:limit], True
    if cut:
        page["truncated"] = True
        page["limits_hit"].append("body_bytes")
        out.notice = f"payload over {limit} bytes, cut (truncated) ({page['url'][:200]})"
    encodings = parse_encodings(head.get_all("content-encoding"))
    if not encodings:
        return raw
    body, decoded_cut, error = decode_body(raw, encodings, limit)
    if decoded_cut:
        page["truncated"] = True
        page["limits_hit"].append("decoded_bytes")
    if error is not None:
        page["error"] = error
    return body


# -- spans of a local file, for reading one file in several processes -----------------------
_WARC_LINE = b"WARC/1."
_PLAIN_START = b"\r\n\r\n" + _WARC_LINE
MAX_CANDIDATES = 64  # gzip member headers tried per span start (each inflates a few bytes)


def span_start(fh: IO[bytes], pos: int, limit: int, gzipped: bool) -> int | None:
    """The first offset in ``[pos, limit)`` of the seekable file ``fh`` where a record may
    start: a gzip member whose first bytes decode to ``WARC/1.`` (``gzipped``), else a
    ``WARC/1.`` line after a blank line. A guess: the reader of the span before confirms it
    (:func:`iter_records`' ``seam``), since the bytes of a record (a stored deflate block, a
    payload) can look like either. None: none found (or ``MAX_CANDIDATES`` tried).

    >>> import gzip, io
    >>> rec = gzip.compress(b"WARC/1.1\\r\\n\\r\\n\\r\\n\\r\\n", mtime=0)
    >>> f = io.BytesIO(rec + b"\\x1f\\x8b\\x08junk" + rec)
    >>> span_start(f, 1, 100, True), span_start(f, 1, 30, True)
    (38, None)
    >>> span_start(io.BytesIO(b"WARC/1.0\\r\\n\\r\\nxx\\r\\n\\r\\nWARC/1.0"), 1, 100, False)
    18
    """
    magic = b"\x1f\x8b\x08" if gzipped else _PLAIN_START
    tried, at = 0, pos
    while at < limit:
        fh.seek(at)
        block = fh.read(min(1 << 20, limit - at) + len(magic) - 1)
        i = block.find(magic)
        while i >= 0 and at + i < limit:
            if not gzipped:
                return at + i + 4
            tried += 1
            if tried > MAX_CANDIDATES:
                return None
            if _member_starts_warc(fh, at + i):
                return at + i
            i = block.find(magic, i + 1)
        if len(block) < len(magic):
            return None
        at += len(block) - len(magic) + 1
    return None


def _member_starts_warc(fh: IO[bytes], at: int) -> bool:
    """Whether the gzip member at ``at`` (its header flags valid) decodes to ``WARC/1.``."""
    fh.seek(at)
    data = fh.read(64 * 1024)
    if len(data) < 10 or data[3] & 0xE0:  # reserved flag bits set: no member
        return False
    try:
        out = _ZLIB.decompressobj(31).decompress(data, len(_WARC_LINE))
    except _ZLIB_ERRORS:
        return False
    return out == _WARC_LINE
