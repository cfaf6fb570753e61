"""The optional inflater (``linkcrawl[fast]``: zlib-ng) against the standard library's zlib in
ingest's gzip reader (pipelines/warc.py ``_Gunzip``): on hostile gzip (every FLG value of a
member, every bit flip and every cut of a 2-member file, bad CM, padding, junk, flips and cuts
of a 4 MB member) both give the same bytes and the same error, type and text. Without zlib-ng
(not installed, or ``LINKCRAWL_ZLIB_NG=0``) the reader uses the standard library's."""

from __future__ import annotations

import gzip
import io
import random
import sys
import zlib

import pytest
from zlib_ng import zlib_ng  # the [test] extra installs it: this test compares the two

from pipelines import warc


def _decode(data: bytes, module: object, monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, object]:
    """What ``_Gunzip`` gives reading ``data`` with ``module`` inflating: (bytes, error)."""
    errors = (zlib.error,) if module is zlib else (zlib.error, zlib_ng.error)
    with monkeypatch.context() as m:
        m.setattr(warc, "_ZLIB", module)
        m.setattr(warc, "_ZLIB_ERRORS", errors)
        g = warc._Gunzip(io.BytesIO(data))
        out: list[bytes] = []
        err = None
        try:
            while block := g.read(1 << 16):
                out.append(block)
        except Exception as exc:  # any: the two must raise the same
            err = (type(exc).__name__, str(exc))
    return b"".join(out), err


def _cases() -> dict[str, bytes]:
    rng = random.Random(13)
    a = gzip.compress(bytes(rng.randrange(256) for _ in range(300)) + b"<html>" * 400, mtime=0)
    b = gzip.compress(rng.randbytes(2000) + b"x" * 3000, mtime=0)
    small = a + b
    cases = {f"flg{f}": small[:3] + bytes([f]) + small[4:] for f in range(256)}
    for i in range(len(small) * 8):
        m = bytearray(small)
        m[i // 8] ^= 1 << (i % 8)
        cases[f"flip{i}"] = bytes(m)
    cases.update({f"cut{i}": small[:i] for i in range(len(small))})
    cases["cm"] = small[:2] + b"\x07" + small[3:]
    cases["pad"] = a + b"\0" * 100 + b
    cases["junk"] = a + b"junk" + b
    big = gzip.compress(rng.randbytes(1 << 20) + b"a" * (3 << 20), mtime=0)
    for i in range(0, len(big), len(big) // 40):
        m = bytearray(big)
        m[i] ^= 0x10
        cases[f"bigflip{i}"] = bytes(m)
        cases[f"bigcut{i}"] = big[:i]
    return cases


def test_zlib_ng_reads_hostile_gzip_as_zlib_does(monkeypatch: pytest.MonkeyPatch) -> None:
    cases = _cases()
    same = {n: _decode(d, zlib, monkeypatch) == _decode(d, zlib_ng, monkeypatch)
            for n, d in cases.items()}  # fmt: skip
    differ = [name for name, ok in same.items() if not ok]
    assert len(cases) > 20_000 and differ == []
    errors = {_decode(d, zlib, monkeypatch)[1] is not None for d in cases.values()}
    assert errors == {True, False}  # the cases break the reader and also leave it reading


def test_the_inflater_is_zlib_ng_when_installed_else_the_standard_librarys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LINKCRAWL_ZLIB_NG", raising=False)
    assert warc._inflater()[0] is zlib_ng
    assert warc._inflater()[1] == (zlib.error, zlib_ng.error)
    monkeypatch.setenv("LINKCRAWL_ZLIB_NG", "0")
    assert warc._inflater() == (zlib, (zlib.error,))
    monkeypatch.delenv("LINKCRAWL_ZLIB_NG")
    monkeypatch.setitem(sys.modules, "zlib_ng", None)  # as if not installed: import fails
    assert warc._inflater() == (zlib, (zlib.error,))


def test_without_zlib_ng_a_warc_reads_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = (b"WARC/1.0\r\nWARC-Type: resource\r\nWARC-Target-URI: http://a.test/\r\n"
           b"WARC-Date: 2024-05-18T01:02:03Z\r\nContent-Length: 4\r\n\r\n<p>x\r\n\r\n")  # fmt: skip
    data = gzip.compress(raw) * 3 + gzip.compress(raw)[:-9]  # the last member cut

    def read() -> list[object]:
        got: list[object] = []
        try:
            for rec in warc.iter_records(io.BufferedReader(io.BytesIO(data))):
                got.append((rec.rec_type, rec.url, rec.stream.read()))
        except warc.ArchiveError as exc:
            got.append(str(exc))
        return got

    fast = read()
    monkeypatch.setattr(warc, "_ZLIB", zlib)
    monkeypatch.setattr(warc, "_ZLIB_ERRORS", (zlib.error,))
    assert read() == fast and len(fast) == 5 and "truncated gzip member" in str(fast[-1])


def test_a_gzip_bomb_inflates_a_chunk_at_a_time_with_zlib_ng(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """64 MiB of zeros in ~64 KB of gzip: zlib-ng honours the reader's bound as zlib does, no
    call making more than ``_CHUNK`` bytes (a bomb costs no more memory than a page)."""
    sizes: list[int] = []

    class Counted:
        def __init__(self, inner: object) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> object:
            return getattr(self.inner, name)

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            out = self.inner.decompress(data, max_length)
            sizes.append(len(out))
            return out

    class Module:
        error = zlib_ng.error

        @staticmethod
        def decompressobj(wbits: int) -> Counted:
            return Counted(zlib_ng.decompressobj(wbits))

    bomb = gzip.compress(bytes(64 << 20), compresslevel=9, mtime=0)
    assert len(bomb) < 100_000
    out, err = _decode(bomb, Module, monkeypatch)
    assert err is None and len(out) == 64 << 20
    assert sizes and max(sizes) <= warc._CHUNK
