"""Moved to :mod:`pipelines.decompress` (pure, shared with `linkcrawl ingest`); kept so that
``crawler.decompress`` imports still work."""

from pipelines.decompress import (
    ACCEPT_ENCODING,
    CHUNK,
    MAX_LAYERS,
    MAX_MEMBERS,
    decode_body,
    parse_encodings,
)

__all__ = ["ACCEPT_ENCODING", "CHUNK", "MAX_LAYERS", "MAX_MEMBERS", "decode_body",
           "parse_encodings"]  # fmt: skip
