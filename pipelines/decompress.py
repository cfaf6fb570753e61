"""Bounded decoding of a Content-Encoding: never more than *limit* bytes out of any layer.

A few KB of gzip, brotli or zstd can inflate to gigabytes. Every decoder here produces its
output in chunks of at most ``CHUNK`` bytes and stops as soon as *limit* is reached, so a bomb
costs *limit* (plus one chunk) of memory per layer, and the prefix it decoded is kept.
Pure functions: no Scrapy, no network.
"""

from __future__ import annotations

import re
import sys
import zlib
from collections.abc import Callable, Generator, Iterator

import brotli

if sys.version_info >= (3, 14):  # pragma: no cover - the stdlib module Scrapy uses there
    from compression import zstd
else:
    from backports import zstd

CHUNK = 64 * 1024
MAX_LAYERS = 4  # codings stacked in one Content-Encoding: each one decodes up to the limit
MAX_MEMBERS = 1000  # gzip members or zstd frames in one body: each one costs a decoder
ACCEPT_ENCODING = b"gzip, deflate, br, zstd"  # what we ask for (as Scrapy does)
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class _Corrupt(Exception):
    """The stream stopped making sense; what came out before stays."""


def _raw_inflate(data: bytes, pos: int = 0) -> Generator[bytes, None, int]:
    """Inflate the raw deflate stream at data[pos:] in chunks; returns the offset just past
    its end (len(data) if it does not end). Input goes in by the chunk too: zlib copies what is
    left after a stream's end, which must not cost a copy of the rest per gzip member.
    Checksums are not checked: as browsers do, a bad CRC or Adler-32 costs nothing."""
    d = zlib.decompressobj(-zlib.MAX_WBITS)
    view = memoryview(data)
    while pos < len(data):
        buf: bytes | memoryview = view[pos : pos + CHUNK]
        pos += len(buf)
        while True:
            try:
                out = d.decompress(buf, CHUNK)
            except zlib.error as exc:
                raise _Corrupt(str(exc)) from None
            if out:
                yield out
            if d.eof:
                return pos - len(d.unused_data)
            if not out and len(d.unconsumed_tail) == len(buf):
                break  # this piece is used up, and nothing is pending
            buf = d.unconsumed_tail
    return len(data)  # truncated: the prefix stays


def _gzip_header_size(data: bytes, pos: int = 0) -> int:
    """Bytes of the gzip member header (RFC 1952) at data[pos:], 0 if there is none.

    >>> import gzip; _gzip_header_size(gzip.compress(b"x", mtime=0)), _gzip_header_size(b"<p>")
    (10, 0)
    """
    if len(data) < pos + 10 or data[pos : pos + 3] != b"\x1f\x8b\x08":
        return 0
    flags, end = data[pos + 3], pos + 10
    if flags & 4:  # FEXTRA
        end += 2 + int.from_bytes(data[end : end + 2], "little")
    for bit in (8, 16):  # FNAME, FCOMMENT: zero-terminated
        if flags & bit:
            end = data.find(b"\0", end) + 1 or len(data) + 1
    if flags & 2:  # FHCRC
        end += 2
    return end - pos if end <= len(data) else 0


_NOT_ZERO = re.compile(rb"[^\0]")


def _gunzip_chunks(data: bytes) -> Iterator[bytes]:
    """Every member of a gzip stream (a gzip file may hold several), up to MAX_MEMBERS."""
    pos = 0
    for _ in range(MAX_MEMBERS):
        header = _gzip_header_size(data, pos)
        if not header:
            raise _Corrupt("not a gzip stream")
        pos = yield from _raw_inflate(data, pos + header)
        nonzero = _NOT_ZERO.search(data, pos + 8)  # past CRC-32 and size; zero padding
        if nonzero is None or not data.startswith(_GZIP_MAGIC, nonzero.start()):
            return
        pos = nonzero.start()
    raise _Corrupt(f"more than {MAX_MEMBERS} gzip members")


def _inflate_chunks(data: bytes) -> Iterator[bytes]:
    """deflate: the zlib format, or raw deflate as some (Microsoft) servers send it."""
    if _is_zlib_header(data[:2]):
        chunks = _raw_inflate(data, 2)
        try:
            first = next(chunks, None)
        except _Corrupt:
            first = None
        if first is not None:
            yield first
            yield from chunks
            return
    yield from _raw_inflate(data)


def _is_zlib_header(head: bytes) -> bool:
    """RFC 1950: method 8 (deflate), window <= 32 KiB, no preset dictionary, check bits.

    >>> import zlib; _is_zlib_header(zlib.compress(b"x")[:2]), _is_zlib_header(b"<p")
    (True, False)
    """
    return (
        len(head) == 2
        and head[0] & 0x0F == 8
        and head[0] >> 4 <= 7
        and not head[1] & 0x20
        and int.from_bytes(head, "big") % 31 == 0
    )


def _brotli_chunks(data: bytes) -> Iterator[bytes]:
    d = brotli.Decompressor()
    try:
        out = d.process(data, output_buffer_limit=CHUNK)
        while out:
            yield out
            if d.is_finished():
                return
            out = d.process(b"", output_buffer_limit=CHUNK)
    except brotli.error as exc:
        raise _Corrupt(str(exc) or "invalid brotli data") from None


def _zstd_chunks(data: bytes) -> Iterator[bytes]:
    """Every frame of a zstd stream, up to MAX_MEMBERS, with windows up to 8 MiB (RFC 9659:
    a larger one would cost its size in memory; browsers refuse it too)."""
    view = memoryview(data)
    pos = 0
    for _ in range(MAX_MEMBERS):
        d = zstd.ZstdDecompressor(options={zstd.DecompressionParameter.window_log_max: 23})
        buf: bytes | memoryview = b""
        while not d.eof:
            fed = d.needs_input
            if fed:
                if pos >= len(data):
                    return  # truncated: the prefix stays
                buf = view[pos : pos + CHUNK]
                pos += len(buf)
            try:
                out = d.decompress(buf, max_length=CHUNK)
            except zstd.ZstdError as exc:
                raise _Corrupt(str(exc)) from None
            buf = b""
            if out:
                yield out
            elif not fed:  # pragma: no cover - no input, no output: never loop on it
                return
        pos -= len(d.unused_data)
        if not data.startswith(_ZSTD_MAGIC, pos):
            return
    raise _Corrupt(f"more than {MAX_MEMBERS} zstd frames")


_DECODERS: dict[str, Callable[[bytes], Iterator[bytes]]] = {
    "gzip": _gunzip_chunks,
    "deflate": _inflate_chunks,
    "br": _brotli_chunks,
    "zstd": _zstd_chunks,
}
_ALIASES = {"x-gzip": "gzip"}


def parse_encodings(values: list[str]) -> list[str]:
    """The codings of Content-Encoding header values, in the order they were applied.

    >>> parse_encodings(["gzip, X-Gzip", "identity", " br "])
    ['gzip', 'gzip', 'br']
    """
    out: list[str] = []
    for value in values:
        for token in value.split(","):
            name = token.strip().lower()
            if name and name != "identity":
                out.append(_ALIASES.get(name, name))
    return out


def _decode_layer(body: bytes, encoding: str, limit: int) -> tuple[bytes, bool, str | None]:
    out = bytearray()
    try:
        for chunk in _DECODERS[encoding](body):
            out += chunk
            if len(out) > limit:
                del out[limit:]
                return bytes(out), True, None
    except _Corrupt as exc:
        return bytes(out), False, f"content-encoding {encoding}: invalid data ({exc})"[:200]
    return bytes(out), False, None


def decode_body(body: bytes, encodings: list[str], limit: int) -> tuple[bytes, bool, str | None]:
    """Undo *encodings* (as `parse_encodings` lists them), keeping at most *limit* bytes of
    each layer. Returns (body, cut, error): *cut* when a layer had more than *limit* bytes to
    give; *error* names an unknown coding (body b"") or corrupt data (body: the prefix decoded
    before it).

    >>> import gzip
    >>> bomb = gzip.compress(gzip.compress(bytes(10_000_000)))
    >>> len(bomb) < 20_000
    True
    >>> body, cut, error = decode_body(bomb, ["gzip", "x-gzip"], 1000)
    >>> len(body), cut, error
    (1000, True, None)
    >>> decode_body(gzip.compress(b"<p>hi"), ["gzip"], 1000)
    (b'<p>hi', False, None)
    >>> decode_body(b"<p>hi", ["compress"], 1000)
    (b'', False, "unsupported content-encoding 'compress'")
    >>> decode_body(gzip.compress(b"<p>hi")[:-8] + b"badcrc!!", ["gzip"], 1000)[0]
    b'<p>hi'
    """
    encodings = [_ALIASES.get(e, e) for e in encodings]
    unknown = [e for e in encodings if e not in _DECODERS]
    if unknown:
        return b"", False, f"unsupported content-encoding {unknown[0][:40]!r}"
    if len(encodings) > MAX_LAYERS:
        return b"", False, f"content-encoding: more than {MAX_LAYERS} codings"
    cut = False
    for encoding in reversed(encodings):
        body, layer_cut, error = _decode_layer(body, encoding, limit)
        cut = cut or layer_cut
        if error is not None:
            return body, cut, error
    return body, cut, None
