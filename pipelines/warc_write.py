"""WARC/1.1 output: records built from bytes, and files written atomically, rotated by size.

No Scrapy here: :func:`exchange_records` turns one HTTP exchange (its request head, the
response head as received, the body) into a request and a response record, each its own gzip
member; :class:`WarcFileWriter` appends members to a file that exists under its final name
only once it is complete. The Scrapy side is crawler/warc.py.

Records are written as Heritrix and Common Crawl write them: ``WARC-Block-Digest`` and
``WARC-Payload-Digest`` are ``sha1:`` + base32 of the SHA-1; the request record is
``WARC-Concurrent-To`` the response record; ``WARC-Date`` has millisecond precision (WARC 1.1
allows fractions of a second), the pages row's ``fetched_at``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import uuid
import zlib
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

WARC_VERSION = b"WARC/1.1"
FORMAT = "WARC File Format 1.1"
CONFORMS_TO = "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/"
PREFIX = "LINKCRAWL"
SUFFIX = ".warc.gz"
OPEN_SUFFIX = ".open"  # Heritrix's: a file being written, or left by a killed writer
# Connection-level headers whose value no longer describes the body as stored: renamed, as
# Common Crawl does, so that a reader frames the stored body by Content-Length.
_RENAMED = {b"transfer-encoding": b"X-Crawler-Transfer-Encoding",
            b"content-length": b"X-Crawler-Content-Length"}  # fmt: skip


def warc_date(when: datetime) -> str:
    """``WARC-Date`` of a UTC datetime, to the millisecond.

    >>> warc_date(datetime(2026, 12, 6, 11, 26, 9, 123456, tzinfo=timezone.utc))
    '2026-12-06T11:26:09.123Z'
    """
    when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def sha1_digest(data: bytes) -> str:
    """A digest header's value: ``sha1:`` and the base32 SHA-1, as Heritrix and CC write it.

    >>> sha1_digest(b"")
    'sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ'
    """
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode("ascii")


def record_id() -> str:
    """A new ``WARC-Record-ID``.

    >>> record_id().startswith("<urn:uuid:") and record_id().endswith(">")
    True
    """
    return f"<urn:uuid:{uuid.uuid4()}>"


def _clean(value: str) -> str:
    """A header value on one line (a URL with a CR or LF in it cannot split a record)."""
    return value.replace("\r", "%0D").replace("\n", "%0A")


def warc_record(headers: Iterable[tuple[str, str]], block: bytes) -> bytes:
    """One record, uncompressed: version line, headers, Content-Length, block, CRLF CRLF.

    >>> warc_record([("WARC-Type", "resource")], b"hi")
    b'WARC/1.1\\r\\nWARC-Type: resource\\r\\nContent-Length: 2\\r\\n\\r\\nhi\\r\\n\\r\\n'
    """
    lines = [WARC_VERSION]
    lines += [f"{name}: {_clean(value)}".encode() for name, value in headers]
    lines.append(b"Content-Length: %d" % len(block))
    return b"\r\n".join(lines) + b"\r\n\r\n" + block + b"\r\n\r\n"


def gzip_member(data: bytes, level: int = 6) -> bytes:
    """``data`` as one gzip member (WARC's "gzip per record": a reader can seek to any record).

    >>> import gzip; gzip.decompress(gzip_member(b"x" * 10)) == b"x" * 10
    True
    """
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


def stored_http_head(head: bytes, body_length: int) -> bytes:
    """The response's status line and headers as stored before a body of ``body_length`` bytes.

    ``head`` is the header section as received (lines, CRLF-separated, no blank line). The
    body is stored as the client read it: without chunked framing (Twisted removes it), with
    its Content-Encoding (gzip, br... are kept: the payload is the wire's). So a
    ``Transfer-Encoding`` and a ``Content-Length`` that the stored body does not match are
    renamed ``X-Crawler-...`` (as Common Crawl does) and ``Content-Length`` gives the stored
    length. The result ends with the blank line.

    >>> stored_http_head(b"HTTP/1.1 200 OK\\r\\nTransfer-Encoding: chunked", 5)
    b'HTTP/1.1 200 OK\\r\\nX-Crawler-Transfer-Encoding: chunked\\r\\nContent-Length: 5\\r\\n\\r\\n'
    >>> stored_http_head(b"HTTP/1.1 200 OK\\r\\nContent-Length: 5", 5)
    b'HTTP/1.1 200 OK\\r\\nContent-Length: 5\\r\\n\\r\\n'
    """
    lines = head.split(b"\r\n")
    out = [lines[0]]
    exact = False
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        key = name.strip().lower()
        if sep and key == b"content-length" and value.strip() == b"%d" % body_length:
            exact = True
        elif sep and key in _RENAMED:
            line = _RENAMED[key] + b":" + value
        out.append(line)
    if not exact:
        out.append(b"Content-Length: %d" % body_length)
    return b"\r\n".join(out) + b"\r\n\r\n"


def synthetic_http_head(status: int, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """A header section built from a parsed response, when the raw one was not kept.

    >>> synthetic_http_head(404, [(b"Content-Type", b"text/html")])
    b'HTTP/1.1 404 Not Found\\r\\nContent-Type: text/html'
    """
    from http import HTTPStatus

    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    lines = [f"HTTP/1.1 {status} {phrase}".rstrip().encode()]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines)


def exchange_records(
    *,
    url: str,
    date: datetime,
    request_head: bytes,
    response_head: bytes,
    body: bytes,
    ip_address: str | None = None,
    truncated: str | None = None,
    level: int = 6,
) -> bytes:
    """A request and a response record, each one gzip member, for one fetch.

    ``request_head`` ends with its blank line; ``response_head`` is :func:`stored_http_head`'s.
    ``truncated`` is the ``WARC-Truncated`` reason (``length``, ``disconnect``...) of a cut body.

    >>> import gzip
    >>> out = gzip.decompress(exchange_records(
    ...     url="http://a.test/", date=datetime(2026, 1, 2, tzinfo=timezone.utc),
    ...     request_head=b"GET / HTTP/1.1\\r\\nHost: a.test\\r\\n\\r\\n",
    ...     response_head=b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\n", body=b"hi",
    ...     truncated="length"))
    >>> out.count(b"WARC/1.1\\r\\n"), b"WARC-Type: request" in out, b"WARC-Truncated: length" in out
    (2, True, True)
    """
    date_text = warc_date(date)
    response_id = record_id()
    common = [("WARC-Date", date_text), ("WARC-Target-URI", url)]
    if ip_address:
        common.append(("WARC-IP-Address", ip_address))
    block = response_head + body
    response = [("WARC-Type", "response"), ("WARC-Record-ID", response_id), *common,
                ("Content-Type", "application/http; msgtype=response"),
                ("WARC-Payload-Digest", sha1_digest(body)),
                ("WARC-Block-Digest", sha1_digest(block))]  # fmt: skip
    if truncated:
        response.append(("WARC-Truncated", truncated))
    request = [("WARC-Type", "request"), ("WARC-Record-ID", record_id()), *common,
               ("WARC-Concurrent-To", response_id),
               ("Content-Type", "application/http; msgtype=request"),
               ("WARC-Block-Digest", sha1_digest(request_head))]  # fmt: skip
    return gzip_member(warc_record(request, request_head), level) + gzip_member(
        warc_record(response, block), level
    )


def warcinfo_record(filename: str, fields: dict[str, str], date: datetime, level: int = 6) -> bytes:
    """The warcinfo record that opens a file (``fields``: software, isPartOf...), gzipped.

    >>> import gzip
    >>> rec = gzip.decompress(warcinfo_record("x.warc.gz", {"isPartOf": "c1"},
    ...                                       datetime(2026, 1, 2, tzinfo=timezone.utc)))
    >>> b"WARC-Filename: x.warc.gz" in rec, b"\\r\\n\\r\\nisPartOf: c1\\r\\n" in rec
    (True, True)
    """
    block = "".join(f"{k}: {_clean(v)}\r\n" for k, v in fields.items()).encode()
    headers = [("WARC-Type", "warcinfo"), ("WARC-Record-ID", record_id()),
               ("WARC-Date", warc_date(date)), ("WARC-Filename", filename),
               ("Content-Type", "application/warc-fields"),
               ("WARC-Block-Digest", sha1_digest(block))]  # fmt: skip
    return gzip_member(warc_record(headers, block), level)


def warc_file_name(crawl_id: str, worker_id: str, seq: int, when: datetime) -> str:
    """A file's final name: unique across workers (crawl, time to the ms, sequence, worker).

    >>> warc_file_name("c1", "w0-12", 3, datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=timezone.utc))
    'LINKCRAWL-c1-20260102030405006-00003-w0-12.warc.gz'
    """
    when = when.astimezone(timezone.utc)
    stamp = when.strftime("%Y%m%d%H%M%S") + f"{when.microsecond // 1000:03d}"
    return f"{PREFIX}-{_safe(crawl_id)}-{stamp}-{seq:05d}-{_safe(worker_id)}{SUFFIX}"


def _safe(text: str) -> str:
    out = "".join(c if c.isalnum() or c in "-._" else "_" for c in text)
    return (out.lstrip(".") and out) or "_"


class WarcFileWriter:
    """Appends gzip members to ``DIR/NAME.warc.gz.open``; a full or closed file is renamed
    ``DIR/NAME.warc.gz``. A final name is only ever a complete file.

    - A file opens with its warcinfo record. It is rotated once it reaches ``max_bytes``
      (checked after each exchange, so a file holds whole exchanges).
    - :meth:`sync` makes what was written durable (flush + fsync); :meth:`close` renames.
    - A killed process leaves ``NAME.warc.gz.open``: whole records up to its last sync, maybe
      a partial one after. Nothing here deletes or overwrites a file it did not create (temp
      files are created with O_EXCL).
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        crawl_id: str,
        worker_id: str,
        max_bytes: int = 1_000_000_000,
        info: dict[str, str] | None = None,
        level: int = 6,
    ) -> None:
        self.directory = Path(directory)
        self.crawl_id = crawl_id
        self.worker_id = worker_id
        self.max_bytes = max_bytes
        self.info = dict(info or {})
        self.level = level
        self.seq = 0
        self.files: list[Path] = []  # finished files, in order
        self._fh: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._dirty = False
        self.broken = False  # a write failed: the open file may end inside a record

    @property
    def open_path(self) -> Path | None:
        return self._path

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for _ in range(1000):  # a name taken (same ms, same worker id): the next sequence
            now = datetime.now(timezone.utc)
            name = warc_file_name(self.crawl_id, self.worker_id, self.seq, now)
            self.seq += 1
            path = self.directory / name
            if path.exists():
                continue
            try:
                fd = os.open(str(path) + OPEN_SUFFIX, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
            break
        else:
            raise FileExistsError(f"no free WARC file name in {self.directory}")
        self._fh, self._path, self._size = fd, path, 0
        fields = {"software": self.info.get("software", "linkcrawl"), "format": FORMAT,
                  "conformsTo": CONFORMS_TO, "isPartOf": self.crawl_id,
                  "hostname": socket.gethostname(), **self.info}  # fmt: skip
        self._append(warcinfo_record(name, fields, now, self.level))

    def _append(self, data: bytes) -> None:
        assert self._fh is not None
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fh, view) :]
        except OSError:
            self.broken = True
            raise
        self._size += len(data)
        self._dirty = True

    def write(self, members: bytes) -> None:
        """Append one exchange's gzip members; rotate past ``max_bytes``."""
        if self.broken:
            raise OSError("an earlier write to this WARC file failed")
        if self._fh is None:
            self._open()
        self._append(members)
        if self.max_bytes and self._size >= self.max_bytes:
            self.close()

    def sync(self) -> None:
        """Make every record written so far durable (the pages' leases may then be acked)."""
        if self._fh is not None and self._dirty:
            os.fsync(self._fh)
            self._dirty = False

    def close(self) -> Path | None:
        """fsync, rename to the final name, fsync the directory; the final path. A file whose
        write failed keeps its ``.open`` name (it may end inside a record)."""
        if self._fh is None or self._path is None:
            return None
        fd, path = self._fh, self._path
        self._fh, self._path = None, None
        if self.broken:
            os.close(fd)
            return None
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(str(path) + OPEN_SUFFIX, path)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._dirty = False
        self.files.append(path)
        return path
