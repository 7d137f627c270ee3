"""Process-wide memory settings for the server.

Every aiosqlite connection and every hashing worker is a thread, and glibc gives each thread that allocates
its own malloc arena (up to eight per core), each keeping what was freed in it. A pooled server keeps ~20 such
threads alive, and their arenas held ~30 MB of the SQLite server's resident memory after a benchmark run
(188 MB with the default, 160 MB with two arenas, the same request rates).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)
SERVER_ARENAS = 2


def cap_malloc_arenas(arenas: int = SERVER_ARENAS) -> bool:
    """Limit glibc to ``arenas`` malloc arenas unless the operator chose with ``MALLOC_ARENA_MAX``.

    Returns whether the limit was set by this call. Call it before threads start: arenas already made stay.
    Elsewhere than glibc it does nothing. ``MALLOC_ARENA_MAX`` is also set in the environment so worker
    processes spawned from this one start with the same limit.
    """
    if os.environ.get("MALLOC_ARENA_MAX") or platform.libc_ver()[0] != "glibc":
        return False
    library = ctypes.util.find_library("c")
    if library is None:
        return False
    if ctypes.CDLL(library).mallopt(M_ARENA_MAX, arenas) != 1:
        log.warning("could not limit malloc arenas to %d", arenas)
        return False
    os.environ["MALLOC_ARENA_MAX"] = str(arenas)
    return True
