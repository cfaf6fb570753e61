"""A CPU budget per page: what a page still costs past every bound on its size is cut off.

Extraction is linear in a page's size (deep nesting is flattened, links are capped), but a
page may still find a slow path no bound foresaw; a worker stuck on it stops heartbeating
and its leases move to another worker, which gets stuck too. :func:`cpu_budget` raises
:class:`PageBudgetExceeded` in the code it wraps once the process has spent that much CPU.

It uses the profiling interval timer (``ITIMER_PROF``, CPU time of the whole process) and
``SIGPROF``, so it works only in the main thread (where Python runs signal handlers; Scrapy's
reactor runs there); elsewhere it does nothing. The handler runs between Python bytecodes: a
single call into C (one lexbor parse) is not interrupted, the exception comes when it returns.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class PageBudgetExceeded(Exception):
    """A page took more CPU than its budget.

    >>> str(PageBudgetExceeded(10.0))
    'CPU budget exceeded (10 s)'
    """

    def __init__(self, seconds: float) -> None:
        super().__init__(f"CPU budget exceeded ({seconds:g} s)")
        self.seconds = seconds


def budget_available() -> bool:
    """Whether :func:`cpu_budget` can act here (the main thread of a POSIX process)."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def retry_interval(seconds: float) -> float:
    """How long after a budget of *seconds* ran out :func:`cpu_budget` raises again, and
    again, while the code it wraps still runs (a tenth of the budget, 10 ms to 1 s).

    >>> retry_interval(0.2), retry_interval(30)
    (0.02, 1.0)
    """
    return min(max(seconds / 10, 0.01), 1.0)


@contextmanager
def cpu_budget(seconds: float | None) -> Iterator[None]:
    """Raise :class:`PageBudgetExceeded` in the wrapped code once it has used *seconds* of CPU.

    ``None`` or ``0``: no budget. The previous ``SIGPROF`` handler and timer are restored on
    exit (an outer timer is re-armed with what it has left).

    Past the budget the timer goes on firing every :func:`retry_interval`: an exception raised
    where Python discards it (a garbage collector callback, a ``__del__``) is raised again.

    >>> with cpu_budget(5):
    ...     sum(range(1000))
    499500
    >>> try:
    ...     with cpu_budget(0.05):
    ...         while True:
    ...             pass
    ... except PageBudgetExceeded as exc:
    ...     print(exc)
    CPU budget exceeded (0.05 s)
    """
    if not seconds or seconds <= 0 or not budget_available():
        yield
        return
    armed = True

    def on_sigprof(signum: int, frame: FrameType | None) -> None:
        if armed:
            raise PageBudgetExceeded(seconds)

    previous = signal.signal(signal.SIGPROF, on_sigprof)
    started = time.process_time()
    outer = signal.setitimer(signal.ITIMER_PROF, seconds, retry_interval(seconds))
    try:
        yield
    finally:
        armed = False  # first: nothing before it lets a signal handler run
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
        if outer[0] > 0:
            left = outer[0] - (time.process_time() - started)
            signal.setitimer(signal.ITIMER_PROF, max(left, 1e-3), outer[1])
