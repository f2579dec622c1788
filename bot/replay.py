"""Refusing replayed Slack requests without a database write on the ack path.

Slack's signature check accepts a request while its timestamp is within five minutes of
now, in either direction: a request stamped up to five minutes in the future (a sender
whose clock runs fast) stays valid for up to ten minutes after it arrives. So every
signature seen is kept until its request's own timestamp (or its arrival, when that is
later) is six minutes in the past (Slack's five plus a minute's margin): a request whose
signature is still kept is refused at once. Signatures are also written, in the background
and in batches, to `slack_events` as ``sig:<signature>`` with that time: a restarted
process loads the ones still in their window back, and a signature another replica
already stored is logged as a replay.

Slack's own retries carry a new signature; events are de-duplicated later by `event_id`
(handlers/events.py), decisions by their compare-and-set transitions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot import logs
from bot.db import transaction
from bot.models import SlackEvent

log = logs.get("commsdesk.replay")

ACCEPTED = 300  # seconds: Slack's verifier accepts |now - timestamp| <= 300
WINDOW = timedelta(seconds=ACCEPTED + 60)  # kept after the request's timestamp (+ margin)
PREFIX = "sig:"


def key(signature: str) -> str:
    return PREFIX + signature.removeprefix("v0=")[:56]


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class ReplayGuard:
    """`clock` (seconds since the epoch) must be the clock the signature's timestamp was
    checked against (asgi.py passes the same one to both)."""

    def __init__(self, sessions: sessionmaker[Session],
                 clock: Callable[[], float] = time.time) -> None:
        self._sessions = sessions
        self._clock = clock
        self._seen: dict[str, float] = {}  # key -> expiry (clock seconds)
        self._pending: list[tuple[str, float]] = []  # (key, the request's timestamp)
        self._lock = threading.Lock()
        self._writer: threading.Thread | None = None
        self._last_prune = -1e18
        self._store_pruned = -1e9
        self._load()

    def _load(self) -> None:
        """The signatures a previous process (or another replica) stored that are still
        inside their window."""
        try:
            with self._sessions() as s:
                rows = s.execute(select(SlackEvent.event_id, SlackEvent.received_at).where(
                    SlackEvent.event_id.startswith(PREFIX),
                    SlackEvent.received_at >= _at(self._clock()) - WINDOW)).all()
        except SQLAlchemyError:
            log.warning("could not load recent request signatures")
            return
        for event_id, stamped in rows:
            self._seen[event_id] = (stamped + WINDOW).timestamp()

    def first_sight(self, signature: str, timestamp: float | None = None) -> bool:
        """Remember a signature until its request's `timestamp` (default: now) is out of
        the accepted window; False when it is already remembered (a replay)."""
        k, t = key(signature), self._clock()
        stamped = t if timestamp is None else float(timestamp)
        with self._lock:
            if t - self._last_prune > 10:
                self._seen = {s: exp for s, exp in self._seen.items() if exp > t}
                self._last_prune = t
            expiry = self._seen.get(k)
            if expiry is not None and expiry > t:
                return False
            # the later of: its timestamp's window, or a full window from now
            self._seen[k] = max(stamped, t) + WINDOW.total_seconds()
            self._pending.append((k, max(stamped, t)))
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

    def _store(self, batch: list[tuple[str, float]]) -> None:
        try:
            with transaction(self._sessions) as s:
                insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
                stored = s.scalars(insert(SlackEvent)
                                   .values([{"event_id": k, "received_at": _at(stamped)}
                                            for k, stamped in batch])
                                   .on_conflict_do_nothing()
                                   .returning(SlackEvent.event_id)).all()
                if len(stored) < len(batch):
                    log.warning("signed request seen before by another process (a replay)",
                                count=len(batch) - len(stored))
                if time.monotonic() - self._store_pruned > 60:  # the table stays small
                    s.execute(delete(SlackEvent).where(
                        SlackEvent.event_id.startswith(PREFIX),
                        SlackEvent.received_at < _at(self._clock()) - 2 * WINDOW))
                    self._store_pruned = time.monotonic()
        except SQLAlchemyError as exc:
            log.warning("could not store request signatures", error=type(exc).__name__)

    def flush(self, timeout: float = 5.0) -> None:
        """Wait for the background writer (at shutdown)."""
        writer = self._writer
        if writer is not None:
            writer.join(timeout)
