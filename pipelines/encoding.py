"""Decode a fetched HTML body to text as a browser would.

Order (WHATWG encoding sniffing, simplified): byte-order mark, then the HTTP ``Content-Type``
charset, then a ``<meta charset>`` / ``http-equiv`` declaration near the start, then a sniff:
strict UTF-8 if the bytes are valid UTF-8, else windows-1252 (the browser default for most
locales). Labels are mapped the WHATWG way by w3lib (``latin1`` -> cp1252, ``gb2312`` -> gb18030).
Undecodable bytes become U+FFFD: a bad page never raises.
"""

from __future__ import annotations

from w3lib.encoding import html_to_unicode, http_content_type_encoding

_SNIFF_BYTES = 65536


def _sniff(body: bytes) -> str | None:
    """Guess for undeclared pages: UTF-8 if the start is valid UTF-8.

    >>> _sniff("café".encode("utf-8"))
    'utf-8'
    >>> _sniff("café".encode("cp1252")) is None
    True
    """
    head = body[:_SNIFF_BYTES]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte sequence cut by the sniff window is still UTF-8.
        if exc.start < len(head) - 3 or len(body) <= _SNIFF_BYTES:
            return None
    return "utf-8"


def decode_html(body: bytes, content_type: str | None = None) -> tuple[str, str]:
    """Decode ``body``; return ``(text, encoding)``.

    >>> decode_html(b"<meta charset=windows-1251><a>\\xcf\\xf0\\xe8</a>")
    ('<meta charset=windows-1251><a>При</a>', 'cp1251')
    >>> decode_html(b"\\x82\\xa0", "text/html; charset=Shift_JIS")
    ('あ', 'cp932')
    >>> decode_html(b"caf\\xe9")
    ('café', 'cp1252')
    >>> decode_html(b'<meta charset="utf-16">\\xe2\\x9c\\x93')
    ('<meta charset="utf-16">✓', 'utf-8')
    """
    encoding, text = html_to_unicode(
        content_type, body, default_encoding="cp1252", auto_detect_fun=_sniff
    )
    if encoding.startswith("utf-16") and not body.startswith(_BOMS):
        header = http_content_type_encoding(content_type) if content_type else None
        if header is None or not header.startswith("utf-16"):
            # A <meta> declaring UTF-16 in a page readable as ASCII means UTF-8 (WHATWG).
            encoding, text = "utf-8", body.decode("utf-8", "replace")
    return text, encoding


# Signatures of common non-HTML files (WHATWG MIME Sniffing, plus a few archives).
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "a PDF document"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"RIFF", "a RIFF file (WebP, WAV, AVI)"),
    (b"PK\x03\x04", "a ZIP archive (or DOCX, XLSX, EPUB, JAR)"),
    (b"\x1f\x8b\x08", "gzip-compressed data"),
    (b"BZh", "bzip2-compressed data"),
    (b"\xfd7zXZ\x00", "xz-compressed data"),
    (b"(\xb5/\xfd", "zstd-compressed data"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x7fELF", "an ELF executable"),
    (b"\x00asm", "a WebAssembly module"),
    (b"OggS\x00", "an Ogg file"),
    (b"ID3", "an MP3 file"),
    (b"\x00\x00\x01\x00", "an icon"),
    (b"wOFF", "a WOFF font"),
    (b"wOF2", "a WOFF2 font"),
)
# The "binary data bytes" of WHATWG MIME Sniffing: no text format has them.
_BINARY_BYTES = bytes([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20)])
_BOMS = (b"\xef\xbb\xbf", b"\xfe\xff", b"\xff\xfe")


def not_html_reason(body: bytes) -> str | None:
    """Why *body* is clearly not an HTML page (a known binary format, or binary bytes in its
    first 1,445 bytes, as a browser's sniffer decides), or None.

    An empty body, plain text or a fragment of markup is not rejected: it parses, to no links.

    >>> not_html_reason(b"%PDF-1.7 ...")
    'a PDF document'
    >>> not_html_reason(bytes(range(256)))
    'binary data'
    >>> not_html_reason(b"") is None, not_html_reason("<p>Привет".encode("utf-16")) is None
    (True, True)
    """
    head = body[:1445]
    if head.startswith(_BOMS):
        return None  # a text encoding's byte-order mark (UTF-16 has NUL bytes)
    for signature, what in _SIGNATURES:
        if head.startswith(signature):
            return what
    if head.translate(None, _BINARY_BYTES) != head:
        return "binary data"
    return None
