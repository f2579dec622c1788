"""The insight jobs `serve` runs in its scheduler. Each is safe to run on every replica
and after any restart: what must happen once is claimed in the database first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot import logs
from bot.runtime import Runtime
from bot.services import home, reach, reminders, report

log = logs.get("commsdesk.insight")


def _safe(name: str, fn: Callable[[Runtime], Any]) -> Callable[[Runtime], None]:
    def run(rt: Runtime) -> None:
        try:
            fn(rt)
        except Exception:  # the next run tries again; nothing is marked done on failure
            log.exception("insight job failed", job=name)

    run.__name__ = f"insight_{name.replace('-', '_')}"
    return run


# (job id, interval in seconds, function)
JOBS: list[tuple[str, int, Callable[[Runtime], None]]] = [
    ("sla-reminders", 60, _safe("sla-reminders", reminders.check_reminders)),
    ("daily-digest", 60, _safe("daily-digest", reminders.run_digest)),
    ("weekly-report", 60, _safe("weekly-report", report.run_weekly)),
    ("follower-snapshot", 3600, _safe("follower-snapshot", reach.snapshot_all)),
    ("home-refresh", 15, _safe("home-refresh", home.refresh_homes)),
]
