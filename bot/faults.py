"""Fault-injection points for crash trials (tests and `bench/`), off unless asked.

`COMMSDESK_FAULT_KILL_AT=<point>` (or `<point>@<n>`: at its n-th passage) makes
the process SIGKILL itself there, exactly as a power cut or OOM kill would.
Points: poll:after_store, outbox:after_send, publish:before_network,
publish:after_network.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter

_hits: Counter[str] = Counter()
_lock = threading.Lock()


def crash_point(name: str) -> None:
    wanted = os.environ.get("COMMSDESK_FAULT_KILL_AT")
    if not wanted:
        return
    point, _, nth = wanted.partition("@")
    if point != name:
        return
    with _lock:
        _hits[name] += 1
        hit = _hits[name]
    if hit >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
