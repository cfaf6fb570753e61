"""URL resolution and normalization: what a link points to, as the index stores it.

Two steps, kept apart so each can be checked against its own reference:

1. :func:`resolve_href` is what a browser resolves ``<a href>`` to: the WHATWG URL standard,
   implemented by ada (``ada_url``, the C++ parser Node.js uses). It passes every case of the
   web-platform-tests ``urltestdata.json`` (``tests/test_whatwg_url.py``).
2. :func:`normalize_url` is the link index's normalization of an absolute URL (README, "URL
   normalization"): only http and https kept; scheme and host lowercased; host in punycode,
   without a trailing dot; default port removed; dot segments resolved; fragment removed;
   percent-encoding normalized; query parameters sorted; tracking parameters removed. ``www.`` is
   kept (it is a host of its own) and so is ``//`` inside a path (a browser requests it as is).
   User info (``user:password@``) is dropped: a link index publishes its URLs, and credentials
   written into an href are secrets, not part of the page's identity (a browser keeps them in
   ``href``). ``normalize_url`` is idempotent.

:func:`resolve_link` does both, fast: it is called for every link of every page.
:func:`url_host` and :func:`registered_domain` give the ``*_host`` and ``*_domain`` columns.

Nothing here imports Scrapy or Redis; every function is pure and thread-safe.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ada_url import idna_to_ascii

# The CFFI binding of ada's C API, which ada_url's own public functions (join_url, URL, ...)
# call. Called directly (the parsed URL freed at once instead of through ffi.gc, no exception
# per invalid URL, no ada_is_valid call), a resolution takes 40% less time than with join_url.
from ada_url._ada_wrapper import ffi as _ffi
from ada_url._ada_wrapper import lib as _lib
from publicsuffixlist import PublicSuffixList

from pipelines.memo import BoundedMemo

__all__ = [
    "DEFAULT_TRACKING_PARAMS",
    "DEFAULT_TRACKING_PREFIXES",
    "encode_query",
    "host_and_domain",
    "is_same_document",
    "is_skipped_href",
    "normalize_url",
    "registered_domain",
    "resolve_href",
    "resolve_link",
    "url_host",
]

#: Query parameters removed by :func:`normalize_url`, matched against the lowercased name.
DEFAULT_TRACKING_PARAMS: frozenset[str] = frozenset({"gclid", "fbclid", "mc_cid", "mc_eid"})
#: Query parameter name prefixes removed by :func:`normalize_url` (lowercase): ``utm_source``,
#: ``utm_medium``, ``utm_campaign``, ...
DEFAULT_TRACKING_PREFIXES: tuple[str, ...] = ("utm_",)

# --- WHATWG resolution ---------------------------------------------------------------------


def _to_usv(s: str) -> str:
    """Replace lone surrogates with U+FFFD, as a browser converts a DOM string to a USVString
    before URL parsing (a valid surrogate pair, as Python may hold it, becomes its code point).
    """
    return s.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _encode(s: str) -> bytes:
    try:
        return s.encode()
    except UnicodeEncodeError:
        return _to_usv(s).encode()


_ada_parse = _lib.ada_parse
_ada_parse_with_base = _lib.ada_parse_with_base
_ada_get_href = _lib.ada_get_href
_ada_free = _lib.ada_free
_unpack = _ffi.unpack


def _parse(url: bytes, base: bytes | None) -> str | None:
    """ada's serialization (``href``) of *url* parsed against *base*, or None on failure."""
    obj = (
        _ada_parse(url, len(url))
        if base is None
        else _ada_parse_with_base(url, len(url), base, len(base))
    )
    try:
        # On failure ada gives an empty href (a URL's href is never empty): no need to ask
        # ada_is_valid first.
        href = _ada_get_href(obj)
        length = href.length
        # ada serializes to ASCII: hosts in punycode, everything else percent-encoded.
        return _unpack(href.data, length).decode() if length else None
    finally:
        _ada_free(obj)


@lru_cache(maxsize=256)
def _parse_base(base: str) -> tuple[bytes, str] | None:
    """*base* encoded for ada and, for an http(s) base, its ``scheme://userinfo@host:port``;
    None when it is not a valid absolute URL.

    Cached: the base is the same for every link of a page.
    """
    encoded = _encode(base)
    serialized = _parse(encoded, None)
    if serialized is None:
        return None
    if serialized.startswith(("http://", "https://")):
        return encoded, serialized[: serialized.index("/", serialized.index(":") + 3)]
    return encoded, ""


# What may follow the "/" of an href for it to be path-absolute ("/x"), not scheme-relative
# ("//host/x", "/\\host/x", and "/\t/host/x" since tabs and newlines are removed first).
_NOT_AFTER_SLASH = frozenset("/\\\t\n\r")


def _resolve(href: str, base: str | None) -> str | None:
    if base is None:
        return _parse(_encode(href), None)
    # A long base (a hostile <base href>) is not cached: the cache outlives the page.
    parsed_base = _parse_base(base) if len(base) <= 4096 else _parse_base.__wrapped__(base)
    if parsed_base is None:
        return None
    # Shortcuts that give what parsing against the base gives, minus parsing the base again:
    # - an href starting with "http://" or "https://" is absolute whatever the (valid) base:
    #   the parser goes from the scheme to the authority state without looking at the base;
    # - a path-absolute href ("/x") takes scheme, user info, host and port from an http(s)
    #   base and nothing else: it is the same as the base's "scheme://host" followed by it.
    base_bytes: bytes | None
    base_bytes, origin = parsed_base
    if href.startswith(("http://", "https://")):
        base_bytes = None
    elif origin and href[:1] == "/" and href[1:2] not in _NOT_AFTER_SLASH:
        href = origin + href
        base_bytes = None
    try:
        encoded = href.encode()
    except UnicodeEncodeError:
        encoded = _to_usv(href).encode()
    return _parse(encoded, base_bytes)


def resolve_href(href: str, base: str | None) -> str | None:
    """Return what a browser resolves ``<a href="{href}">`` to on a page whose base URL is
    *base*, per the WHATWG URL standard, or None when that fails.

    *base* is the page's final URL or its first ``<base href>``; with ``None``, *href* must be
    an absolute URL. Nothing beyond the standard is done: the scheme need not be http(s), the
    fragment and user info are kept (see :func:`normalize_url` for what the index stores).

    Leading and trailing C0 controls and spaces (which include the ASCII whitespace HTML strips
    from an attribute) are stripped and tabs and newlines anywhere are removed, as the URL
    parser does; a lone surrogate becomes U+FFFD. Queries are encoded in UTF-8, as on a UTF-8
    page (a browser uses the page's encoding there).

    >>> resolve_href("../c/./d?q=1#top", "http://Example.COM/a/b/")
    'http://example.com/a/c/d?q=1#top'
    >>> resolve_href("  //bücher.de\\\\x ", "https://a.test/")
    'https://xn--bcher-kva.de/x'
    >>> resolve_href("java\\nscript:alert(1)", "http://a.test/")
    'javascript:alert(1)'
    >>> resolve_href("http://a.test:99999/", "http://a.test/") is None
    True
    """
    return _resolve(href, base)


def encode_query(href: str, encoding: str) -> str:
    """Percent-encode the non-ASCII characters of *href*'s query in *encoding*, as a browser
    encodes the query of a link on a page in that (legacy) encoding; a character the encoding
    lacks becomes ``%26%23<code point>%3B`` (``&#N;``). The rest is left to the URL parser.

    >>> encode_query("/s?q=привет#якорь", "cp1251")
    '/s?q=%EF%F0%E8%E2%E5%F2#якорь'
    >>> encode_query("/путь?q=✓", "cp1251")
    '/путь?q=%26%2310003%3B'
    >>> encode_query("/s?q=plain", "cp1251")
    '/s?q=plain'
    """
    start = href.find("?")
    if start < 0:
        return href
    end = href.find("#", start)
    if end < 0:
        end = len(href)
    query = href[start + 1 : end]
    if query.isascii():
        return href
    parts = []
    for char in query:
        if char < "\x80":
            parts.append(char)
            continue
        try:
            raw = char.encode(encoding)
        except UnicodeEncodeError:
            parts.append(f"%26%23{ord(char)}%3B")
        else:
            parts.append("".join(f"%{byte:02X}" for byte in raw))
    return href[: start + 1] + "".join(parts) + href[end:]


# --- Normalization -------------------------------------------------------------------------

_HEXDIGITS = "0123456789ABCDEFabcdef"
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _escape_tables() -> tuple[dict[str, str], dict[str, str]]:
    decode_all: dict[str, str] = {}
    decode_non_hex: dict[str, str] = {}
    for a in _HEXDIGITS:
        for b in _HEXDIGITS:
            hexpair = a + b
            char = chr(int(hexpair, 16))
            escape = "%" + hexpair.upper()
            decode_all[hexpair] = char if char in _UNRESERVED else escape
            decode_non_hex[hexpair] = (
                char if char in _UNRESERVED and char not in _HEXDIGITS else escape
            )
    return decode_all, decode_non_hex


_DECODE_ALL, _DECODE_NON_HEX = _escape_tables()
# An escape that _normalize_escapes changes: an unreserved character's, or with lowercase hex;
# or a % not followed by two hex digits (which changes how the others are decoded).
_ESCAPE_TO_CHANGE_RE = re.compile(
    r"%(?:2[DE]|3[0-9]|4[1-9A-F]|5[0-9AF]|6[1-9A-F]|7[0-9AE]"
    r"|[a-f][0-9A-Fa-f]|[0-9A-F][a-f]|(?![0-9A-Fa-f]{2}))"
)


def _normalize_escapes(s: str) -> str:
    """Decode the escapes of unreserved characters and uppercase the hex of the others.

    Reserved characters (``%2F``, ``%3F``, ``%26``, ``%3D``, ``%25``, ...) stay encoded: decoding
    them would change what the URL means. A ``%`` not followed by two hex digits is left as the
    browser sends it; beside one, an escape of a hex digit stays encoded, so that decoding
    cannot make a new escape (``%%34%31`` must not become ``%41``, then ``A``).

    >>> _normalize_escapes("/%7euser/%e2%82%ac/a%2fb%3F")
    '/~user/%E2%82%AC/a%2Fb%3F'
    >>> _normalize_escapes("%%34%31%7e")
    '%%34%31~'
    """
    if _ESCAPE_TO_CHANGE_RE.search(s) is None:
        return s  # escapes from ada: uppercase, of characters that stay encoded
    parts = s.split("%")
    escapes = parts[1:]
    table = _DECODE_ALL
    for part in escapes:
        if part[:2] not in _DECODE_ALL:  # a % not followed by two hex digits
            table = _DECODE_NON_HEX
            break
    out = [parts[0]]
    for part in escapes:
        replacement = table.get(part[:2])
        out.append("%" + part if replacement is None else replacement + part[2:])
    return "".join(out)


def _normalize_query(
    query: str, tracking_params: frozenset[str], tracking_prefixes: tuple[str, ...]
) -> str:
    """The query (without ``?``): empty parameters and tracking parameters dropped, escapes
    normalized, parameters sorted by name then value, each kept as it was encoded.

    Each parameter is normalized on its own: a stray ``%`` in one must not change how another is
    decoded, or dropping the first would make the result change on a second pass.
    """
    # Each parameter is kept as "name\0value" ("=" is always encoded in a serialized query,
    # as %00): sorting these strings sorts by name, then value, and a name without "=" comes
    # before the same name with an empty value ("?a=&a" and "?a&a=" are one URL: "?a&a=").
    params = []
    for param in query.split("&"):
        if not param:
            continue
        if "%" in param:
            param = _normalize_escapes(param)
        name, equals, value = param.partition("=")
        lowered = name.lower()
        if lowered in tracking_params or lowered.startswith(tracking_prefixes):
            continue
        params.append(name + "\0" + value if equals else name)
    if len(params) > 1:
        params.sort()
    return "&".join(params).replace("\0", "=")


def _strip_trailing_dots(host: str) -> str | None:
    """*host* without its trailing dots, parsed again as the URL parser parses a host; None
    when nothing is left or it does not parse.

    The parser reads ``0x7f..`` as a domain (its last label is empty) but ``0x7f`` as the IPv4
    address 0.0.0.127: parsing the stripped host again keeps the result a fixed point.
    """
    stripped = host.rstrip(".")
    if not stripped:
        return None
    reparsed = _parse(b"http://" + stripped.encode() + b"/", None)
    return None if reparsed is None else reparsed[7:-1]


def _normalize_serialized(
    url: str, tracking_params: frozenset[str], tracking_prefixes: tuple[str, ...]
) -> str | None:
    """Normalize *url*, an http(s) URL as ada serializes it.

    ada has already lowercased the scheme and host, converted the host to punycode (and an IPv4
    host to dotted decimal), removed the default port and resolved dot segments. In that
    serialization, ``@`` in the user info, ``?`` and ``#`` in the user info and path, and ``#``
    in the query are percent-encoded, so plain string splitting is exact.
    """
    if url.startswith("https://"):
        authority_start = 8
    elif url.startswith("http://"):
        authority_start = 7
    else:
        return None
    hash_index = url.find("#")
    if hash_index >= 0:
        url = url[:hash_index]
    if "?" not in url and "%" not in url and "@" not in url and "./" not in url and ".:" not in url:
        # The common case: no query, escape, user info, or host's trailing dot (a "./" in the
        # path sends the URL the long way, harmlessly).
        return url
    path_start = url.find("/", authority_start)  # special URLs always have a path
    authority = url[authority_start:path_start]
    rest = url[path_start:]
    if "@" in authority or authority.endswith(".") or ".:" in authority:
        authority = authority.rpartition("@")[2]
        if not authority.startswith("["):  # an IPv6 address never ends with a dot
            host, _, port = authority.partition(":")
            if host.endswith("."):
                host = _strip_trailing_dots(host)
                if host is None:
                    return None
                authority = host + ":" + port if port else host
    query_index = rest.find("?")
    if query_index >= 0:
        path = rest[:query_index]
        query = _normalize_query(rest[query_index + 1 :], tracking_params, tracking_prefixes)
    else:
        path, query = rest, ""
    if "%" in path:
        path = _normalize_escapes(path)
    prefix = url[:authority_start] + authority + path
    return prefix + "?" + query if query else prefix


def normalize_url(
    url: str,
    *,
    tracking_params: frozenset[str] = DEFAULT_TRACKING_PARAMS,
    tracking_prefixes: tuple[str, ...] = DEFAULT_TRACKING_PREFIXES,
) -> str | None:
    """Return the normalized form of the absolute URL *url*, or None when it is not a valid
    http or https URL.

    The URL is parsed as a browser parses it (WHATWG), then: scheme and host lowercased; host in
    punycode, without a trailing dot, an IPv4 address in dotted decimal; default port removed;
    dot segments resolved (``//`` kept); fragment removed; user info removed; escapes of
    unreserved characters (``A-Z a-z 0-9 - . _ ~``) decoded, other escapes' hex uppercased;
    empty query parameters and tracking parameters dropped (*tracking_params*: names, and
    *tracking_prefixes*: name prefixes, both lowercase, matched against the lowercased name);
    the others sorted by name then value, each kept as it was encoded; an empty query removed.
    ``normalize_url(normalize_url(u)) == normalize_url(u)``.

    >>> normalize_url("HTTP://User:Pw@WWW.Example.COM.:80/a/./b/../%7ec?b=2&utm_source=x&a=1#f")
    'http://www.example.com/a/~c?a=1&b=2'
    >>> normalize_url("https://Bücher.de:443/%c3%a4//x?q=%2f%41")
    'https://xn--bcher-kva.de/%C3%A4//x?q=%2FA'
    >>> normalize_url("http://0x7f.1:8080/?")
    'http://127.0.0.1:8080/'
    >>> normalize_url("http://a.test/?gclid=1&ref=2", tracking_params=frozenset({"ref"}))
    'http://a.test/?gclid=1'
    >>> normalize_url("ftp://a.test/") is None, normalize_url("/relative") is None
    (True, True)
    """
    serialized = _parse(_encode(url), None)
    if serialized is None:
        return None
    return _normalize_serialized(serialized, tracking_params, tracking_prefixes)


def resolve_link(
    href: str,
    base: str | None,
    *,
    tracking_params: frozenset[str] = DEFAULT_TRACKING_PARAMS,
    tracking_prefixes: tuple[str, ...] = DEFAULT_TRACKING_PREFIXES,
) -> str | None:
    """Return the normalized target of ``<a href="{href}">`` on a page whose base URL is *base*,
    or None when it does not resolve to an http or https URL.

    The same as ``normalize_url(resolve_href(href, base))``, with one parse instead of two. Call
    :func:`is_skipped_href` first: an empty or fragment-only href resolves to the base (the
    page itself unless a ``<base href>`` names another document).

    >>> resolve_link("../b/?z=1&a=%7e#frag", "https://www.example.com/x/y/z.html")
    'https://www.example.com/x/b/?a=~&z=1'
    >>> resolve_link("//cdn.example.com/a//b?utm_medium=x", "https://www.example.com/")
    'https://cdn.example.com/a//b'
    >>> resolve_link("mailto:a@example.com", "https://www.example.com/") is None
    True
    """
    serialized = _resolve(href, base)
    if serialized is None:
        return None
    return _normalize_serialized(serialized, tracking_params, tracking_prefixes)


# --- Hrefs that are not links --------------------------------------------------------------

_C0_OR_SPACE = "".join(map(chr, range(0x21)))
_TAB_OR_NEWLINE = {ord("\t"): None, ord("\n"): None, ord("\r"): None}
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")


def is_skipped_href(href: str, same_document: bool = True) -> bool:
    """Return True when *href* is not a link to another resource: empty, fragment-only, or
    with a scheme other than http and https (``javascript:``, ``mailto:``, ``tel:``, ``data:``,
    ``about:``, ``blob:``, ``file:``, ``ftp:``, ...).

    The href is read as the URL parser reads it: C0 controls and spaces stripped around it, tabs
    and newlines removed inside, the scheme case-insensitive. An empty href (``href=""``) and a
    fragment-only one (``#`` or ``#anything``) resolve to the base URL (without its fragment):
    when the base is the document itself (*same_document*, see :func:`is_same_document`) they
    are links to the page itself and skipped; under a ``<base href>`` naming another document
    (``same_document=False``) they are links to that document, as in the browser's
    ``document.links``. Relative hrefs, ``?q`` included, are links.

    >>> [is_skipped_href(h) for h in ["#top", "", " JavaScript:void(0)", "java\\nscript:x"]]
    [True, True, True, True]
    >>> [is_skipped_href(h) for h in ["mailto:a@b.c", "tel:+1", "data:,x", "ftp://a.test/"]]
    [True, True, True, True]
    >>> [is_skipped_href(h) for h in ["/a", "?page=2", "HTTPS://a.test/", "//a.test/", "a:b/c"]]
    [False, False, False, False, True]
    >>> [is_skipped_href(h, same_document=False) for h in ["#top", " ", "mailto:a@b.c"]]
    [False, False, True]
    """
    first = href[:1]
    if first == "/" or first == "." or first == "?" or href.startswith(("http://", "https://")):
        return False  # the common cases: no scheme, or http(s)
    href = href.strip(_C0_OR_SPACE)
    if "\t" in href or "\n" in href or "\r" in href:
        href = href.translate(_TAB_OR_NEWLINE)
    if not href or href[0] == "#":
        return same_document
    match = _SCHEME_RE.match(href)
    return match is not None and match[1].lower() not in ("http", "https")


def is_same_document(base: str, url: str) -> bool:
    """Return True when the base URL *base* names the document at *url* itself: both
    normalized (:func:`normalize_url`: what a link to the base would target) are equal; when
    either is not an http(s) URL, both as the WHATWG URL parser serializes them (an
    unparsable one as written), without their fragments.

    This is what decides whether an empty or fragment-only href is a link to the page itself
    (skipped) or to the document a ``<base href>`` names (:func:`is_skipped_href`).

    >>> is_same_document("http://a.test/p#top", "HTTP://A.test:80/p")
    True
    >>> is_same_document("http://a.test/%70?utm_source=z", "http://a.test/p")  # a self-link
    True
    >>> is_same_document("http://a.test/", "http://a.test/p"), is_same_document("x", "")
    (False, False)
    """
    normalized = normalize_url(base), normalize_url(url)
    if normalized[0] is not None and normalized[1] is not None:
        return normalized[0] == normalized[1]
    base = _resolve(base, None) or base
    url = _resolve(url, None) or url
    return base.partition("#")[0] == url.partition("#")[0]


# --- Hosts and registered domains ----------------------------------------------------------


def url_host(url: str) -> str:
    """Return the host of *url*, a normalized URL (from :func:`normalize_url` or
    :func:`resolve_link`): lowercase punycode, without the port; an IPv6 address keeps its
    brackets, as in the URL.

    >>> url_host("https://xn--bcher-kva.de:8443/a?b")
    'xn--bcher-kva.de'
    >>> url_host("http://[::1]:8080/")
    '[::1]'
    >>> url_host("")  # no URL (a page handed to extraction without one)
    ''
    """
    parts = url.split("/", 3)
    if len(parts) < 3:
        return ""
    authority = parts[2]
    if "@" in authority:
        authority = authority.rpartition("@")[2]
    if authority[:1] == "[":
        return authority[: authority.find("]") + 1]
    return authority.partition(":")[0]


def scope_key(url: str, by_domain: bool = False) -> str:
    """What crawl scope compares: an origin without its scheme. The host (or, ``by_domain``,
    its registered domain) and the port unless it is the scheme's default, so another port is
    another site while http and https of one host are one (sites redirect one to the other).

    >>> scope_key("https://a.test/x"), scope_key("http://a.test:8080/")
    ('a.test', 'a.test:8080')
    >>> scope_key("http://www.a.test:8443/", by_domain=True), scope_key("http://[::1]:81/")
    ('a.test:8443', '[::1]:81')
    """
    host = url_host(url)
    authority = url.split("/", 3)[2].rpartition("@")[2]
    port = authority[len(host) + 1 :] if authority[len(host) : len(host) + 1] == ":" else ""
    key = registered_domain(host) if by_domain else host
    return f"{key}:{port}" if port else key


_IPV4_RE = re.compile(r"[0-9]+(?:\.[0-9]+){3}")


@lru_cache(maxsize=2)
def _psl(idn: bool = True) -> PublicSuffixList:
    # The list shipped in the publicsuffixlist wheel (no network), ICANN and private sections.
    # Without its punycode rules it loads 3x faster, and answers the same for a name with no
    # "xn--" label (a query's start-up pays for the list: 50 ms of its 200).
    return PublicSuffixList(accept_encoded_idn=idn)


def _registered_domain(host: str) -> str:
    """Return the registered domain of *host* by the Public Suffix List: the public suffix and
    one label before it. Returns *host* itself for IP addresses and hosts without one (a
    public suffix itself, such as ``localhost`` or ``co.uk``).

    The list's private section counts: ``alice.blogspot.com`` and ``bob.github.io`` are domains
    of their own, as the link explorers count them (they are different owners). A TLD missing
    from the list is a public suffix (the list's default rule ``*``), so ``a.test`` is a domain.

    >>> registered_domain("www.bbc.co.uk"), registered_domain("alice.blogspot.com")
    ('bbc.co.uk', 'alice.blogspot.com')
    >>> registered_domain("shop.a.test"), registered_domain("localhost")
    ('a.test', 'localhost')
    >>> registered_domain("127.0.0.1"), registered_domain("[::1]")
    ('127.0.0.1', '[::1]')
    """
    if not host or host[0] == "[" or _IPV4_RE.fullmatch(host):
        return host
    name = host.lower().rstrip(".")
    if not name.isascii():
        name = idna_to_ascii(name).decode()  # b"" when it fails
        if not name:
            return host
    domain = _psl("xn--" in name).privatesuffix(name)
    return domain if isinstance(domain, str) else host


# Hosts come from pages: the memo is bounded in bytes (pipelines/memo.py), not entries. A hit
# is one dict look-up in C: no Python frame per link.
_DOMAINS = BoundedMemo(_registered_domain, 8 << 20)
registered_domain = _DOMAINS.__getitem__


def host_and_domain(url: str) -> tuple[str, str]:
    """Return ``(url_host(url), registered_domain(host))`` for a normalized *url*.

    >>> host_and_domain("https://www.example.co.uk/a")
    ('www.example.co.uk', 'example.co.uk')
    """
    host = url_host(url)
    return host, registered_domain(host)
