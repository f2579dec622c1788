"""Fault-injection points for crash trials (tests and `bench/`), off unless asked.

`COMMSDESK_FAULT_KILL_AT=<point>` makes the process SIGKILL itself when it
reaches that point, exactly as a power cut or OOM kill would stop it.
"""

from __future__ import annotations

import os
import signal


def crash_point(name: str) -> None:
    if os.environ.get("COMMSDESK_FAULT_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
