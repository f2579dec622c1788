"""Store first, then route: each fetched mention is committed and audited, then its
alerts are queued in the outbox, all in one transaction per page."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from commsdesk.config import Config
from commsdesk.domain import audit
from commsdesk.domain.routing import MentionFacts, Router
from commsdesk.integrations.base import FetchedMention
from commsdesk.models import Account, Alert, Mention, OutboxMessage

SAFEGUARDING = "safeguarding"


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _age_key(m: FetchedMention) -> tuple[float, int, str]:
    """Oldest first, so refs (M1, M2, ...) and alerts follow the order residents wrote."""
    ts = m.posted_at.timestamp() if m.posted_at else 0.0
    return (ts, int(m.external_id) if m.external_id.isdigit() else 0, m.external_id)


def sync_accounts(session: Session, config: Config) -> dict[str, Account]:
    """Make the accounts table match the config (new ones added, handles refreshed).

    Safe when several threads or replicas do it at once: the name is unique and
    an insert that loses the race does nothing.
    """
    existing = {a.name: a for a in session.scalars(select(Account))}
    for acc in config.accounts:
        row = existing.get(acc.name)
        if row is None:
            new_id = session.execute(
                _insert(session)(Account)
                .values(name=acc.name, network=acc.network, handle=acc.handle,
                        external_user_id=acc.user_id)
                .on_conflict_do_nothing(index_elements=["name"])
                .returning(Account.id)
            ).scalar()
            if new_id is not None:
                audit.record(session, actor="system", action="account.configured",
                             subject_kind="account", subject_id=new_id,
                             details={"name": acc.name, "network": acc.network,
                                      "handle": acc.handle})
            existing[acc.name] = session.scalars(
                select(Account).where(Account.name == acc.name)).one()
        elif row.handle != acc.handle or (acc.user_id and row.external_user_id != acc.user_id):
            row.handle = acc.handle
            row.external_user_id = acc.user_id or row.external_user_id
    return existing


def account_ids(rt: Any, session: Session) -> dict[str, int]:
    """Account name -> id. Synced with the config once per process, then remembered:
    accounts are never removed, so ids never change (and the hot path stays cheap)."""
    cached: dict[str, int] | None = rt.extras.get("account_ids")
    if cached is None:
        cached = {name: a.id for name, a in sync_accounts(session, rt.settings.config).items()}
        rt.extras["account_ids"] = cached
    return cached


def store_mentions(
    session: Session, account: Account, fetched: Sequence[FetchedMention], router: Router
) -> list[Mention]:
    """Insert the mentions not seen before; audit, route and queue their alerts.

    Returns the new mentions. Overlapping pages, restarts and replicas never
    duplicate: the database's unique (network, external_id) decides.
    """
    if not fetched:
        return []
    rows = [
        {
            "network": account.network,
            "external_id": m.external_id,
            "account_id": account.id,
            "author_external_id": m.author_external_id,
            "author_handle": m.author_handle,
            "author_name": m.author_name,
            "text": m.text,
            "url": m.url,
            "posted_at": m.posted_at,
            "conversation_id": m.conversation_id,
            "in_reply_to_external_id": m.in_reply_to_external_id,
            "state": "open",
        }
        for m in sorted({m.external_id: m for m in fetched}.values(), key=_age_key)
    ]
    stmt = (
        _insert(session)(Mention)
        .on_conflict_do_nothing(index_elements=["network", "external_id"])
        .returning(Mention.id)
    )
    new_ids = [row.id for row in session.execute(stmt, rows)]
    if not new_ids:
        return []
    mentions = list(session.scalars(select(Mention).where(Mention.id.in_(new_ids))
                                    .order_by(Mention.id)))
    entries: list[audit.Entry] = []
    alerts: list[Alert] = []
    for m in mentions:
        routes = router.route(MentionFacts(account.name, m.author_handle, m.text))
        term = router.safeguarding_term(m.text)
        if term is not None:
            m.escalated = True
            entries.append(audit.Entry("system", "mention.escalated", "mention", m.id, {
                "term": term, "channel": router.safeguarding_channel,
                "services": [r.service for r in routes]}))
            alerts.append(Alert(mention_id=m.id, service=SAFEGUARDING,
                                channel=router.safeguarding_channel,
                                reason=f"safeguarding term “{term}”"))
        entries.append(audit.Entry("system", "mention.received", "mention", m.id, {
            "network": m.network, "external_id": m.external_id, "account": account.name,
            "author": m.author_handle, "text": m.text, "url": m.url,
        }))
        entries.append(audit.Entry("system", "mention.routed", "mention", m.id, {
            "routes": [{"service": r.service, "channel": r.channel, "reason": r.reason}
                       for r in routes],
        }))
        for r in routes:
            alerts.append(Alert(mention_id=m.id, service=r.service, channel=r.channel,
                                reason=r.reason))
    session.add_all(alerts)
    session.flush()
    session.add_all(
        OutboxMessage(channel=a.channel, op="post_alert", alert_id=a.id, payload={})
        for a in alerts
    )
    audit.record_many(session, entries)
    return mentions
