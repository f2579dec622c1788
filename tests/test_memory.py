"""memory.trim gives the pages glibc keeps after a burst back to the OS."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from commsdesk import memory


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_trim_returns_a_freed_burst_to_the_os() -> None:
    # a burst through malloc (2 kB each, not mmap), of which a few objects live on (a
    # cache entry, a log line): free() alone cannot give back the pages between them
    burst = [bytearray(2_000) for _ in range(60_000)]
    keep = burst[::200]
    del burst
    before = rss_mb()
    assert memory.trim() is True
    assert rss_mb() < before - 50, (before, rss_mb())
    assert len(keep) == 300
