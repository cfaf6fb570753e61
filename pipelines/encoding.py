"""Decode a fetched HTML body to text as a browser would.

Order (WHATWG encoding sniffing): byte-order mark, then the HTTP ``Content-Type`` charset, then a
``<meta charset>`` / ``http-equiv`` declaration near the start, then a guess: UTF-8 if the whole
body is valid UTF-8; else the script its non-ASCII bytes are written in when chardet finds a
non-Latin one (Cyrillic, Greek, Hebrew, Arabic, Thai, Japanese, Chinese, Korean: a browser
detects these too); else windows-1252 (the browser default for most locales). A guess is
tentative: a ``<meta>`` declaration later in the ``<head>`` still overrides it, as a browser
re-decodes the page (see :func:`encoding_of_meta`; ``pipelines.extract`` finds the ``<meta>``).
Labels are mapped the WHATWG way by w3lib (``latin1`` -> cp1252, ``gb2312`` -> gb18030).
Undecodable bytes become U+FFFD: a bad page never raises.
"""

from __future__ import annotations

import codecs
import re
from typing import NamedTuple

from w3lib.encoding import (
    html_body_declared_encoding,
    http_content_type_encoding,
    read_bom,
    to_unicode,
)

# Bytes of a page without valid UTF-8 given to chardet, from its first non-ASCII byte.
_DETECT_BYTES = 65536
_NON_ASCII = re.compile(rb"[\x80-\xff]")
_META_TAG = re.compile(rb"<meta\b[^>]*>|<\?xml[^>]*>", re.IGNORECASE)
# A guess must also read as its script: most of its non-ASCII letters in words of their own,
# not inside ASCII words (Italian read as Cyrillic gives "Perchй").
_MIN_SCRIPT_SHARE = 0.8
_WORD = re.compile(r"[^\W\d_]+")
# Labels that WHATWG maps to the "replacement" encoding (one U+FFFD for the whole page): they
# can smuggle markup through ASCII escapes.
_REPLACEMENT = frozenset({"iso2022_kr", "hz"})
# What chardet may name, mapped to the decoder a browser uses for it (WHATWG: Shift_JIS is
# windows-31J, EUC-KR is windows-949, GB2312 and GBK are GB18030, Big5 includes HKSCS).
# Latin encodings are left out: detectors confuse them with one another, and windows-1252, the
# default, is what a browser in a Western locale uses (so is mac-cyrillic, which chardet likes
# to find in Italian).
_NON_LATIN = {
    **dict.fromkeys(["cp1251", "koi8-r", "koi8-u", "cp866", "iso8859-5"]),
    **dict.fromkeys(["cp1253", "iso8859-7", "cp1255", "iso8859-8", "cp1256", "iso8859-6"]),
    "cp874": None, "tis-620": "cp874", "iso8859-11": "cp874",
    "cp932": None, "shift_jis": "cp932", "euc_jp": None, "euc_jis_2004": "euc_jp",
    "gb18030": None, "gbk": "gb18030", "gb2312": "gb18030",
    "big5": "big5hkscs", "cp950": "big5hkscs", "big5hkscs": None,
    "euc_kr": "cp949", "cp949": None,
}  # fmt: skip


class Decoded(NamedTuple):
    """A decoded page: its text, the Python codec used, and whether that was only a guess."""

    text: str
    encoding: str
    tentative: bool  # no byte-order mark, Content-Type charset or early <meta> said it


def _codec(name: str) -> str | None:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


# Python codecs a charset label can name that no browser decodes a page with: they raise on
# some bytes (undefined, idna, punycode) or read backslashes as escapes. A browser ignores a
# label it does not know; so do we (the next source decides).
_NOT_PAGE_CODECS = frozenset({"undefined", "idna", "punycode", "unicode-escape",
                              "raw-unicode-escape"})  # fmt: skip


def page_codec(name: str | None) -> str | None:
    """*name* if it names a text encoding a page can be decoded with, else None (``zlib``,
    ``base64``, ``rot13``... are byte or str transforms, not text encodings).

    >>> page_codec("cp1251"), page_codec("zlib"), page_codec("undefined"), page_codec(None)
    ('cp1251', None, None, None)
    """
    if name is None:
        return None
    try:
        info = codecs.lookup(name)
    except LookupError:
        return None
    text = getattr(info, "_is_text_encoding", True)  # False for the bytes-to-bytes codecs
    return name if text and info.name not in _NOT_PAGE_CODECS else None


def _guess(body: bytes) -> str | None:
    """The encoding of a page that declares none (None: windows-1252, the default).

    >>> _guess("café".encode("utf-8")), _guess("café".encode("cp1252"))
    ('utf-8', None)
    >>> _guess("<p>Привет, это обычный текст на русском языке.</p>".encode("cp1251"))
    'cp1251'
    >>> _guess("<p>日本語のリンクです。これは普通の文章です。</p>".encode("shift_jis"))
    'cp932'
    """
    try:
        body.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        cut = exc.start >= len(body) - 3 and exc.reason == "unexpected end of data"
        if cut and not body[: exc.start].isascii():
            return "utf-8"  # UTF-8 text, cut in the middle of its last character
    if _mostly_utf8(body):
        return "utf-8"
    first = _NON_ASCII.search(body)
    if first is None:
        return None
    # From the first non-ASCII byte (markup before it only dilutes the statistics), without
    # <meta> tags: chardet would believe their declarations, which a browser ignores outside
    # the head (and those in the head are honoured anyway, as a tentative guess is revised).
    sample = _META_TAG.sub(b"", body[first.start() : first.start() + _DETECT_BYTES])
    import chardet  # here: 40 ms to import, and most pages never need it

    found = chardet.detect(sample).get("encoding")
    codec = _codec(found) if found else None
    if codec is None or codec not in _NON_LATIN:
        return None
    codec = _NON_LATIN[codec] or codec
    if _script_share(sample.decode(codec, "replace")) < _MIN_SCRIPT_SHARE:
        return None
    return codec


def _mostly_utf8(body: bytes) -> bool:
    """Whether ``body`` is UTF-8 with a few bad bytes (a stray byte must not make a UTF-8 page
    look like a legacy one): at least 8 characters beyond ASCII, and under 2% bad sequences.

    >>> page = "Привет, мир! ".encode() * 10
    >>> _mostly_utf8(page + b"\\xff"), _mostly_utf8(page.decode().encode("cp1251"))
    (True, False)
    """
    text = body.decode("utf-8", "replace")
    bad = text.count("\ufffd")
    good = len(text) - len(text.encode("ascii", "ignore")) - bad
    return good >= 8 and bad * 50 <= good


def _script_share(text: str) -> float:
    """The share of the non-ASCII letters of ``text`` that are in words without ASCII letters.

    >>> _script_share("Привет мир"), _script_share("Perchй и cosм")
    (1.0, 0.3333333333333333)
    """
    own = mixed = 0
    for word in _WORD.findall(text):
        n = len(word) - len(word.encode("ascii", "ignore"))
        if n == len(word):
            own += n
        elif n:
            mixed += n
    return own / (own + mixed) if own + mixed else 0.0


class Sniffed(NamedTuple):
    """What decides a page's encoding, before decoding it."""

    encoding: str  # a Python codec name
    tentative: bool  # no byte-order mark, Content-Type charset or early <meta> said it
    start: int  # bytes of a byte-order mark, to skip


def sniff_encoding(body: bytes, content_type: str | None = None) -> Sniffed:
    """The encoding a browser decodes ``body`` with (see the module docstring).

    >>> sniff_encoding(b"\\xef\\xbb\\xbf<p>x")
    Sniffed(encoding='utf-8', tentative=False, start=3)
    >>> sniff_encoding(b"caf\\xe9")
    Sniffed(encoding='cp1252', tentative=True, start=0)
    """
    bom_encoding, bom = read_bom(body)
    if bom_encoding is not None and bom is not None:
        return Sniffed(bom_encoding, False, len(bom))
    header = page_codec(http_content_type_encoding(content_type)) if content_type else None
    encoding = header or encoding_of_meta(body)
    if encoding is None:
        return Sniffed(_guess(body) or "cp1252", True, 0)
    if encoding in ("utf-16", "utf-32"):
        encoding += "-be"  # a Content-Type without a byte order: big-endian
    return Sniffed(encoding, False, 0)


def decode(data: bytes, encoding: str) -> str:
    """``data`` decoded with ``encoding``, a bad byte as U+FFFD; a label WHATWG maps to the
    "replacement" encoding gives one U+FFFD (nothing to parse)."""
    if _codec(encoding) in _REPLACEMENT:
        return "\ufffd"
    return to_unicode(data, encoding)


def decode_html(body: bytes, content_type: str | None = None) -> Decoded:
    """Decode ``body`` as a browser would (see the module docstring).

    >>> decode_html(b"<meta charset=windows-1251><a>\\xcf\\xf0\\xe8</a>")
    Decoded(text='<meta charset=windows-1251><a>При</a>', encoding='cp1251', tentative=False)
    >>> decode_html(b"\\x82\\xa0", "text/html; charset=Shift_JIS")
    Decoded(text='あ', encoding='cp932', tentative=False)
    >>> decode_html(b"caf\\xe9")
    Decoded(text='café', encoding='cp1252', tentative=True)
    >>> decode_html(b'<meta charset="utf-16">\\xe2\\x9c\\x93')
    Decoded(text='<meta charset="utf-16">✓', encoding='utf-8', tentative=False)
    """
    sniffed = sniff_encoding(body, content_type)
    text = decode(body[sniffed.start :], sniffed.encoding)
    return Decoded(text, sniffed.encoding, sniffed.tentative)


def encoding_of_meta(markup: str | bytes) -> str | None:
    """The encoding the first ``<meta>`` of ``markup`` (a page's start, or one tag) declares,
    read as a browser's prescan reads it (``charset``, or ``http-equiv`` with a charset in
    ``content``), as a codec name; UTF-16 means UTF-8 there (WHATWG: the page was readable as
    ASCII to get this far).

    >>> encoding_of_meta('<meta charset=" KOI8-R ">')
    'koi8-r'
    >>> encoding_of_meta('<meta http-equiv="Content-Type" content="text/html; charset=gb2312">')
    'gb18030'
    >>> encoding_of_meta('<meta charset="utf-16le">'), encoding_of_meta('<meta name="x">')
    ('utf-8', None)
    """
    encoding = page_codec(html_body_declared_encoding(markup))
    if encoding is None:
        return None
    return "utf-8" if encoding.startswith(("utf-16", "utf-32")) else encoding


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
