"""One polling pass per account: fetch everything newer than the stored cursor,
store each page as it arrives, and move the cursor only once all are stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy import or_, select, update

from bot import logs
from bot.clock import now
from bot.db import transaction
from bot.domain.routing import Router
from bot.faults import crash_point
from bot.models import Account, PollCursor
from bot.runtime import Runtime
from bot.services.accounts import account_ids
from bot.services.ingest import store_mentions
from bot.services.outbox import Outbox
from integrations.base import NetworkError

log = logs.get("commsdesk.polling")
LEASE = timedelta(minutes=10)


@dataclass(frozen=True)
class PollResult:
    account: str
    stored: int
    error: str | None = None


def _newer(a: str | None, b: str) -> str:
    if a is None:
        return b
    if a.isdigit() and b.isdigit():
        return a if int(a) >= int(b) else b
    return max(a, b)


def _claim_cursor(rt: Runtime, account_id: int, owner: str) -> str | bool | None:
    """Lease the account's cursor (so two replicas never poll one account at once).

    Returns the since_id, or False when another poller holds the lease.
    """
    with transaction(rt.sessions) as s:
        if s.get(PollCursor, account_id) is None:
            s.add(PollCursor(account_id=account_id, since_id=None))
            s.flush()
        t = now()
        res = s.execute(
            update(PollCursor)
            .where(PollCursor.account_id == account_id)
            .where(or_(PollCursor.lease_until.is_(None), PollCursor.lease_until < t,
                       PollCursor.lease_owner == owner))
            .values(lease_owner=owner, lease_until=t + LEASE)
        )
        if res.rowcount != 1:
            return False
        return s.scalar(select(PollCursor.since_id).where(PollCursor.account_id == account_id))


def _release(rt: Runtime, account_id: int, owner: str, since_id: str | None,
             *, success: bool) -> None:
    with transaction(rt.sessions) as s:
        values: dict[str, object] = {"lease_owner": None, "lease_until": None}
        if success:  # updated_at: the last successful poll (shown by /healthz)
            values["updated_at"] = now()
        if since_id is not None:
            values["since_id"] = since_id
        s.execute(update(PollCursor).where(PollCursor.account_id == account_id)
                  .where(PollCursor.lease_owner == owner).values(**values))


def poll_account(rt: Runtime, name: str, owner: str = "poller") -> PollResult:
    with structlog.contextvars.bound_contextvars(account=name):
        return _poll_account(rt, name, owner)


def _poll_account(rt: Runtime, name: str, owner: str) -> PollResult:
    network = rt.network(name)
    router: Router = rt.router
    with transaction(rt.sessions) as s:
        account_id = account_ids(rt, s)[name]
    since = _claim_cursor(rt, account_id, owner)
    if since is False:
        return PollResult(name, 0, None)
    since_id = since if isinstance(since, str) else None
    newest: str | None = None
    given: str | None = None  # the network's own cursor, when it gives one
    stored = 0
    try:
        for page in network.fetch_mentions(since_id):
            with transaction(rt.sessions) as s:
                account = s.get_one(Account, account_id)
                stored += len(store_mentions(s, account, page.mentions, router))
            crash_point("poll:after_store")
            for m in page.mentions:
                newest = _newer(newest, m.external_id)
            if page.cursor is not None:
                given = page.cursor
            rt.kick_outbox()
    except NetworkError as exc:
        # what was stored stays stored; the cursor stays put so nothing is skipped
        log.warning("polling failed", account=name, error=str(exc))
        _release(rt, account_id, owner, None, success=False)
        return PollResult(name, stored, str(exc))
    cursor = given if given is not None else (_newer(since_id, newest) if newest else None)
    _release(rt, account_id, owner, cursor, success=True)
    if stored:
        log.info("mentions stored", account=name, count=stored)
    return PollResult(name, stored)


def poll_all(rt: Runtime) -> list[PollResult]:
    return [poll_account(rt, acc.name) for acc in rt.settings.config.accounts]


def deliver_outbox_until_empty(rt: Runtime, timeout: float = 600.0) -> int:
    return Outbox(rt).drain(timeout=timeout)
