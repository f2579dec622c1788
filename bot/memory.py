"""Give freed memory back to the operating system.

CPython hands objects over 512 bytes (page texts, JSON answers, Block Kit payloads) to the
C library's malloc, and glibc keeps what is freed in its heaps (one per thread that
allocated) for reuse: after a burst of mentions `serve`'s resident memory stays at the
burst's high-water mark although Python holds no more objects than before. `trim()`
asks glibc to release the free pages (`malloc_trim`); `serve` calls it every minute.
Elsewhere (musl, macOS) it does nothing.

`freeze_startup()` keeps the collector's full passes short: everything `serve` built
before it answers Slack (imported code, the app, its caches) is moved out of the
collector's view, so a full collection walks only what was made since.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import cache
from typing import Any


@cache
def _libc() -> Any | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def trim() -> bool:
    """Return free heap pages to the OS. True if glibc did release. (No `gc.collect()`:
    a full collection holds the interpreter lock for as long as the heap is large, and
    the automatic collector already frees cycles.)"""
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


def freeze_startup() -> int:
    """Collect once, then freeze what is left (`gc.freeze`): what startup made lives as
    long as the process, and without this every full collection walks it all (~110,000
    objects of imported code alone: 60 ms with the interpreter lock held, which Slack's
    ack waits behind). Returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
