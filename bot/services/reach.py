"""Reach figures: each account's follower count once a day (council date), stored so
growth per week can be reported (followers, new followers per week)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bot import logs
from bot.clock import now
from bot.db import transaction
from bot.models import Account, FollowerSnapshot
from bot.runtime import Runtime
from bot.services.accounts import account_ids
from integrations.base import Capability, NetworkError

log = logs.get("commsdesk.reach")


@dataclass(frozen=True)
class SnapshotResult:
    account: str
    followers: int | None  # None: none taken (already taken today, or an error)
    error: str | None = None


def _insert(s: Session):  # type: ignore[no-untyped-def]
    return pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert


def record(s: Session, account_id: int, day: date, followers: int) -> bool:
    """Store a day's count once (a second snapshot of the same day changes nothing)."""
    new_id = s.execute(_insert(s)(FollowerSnapshot)
                       .values(account_id=account_id, day=day, followers=followers,
                               taken_at=now())
                       .on_conflict_do_nothing(index_elements=["account_id", "day"])
                       .returning(FollowerSnapshot.id)).scalar()
    return new_id is not None


def snapshot_all(rt: Runtime) -> list[SnapshotResult]:
    """Today's follower count for every account whose network reports it (idempotent)."""
    cfg = rt.settings.config
    today = now().astimezone(cfg.tz).date()
    with transaction(rt.sessions) as s:
        accounts = account_ids(rt, s)
        done = set(s.scalars(select(FollowerSnapshot.account_id)
                             .where(FollowerSnapshot.day == today)))
    results = []
    for acc in cfg.accounts:
        account_id = accounts[acc.name]
        if account_id in done:
            results.append(SnapshotResult(acc.name, None))
            continue
        network = rt.network(acc.name)
        if Capability.FOLLOWERS not in network.capabilities:
            continue
        try:
            count = network.followers()
        except NetworkError as exc:
            log.warning("follower count not read", account=acc.name, error=str(exc))
            results.append(SnapshotResult(acc.name, None, str(exc)))
            continue
        with transaction(rt.sessions) as s:
            record(s, account_id, today, count)
        results.append(SnapshotResult(acc.name, count))
    return results


@dataclass(frozen=True)
class Growth:
    account: str
    handle: str
    followers: int | None  # at the end of the period (latest snapshot on or before it)
    gained: int | None  # since the snapshot on or before the period's start


def series(s: Session, first: date, last: date) -> dict[str, list[tuple[date, int]]]:
    """Daily counts per account name, for charts."""
    rows = s.execute(select(Account.name, FollowerSnapshot.day, FollowerSnapshot.followers)
                     .join(Account, Account.id == FollowerSnapshot.account_id)
                     .where(FollowerSnapshot.day >= first, FollowerSnapshot.day <= last)
                     .order_by(FollowerSnapshot.day)).all()
    out: dict[str, list[tuple[date, int]]] = {}
    for name, day, followers in rows:
        out.setdefault(name, []).append((day, followers))
    return out


def _at_or_before(s: Session, account_id: int, day: date) -> int | None:
    return s.scalar(select(FollowerSnapshot.followers)
                    .where(FollowerSnapshot.account_id == account_id,
                           FollowerSnapshot.day <= day)
                    .order_by(FollowerSnapshot.day.desc()).limit(1))


def growth(s: Session, first: date, last: date) -> list[Growth]:
    """Followers at `last` and gained since the day before `first`, per account."""
    out = []
    for acc in s.scalars(select(Account).order_by(Account.id)):
        end = _at_or_before(s, acc.id, last)
        start = _at_or_before(s, acc.id, first - timedelta(days=1))
        if start is None:  # no count before the week: the first one within it
            start = s.scalar(select(FollowerSnapshot.followers)
                             .where(FollowerSnapshot.account_id == acc.id,
                                    FollowerSnapshot.day >= first, FollowerSnapshot.day <= last)
                             .order_by(FollowerSnapshot.day).limit(1))
        gained = end - start if end is not None and start is not None else None
        out.append(Growth(acc.name, acc.handle, end, gained))
    return out
