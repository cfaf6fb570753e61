"""The unit of a served web: one response (status, headers, body)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Resource"]


@dataclass(frozen=True)
class Resource:
    """A canned HTTP response.

    ``headers`` holds the resource's own headers (Content-Type, Location, X-Robots-Tag...); the
    server adds Content-Length and Connection itself and ignores those two if given here.
    """

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None
