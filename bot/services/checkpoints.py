"""Audit checkpoints: the trail's head, signed, kept where the database's owner has no say.

At least hourly (`[audit] checkpoint_interval_minutes`) and at shutdown, `serve` signs
(HMAC under the audit key) the newest record's id and hash and the time, and posts that
to `[audit] checkpoint_channel` in Slack (the text for people, the same fields as message
metadata for `audit verify`) and/or appends it as one JSON line to `[audit]
checkpoint_file`. Neither goes through the database (no outbox): whoever controls the
database can neither hold a checkpoint back nor change one.

`commsdesk audit verify` reads them back and checks the trail against the latest one:
records gone since it ("records 1,204-1,209 are gone since the checkpoint of 14:00"), a
head rewritten under it, and a last checkpoint more than two intervals old.
"""

from __future__ import annotations

import hmac
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot import logs
from bot.audit_keys import Keyring, sign
from bot.clock import now
from bot.db import reading
from bot.models import AuditEvent
from bot.services import audit

log = logs.get("commsdesk.checkpoints")

EVENT_TYPE = "commsdesk_audit_checkpoint"
_TEXT_RE = re.compile(r"n=(\d+) head=([0-9a-f]{64}) at=(\S+) key=([0-9a-f]+) sig=([0-9a-f]{64})")


@dataclass(frozen=True)
class Checkpoint:
    n: int  # the newest record's id then (0: the trail was empty)
    head: str  # its hash
    at: str  # when, ISO 8601 UTC
    key: str  # the id of the audit key that signed it
    sig: str

    @staticmethod
    def signed_bytes(n: int, head: str, at: str, key: str) -> bytes:
        return audit.canonical({"n": n, "head": head, "at": at, "key": key}).encode()

    def valid(self, keyring: Keyring | None) -> bool:
        secret = keyring.get(self.key) if keyring is not None else None
        if secret is None:
            return False
        return hmac.compare_digest(
            sign(secret, self.signed_bytes(self.n, self.head, self.at, self.key)), self.sig)

    @property
    def time(self) -> datetime:
        return datetime.fromisoformat(self.at.replace("Z", "+00:00"))

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "head": self.head, "at": self.at, "key": self.key, "sig": self.sig}

    def text(self) -> str:
        return (f"n={self.n} head={self.head} at={self.at} key={self.key} sig={self.sig}")

    @classmethod
    def parse(cls, value: Any) -> Checkpoint | None:
        try:
            if isinstance(value, str):
                m = _TEXT_RE.search(value)
                if m is None:
                    return None
                return cls(int(m[1]), m[2], m[3], m[4], m[5])
            return cls(int(value["n"]), str(value["head"]), str(value["at"]), str(value["key"]),
                       str(value["sig"]))
        except (KeyError, TypeError, ValueError):
            return None


def make(session: Session, keyring: Keyring) -> Checkpoint:
    head = audit.head(session)
    n, h = head if head is not None else (0, audit.GENESIS)
    at = now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return Checkpoint(n, h, at, keyring.current_id,
                      sign(keyring.current, Checkpoint.signed_bytes(n, h, at, keyring.current_id)))


def configured(rt: Any) -> bool:
    cfg = rt.settings.config.audit
    return bool(cfg.checkpoint_channel or cfg.checkpoint_file)


def write(rt: Any, reason: str = "schedule") -> Checkpoint | None:
    """Sign the trail's head and put it in every configured place (None: none is)."""
    cfg = rt.settings.config.audit
    keyring = rt.settings.audit_keyring()
    if not configured(rt) or keyring is None:
        return None
    with reading(rt.sessions) as s:
        cp = make(s, keyring)
    if cfg.checkpoint_file:
        append_file(cfg.checkpoint_file, cp)
    if cfg.checkpoint_channel:
        local = cp.time.astimezone(rt.settings.config.tz)
        rt.slack.chat_postMessage(
            channel=cfg.checkpoint_channel,
            text=(f":lock: Audit checkpoint ({reason}), {local:%Y-%m-%d %H:%M}: "
                  f"{cp.n:,} record(s). `{cp.text()}`"),
            metadata={"event_type": EVENT_TYPE, "event_payload": cp.as_dict()},
            unfurl_links=False, unfurl_media=False)
    log.info("audit checkpoint written", records=cp.n, reason=reason)
    return cp


def write_safely(rt: Any, reason: str = "schedule") -> None:
    """`write` for the scheduler and shutdown: a failure is logged, never raised."""
    try:
        write(rt, reason)
    except Exception as exc:  # Slack or the file may be unreachable: say so, go on
        log.error("audit checkpoint not written", reason=reason, error=type(exc).__name__)


def append_file(path: str, cp: Checkpoint) -> None:
    # O_APPEND: each line lands at the end, whatever else appends (chattr +a makes the
    # file append-only for everyone, root's processes included)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, (json.dumps(cp.as_dict(), sort_keys=True) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read_file(path: str) -> list[Checkpoint]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                cp = Checkpoint.parse(json.loads(line))
            except ValueError:
                cp = None
            if cp is not None:
                out.append(cp)
    return out


def read_slack(client: Any, channel: str, pages: int = 5) -> list[Checkpoint]:
    """The checkpoints among the channel's newest messages (metadata, else the text)."""
    out: list[Checkpoint] = []
    cursor = None
    for _ in range(pages):
        resp = client.conversations_history(channel=channel, limit=200,
                                            include_all_metadata=True, cursor=cursor)
        for msg in resp.get("messages", []):
            meta = msg.get("metadata") or {}
            cp = (Checkpoint.parse(meta.get("event_payload"))
                  if meta.get("event_type") == EVENT_TYPE else None)
            cp = cp or Checkpoint.parse(msg.get("text") or "")
            if cp is not None:
                out.append(cp)
        if out:
            break  # newest first: the latest checkpoints are on this page
        cursor = (resp.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            break
    return out


@dataclass(frozen=True)
class AnchorResult:
    ok: bool
    lines: list[str]


def _span(lo: int, hi: int) -> str:
    return f"record {lo:,} is" if lo == hi else f"records {lo:,}-{hi:,} are"


def check(session: Session, found: Iterable[Checkpoint], keyring: Keyring | None,
          interval_minutes: int, tz: ZoneInfo, sources: str,
          at: datetime | None = None) -> AnchorResult:
    """The trail against the latest checkpoint signed with one of our keys."""
    found = list(found)
    valid = [c for c in found if c.valid(keyring)]
    unsigned = len(found) - len(valid)
    last_id = session.scalar(select(func.max(AuditEvent.id))) or 0
    note = (f" ({unsigned} checkpoint(s) with a signature none of the keys given makes "
            "were ignored)") if unsigned else ""
    if not valid:
        if last_id == 0:
            return AnchorResult(True, [f"no checkpoint yet in {sources}{note}"])
        return AnchorResult(False, [f"no signed checkpoint found in {sources}{note}: the "
                                    "trail's newest records are not anchored anywhere"])
    cp = max(valid, key=lambda c: (c.time, c.n))
    when = cp.time.astimezone(tz)
    of = f"the checkpoint of {when:%H:%M} on {when:%Y-%m-%d}"
    lines: list[str] = []
    ok = True
    if last_id < cp.n:
        ok = False
        lines.append(f"{_span(last_id + 1, cp.n)} gone since {of} ({cp.n:,} record(s) then, "
                     f"{last_id:,} now)")
    elif cp.n > 0:
        stored = session.scalar(select(AuditEvent.hash).where(AuditEvent.id == cp.n))
        if stored is None:
            ok = False
            lines.append(f"record {cp.n:,} is gone since {of}")
        elif stored != cp.head:
            ok = False
            lines.append(f"record {cp.n:,} does not match {of}: the trail up to it was "
                         "rewritten")
    age = (at or now()) - cp.time
    if age > timedelta(minutes=2 * interval_minutes):
        behind = f"records {cp.n + 1:,}-{last_id:,} are not anchored" if last_id > cp.n else (
            "nothing was written since")
        lines.append(f"the last checkpoint, of {when:%Y-%m-%d %H:%M}, is more than two "
                     f"intervals ({2 * interval_minutes} minutes) old: {behind}")
        if last_id > cp.n:
            ok = False
    if ok:
        lines.insert(0, f"anchored: {of} ({cp.n:,} record(s)) matches the trail{note}")
    return AnchorResult(ok, lines)
