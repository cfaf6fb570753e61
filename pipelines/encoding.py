"""Decode a fetched HTML body to text as a browser would.

Order (WHATWG encoding sniffing, simplified): byte-order mark, then the HTTP ``Content-Type``
charset, then a ``<meta charset>`` / ``http-equiv`` declaration near the start, then a sniff:
strict UTF-8 if the bytes are valid UTF-8, else windows-1252 (the browser default for most
locales). Labels are mapped the WHATWG way by w3lib (``latin1`` -> cp1252, ``gb2312`` -> gb18030).
Undecodable bytes become U+FFFD: a bad page never raises.
"""

from __future__ import annotations

from w3lib.encoding import html_to_unicode

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
    """
    encoding, text = html_to_unicode(
        content_type, body, default_encoding="cp1252", auto_detect_fun=_sniff
    )
    return text, encoding
