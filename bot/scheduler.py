"""Background work in `serve`: polling every account (APScheduler, never overlapping)
and the outbox drainer thread."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from bot import logs, memory
from bot.runtime import Runtime
from bot.services import checkpoints, listening, retention
from bot.services.insight import JOBS
from bot.services.outbox import Outbox
from bot.services.polling import poll_account

log = logs.get("commsdesk.scheduler")


@dataclass
class Background:
    scheduler: BackgroundScheduler
    stop_event: threading.Event
    outbox_thread: threading.Thread

    def running(self) -> bool:
        return self.scheduler.running and self.outbox_thread.is_alive()

    def shutdown(self, wait: bool = True) -> None:
        self.stop_event.set()
        self.scheduler.shutdown(wait=wait)
        self.outbox_thread.join(timeout=15 if wait else 0)


def start_scheduler(rt: Runtime, *, poll: bool = True) -> Background:
    owner = f"replica-{uuid.uuid4().hex[:8]}"
    # a job due while the process was starting (or the machine was busy) runs late,
    # once, rather than being skipped with a "run time was missed" warning
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={
        "misfire_grace_time": None, "coalesce": True, "max_instances": 1})
    if poll:
        for acc in rt.settings.config.accounts:
            scheduler.add_job(
                poll_account, "interval", args=[rt, acc.name, owner],
                seconds=rt.settings.config.poll_interval_seconds,
                id=f"poll:{acc.name}", max_instances=1, coalesce=True,
                next_run_time=datetime.now(UTC),
                misfire_grace_time=None,
            )
    if poll and rt.settings.config.listening:  # keyword listening: each search when due
        scheduler.add_job(listening.run_due, "interval", args=[rt, owner], seconds=15,
                          id="listening", max_instances=1, coalesce=True,
                          next_run_time=datetime.now(UTC))
    # scheduled posts, approvals whose publishing never started, crashed publishes
    scheduler.add_job(rt.publisher.sweep, "interval", seconds=5, id="publish-sweep",
                      max_instances=1, coalesce=True, next_run_time=datetime.now(UTC))
    # insight: SLA reminders, daily digest, weekly report, follower counts, App Homes
    for job_id, seconds, job in JOBS:
        scheduler.add_job(job, "interval", args=[rt], seconds=seconds, id=job_id,
                          max_instances=1, coalesce=True, next_run_time=datetime.now(UTC))
    # freed memory back to the OS after bursts (see memory.py)
    scheduler.add_job(memory.trim, "interval", seconds=60, id="memory-trim",
                      max_instances=1, coalesce=True)
    if rt.settings.config.retention.days > 0:
        scheduler.add_job(retention.run, "cron", args=[rt], hour=3, minute=15,
                          id="retention", max_instances=1, coalesce=True)
    if checkpoints.configured(rt):  # the audit trail's head, signed, outside the database
        scheduler.add_job(checkpoints.write_safely, "interval", args=[rt],
                          minutes=rt.settings.config.audit.checkpoint_interval_minutes,
                          id="audit-checkpoint", max_instances=1, coalesce=True,
                          next_run_time=datetime.now(UTC))
    scheduler.start()
    stop = threading.Event()
    outbox = Outbox(rt, owner)
    thread = threading.Thread(target=outbox.run_forever, args=(stop,), name="outbox",
                              daemon=True)
    thread.start()
    log.info("background work started", accounts=len(rt.settings.config.accounts))
    background = Background(scheduler, stop, thread)
    rt.extras["background"] = background
    return background
