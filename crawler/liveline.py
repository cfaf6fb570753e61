"""A live status line on stderr, shared by the crawl and ingest (no imports beyond the
standard library, so that worker processes load it cheaply)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class LiveLine:
    """Redrawn in place on a terminal; on a pipe or file, one line at most every 10 s."""

    def __init__(self, stream: TextIO = sys.stderr, enabled: bool = True) -> None:
        self.stream = stream
        self.enabled = enabled
        self.tty = stream.isatty()
        self.start = time.monotonic()
        self._last_line = 0.0

    def elapsed(self) -> float:
        return max(time.monotonic() - self.start, 1e-9)

    def show(self, line: str, force: bool = False) -> None:
        """Draw ``line`` (``force``: print it even within 10 s of the last one)."""
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r\x1b[2K" + line)
            self.stream.flush()
        elif force or now - self._last_line >= 10:
            self.stream.write(line + "\n")
            self.stream.flush()
            self._last_line = now

    def done(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
