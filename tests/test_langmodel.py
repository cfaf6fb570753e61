"""The language model's cache (pipelines/langmodel.py): py3langid's arrays, read once through
LZMA, then from a decompressed copy written atomically; never a wrong or half-written model."""

from __future__ import annotations

import doctest
import os
import time
from array import array
from pathlib import Path

import numpy as np
import pytest
from py3langid.langid import MODEL_DIR, MODEL_FILE
from py3langid.modelio import load_model as py3langid_load

from pipelines import langmodel

MODEL = MODEL_DIR / MODEL_FILE


@pytest.fixture(scope="module")
def reference():
    return py3langid_load(MODEL)


def assert_same_model(got, want) -> None:
    assert got is not None and len(got) == len(want) == 6
    for mine, theirs in zip(got, want, strict=True):
        assert type(mine) is type(theirs)
        if isinstance(theirs, np.ndarray):
            assert mine.dtype == theirs.dtype and mine.shape == theirs.shape
            assert np.array_equal(mine, theirs)
        elif isinstance(theirs, array):
            assert mine.typecode == theirs.typecode and mine == theirs
        else:
            assert mine == theirs


def test_doctests():
    result = doctest.testmod(langmodel)
    assert result.attempted and not result.failed


def test_the_cached_model_is_py3langids_and_is_written_once(tmp_path: Path, reference):
    first = langmodel.load_model(MODEL, tmp_path)
    assert_same_model(first, reference)
    (cached,) = tmp_path.iterdir()  # the model alone: no temporary file left
    assert cached.name == langmodel.cached_name(MODEL) and not cached.name.startswith(".tmp")
    written = cached.stat().st_mtime_ns
    assert_same_model(langmodel.load_model(MODEL, tmp_path), reference)
    assert cached.stat().st_mtime_ns == written  # read, not written again


@pytest.mark.parametrize("damage", ["cut", "empty", "other arrays"])
def test_a_damaged_cache_is_written_again(tmp_path: Path, reference, damage: str):
    cached = tmp_path / langmodel.cached_name(MODEL)
    assert langmodel.load_model(MODEL, tmp_path) is not None
    if damage == "cut":
        data = cached.read_bytes()
        cached.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        cached.write_bytes(b"")
    else:  # a valid npz of another layout
        np.savez(cached.with_suffix(""), ptc=np.zeros((2, 3)), pc=np.zeros(2))
    assert_same_model(langmodel.load_model(MODEL, tmp_path), reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == [cached.name]


def test_a_cache_that_cannot_be_written_leaves_py3langids_load(tmp_path: Path):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    assert langmodel.load_model(MODEL, blocked / "cache") is None
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_a_model_past_the_byte_bound_is_not_cached(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(langmodel, "MAX_MODEL_BYTES", 1 << 20)
    assert langmodel.load_model(MODEL, tmp_path) is None
    assert list(tmp_path.iterdir()) == []  # its temporary file deleted


def test_the_cache_turned_off(monkeypatch):
    monkeypatch.setenv(langmodel.CACHE_ENV, "0")
    assert langmodel.load_model(MODEL) is None


def test_the_detector_answers_the_same_from_the_cache(tmp_path: Path, monkeypatch):
    from pipelines import pagelang

    texts = ["Der schnelle braune Fuchs springt über den faulen Hund und läuft davon.",
             "Le renard brun rapide saute par-dessus le chien paresseux, puis repart.",
             "Быстрая коричневая лиса перепрыгивает через ленивую собаку и убегает."]  # fmt: skip
    answers = []
    for setting in ("0", str(tmp_path)):  # py3langid's own load, then the cache's
        monkeypatch.setenv(langmodel.CACHE_ENV, setting)
        pagelang._identifier.cache_clear()
        answers.append([pagelang._identifier().classify(text) for text in texts])
    pagelang._identifier.cache_clear()
    assert answers[0] == answers[1] and [a[0] for a in answers[0]] == ["de", "fr", "ru"]
    assert [p.name for p in tmp_path.iterdir()] == [langmodel.cached_name(MODEL)]


def test_copies_of_one_model_share_one_cache_name(tmp_path: Path):
    """Every install of the same model (one a virtualenv) reads one copy; another model
    another: the name is the file's digest, not its path or time."""
    first, second, other = (tmp_path / n for n in ("a.npz.xz", "b.npz.xz", "c.npz.xz"))
    data = MODEL.read_bytes()
    first.write_bytes(data)
    second.write_bytes(data)
    other.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    os.utime(second, ns=(1, 1))
    assert langmodel.cached_name(first) == langmodel.cached_name(second)
    assert langmodel.cached_name(other) != langmodel.cached_name(first)


def test_a_copy_others_could_have_written_is_not_read(tmp_path: Path, reference, monkeypatch):
    """A copy writable by others, or owned by another user (planted in a shared directory:
    here its classes rotated, which would name every page's language wrongly), is not read:
    it is written again, or py3langid's own load is used (review15-final 2)."""
    cached = tmp_path / langmodel.cached_name(MODEL)
    good = langmodel.load_model(MODEL, tmp_path)
    with np.load(cached) as data:
        arrays = {name: data[name] for name in data.files}
    arrays["classes"] = np.roll(arrays["classes"], 1)
    np.savez(cached.with_suffix(""), **arrays)  # the planted copy, under the name
    cached.chmod(0o666)
    assert_same_model(langmodel.load_model(MODEL, tmp_path), good)  # written again
    assert cached.stat().st_mode & 0o077 == 0
    np.savez(cached.with_suffix(""), **arrays)
    cached.chmod(0o600)
    monkeypatch.setattr(os, "getuid", lambda: os.stat(cached).st_uid + 1)  # another owner
    assert not langmodel._ours(cached)


def test_a_killed_writers_temporary_copy_is_swept_once_stale(tmp_path: Path):
    """Temporary copies a killed writer left are deleted after the next write, once older
    than STALE_TMP_SECONDS; a live writer's (new) and anything else stay (review15-final 3)."""
    stale, live, other = (tmp_path / n for n in (".tmp-a.npz", ".tmp-b.npz", "notes.txt"))
    for path in (stale, live, other):
        path.write_bytes(b"x" * 100)
    old = time.time() - langmodel.STALE_TMP_SECONDS - 60
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    assert langmodel.load_model(MODEL, tmp_path) is not None
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([live.name, other.name, langmodel.cached_name(MODEL)])
