"""memory.trim gives the pages glibc keeps after a burst back to the OS; freeze_startup
keeps full collections short."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bot import memory


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


def test_freeze_startup_leaves_full_collections_only_what_came_after() -> None:
    """What `serve` built before answering Slack is frozen: a full collection then walks
    only the objects made since (in a child: freezing is for the whole process)."""
    import subprocess

    code = (
        "import gc, bot.serve, bot.app, bot.asgi\n"
        "from bot import memory\n"
        "before = len(gc.get_objects())\n"
        "frozen = memory.freeze_startup()\n"
        "made_since = [[i] for i in range(1000)]\n"
        "print(before, frozen, len(gc.get_objects()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    before, frozen, tracked = (int(x) for x in out)
    assert before > 50_000 and frozen >= before * 0.9, (before, frozen)
    assert 1000 <= tracked < 5_000, tracked  # the new lists, and little else
