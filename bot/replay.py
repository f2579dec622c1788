"""Refusing replayed Slack requests without a database write on the ack path.

A signed request is valid for five minutes, so a captured one could be sent again inside
that window. Every signature seen is kept in memory for the window (a request whose
signature is already there is refused at once) and written, in the background and in
batches, to `slack_events` as ``sig:<signature>``: a restarted process loads the window
back, and a signature another replica already stored is logged as a replay.

Slack's own retries carry a new signature; events are de-duplicated later by `event_id`
(handlers/events.py), decisions by their compare-and-set transitions.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from commsdesk import logs
from commsdesk.clock import now
from commsdesk.db import transaction
from commsdesk.models import SlackEvent

log = logs.get("commsdesk.replay")

WINDOW = timedelta(minutes=5, seconds=60)  # Slack's 5 minutes plus clock skew
PREFIX = "sig:"


def key(signature: str) -> str:
    return PREFIX + signature.removeprefix("v0=")[:56]


class ReplayGuard:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._seen: dict[str, float] = {}  # key -> monotonic expiry
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._writer: threading.Thread | None = None
        self._last_prune = 0.0
        self._store_pruned = -1e9
        self._load()

    def _load(self) -> None:
        """The window's signatures a previous process (or another replica) stored."""
        try:
            with self._sessions() as s:
                rows = s.execute(select(SlackEvent.event_id, SlackEvent.received_at).where(
                    SlackEvent.event_id.startswith(PREFIX),
                    SlackEvent.received_at >= now() - WINDOW)).all()
        except SQLAlchemyError:
            log.warning("could not load recent request signatures")
            return
        t, wall = time.monotonic(), now()
        for event_id, at in rows:
            self._seen[event_id] = t + (at + WINDOW - wall).total_seconds()

    def first_sight(self, signature: str) -> bool:
        """Remember a signature; False when it was seen in the window before (a replay)."""
        k, t = key(signature), time.monotonic()
        with self._lock:
            if t - self._last_prune > 10:
                self._seen = {s: exp for s, exp in self._seen.items() if exp > t}
                self._last_prune = t
            expiry = self._seen.get(k)
            if expiry is not None and expiry > t:
                return False
            self._seen[k] = t + WINDOW.total_seconds()
            self._pending.append(k)
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_loop, daemon=True,
                                                name="commsdesk-replay-writer")
                self._writer.start()
        return True

    def _write_loop(self) -> None:
        while True:
            time.sleep(0.05)  # gather a batch
            with self._lock:
                batch, self._pending = self._pending, []
                if not batch:
                    self._writer = None
                    return
            self._store(batch)

    def _store(self, batch: list[str]) -> None:
        try:
            with transaction(self._sessions) as s:
                insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
                stored = s.scalars(insert(SlackEvent)
                                   .values([{"event_id": k, "received_at": now()} for k in batch])
                                   .on_conflict_do_nothing()
                                   .returning(SlackEvent.event_id)).all()
                if len(stored) < len(batch):
                    log.warning("signed request seen before by another process (a replay)",
                                count=len(batch) - len(stored))
                if time.monotonic() - self._store_pruned > 60:  # the table stays small
                    s.execute(delete(SlackEvent).where(
                        SlackEvent.event_id.startswith(PREFIX),
                        SlackEvent.received_at < now() - 2 * WINDOW))
                    self._store_pruned = time.monotonic()
        except SQLAlchemyError as exc:
            log.warning("could not store request signatures", error=type(exc).__name__)

    def flush(self, timeout: float = 5.0) -> None:
        """Wait for the background writer (at shutdown)."""
        writer = self._writer
        if writer is not None:
            writer.join(timeout)
