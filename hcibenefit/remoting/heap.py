"""The C heap of a process that works many hosts from many threads, on glibc (most Linux systems).

glibc gives every thread that allocates while another holds the heap lock an arena of its own, up to eight
per core, and a freed block goes back to the arena it came from. A fleet run starts a thread per node,
up to `--parallel` at once, and each reads its node's answers (tens to hundreds of KB of text at a time)
into whichever arena it was given; what is freed there stays spread over every arena, partly used,
and counts in the resident set for the rest of the run. A 10,000-VM sweep held ~30 MB of such free
space at the end of collection, beside ~14 MB of C heap in use.

Python threads hold the interpreter lock while they allocate, so they hardly ever contend for the
heap: two arenas serve them as fast as sixteen (client CPU of the same sweep unchanged). Two calls,
both no-ops anywhere else (musl, macOS, Windows) and on any failure:

- `limit_arenas()` before the first worker thread starts: at most `MAX_ARENAS` arenas in this process;
- `give_back_free_heap()` once a fan-out's threads are done: free pages at the top of and inside the
  heap go back to the system (glibc's `malloc_trim`), instead of waiting for a top chunk big enough.

The environment variable MALLOC_ARENA_MAX, if the user set it, is glibc's own and wins: it is read
before this runs, and then this leaves the setting alone.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

log = logging.getLogger(__name__)

MAX_ARENAS = 2
_M_ARENA_MAX = -8
"""mallopt's parameter number for the arena limit (glibc malloc.h)."""

_lock = threading.Lock()
_libc: Any = None
_looked = False
_limited = False


def _glibc() -> Any:
    """The C library when it is glibc, else None. Looked up once."""
    global _libc, _looked
    with _lock:
        if not _looked:
            _looked = True
            try:
                # CS_GNU_LIBC_VERSION exists only on glibc ("glibc 2.36"); musl and others raise or say None.
                version = os.confstr("CS_GNU_LIBC_VERSION")
                if version and version.startswith("glibc"):
                    import ctypes

                    libc = ctypes.CDLL(None)
                    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
                    libc.malloc_trim.argtypes = [ctypes.c_size_t]
                    _libc = libc
            except (AttributeError, ValueError, OSError):
                _libc = None
        return _libc


def limit_arenas() -> bool:
    """At most MAX_ARENAS malloc arenas from now on (threads started later share them). True if set."""
    global _limited
    if _limited:
        return True
    if "MALLOC_ARENA_MAX" in os.environ:
        return False  # the user's choice, already applied by glibc at start-up
    libc = _glibc()
    if libc is None:
        return False
    try:
        _limited = bool(libc.mallopt(_M_ARENA_MAX, MAX_ARENAS))
    except (AttributeError, OSError):
        _limited = False
    log.debug("malloc arenas limited to %d: %s", MAX_ARENAS, _limited)
    return _limited


def give_back_free_heap() -> bool:
    """Return the C heap's free pages to the system. True if glibc released anything."""
    libc = _glibc()
    if libc is None:
        return False
    try:
        return bool(libc.malloc_trim(0))
    except (AttributeError, OSError):
        return False
