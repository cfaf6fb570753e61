"""Stopping on SIGTERM and SIGINT: graceful first, bounded, forced by a second signal.

``StopRequest`` is the `linkcrawl crawl` side: its handlers only record what was asked (a
loop polls it), so a signal never lands in the middle of a Redis call or a file write.
``WorkerStop`` is a worker's: stop taking requests at once and flush the sink (which acks),
let in-flight pages finish for ``grace`` seconds, then flush again, return the leases still
held and stop the reactor; a last-resort timer exits the process if even that hangs.
``die_with_parent`` makes the kernel signal a child whose parent dies (Linux), so workers
never outlive `crawl`.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from crawler import defaults

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Sent (Scrapy signal) when a stop is forced: the sink writes what it holds and acks it.
flush_now = object()
# Sent when a stop begins: the sink writes what it holds already (a stop that runs past its
# grace and hard exit, as on a machine starved of CPU, then leaves less to fetch again).
stop_begun = object()
_PR_SET_PDEATHSIG = 1


def exit_status(signum: int) -> int:
    """The shell's exit status of a command stopped by ``signum``.

    >>> exit_status(signal.SIGTERM), exit_status(signal.SIGINT)
    (143, 130)
    """
    return 128 + int(signum)


def signal_name(signum: int) -> str:
    """The name of a signal number.

    >>> signal_name(15), signal_name(2)
    ('SIGTERM', 'SIGINT')
    """
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class ForcedStop(BaseException):
    """A second signal while `crawl` was finishing (compacting): give up at once.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` swallows it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal_name(signum))
        self.signum = signum


def _say(text: str) -> None:
    # os.write, not print: a handler may interrupt a print to the same stream.
    with contextlib.suppress(OSError):
        os.write(2, f"linkcrawl: {text}\n".encode())


class StopRequest:
    """What SIGTERM/SIGINT asked of `linkcrawl crawl`: ``signum`` after the first, ``forced``
    after the second. Handlers are installed only in the main thread (a no-op elsewhere).

    With ``raise_on_force`` the second signal raises :class:`ForcedStop` in the main thread
    (used once no loop polls ``forced``, e.g. during compaction).
    """

    def __init__(self) -> None:
        self.signum = 0
        self.forced = False
        self.raise_on_force = False
        self._previous: dict[int, Any] = {}

    def install(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def __enter__(self) -> StopRequest:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self.signum:
            self.signum = signum
            _say(f"{signal_name(signum)}: stopping the workers (send again to force)")
            return
        self.forced = True
        if self.raise_on_force:
            raise ForcedStop(signum)


def die_with_parent(parent_pid: int | None, signum: int = signal.SIGTERM) -> bool:
    """Ask the kernel for ``signum`` when our parent dies (Linux; a no-op elsewhere).

    Returns False when the parent is already gone (it died before the request took effect):
    the caller must stop then. ``parent_pid`` None: nothing to do.
    """
    if parent_pid is None:
        return True
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the watchdog serves
            pass
    return os.getppid() == parent_pid


def pdeathsig_preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` giving a child SIGTERM when this process dies (Linux), else None.

    prctl is resolved here, in the parent, so the child (between fork and exec) only calls it.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(ctypes.util.find_library("c") or None).prctl
    except (OSError, AttributeError):  # pragma: no cover
        return None

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)

    return preexec


def fail_fast(clients: list[Any]) -> None:
    """No more retries on the Redis clients (a stop must not wait out their back-off: about
    16 s per call when Redis is gone). Also ends a retry loop in progress, which reads the
    count at every turn. Only mutates attributes, so a signal handler may call it."""
    for client in clients:
        pool = getattr(client, "connection_pool", None)
        if pool is None:
            continue
        kwargs_retry = getattr(pool, "connection_kwargs", {}).get("retry")
        retries = [kwargs_retry] + [
            getattr(conn, "retry", None)
            for conn in [*getattr(pool, "_available_connections", ()),
                         *getattr(pool, "_in_use_connections", ())]
        ]  # fmt: skip
        for retry in retries:
            if retry is not None:
                retry.update_retries(0)


class WorkerStop:
    """A worker's bounded stop (see the module docstring).

    ``parent_pid``: the worker is a child of `linkcrawl crawl`. Then it also stops when that
    parent is gone (watchdog), and a repeated signal does not force: the terminal's Ctrl-C
    reaches the whole process group while the parent forwards its own SIGTERM, and the parent
    alone escalates (SIGKILL) on a second Ctrl-C.
    """

    def __init__(
        self,
        crawler: Any,
        *,
        grace: float = defaults.STOP_GRACE,
        parent_pid: int | None = None,
        hard_exit_after: float = defaults.STOP_HARD_EXIT,
    ) -> None:
        self.crawler = crawler
        self.grace = max(0.0, grace)
        self.parent_pid = parent_pid
        self.hard_exit_after = hard_exit_after
        self.signum = 0
        self.forced = False
        self._reactor: Any = None
        self._started = False

    # -- from the signal handler (main thread, between bytecodes) ---------------------------
    def install(self) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = not self.signum
        if first:
            self.signum = signum
            self._start_backstop()
            # Here, not in the reactor: the reactor may be inside such a retry loop right now
            # (a parent's death takes its private Redis along).
            fail_fast(self._redis_clients())
        elif self.parent_pid is not None:
            return  # the parent escalates, not a second copy of the same Ctrl-C
        elif self._reactor is None:
            self._hard_exit()  # forced before the crawl even ran: nothing to save
        if self._reactor is not None:
            self._reactor.callFromThread(self.stop if first else self.force)

    def _redis_clients(self) -> list[Any]:
        spider = self.crawler.spider
        slot = getattr(getattr(self.crawler, "_engine", None), "_slot", None)
        scheduler = getattr(slot, "scheduler", None)
        found = [getattr(getattr(spider, "crawls", None), "client", None),
                 getattr(scheduler, "server", None)]  # fmt: skip
        return [c for c in found if c is not None]

    def _start_backstop(self) -> None:
        """Exit even if the reactor is stuck (a blocking call, a thread that will not join)."""
        timer = threading.Timer(self.grace + self.hard_exit_after, self._hard_exit)
        timer.daemon = True
        timer.start()

    def _hard_exit(self) -> None:
        _say(f"worker {os.getpid()}: stop did not finish in time; exiting")
        os._exit(exit_status(self.signum or signal.SIGTERM))

    # -- in the reactor ---------------------------------------------------------------------
    def attach(self) -> None:
        """Called once the reactor runs: act on a signal that came before, watch the parent."""
        from twisted.internet import reactor, task

        self._reactor = reactor
        if self.parent_pid is not None:
            self._watch = task.LoopingCall(self._check_parent)
            self._watch.start(defaults.PARENT_CHECK_SECONDS, now=True)
        if self.signum:
            self.stop()

    def _check_parent(self) -> None:
        if os.getppid() != self.parent_pid and not self.signum:
            logger.warning("parent %s is gone: stopping", self.parent_pid)
            self.signum = signal.SIGTERM
            self._start_backstop()
            fail_fast(self._redis_clients())
            self.stop()

    def stop(self) -> None:
        """Stop taking requests; in-flight ones have ``grace`` seconds to finish."""
        if self._started:
            return
        self._started = True
        logger.warning(
            "%s: stopping (in-flight pages get %.0f s)", signal_name(self.signum), self.grace
        )
        self._reactor.callLater(self.grace, self.force)
        self._stop_engine()
        self.crawler.signals.send_catch_log(signal=stop_begun)

    def _stop_engine(self) -> None:
        from scrapy.utils.defer import deferred_from_coro

        engine = getattr(self.crawler, "_engine", None)
        if self.crawler.crawling and engine is not None and engine.running:
            deferred_from_coro(self.crawler.stop_async())
        else:  # not started yet: try again shortly (force ends it at the latest)
            self._reactor.callLater(0.1, self._stop_engine)

    def force(self) -> None:
        """Flush and ack what is written, return the other leases, stop the reactor."""
        if self.forced:
            return
        self.forced = True
        logger.warning("forcing the stop: flushing, returning leases")
        self.crawler.signals.send_catch_log(signal=flush_now)
        spider = self.crawler.spider
        for frontier in getattr(spider, "crawls", ()):
            try:
                returned = frontier.retire(spider.worker_id)
            except Exception as exc:  # Redis away: the leases expire with the heartbeat
                logger.warning("could not return leases of %s: %s", frontier.crawl_id, exc)
            else:
                if returned:
                    logger.warning("returned %d leases of %s", returned, frontier.crawl_id)
        with contextlib.suppress(RuntimeError):
            self._reactor.stop()


def wait_all(procs: list[Any], timeout: float) -> list[Any]:
    """Wait up to ``timeout`` seconds in all for the processes; return those still running."""
    deadline = time.monotonic() + timeout
    alive = [p for p in procs if p.poll() is None]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if p.poll() is None]
    return alive
