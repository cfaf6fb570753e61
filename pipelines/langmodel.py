"""py3langid's model, decompressed once into the user's cache.

py3langid ships its model LZMA-compressed (4.6 MB); a process that detects a language reads it
through LZMA each time it starts (~0.35 CPU s: a third of a crawl worker's start-up, 3% of an
ingest job). Here the decompressed npz (~68 MB) is written once, atomically, to
``$LINKCRAWL_CACHE_DIR`` (else ``$XDG_CACHE_HOME/linkcrawl``, else ``~/.cache/linkcrawl``) and
read from there (~0.1 CPU s). The same arrays either way: a copy that is missing, cut, of
another layout or not the user's own is written again; one that cannot be written (a read-only
home) leaves py3langid's own load. ``LINKCRAWL_CACHE_DIR=0`` turns it off.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import lzma
import os
import tempfile
import time
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

CACHE_ENV = "LINKCRAWL_CACHE_DIR"
#: The decompressed model's bytes at most (py3langid 0.4's is 68 MB): a larger stream is not
#: the model we know, and is left to py3langid.
MAX_MODEL_BYTES = 512 << 20
_CHUNK = 1 << 20
#: A temporary copy older than this is a killed writer's, swept after the next write.
STALE_TMP_SECONDS = 600.0

Model = tuple[Any, Any, list[str], Any, Any, list[int]]


def cache_dir(env: dict[str, str] | os._Environ[str] = os.environ) -> Path | None:
    """Where linkcrawl keeps what it derives once per machine; None when turned off.

    >>> cache_dir({"LINKCRAWL_CACHE_DIR": "/var/cache/lc"}), cache_dir({"LINKCRAWL_CACHE_DIR": "0"})
    (PosixPath('/var/cache/lc'), None)
    >>> cache_dir({"XDG_CACHE_HOME": "/x", "HOME": "/h"})
    PosixPath('/x/linkcrawl')
    """
    chosen = env.get(CACHE_ENV)
    if chosen == "0":
        return None
    if chosen:
        return Path(chosen)
    base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME") or "~", ".cache")
    return Path(os.path.expanduser(base)) / "linkcrawl"


def cached_name(model_file: Path) -> str:
    """The cache's name for *model_file*: py3langid's version and a digest of the file, so that
    another model (an upgrade) is never read from an older copy, and every install of the same
    model (one a virtualenv) shares one copy."""
    try:
        version = metadata.version("py3langid")
    except metadata.PackageNotFoundError:
        version = "0"
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()[:20]  # ~10 ms for 4.6 MB
    return f"py3langid-{version}-{digest}.npz"


def load_model(model_file: Path, directory: Path | None = None) -> Model | None:
    """py3langid's model (``modelio.load_model``'s six values) read from the cache, written
    first if missing or unreadable; None when the cache is off or cannot be written (then the
    caller loads the model as py3langid does)."""
    directory = cache_dir() if directory is None else directory
    if directory is None or not model_file.name.endswith(".npz.xz"):
        return None
    try:
        cached = directory / cached_name(model_file)
    except OSError:
        return None
    model = _read(cached)
    if model is None and _write(model_file, cached):
        model = _read(cached)
    return model


def _read(cached: Path) -> Model | None:
    """The six values from a decompressed npz, as py3langid's ``load_model`` gives them; None
    when it is missing, cut or not of that layout."""
    import numpy as np

    try:
        from py3langid.modelio import _to_array  # (py3langid 0.4's npz layout)
    except ImportError:
        return None
    if not _ours(cached):
        return None
    try:
        with np.load(cached, allow_pickle=False) as data:
            ptc, pc, classes = data["ptc"], data["pc"], data["classes"].tolist()
            nextmove, row = _to_array(data["nextmove"]), _to_array(data["nextmove_row"])
            output = data["out_feat"].tolist()
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if ptc.ndim != 2 or not ptc.shape[1] == len(pc) == len(classes) or len(row) != len(output):
        return None
    return ptc, pc, classes, nextmove, row, output


def _ours(cached: Path) -> bool:
    """Whether *cached* is a file this user wrote and no one else can have changed: owned by
    the user, writable by no one else (a copy planted in a shared directory is not read; a
    damaged one fails the zip's CRC-32 on reading)."""
    try:
        stat = cached.stat()
    except OSError:
        return False
    uid = getattr(os, "getuid", None)
    return (uid is None or stat.st_uid == uid()) and not stat.st_mode & 0o022


def _sweep(directory: Path, older_than: float = STALE_TMP_SECONDS) -> None:
    """Delete the temporary copies (``.tmp-*.npz``) that writers killed mid-write left in
    *directory*, once older than *older_than* seconds (a live writer's is seconds old)."""
    now = time.time()
    with contextlib.suppress(OSError):
        for entry in itertools.islice(directory.glob(".tmp-*.npz"), 1000):
            with contextlib.suppress(OSError):
                if now - entry.stat().st_mtime > older_than and _ours(entry):
                    entry.unlink()


def _write(model_file: Path, cached: Path) -> bool:
    """*model_file* decompressed into *cached*, atomically (a temporary name in the same
    directory, then a rename); False, and nothing left, when that fails."""
    tmp = None
    try:
        cached.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=cached.parent)
        with os.fdopen(fd, "wb") as out, lzma.open(model_file) as src:
            _copy_bounded(src, out, MAX_MODEL_BYTES)
        os.replace(tmp, cached)
        _sweep(cached.parent)
        return True
    except (OSError, lzma.LZMAError, ValueError):
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return False


def _copy_bounded(src: Any, out: Any, limit: int = MAX_MODEL_BYTES) -> None:
    """Copy *src* to *out*, raising ValueError past *limit* bytes."""
    written = 0
    while chunk := src.read(_CHUNK):
        written += len(chunk)
        if written > limit:
            raise ValueError("the model decompresses past MAX_MODEL_BYTES")
        out.write(chunk)
