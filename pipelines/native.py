"""The native core (the Rust crate in ``native/``, module ``linkcrawl_native``) when it is built.

``pip install`` builds it when cargo is on the machine; without Rust the package installs the
Python path, which gives the same rows, and says so once per process. ``LINKCRAWL_NATIVE=0``
chooses the Python path even when the core is built (to compare the two).
"""

from __future__ import annotations

import logging
import os
from functools import cache
from types import ModuleType

log = logging.getLogger(__name__)

#: The environment variable that turns the native core off ("0").
NATIVE_ENV = "LINKCRAWL_NATIVE"
#: The core version this Python code speaks to (native/Cargo.toml's package version).
CORE_VERSION = "0.1.0"


@cache
def core() -> ModuleType | None:
    """The ``linkcrawl_native`` module, or None when it is not built, turned off, or of another
    version (a stale build); the reason is logged once.

    >>> core() is None or core().core_version() == CORE_VERSION
    True
    """
    if os.environ.get(NATIVE_ENV, "1") == "0":
        return None
    try:
        import linkcrawl_native  # loaded on first use, not at import
    except ImportError as exc:
        log.warning("linkcrawl: native core not built (%s); using the Python path", exc)
        return None
    version = linkcrawl_native.core_version()
    if version != CORE_VERSION:
        log.warning(
            "linkcrawl: native core %s is not %s (a stale build); using the Python path",
            version, CORE_VERSION,
        )  # fmt: skip
        return None
    return linkcrawl_native
