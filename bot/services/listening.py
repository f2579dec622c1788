"""Keyword listening: posts that name the council without an @ ("heard").

Each `[[listening]]` entry is searched with each of its accounts' networks (X recent
search, Bluesky searchPosts, Mastodon hashtag timelines and status search: the
`integrations/<network>/search.py` modules), every `interval_seconds`, spending at most
`budget` search requests per `budget_window_minutes` (counted in the database, so
replicas share it; a network's own 429 moves the next run past its reset instead of
waiting in a thread). A match is stored as a mention with `origin = "heard"`, in the same
unique (network, external id) as mentions, so it is alerted once, in the service's
channel, and never again as a mention (nor as heard when it came in as a mention first);
a post that @mentions the account is left to mention polling. Heard posts are answered
with the same Draft reply flow (`/social reply M7 ...`, the alert's button).

Cursors (`listen_cursors`, one per account and query) are leased like polling cursors
and move only once every page of a pass is stored; a pass cut short by the budget keeps
its cursor, and what it stored is de-duplicated when it is read again.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import insert, or_, select, update
from sqlalchemy.orm import Session

from bot import logs
from bot.clock import now
from bot.config import AccountConfig, ListeningConfig
from bot.db import transaction
from bot.models import Account, Alert, ListenCursor, Mention
from bot.runtime import Runtime
from bot.services import audit, inbox
from bot.services.accounts import account_ids
from bot.services.ingest import _age_key, _cap, _insert, _queue_alerts
from integrations import registry
from integrations.base import FetchedMention, NetworkError
from integrations.common import wait_limit

log = logs.get("commsdesk.listening")
LEASE = timedelta(minutes=10)
MAX_RATE_WAIT = 5.0  # a network's rate limit longer than this moves the next run instead
HEARD = "heard"


def searcher(network: str) -> Any:
    """The network's search module (its spec's `search`: `queries(terms, handle)`,
    `search(net, q, since)`)."""
    spec = registry.spec(network)
    if spec is None or spec.search is None:
        raise LookupError(f"{network} has no search commsdesk uses")
    return importlib.import_module(spec.search)


class BudgetSpent(Exception):
    """This window's search budget is spent: the pass stops, its cursor stays put."""


@dataclass(frozen=True)
class Job:
    """One search: a listening entry, one of its accounts, one query."""

    listen: ListeningConfig
    account: AccountConfig
    query: str
    key: str  # its cursor
    budget_key: str  # the entry + account's rate budget, shared by its queries


@dataclass(frozen=True)
class ListenResult:
    service: str
    account: str
    query: str
    stored: int
    requests: int = 0
    error: str | None = None
    skipped: str | None = None  # not due, leased elsewhere, budget spent


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:40]


def jobs(rt: Runtime) -> list[Job]:
    cfg = rt.settings.config
    out: list[Job] = []
    for i, listen in enumerate(cfg.listening):
        for name in listen.accounts:
            account = cfg.account(name)
            if account is None:
                continue
            budget_key = "b:" + _digest(str(i), listen.service, *listen.terms, name)
            for query in searcher(account.network).queries(listen.terms, account.handle):
                out.append(Job(listen, account, query, "q:" + _digest(name, query),
                               budget_key))
    return out


# ------------------------------------------------------------------ cursors and budget


def _ensure(s: Session, key: str, account_id: int) -> None:
    s.execute(_insert(s)(ListenCursor).values(key=key, account_id=account_id, window_used=0,
                                              updated_at=now())
              .on_conflict_do_nothing(index_elements=["key"]))


def _claim(rt: Runtime, job: Job, account_id: int, owner: str, force: bool
           ) -> tuple[bool, str | None]:
    """Lease the job's cursor when it is due: (claimed, since)."""
    with transaction(rt.sessions) as s:
        _ensure(s, job.key, account_id)
        _ensure(s, job.budget_key, account_id)
        t = now()
        due = or_(ListenCursor.next_run_at.is_(None), ListenCursor.next_run_at <= t)
        free = or_(ListenCursor.lease_until.is_(None), ListenCursor.lease_until < t,
                   ListenCursor.lease_owner == owner)
        res = s.execute(update(ListenCursor).where(
            ListenCursor.key == job.key, free, *(() if force else (due,)))
            .values(lease_owner=owner, lease_until=t + LEASE))
        if res.rowcount != 1:
            return False, None
        return True, s.scalar(select(ListenCursor.since_id).where(ListenCursor.key == job.key))


def _release(rt: Runtime, job: Job, owner: str, *, since: str | None, next_run: Any,
             error: str | None) -> None:
    with transaction(rt.sessions) as s:
        values: dict[str, Any] = {"lease_owner": None, "lease_until": None,
                                  "next_run_at": next_run, "last_error": error,
                                  "updated_at": now()}
        if since is not None:
            values["since_id"] = since
        s.execute(update(ListenCursor).where(ListenCursor.key == job.key,
                                             ListenCursor.lease_owner == owner).values(**values))


def spend(rt: Runtime, job: Job) -> bool:
    """Take one search request from the entry's budget (a compare-and-set, so replicas
    share it): False when this window's budget is spent."""
    window = timedelta(minutes=job.listen.budget_window_minutes)
    with transaction(rt.sessions) as s:
        t = now()
        c = ListenCursor
        used = s.execute(update(c).where(
            c.key == job.budget_key, c.window_start > t - window,
            c.window_used < job.listen.budget).values(window_used=c.window_used + 1))
        if used.rowcount == 1:
            return True
        fresh = s.execute(update(c).where(
            c.key == job.budget_key,
            or_(c.window_start.is_(None), c.window_start <= t - window)).values(
            window_start=t, window_used=1))
        return fresh.rowcount == 1


def budget_resets_at(rt: Runtime, job: Job) -> Any:
    with rt.sessions() as s:
        start = s.scalar(select(ListenCursor.window_start).where(
            ListenCursor.key == job.budget_key))
    return (start or now()) + timedelta(minutes=job.listen.budget_window_minutes)


# ------------------------------------------------------------------ storing what was heard


def matched_term(terms: Sequence[str], text: str) -> str | None:
    for term in terms:
        if re.search(rf"(?<![\w#@]){re.escape(term)}(?!\w)", text, re.I):
            return term
    return None


def mentions_account(text: str, handle: str) -> bool:
    return re.search(rf"(?<![\w@])@{re.escape(handle)}(?![\w])", text, re.I) is not None


def store_heard(s: Session, rt: Runtime, account: Account, fetched: Sequence[FetchedMention],
                listen: ListeningConfig) -> list[int]:
    """Insert the heard posts not seen before (as a mention or as heard): audit each,
    alert it in the service's channel (and escalate a safeguarding term as mentions are).
    Returns the new ones' ids."""
    cfg = rt.settings.config
    service = next(sv for sv in cfg.services if sv.name == listen.service)
    router = rt.router
    keep = [m for m in fetched if not mentions_account(m.text, account.handle)]
    if not keep:
        return []
    unique = sorted({m.external_id: m for m in keep}.values(), key=_age_key)
    rows: dict[str, dict[str, Any]] = {}
    for m in unique:
        rows[m.external_id] = {
            "network": account.network, "external_id": m.external_id,
            "account_id": account.id, "author_external_id": m.author_external_id,
            "author_handle": _cap(m.author_handle, 255), "author_name": _cap(m.author_name, 255),
            "text": m.text, "url": m.url if m.url and len(m.url) <= 512 else None,
            "posted_at": m.posted_at, "conversation_id": m.conversation_id,
            "in_reply_to_external_id": m.in_reply_to_external_id, "state": "open",
            "escalated": router.safeguarding_term(m.text) is not None, "origin": HEARD,
        }
    table = Mention.__table__
    conn = s.connection()
    new = sorted(conn.execute(
        _insert(s)(table).on_conflict_do_nothing(index_elements=["network", "external_id"])
        .returning(table.c.id, table.c.external_id), list(rows.values())).all())
    if not new:
        return []
    entries: list[audit.Entry] = []
    alert_rows: list[dict[str, Any]] = []
    for mention_id, external_id in new:
        m = rows[external_id]
        term = matched_term(listen.terms, m["text"])
        reason = f"heard “{term}”" if term else "heard (network search)"
        safeguarding = router.safeguarding_term(m["text"])
        if safeguarding is not None:
            entries.append(audit.Entry("system", "mention.escalated", "mention", mention_id, {
                "term": safeguarding, "channel": router.safeguarding_channel,
                "services": [service.name]}))
            alert_rows.append({"mention_id": mention_id, "service": "safeguarding",
                               "channel": router.safeguarding_channel,
                               "reason": f"safeguarding term “{safeguarding}”"})
        entries.append(audit.Entry("system", "mention.heard", "mention", mention_id, {
            "network": m["network"], "external_id": external_id, "account": account.name,
            "author": m["author_handle"], "text": m["text"], "url": m["url"],
            "term": term, "routes": [{"service": service.name, "channel": service.channel,
                                      "reason": reason}]}))
        alert_rows.append({"mention_id": mention_id, "service": service.name,
                           "channel": service.channel, "reason": reason})
    conn.execute(insert(Alert.__table__), alert_rows)
    _queue_alerts(conn, [mention_id for mention_id, _ in new])
    audit.record_many(s, entries)
    new_ids = [mention_id for mention_id, _ in new]
    inbox.on_new_mentions(s, cfg, new_ids)
    return new_ids


# ------------------------------------------------------------------ running the searches


def run_job(rt: Runtime, job: Job, owner: str = "listener", *, force: bool = False
            ) -> ListenResult:
    def result(stored: int = 0, requests: int = 0, error: str | None = None,
               skipped: str | None = None) -> ListenResult:
        return ListenResult(job.listen.service, job.account.name, job.query, stored,
                            requests, error, skipped)

    with transaction(rt.sessions) as s:
        account_id = account_ids(rt, s)[job.account.name]
    claimed, since = _claim(rt, job, account_id, owner, force)
    if not claimed:
        return result(skipped="not due")
    interval = timedelta(seconds=job.listen.interval_seconds)
    net = rt.network(job.account.name)
    spent = [0]

    def take() -> None:
        if not spend(rt, job):
            raise BudgetSpent
        spent[0] += 1

    pages = searcher(job.account.network).search(net, job.query, since, spend=take)
    stored = 0
    cursor: str | None = None
    try:
        with wait_limit(MAX_RATE_WAIT):
            for page in pages:
                with transaction(rt.sessions) as s:
                    account = s.get_one(Account, account_id)
                    stored += len(store_heard(s, rt, account, page.mentions, job.listen))
                if page.cursor is not None:
                    cursor = page.cursor
                rt.kick_outbox()
    except BudgetSpent:
        resets = budget_resets_at(rt, job)
        _release(rt, job, owner, since=None, next_run=max(resets, now() + interval), error=None)
        log.info("listening budget spent", account=job.account.name,
                 service=job.listen.service, until=str(resets))
        return result(stored, spent[0], skipped="budget spent")
    except NetworkError as exc:
        wait = exc.retry_after or 0.0
        _release(rt, job, owner, since=None,
                 next_run=now() + max(interval, timedelta(seconds=wait)), error=str(exc))
        log.warning("listening failed", account=job.account.name, error=str(exc))
        return result(stored, spent[0], error=str(exc))
    except Exception as exc:  # a malformed answer: this search waits its interval, others run
        _release(rt, job, owner, since=None, next_run=now() + interval,
                 error=f"{type(exc).__name__}: {exc}"[:500])
        log.exception("listening failed", account=job.account.name)
        return result(stored, spent[0], error=f"{type(exc).__name__}")
    _release(rt, job, owner, since=cursor, next_run=now() + interval, error=None)
    if stored:
        log.info("heard posts stored", account=job.account.name, service=job.listen.service,
                 count=stored)
    return result(stored, spent[0])


def run_due(rt: Runtime, owner: str = "listener", *, force: bool = False
            ) -> list[ListenResult]:
    """Every listening search that is due (or all of them with `force`)."""
    out = []
    for job in jobs(rt):
        with structlog.contextvars.bound_contextvars(account=job.account.name):
            out.append(run_job(rt, job, owner, force=force))
    return out
