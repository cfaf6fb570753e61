"""The on-disk layout of an index: raw files, compacted generations, the CURRENT pointer.

An index directory holds::

    links/part-<crawl>-<worker>-<seq>-<rand>.parquet    raw files, as the workers wrote them
    pages/part-<crawl>-<worker>-<seq>-<rand>.parquet    (<rand>: a name is never used twice)
    targets/part-<crawl>-<worker>-<seq>-<rand>.parquet  target checks (--check-targets)
    compacted/CURRENT                             name of the published generation (one line)
    compacted/gen-000003/manifest.json            what that generation holds and consumed
    compacted/gen-000003/links/<crawl>/b0005-of-0016.parquet
    compacted/gen-000003/pages/<crawl>/pages.parquet
    compacted/gen-000003/via/<crawl>/via.parquet  links through redirects, keyed by where they land
    compacted/gen-000003/targets/targets.parquet  target checks, one row per URL and crawl
    ranks/host.parquet, ranks/domain.parquet      written by `linkcrawl rank`

A compacted links file holds the links of one crawl whose target domain hashes to one bucket
(``crc32(target_domain) % buckets``), sorted by :func:`surt` of the target URL, so that "all
links to domain X" reads one file per crawl and, inside it, the few row groups whose
``target_surt`` statistics overlap X's key range.

A *snapshot* of the index is what a reader reads: the files of the generation CURRENT names,
plus the raw files that the generation did not consume (written since it was built). Compaction
publishes by replacing CURRENT atomically, so a reader sees either the old or the new snapshot.

After the switch, the raw files the new generation consumed are deleted (by compaction's
garbage collection, through its own trash folder ``compacted/.gc/``: see
:mod:`pipelines.index.compact`). A query that opened the previous snapshot and then meets one
of them gone runs again on the new snapshot, whose generation holds their rows
(``queries._current``).

Which raw file a generation consumed: its name in ``consumed_<table>`` and, since names can be
reused (a restarted writer with deterministic names), its identity in ``consumed_ids``:
``[size, mtime_ns, crc32 of the Parquet footer]`` (:func:`file_identity`). A file is the
consumed one when its size and footer bytes match (:func:`same_file`); the mtime is not
compared, so a copy that does not keep times (``cp -r``, tar, zip, a restore) leaves a
consumed leftover consumed rather than counted twice, and a new file of the same name and
size is new unless its footer is byte-identical: the same row groups at the same offsets and
sizes, with the same statistics (min, max, nulls) in every column, which a writer gives for
the same rows. Identities of two numbers (older manifests) are ``[size, mtime_ns]``, compared
as such; names without one are consumed by name alone.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import zlib
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pipelines.parquet_sink import safe_name
from pipelines.urls import normalize_url, registered_domain, url_host

COMPACTED = "compacted"
CURRENT = "CURRENT"
RAW_TABLES = ("links", "pages", "texts", "targets")
MANIFEST = "manifest.json"
FORMAT_VERSION = 1
# Rows per row group of a compacted links file. A lookup of a small target reads the one group
# that holds its rows, and decoding a group costs by its rows: at 10M links (bench_index,
# domain #10000, 38 links) 2,048 rows read in ~0.5 ms where 8,192 took ~1.3 ms; the price is
# footers (a few KB a group) and zstd frames: +4.8% link bytes, with LINK_STATISTICS.
LINK_ROW_GROUP_ROWS = 2048
# The columns of a compacted links file with statistics: those that ascend with the sort key (a
# target's rows lie in a few row groups) and the crawl and time queries filter on. The others'
# min and max span the whole file, so prune nothing, and would weigh on every footer.
LINK_STATISTICS = ["crawl_id", "fetched_at", "target_url", "target_host", "target_domain",
                   "target_surt"]  # fmt: skip

_IPV4 = re.compile(r"^[0-9.]+$")
_HOST_CHARS = re.compile(r"^[a-z0-9._\-\[\]:]+$")
_URL_PARTS = re.compile(r"^[a-z][a-z0-9+.\-]*://([^/?#]*)(.*)$")


class IndexError_(Exception):
    """A missing or unreadable index, an unknown crawl, a malformed target."""


def surt_host(host: str) -> str:
    """The host part of a SURT key: labels reversed, comma-joined; IPs kept as they are.

    >>> surt_host("www.example.com")
    'com,example,www'
    >>> surt_host("127.0.0.1")
    '127.0.0.1'
    """
    if _IPV4.match(host) or host.startswith("["):
        return host
    return ",".join(reversed(host.split(".")))


def surt(url: str) -> str:
    """The sort key of a target URL, SURT-style (scheme dropped, host reversed).

    Unlike Common Crawl's SURT a port comes after the ``)``, so that every key of a host starts
    with ``<reversed host>)`` and every key of a registered domain with ``<reversed domain>)``
    or ``<reversed domain>,``.

    >>> surt("https://www.example.com/a/b?x=1")
    'com,example,www)/a/b?x=1'
    >>> surt("http://example.com:8080/")
    'com,example):8080/'
    """
    m = _URL_PARTS.match(url)
    if not m:
        return url
    authority, rest = m.group(1), m.group(2) or "/"
    authority = authority.rsplit("@", 1)[-1]
    port = ""
    if authority.startswith("["):
        host, _, tail = authority.partition("]")
        host += "]"
        if tail.startswith(":"):
            port = tail
    else:
        host, sep, p = authority.partition(":")
        if sep:
            port = ":" + p
    return f"{surt_host(host.lower())}){port}{rest}"


# The same key in DuckDB SQL, over a relation with target_url and target_host columns (raw
# files have no target_surt column; compaction computes it with this expression too).
_SURT_HOST_SQL = r"""
  CASE WHEN regexp_matches(target_host, '^[0-9.]+$') OR starts_with(target_host, '[')
       THEN target_host
       ELSE array_to_string(list_reverse(string_split(target_host, '.')), ',') END"""
_URL_RE = r"""'^[a-z][a-z0-9+.\-]*://[^/?#]*?(:[0-9]+)?([/?#].*)?$'"""
SURT_SQL = rf"""({_SURT_HOST_SQL}
  || ')'
  || regexp_extract(target_url, {_URL_RE}, 1)
  || coalesce(nullif(regexp_extract(target_url, {_URL_RE}, 2), ''), '/')
)"""
# A URL without a port or a newline: its path is this expression's group, its port ''. Both as
# _URL_RE gives them: no ':' before the first of /?# leaves that pattern's port group empty and
# its lazy host part ends there; no newline, its ``.*`` takes the same rest. Unambiguous, so
# RE2 matches it in one pass: the URL's parts ~3x, its whole SURT key ~2x less CPU than with
# _URL_RE alone (149k distinct targets of bench_ingest: 0.30 -> 0.15 CPU s for the keys;
# review13-i13 2), which the URLs with a port or a newline still take.
_URL_NO_PORT_RE = r"""'^[a-z][a-z0-9+.\-]*://[^/?#:\n]*([/?#][^\n]*)?$'"""
# The URL's port and path (``port``, ``path``) in one match: a struct for SURT_PARTS_SQL.
URL_PARTS_SQL = f"""CASE WHEN regexp_matches(target_url, {_URL_NO_PORT_RE})
    THEN {{'port': '', 'path': regexp_extract(target_url, {_URL_NO_PORT_RE}, 1)}}
    ELSE regexp_extract(target_url, {_URL_RE}, ['port', 'path']) END"""
# SURT_SQL over a relation that also has ``_parts`` (URL_PARTS_SQL): the regular expression
# run once, not twice (compaction's SURT keys at 2M links: 1.4 s of CPU -> 0.9 s).
SURT_PARTS_SQL = rf"""({_SURT_HOST_SQL}
  || ')' || _parts.port || coalesce(nullif(_parts.path, ''), '/')
)"""


def bucket_of(domain: str, buckets: int) -> int:
    """The hash bucket of a target domain: ``crc32(utf-8 domain) % buckets``.

    >>> bucket_of("example.com", 16)
    9
    """
    return zlib.crc32(domain.encode("utf-8")) % buckets


def key_upper(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix``.

    >>> key_upper("com,example)")
    'com,example*'
    """
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


@dataclass(frozen=True)
class Target:
    """What a query asks about: a registered domain, a host, or a URL prefix."""

    kind: str  # "domain" | "host" | "prefix"
    host: str
    domain: str
    prefix: str = ""  # the SURT prefix, for kind "prefix"
    url: str = field(default="", repr=False, compare=False)  # the prefix as a URL, for messages

    def key_ranges(self) -> list[tuple[str, str]]:
        """``[low, high)`` ranges of ``target_surt`` that hold every matching row."""
        if self.kind == "domain":
            base = surt_host(self.domain)
            if base == self.domain and (_IPV4.match(base) or base.startswith("[")):
                return [(base + ")", key_upper(base + ")"))]
            return [(base + ")", base + "-")]  # ')' < '*' < '+' < ',' < '-'
        if self.kind == "host":
            base = surt_host(self.host) + ")"
            return [(base, key_upper(base))]
        return [(self.prefix, key_upper(self.prefix))]

    def describe(self) -> str:
        if self.kind == "prefix":
            return f"URL prefix {self.url or self.prefix}"
        return f"{self.kind} {self.host if self.kind == 'host' else self.domain}"


def parse_target(text: str, *, kind: str | None = None) -> Target:
    """A domain, a host or a URL prefix, as typed by a user.

    A bare registered domain means the whole domain (all its hosts); any other bare host means
    that host; anything with a path or a scheme is a URL prefix (scheme-insensitive). A port
    (``host:8080``) narrows to that port: the URL prefix ``http://host:8080/``. Anything else
    with a colon or an ``@`` (``mailto:a@b.example``) is refused, not read as a host.

    >>> parse_target("Example.COM")
    Target(kind='domain', host='example.com', domain='example.com', prefix='')
    >>> parse_target("www.example.com").kind
    'host'
    >>> parse_target("https://example.com/blog/").prefix
    'com,example)/blog/'
    >>> parse_target("weather.example:8080").describe()
    'URL prefix http://weather.example:8080/'
    """
    raw = text.strip()
    if not raw or any(c.isspace() for c in raw):
        raise IndexError_(f"malformed target {text!r}: expected a domain, host or URL")
    scheme = _SCHEME.match(raw)
    if scheme and "." in scheme.group(1):
        raise IndexError_(f"malformed target {text!r}: a port is digits (host:8080)")
    if scheme and scheme.group(1).lower() not in ("http", "https"):
        raise IndexError_(
            f"malformed target {text!r}: {scheme.group(1)}: is not http(s); expected a domain, "
            "host or http(s) URL"
        )
    if "://" not in raw and "@" in raw.split("/", 1)[0]:
        raise IndexError_(
            f"malformed target {text!r}: looks like an e-mail address, not a domain, host or URL"
        )
    has_path = "://" in raw or "/" in raw or _PORT.search(raw) is not None
    if has_path or kind == "prefix":
        url = normalize_url(raw if "://" in raw else f"http://{raw}")
        if url is None:
            raise IndexError_(f"malformed target {text!r}: not an http(s) URL")
        host = url_host(url)
        if not host:
            raise IndexError_(f"malformed target {text!r}: no host")
        return Target("prefix", host, registered_domain(host), surt(url), url)
    url = normalize_url(f"http://{raw}/")
    host = url_host(url) if url else ""
    if not host or not _HOST_CHARS.match(host) or host.startswith(".") or ".." in host:
        raise IndexError_(f"malformed target {text!r}: not a valid host name")
    if "." not in host and not host.startswith("["):
        raise IndexError_(f"malformed target {text!r}: not a domain (no dot)")
    domain = registered_domain(host)
    if kind == "host" or (kind is None and host != domain):
        return Target("host", host, domain)
    return Target("domain", domain, domain)


# A scheme: letters before a colon that is not a port's (``host:8080``) nor an IPv6 address's.
_SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):(?![0-9]+(?:[/?#]|$))", re.IGNORECASE)
_PORT = re.compile(r"^(?:[^\[\]:/]+|\[[^\]]*\]):[0-9]+$")


@dataclass
class Segment:
    """One compacted links file."""

    path: str  # relative to the generation directory
    crawl_id: str
    bucket: int
    buckets: int
    rows: int


@dataclass
class Manifest:
    generation: str
    created_at: str
    links: list[Segment] = field(default_factory=list)
    pages: dict[str, str] = field(default_factory=dict)  # crawl_id -> relative path
    consumed_links: list[str] = field(default_factory=list)  # raw file names compacted
    consumed_pages: list[str] = field(default_factory=list)
    crawls: dict[str, dict[str, Any]] = field(default_factory=dict)  # crawl_id -> stats
    texts: dict[str, str] = field(default_factory=dict)  # crawl_id -> relative path (texts/)
    consumed_texts: list[str] = field(default_factory=list)
    # Links counted toward their final target (README "Links through redirects"): per crawl,
    # one file of the rows whose target redirects, keyed by where they land.
    via: list[Segment] = field(default_factory=list)
    targets: str | None = None  # the target checks, all crawls (relative path)
    consumed_targets: list[str] = field(default_factory=list)
    # What pipelines.index.aggregates built for this generation (None: no aggregates).
    aggregates: dict[str, Any] | None = None
    # Compacted with aggregates turned off (``--no-aggregates``): later compactions keep them
    # off. Without it (and older manifests), a compaction builds them (the default).
    aggregates_off: bool = False
    # "table/name" of a consumed raw file -> its :func:`file_identity` when compacted: a
    # later file of the same name (a restarted writer) is new data, neither skipped nor
    # deleted. Names without one (older manifests) are consumed by name alone.
    consumed_ids: dict[str, list[int]] = field(default_factory=dict)

    def consumed(self, table: str) -> list[str]:
        """The consumed raw file names of ``table`` (links, pages, texts or targets)."""
        return getattr(self, f"consumed_{table}")

    def is_consumed(self, table: str, path: Path) -> bool:
        """Whether the raw file ``path`` of ``table`` is the very file this generation (or
        an earlier one) compacted: its name consumed, and its identity the recorded one."""
        if path.name not in self.consumed(table):
            return False
        want = self.consumed_ids.get(f"{table}/{path.name}")
        return want is None or same_file(want, path)

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT_VERSION,
                "generation": self.generation,
                "created_at": self.created_at,
                "crawls": self.crawls,
                "links": [s.__dict__ for s in self.links],
                "pages": self.pages,
                "consumed_links": sorted(self.consumed_links),
                "consumed_pages": sorted(self.consumed_pages),
                "texts": self.texts,
                "consumed_texts": sorted(self.consumed_texts),
                "via": [s.__dict__ for s in self.via],
                "targets": self.targets,
                "consumed_targets": sorted(self.consumed_targets),
                **({"aggregates": self.aggregates} if self.aggregates is not None else {}),
                **({"aggregates_off": True} if self.aggregates_off else {}),
                **(
                    {"consumed_ids": dict(sorted(self.consumed_ids.items()))}
                    if self.consumed_ids
                    else {}
                ),
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        d = json.loads(text)
        return cls(
            generation=d["generation"],
            created_at=d["created_at"],
            links=[Segment(**s) for s in d["links"]],
            pages=dict(d["pages"]),
            consumed_links=list(d["consumed_links"]),
            consumed_pages=list(d["consumed_pages"]),
            crawls=dict(d["crawls"]),
            texts=dict(d.get("texts", {})),  # manifests before texts/ have none
            consumed_texts=list(d.get("consumed_texts", [])),
            via=[Segment(**s) for s in d.get("via", [])],  # older generations have none
            targets=d.get("targets"),
            consumed_targets=list(d.get("consumed_targets", [])),
            aggregates=d.get("aggregates"),
            aggregates_off=bool(d.get("aggregates_off", False)),
            consumed_ids={k: list(v) for k, v in d.get("consumed_ids", {}).items()},
        )


def crawl_dir_name(crawl_id: str) -> str:
    """A directory name for a crawl: file-name-safe, and unique per crawl id.

    >>> crawl_dir_name("nov/2026")
    'nov_2026-1fd413b7'
    """
    return f"{safe_name(crawl_id)}-{zlib.crc32(crawl_id.encode('utf-8')):08x}"


def raw_files(index: Path, table: str) -> list[Path]:
    """Complete raw files of ``links`` or ``pages`` (temporary files start with a dot)."""
    d = index / table
    return [p for p in (d / n for n in raw_names(index, table)) if p.is_file()]


def raw_names(index: Path, table: str) -> tuple[str, ...]:
    """The names of the complete raw files of ``table`` (``part-*.parquet``), sorted; one
    directory listing, no stat: what :meth:`Index.refresh` compares to see files come and go."""
    try:
        names = os.listdir(index / table)
    except (FileNotFoundError, NotADirectoryError):
        return ()
    return tuple(sorted(n for n in names if n.startswith("part-") and n.endswith(".parquet")))


# A Parquet footer read for an identity, at most (raw files have a few row groups: KBs).
MAX_FOOTER_BYTES = 64 << 20


def file_identity(path: Path) -> list[int]:
    """Which file ``path`` is, not just its name: [size, mtime_ns, crc32 of its Parquet footer
    (the footer's bytes, length and magic; the last 1 MiB of a file without a sane one)]; []
    if it is gone. Read through one open file: the size and footer are of the same file.

    >>> import tempfile, pyarrow as pa
    >>> d = Path(tempfile.mkdtemp())
    >>> pq.write_table(pa.table({"a": [1, 2]}), d / "x.parquet")
    >>> ident = file_identity(d / "x.parquet")
    >>> len(ident), ident[0] == (d / "x.parquet").stat().st_size, file_identity(d / "y")
    (3, True, [])
    """
    try:
        fh = open(path, "rb")  # noqa: SIM115 (closed below)
    except (FileNotFoundError, IsADirectoryError):
        return []
    with fh:
        st = os.fstat(fh.fileno())
        size = st.st_size
        key = (str(path), size, st.st_mtime_ns, st.st_ino)
        if (crc := _FOOTER_CRCS.get(key)) is not None:
            return [size, st.st_mtime_ns, crc]
        tail = 8 if size >= 12 else size
        fh.seek(size - tail)
        end = fh.read(tail)
        n = int.from_bytes(end[:4], "little") if tail == 8 else -1
        if end[4:] == b"PAR1" and 0 <= n <= min(size - 12, MAX_FOOTER_BYTES):
            fh.seek(size - 8 - n)
            data = fh.read(n + 8)
        else:
            fh.seek(max(0, size - (1 << 20)))
            data = fh.read(1 << 20)
    if len(_FOOTER_CRCS) >= FOOTER_CRCS_CACHED:
        _FOOTER_CRCS.pop(next(iter(_FOOTER_CRCS)))  # the oldest
    crc = _FOOTER_CRCS[key] = zlib.crc32(data)
    return [size, st.st_mtime_ns, crc]


# Footer checksums of the files :func:`file_identity` read, by (path, size, mtime_ns, inode): a
# raw file is written once under a temporary name, so a file with the same four is the same
# file; an open Index re-reads only new files' footers when it reopens its snapshot.
FOOTER_CRCS_CACHED = 65536
_FOOTER_CRCS: dict[tuple[str, int, int, int], int] = {}


def same_file(want: list[int], path: Path) -> bool:
    """Whether ``path`` is the file whose :func:`file_identity` was ``want``: the same size
    and footer (an old ``[size, mtime_ns]``: the same size and mtime). The mtime is not
    compared: copies that do not keep it (cp -r, tar, zip) are still the same file.

    >>> import tempfile, pyarrow as pa
    >>> p = Path(tempfile.mkdtemp()) / "x.parquet"
    >>> pq.write_table(pa.table({"a": [1, 2]}), p)
    >>> want = file_identity(p)
    >>> os.utime(p, ns=(0, 10**18)); same_file(want, p)  # touched, or copied without times
    True
    >>> pq.write_table(pa.table({"a": [1, 3]}), p); same_file(want, p)  # other rows
    False
    """
    if len(want) < 3:
        try:
            st = path.stat()
        except FileNotFoundError:
            return False
        return want == [st.st_size, st.st_mtime_ns]
    try:
        if path.stat().st_size != want[0]:
            return False  # no need to read it
    except FileNotFoundError:
        return False
    got = file_identity(path)
    return bool(got) and got[0] == want[0] and got[2] == want[2]


# The crawl of rows a writer other than ParquetSink left without one (null or ''): no
# compaction consumes a file holding such rows (their rows could not be kept), so they stay
# raw, and are read as raw rows.
UNNAMED = ""


def file_crawl_id(path: Path) -> str | None:
    """The crawl of a raw file whose rows are all of one crawl (one sink writes one crawl);
    None for an empty file or one of several crawls (:func:`file_crawl_ids`)."""
    ids = file_crawl_ids(path)
    return next(iter(ids)) if len(ids) == 1 else None


def file_crawl_ids(path: Path) -> set[str]:
    """The crawls of a raw file's rows: from its column statistics when they name one, else
    read (a writer other than ParquetSink may mix crawls in a file). Rows without a crawl
    (null or '') count as :data:`UNNAMED`.

    >>> import tempfile, pyarrow as pa
    >>> p = Path(tempfile.mkdtemp()) / "x.parquet"
    >>> pq.write_table(pa.table({"crawl_id": ["b", "a", "b"]}), p, row_group_size=1)
    >>> sorted(file_crawl_ids(p)), file_crawl_id(p)
    (['a', 'b'], None)
    >>> pq.write_table(pa.table({"crawl_id": ["b", None]}), p)
    >>> sorted(file_crawl_ids(p))
    ['', 'b']
    """
    md = pq.ParquetFile(path).metadata
    if md.num_rows == 0:
        return set()
    col = md.schema.to_arrow_schema().get_field_index("crawl_id")
    lo = hi = None
    for i in range(md.num_row_groups):
        st = md.row_group(i).column(col).statistics
        if st is None or not st.has_min_max or st.null_count != 0:
            return _crawl_ids_by_reading(path)
        lo = st.min if lo is None else min(lo, st.min)
        hi = st.max if hi is None else max(hi, st.max)
    if lo != hi:
        return _crawl_ids_by_reading(path)
    return {lo if isinstance(lo, str) else bytes(lo).decode("utf-8")}


def _crawl_ids_by_reading(path: Path) -> set[str]:
    ids = pq.read_table(path, columns=["crawl_id"])["crawl_id"].unique().to_pylist()
    return {c or UNNAMED for c in ids}


@dataclass
class Snapshot:
    """The files a reader reads: a consistent view of the index at one moment."""

    index: Path
    manifest: Manifest | None
    generation_dir: Path | None
    raw_links: list[Path]
    raw_pages: list[Path]
    raw_texts: list[Path] = field(default_factory=list)
    raw_targets: list[Path] = field(default_factory=list)
    # The raw folders' file names when opened (:func:`raw_names`, consumed ones included):
    # a file written or deleted since (a crawl, `delete`) makes the snapshot stale.
    listing: tuple[tuple[str, ...], ...] = ()

    @property
    def compacted(self) -> bool:
        return self.manifest is not None

    def stale(self) -> bool:
        """Whether a newer snapshot exists: CURRENT moved, or raw files came or went (one
        small read and four directory listings)."""
        gen = self.manifest.generation if self.manifest is not None else None
        if read_current(self.index) != gen:
            return True
        return tuple(raw_names(self.index, t) for t in RAW_TABLES) != self.listing

    def link_segments(self, crawl: str | None = None) -> list[Segment]:
        if self.manifest is None:
            return []
        return [s for s in self.manifest.links if crawl is None or s.crawl_id == crawl]

    def via_segments(self, crawl: str | None = None) -> list[Segment]:
        """Files of links counted toward their final target (keyed by it), of one crawl or all."""
        if self.manifest is None:
            return []
        return [s for s in self.manifest.via if crawl is None or s.crawl_id == crawl]

    def target_files(self) -> list[Path]:
        """The target checks: the compacted file and the raw files written since."""
        files = []
        if self.manifest is not None and self.generation_dir is not None and self.manifest.targets:
            files = [self.generation_dir / self.manifest.targets]
        return files + self.raw_targets

    def segment_path(self, seg: Segment) -> Path:
        assert self.generation_dir is not None
        return self.generation_dir / seg.path

    def page_files(self) -> list[Path]:
        files = []
        if self.manifest is not None and self.generation_dir is not None:
            files = [self.generation_dir / p for p in self.manifest.pages.values()]
        return files + self.raw_pages

    def text_files(self) -> list[Path]:
        files = []
        if self.manifest is not None and self.generation_dir is not None:
            files = [self.generation_dir / p for p in self.manifest.texts.values()]
        return files + self.raw_texts

    def crawl_ids(
        self, crawls_of: Callable[[Path], AbstractSet[str]] = file_crawl_ids
    ) -> list[str]:
        """The crawls of the generation and of the raw links and pages files (``crawls_of``:
        a raw file's, :func:`file_crawl_ids` or a cache of it)."""
        ids = set(self.manifest.crawls) if self.manifest else set()
        for p in self.raw_links + self.raw_pages:
            ids |= crawls_of(p)
        return sorted(ids - {UNNAMED})

    def check_crawl(
        self, crawl: str | None, crawls_of: Callable[[Path], AbstractSet[str]] = file_crawl_ids
    ) -> None:
        """:class:`IndexError_` if ``crawl`` is neither the generation's nor a raw file's
        (a crawl of the generation: known without reading a raw file)."""
        if crawl is None or (self.manifest is not None and crawl in self.manifest.crawls):
            return
        known = self.crawl_ids(crawls_of)
        if crawl not in known:
            names = ", ".join(known) or "none"
            raise IndexError_(f"unknown crawl {crawl!r} in {self.index} (crawls: {names})")


def read_current(index: Path) -> str | None:
    p = index / COMPACTED / CURRENT
    try:
        name = p.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return name or None


# Reads of CURRENT, its manifest and the raw folders before giving up (each retry: a
# compaction published meanwhile).
OPEN_RETRIES = 5


def open_snapshot(index: str | Path) -> Snapshot:
    """The snapshot of ``index`` as of now; raises :class:`IndexError_` if there is none."""
    root = Path(index)
    if not root.is_dir():
        raise IndexError_(f"no index at {index}: directory not found")
    # A generation is never deleted while CURRENT names it, and the one it replaced is kept
    # for a grace period; retry if a compaction published between the two reads, or before
    # the listing of the raw folders (it may have deleted the raw files it consumed: the old
    # generation without them would answer without their rows).
    for _ in range(OPEN_RETRIES):
        name = read_current(root)
        manifest = gen_dir = None
        if name is not None:
            gen_dir = root / COMPACTED / name
            try:
                manifest = Manifest.from_json((gen_dir / MANIFEST).read_text(encoding="utf-8"))
            except FileNotFoundError:
                continue
        listing = tuple(raw_names(root, table) for table in RAW_TABLES)
        if read_current(root) != name:
            continue
        raw_l, raw_p, raw_x, raw_t = (
            [p for p in (root / table / n for n in names)
             if p.is_file() and (manifest is None or not manifest.is_consumed(table, p))]
            for table, names in zip(RAW_TABLES, listing, strict=True)
        )  # fmt: skip
        no_dirs = not (root / "links").is_dir() and not (root / "pages").is_dir()
        if manifest is None and not raw_l and not raw_p and no_dirs:
            raise IndexError_(f"no index at {index}: expected links/ and pages/")
        return Snapshot(root, manifest, gen_dir, raw_l, raw_p, raw_texts=raw_x, raw_targets=raw_t,
                        listing=listing)  # fmt: skip
    raise IndexError_(
        f"{index}: CURRENT names a generation that does not exist, or moved "
        f"{OPEN_RETRIES} times while it was read"
    )


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_file(tmp: Path, path: Path) -> None:
    """Put the written file ``tmp`` in place as ``path``: fsynced, renamed, the rename made
    durable (a reader sees the old file whole or the new one whole)."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` through a fsynced temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


# compacted/.readers: a long read (export, mentions, rank) holds it shared while it reads; a
# compaction deletes consumed raw files and old generations only while it holds it alone.
READERS = ".readers"


def _readers_fd(root: Path) -> int | None:
    try:
        (root / COMPACTED).mkdir(parents=True, exist_ok=True)
        return os.open(root / COMPACTED / READERS, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:  # a read-only index: nothing deletes its files either
        return None


@contextmanager
def pinned(root: Path) -> Iterator[None]:
    """Keep the files a long read opens while it runs: a compaction meanwhile publishes as
    usual but leaves its consumed raw files and old generations to the next one. (A short
    query needs no pin: it runs again on the new snapshot if a file it read is gone.)"""
    fd = _readers_fd(root)
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_SH)  # waits only while a collection deletes
        yield
    finally:
        if fd is not None:
            os.close(fd)


@contextmanager
def no_readers(root: Path) -> Iterator[bool]:
    """Whether no long read holds ``root`` (:func:`pinned`); none starts while this is held."""
    fd = _readers_fd(root)
    if fd is None:
        yield True
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
