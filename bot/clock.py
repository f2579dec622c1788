"""The one source of "now" (UTC, aware). Tests and the demo may shift it."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

_offset = timedelta(seconds=float(os.environ.get("COMMSDESK_CLOCK_OFFSET_SECONDS", "0") or 0))


def now() -> datetime:
    return datetime.now(UTC) + _offset


def shift(delta: timedelta) -> None:
    """Move this process's clock (tests only)."""
    global _offset
    _offset += delta
