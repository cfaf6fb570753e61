"""`linkcrawl monitor`: re-fetch a target's known referring pages as a new crawl, diff it with
the previous crawl, and emit one event per new or lost backlink.

Events go to stdout (JSON lines), to a Redis stream (XADD) or to a webhook (one POST per
event). The webhook is a stranger's address as much as a page is: the SSRF guard's rules hold
(loopback and private addresses only with ``--allow-private``; link-local and metadata never),
the checked address is the one connected to, redirects are not followed, and every attempt
is bounded in time and in the bytes of the answer read.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from crawler import defaults
from crawler.errors import UsageError

STREAM_PREFIX = f"{defaults.KEY_PREFIX}:monitor:"
STREAM_MAXLEN = 100_000  # as the live feed: about, trimmed by XADD MAXLEN ~
MAX_ANSWER_BYTES = 64 * 1024  # of a webhook's answer read (it is discarded)
# What diff gives, in this order, and what an event adds.
EVENT_FIELDS = ("change", "source_url", "target_url", "anchor_text", "reason", "status",
                "redirect_to", "dofollow", "placement", "source_domain")  # fmt: skip


class WebhookError(Exception):
    """The webhook did not take an event after every retry."""


def monitor_crawl_id(now: datetime | None = None) -> str:
    """A new crawl id for a monitoring run.

    >>> monitor_crawl_id(datetime(2026, 12, 6, 9, 30, 5, tzinfo=timezone.utc))
    'monitor-20261206-093005'
    """
    return (now or datetime.now(timezone.utc)).strftime("monitor-%Y%m%d-%H%M%S")


def stream_key(target: str) -> str:
    """The Redis stream of a target's events (``--stream`` overrides it).

    >>> stream_key(" Shop.test ")
    'linkcrawl:monitor:shop.test'
    """
    return STREAM_PREFIX + target.strip().lower()


def events(rows: Iterable[dict[str, Any]], *, target: str, old: str, new: str,
           at: datetime) -> list[dict[str, Any]]:  # fmt: skip
    """One event per row of ``diff``, with what a consumer needs to act on it alone.

    >>> row = {"change": "lost", "source_url": "http://a.test/", "reason": "link removed"}
    >>> e = events([row], target="shop.test", old="c1", new="m1",
    ...            at=datetime(2026, 12, 6, tzinfo=timezone.utc))[0]
    >>> e["event"], e["reason"], e["old_crawl"], e["detected_at"]
    ('backlink_lost', 'link removed', 'c1', '2026-12-06T00:00:00.000Z')
    """
    from pipelines.index.export import iso_time

    out = []
    for row in rows:
        event: dict[str, Any] = {"event": f"backlink_{row['change']}", "target": target}
        for name in EVENT_FIELDS:
            value = row.get(name)
            event[name] = iso_time(value) if isinstance(value, datetime) else value
        event.update(old_crawl=old, new_crawl=new, detected_at=iso_time(at))
        out.append(event)
    return out


def stream_fields(event: dict[str, Any]) -> dict[str, str]:
    """An event as the fields of a stream entry: strings as they are, other values as JSON,
    nulls left out.

    >>> stream_fields({"change": "new", "status": 200, "dofollow": True, "reason": None})
    {'change': 'new', 'status': '200', 'dofollow': 'true'}
    """
    import orjson

    return {k: v if isinstance(v, str) else orjson.dumps(v).decode()
            for k, v in event.items() if v is not None}  # fmt: skip


# -- the webhook ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Webhook:
    """A checked webhook: where to connect (the address the guard accepted) and what to send."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    address: str
    timeout: float
    retries: int
    backoff: float

    def describe(self) -> str:
        return self.url.split("?", 1)[0]


def check_webhook(url: str, *, allow_private: bool, timeout: float, retries: int,
                  backoff: float = 0.5,
                  resolve: Callable[[str, int], list[str]] | None = None) -> Webhook:  # fmt: skip
    """Parse ``url`` and resolve its host once, by the SSRF guard's rules
    (:func:`crawler.safety.refusal`); raises UsageError with one line when it is refused.

    >>> check_webhook("http://127.0.0.1:9/hook", allow_private=True, timeout=5, retries=0).address
    '127.0.0.1'
    >>> try:
    ...     check_webhook("http://127.0.0.1:9/", allow_private=False, timeout=5, retries=0)
    ... except UsageError as exc:
    ...     print(str(exc).replace("; ", ";\\n"))
    --webhook: 127.0.0.1 resolves to a non-public address (127.0.0.1);
    loopback and private addresses need --allow-private
    """
    from crawler.safety import parse_ip, refusal

    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--webhook: not an http(s) URL: {url!r}")
    if parts.username or parts.password:
        raise UsageError("--webhook: credentials in the URL are not sent; put a token in its path "
                         "or query")  # fmt: skip
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UsageError(f"--webhook: bad port in {url!r}") from None
    host = parts.hostname
    ip = parse_ip(host)
    addresses = [str(ip)] if ip is not None else (resolve or _resolve)(host, port)
    why = refusal(host, addresses, allow_private)
    if why is not None:
        hint = ("; loopback and private addresses need --allow-private"
                if refusal(host, addresses, True) is None else "")  # fmt: skip
        raise UsageError(f"--webhook: {why}{hint}")
    if not addresses:
        raise UsageError(f"--webhook: {host} does not resolve")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Webhook(url.strip(), parts.scheme, host, port, path, addresses[0], timeout,
                   retries, backoff)  # fmt: skip


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UsageError(f"--webhook: cannot resolve {host} ({exc.strerror or exc})") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _Pinned(http.client.HTTPConnection):
    """HTTP to the checked address, with the URL's host in the ``Host`` header."""

    def __init__(self, hook: Webhook) -> None:
        super().__init__(hook.host, hook.port, timeout=hook.timeout)
        self._address = hook.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedTLS(http.client.HTTPSConnection):
    """HTTPS to the checked address; the certificate is checked against the URL's host."""

    def __init__(self, hook: Webhook) -> None:
        super().__init__(hook.host, hook.port, timeout=hook.timeout,
                         context=ssl.create_default_context())  # fmt: skip
        self._address = hook.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post_once(hook: Webhook, body: bytes) -> int:
    """POST ``body`` once; the HTTP status, or raises OSError/HTTPException. The whole attempt
    (connect, send, answer) is bounded by ``hook.timeout``: a server that drips its answer is
    cut off, and at most 64 KiB of the answer is read."""
    conn = _PinnedTLS(hook) if hook.scheme == "https" else _Pinned(hook)
    result: dict[str, Any] = {}

    def attempt() -> None:
        try:
            conn.request("POST", hook.path, body, {
                "Content-Type": "application/json", "User-Agent": defaults.USER_AGENT,
            })  # fmt: skip
            answer = conn.getresponse()
            answer.read(MAX_ANSWER_BYTES)
            result["status"] = answer.status
        except TimeoutError:  # the socket's own timeout, when it wins the race with the join
            result["error"] = TimeoutError(f"no answer within {hook.timeout:g} s")
        except (OSError, http.client.HTTPException) as exc:
            result["error"] = exc

    worker = threading.Thread(target=attempt, name="webhook", daemon=True)
    worker.start()
    worker.join(hook.timeout)
    if worker.is_alive():
        sock = conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # the thread's read returns at once
                sock.shutdown(socket.SHUT_RDWR)
        worker.join(1.0)
        conn.close()
        raise TimeoutError(f"no answer within {hook.timeout:g} s")
    conn.close()
    if "error" in result:
        raise result["error"]
    return int(result["status"])


def deliver(hook: Webhook, body: bytes, *, sleep: Callable[[float], None] = time.sleep) -> None:
    """POST ``body`` until a 2xx answer: a network error, a timeout, a 5xx or a 429 is tried
    again after ``backoff`` seconds, doubling, ``retries`` times; another answer (a 4xx: the
    request itself is wrong) is not. Raises WebhookError saying what the last attempt got."""
    attempts = hook.retries + 1
    for i in range(attempts):
        try:
            status = post_once(hook, body)
        except (OSError, http.client.HTTPException) as exc:
            last = str(exc) or type(exc).__name__
        else:
            if 200 <= status < 300:
                return
            last = f"HTTP {status}"
            if status < 500 and status != 429:
                raise WebhookError(f"{last} (not retried: the server refused the request)")
        if i + 1 < attempts:
            sleep(hook.backoff * 2**i)
    raise WebhookError(f"{last} after {attempts} attempt{'s' if attempts > 1 else ''}")


# -- the command ---------------------------------------------------------------------------


def run_monitor(args: Any, config_for: Callable[[list[str]], Any],
                dns_env: dict[str, str]) -> int:  # fmt: skip
    """`linkcrawl monitor` (see README, "Monitoring"); ``config_for(seeds)`` makes the crawl's
    CrawlConfig from the command's crawl options."""
    import orjson

    from crawler.index_cli import _errors, _filters, _target
    from crawler.runner import check_crawl_id, failure_hint, read_seeds, run_crawl
    from crawler.stopping import ForcedStop, StopRequest, exit_status
    from pipelines.index.layout import IndexError_
    from pipelines.index.queries import Filters, Index

    if args.resume:
        raise UsageError("monitor starts a new crawl on every run: --resume does not apply")
    if args.stream and not args.redis:
        raise UsageError("--stream names a stream of --redis URL: give --redis too")
    if not args.webhook_timeout > 0:
        raise UsageError(f"--webhook-timeout must be more than 0 s, got {args.webhook_timeout}")
    target = _target(args.target)
    filters = _filters(args)
    hook = None
    if args.webhook:
        hook = check_webhook(args.webhook, allow_private=args.allow_private,
                             timeout=args.webhook_timeout,
                             retries=args.webhook_retries)  # fmt: skip
    client = None
    if args.redis:
        from crawler.connection import connect

        client = connect(args.redis)  # fails now, with one line, not after the crawl
    extra = read_seeds(args.seeds) if args.seeds else []
    with _errors(), Index(args.index) as ix:
        known = ix.referring_pages(target, Filters(internal=filters.internal))
        if not known and not extra:
            raise UsageError(f"no known referring pages of {target.describe()} in {args.index}:"
                             " crawl first, or give --seeds FILE")  # fmt: skip
        previous = ix.last_crawl(known)
        crawls = set(ix.snap.crawl_ids())
    if previous is None:
        raise UsageError(f"{args.index} has no pages table: nothing to compare a new crawl with")
    seeds = list(dict.fromkeys([*known, *extra]))
    args.crawl_id = check_crawl_id(args.crawl_id) if args.crawl_id else monitor_crawl_id()
    if args.crawl_id in crawls:
        raise UsageError(f"crawl {args.crawl_id!r} is already in {args.index} (crawls are "
                         "immutable): give a new --crawl-id")  # fmt: skip
    config = config_for(seeds)
    log = sys.stderr
    print(f"monitor {args.target}: re-fetching {len(known):,} known referring pages"
          + (f" and {len(extra):,} seeds" if extra else "")
          + f" as crawl {config.crawl_id}, to compare with {previous}", file=log)  # fmt: skip
    with StopRequest() as stop:
        summary = run_crawl(config, args.index, workers=args.workers,
                            log_level="INFO" if args.verbose else "WARNING",
                            progress=not args.quiet, stop=stop, env=dns_env)  # fmt: skip
        print(summary.format(), file=log, flush=True)
        stop.raise_on_force = True
        if stop.forced:
            raise ForcedStop(stop.signum)
        if stop.signum:
            return exit_status(stop.signum)
        c = summary.counts
        answered = c.get("pages", 0) - sum(c.get(k, 0) for k in ("errors", "deferred", "poison"))
        if answered <= 0:
            # No server answered (network down, all refused): that says nothing about the
            # links, so no "lost" alert for every one. A 404 is an answer: "page gone".
            print(f"linkcrawl: monitor: no page fetched, no events: {failure_hint(summary.counts)}",
                  file=log)  # fmt: skip
            return 1
        from pipelines.index.compact import compact

        try:
            print(compact(args.index, crawl=config.crawl_id).format(), file=log)
        except IndexError_ as exc:
            raise UsageError(str(exc)) from None
    with _errors(), Index(args.index) as ix:
        table = ix.diff(previous, config.crawl_id, target, filters)
    found = events(table.to_pylist(), target=args.target.strip(), old=previous,
                   new=config.crawl_id, at=datetime.now(timezone.utc))  # fmt: skip
    new = sum(e["change"] == "new" for e in found)
    where = []
    if client is not None:
        import redis

        key = args.stream or stream_key(args.target)
        pipe = client.pipeline(transaction=False)
        for e in found:
            pipe.xadd(key, stream_fields(e), maxlen=STREAM_MAXLEN, approximate=True)
        try:
            pipe.execute()
        except redis.RedisError as exc:
            print(f"linkcrawl: error: Redis stream {key}: {exc}; no event added (all are in "
                  f"the index: linkcrawl diff {previous} {config.crawl_id} {args.target} -i "
                  f"{args.index})", file=log)  # fmt: skip
            return 1
        where.append(f"Redis stream {key}")
    if hook is not None:
        for i, e in enumerate(found):
            try:
                deliver(hook, orjson.dumps(e))
            except WebhookError as exc:
                print(f"linkcrawl: error: webhook {hook.describe()} failed: {exc}; {i} of "
                      f"{len(found)} events sent (all are in the index: linkcrawl diff "
                      f"{previous} {config.crawl_id} {args.target} -i {args.index})",
                      file=log)  # fmt: skip
                return 1
        where.append(f"webhook {hook.describe()}")
    if client is None and hook is None:
        out = sys.stdout.buffer
        out.write(b"".join(orjson.dumps(e) + b"\n" for e in found))
        out.flush()
        where.append("stdout")
    print(f"monitor {args.target}: {new:,} new and {len(found) - new:,} lost backlinks from "
          f"{previous} to {config.crawl_id}; events to {', '.join(where)}", file=log)  # fmt: skip
    return 0
