"""What every test of the native core shares: whether the core can be built here, the core
or a failure when it should have been, and a guard that fails a test when the core silently
hands a page to the Python path (a comparison must not compare Python with itself)."""

from __future__ import annotations

import gzip
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from pipelines import native

HAS_CARGO = shutil.which("cargo") is not None
DATA = Path(__file__).resolve().parent / "data"


def built(module: ModuleType | None) -> ModuleType | None:
    """*module* (a core getter's answer); on a machine with cargo, None fails the test."""
    if module is None and HAS_CARGO:
        pytest.fail(
            "the native core is not built (or LINKCRAWL_NATIVE=0): cd native && cargo build "
            "--release && cd .. && ln -sf native/target/release/liblinkcrawl_native.so "
            "linkcrawl_native.abi3.so (or pip install .)"
        )
    return module


def no_core() -> None:
    """Without cargo there is no core: each test then checks that, and the Python path."""
    assert not HAS_CARGO and native.core() is None


@pytest.fixture(autouse=True, name="_no_fallback")
def no_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Autouse where imported: a core failure (logged, then the Python path) fails the test."""

    def failed(url: str, exc: Exception) -> None:
        raise AssertionError(f"the core fell back to the Python path on {url}: {exc}")

    monkeypatch.setattr(native, "_failed", failed)


def stub_core(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    """Put a ``linkcrawl_native`` of *source* first on the path, in place of the core (the
    caller clears ``native.core``'s cache again after)."""
    (tmp_path / "linkcrawl_native.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "linkcrawl_native", raising=False)
    native.core.cache_clear()


def repository_pages() -> list[tuple[str, bytes]]:
    """(URL, HTML) of every page kept in tests/data: the Zyte pages, the WCXB sample and the
    WCXB page-type pages, in that order."""
    pages = []
    root = DATA / "zyte-article-extraction-benchmark"
    for pid, item in sorted(json.loads((root / "ground-truth.json").read_text()).items()):
        pages.append(
            (item["url"], gzip.decompress((root / "html" / f"{pid}.html.gz").read_bytes()))
        )
    for path in sorted((DATA / "wcxb-sample" / "dev" / "ground-truth").glob("*.json")):
        url = json.loads(path.read_text())["url"] or "https://wcxb.example/"
        html = DATA / "wcxb-sample" / "dev" / "html" / f"{path.stem}.html.gz"
        pages.append((url, gzip.decompress(html.read_bytes())))
    typed = json.loads((DATA / "wcxb-page-type" / "pages.json").read_text())
    for pid, item in sorted(typed.items()):
        html = DATA / "wcxb-page-type" / "html" / f"{pid}.html.gz"
        pages.append((item["url"], gzip.decompress(html.read_bytes())))
    return pages
