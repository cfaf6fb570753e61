"""A stand-in per-file function for tests/test_ingest_tasks.py, in a module of its own: it is
imported again in each file's process, which must stay quick (no pytest, no Redis)."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from crawler.ingest import FileResult
from crawler.ingest_tasks import FileJob
from pipelines.budget import cpu_budget


@dataclass
class StubIngest:
    """A per-file function that runs, as the real one does, in the worker's child process, and
    talks to the test through files in ``box``: it logs each call, and a file in ``block``
    waits there (``entered``) until ``release``; ``fail`` raise; ``missing`` are reported
    failed, as crawler.ingest.ingest_file reports a missing file; ``crash`` kill their
    process; ``hang`` loop under a page CPU budget."""

    box: str
    block: set = field(default_factory=set)
    fail: set = field(default_factory=set)
    missing: set = field(default_factory=set)
    crash: set = field(default_factory=set)
    hang: set = field(default_factory=set)

    def __call__(self, job: FileJob) -> FileResult:
        with open(f"{self.box}/calls", "a") as fh:
            fh.write(job.path + "\n")
        job.progress(5, 4, 0)
        if job.path in self.block:
            Path(self.box, "entered").touch()
            while not Path(self.box, "release").exists():
                time.sleep(0.01)
        if job.path in self.fail:
            raise RuntimeError(f"cannot read {job.path}")
        if job.path in self.crash:
            os.kill(os.getpid(), signal.SIGKILL)  # as the kernel ends a process out of memory
        if job.path in self.hang:
            with cpu_budget(0.05):  # as ingest_file bounds each page
                while True:
                    pass
        if job.path in self.missing:
            return FileResult(files=1, files_failed=1, messages=[f"{job.path}: file not found"])
        job.progress(10, 8, 30)
        return FileResult(files=1, records=10, pages=8, links=30)

    @property
    def calls(self) -> list[str]:
        path = Path(self.box, "calls")
        return path.read_text().splitlines() if path.exists() else []

    def entered(self) -> bool:
        return Path(self.box, "entered").exists()

    def release(self) -> None:
        Path(self.box, "release").touch()
