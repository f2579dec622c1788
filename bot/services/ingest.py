"""Store first, then route: each fetched mention is committed and audited, then its
alerts are queued in the outbox, all in one transaction per page."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, literal, select
from sqlalchemy.orm import Session

from bot.clock import now
from bot.domain.routing import MentionFacts, Route, Router
from bot.models import Account, Alert, Mention, OutboxMessage
from bot.services import audit, inbox
from bot.services.accounts import insert_for as _insert
from bot.services.private import private_routes
from integrations.base import FetchedMention

SAFEGUARDING = "safeguarding"


def _age_key(m: FetchedMention) -> tuple[float, int, str]:
    """Oldest first, so refs (M1, M2, ...) and alerts follow the order residents wrote."""
    ts = m.posted_at.timestamp() if m.posted_at else 0.0
    return (ts, int(m.external_id) if m.external_id.isdigit() else 0, m.external_id)


def _cap(value: str | None, limit: int) -> str | None:
    return value if value is None or len(value) <= limit else value[: limit - 1] + "…"


def store_mentions(
    session: Session, account: Account, fetched: Sequence[FetchedMention], router: Router
) -> list[int]:
    """Insert the mentions not seen before; audit, route and queue their alerts.

    Returns the new mentions' ids. Overlapping pages, restarts and replicas never
    duplicate: the database's unique (network, external_id) decides. Routing is a pure
    function of the mention, so it is decided before the insert; only the mentions the
    insert reports as new get their audit record, alerts and outbox rows. Plain Core
    statements (no ORM objects): this is the path a burst of mentions takes.
    """
    if not fetched:
        return []
    unique = sorted({m.external_id: m for m in fetched}.values(), key=_age_key)
    rows: dict[str, dict[str, Any]] = {}
    routed: dict[str, tuple[list[Route], str | None]] = {}
    for m in unique:
        routes = router.route(MentionFacts(account.name, m.author_handle, m.text))
        if m.private:  # to the services' private channels, if any (services/private.py)
            routes = private_routes(router.config, routes)
        term = router.safeguarding_term(m.text)
        routed[m.external_id] = (routes, term)
        rows[m.external_id] = {
            "network": account.network, "external_id": m.external_id,
            "account_id": account.id, "author_external_id": m.author_external_id,
            # a network's fields bounded to their columns (a hostile server's 4,000-character
            # handle must not fail the page); a URL too long to keep whole is not kept
            "author_handle": _cap(m.author_handle, 255), "author_name": _cap(m.author_name, 255),
            "text": m.text, "url": m.url if m.url and len(m.url) <= 512 else None,
            "posted_at": m.posted_at, "conversation_id": m.conversation_id,
            "in_reply_to_external_id": m.in_reply_to_external_id, "state": "open",
            "escalated": term is not None, "origin": "private" if m.private else "mention",
        }
    conn = session.connection()
    mention = Mention.__table__
    new = sorted(conn.execute(
        _insert(session)(mention)
        .on_conflict_do_nothing(index_elements=["network", "external_id"])
        .returning(mention.c.id, mention.c.external_id),
        list(rows.values())).all())
    if not new:
        return []
    entries: list[audit.Entry] = []
    alert_rows: list[dict[str, Any]] = []
    for mention_id, external_id in new:
        m = rows[external_id]
        routes, term = routed[external_id]
        if term is not None:
            entries.append(audit.Entry("system", "mention.escalated", "mention", mention_id, {
                "term": term, "channel": router.safeguarding_channel,
                "services": [r.service for r in routes]}))
            alert_rows.append({"mention_id": mention_id, "service": SAFEGUARDING,
                               "channel": router.safeguarding_channel,
                               "reason": f"safeguarding term “{term}”"})
        # one record: what came in and where it was sent (both decided in this transaction)
        entries.append(audit.Entry("system", "mention.received", "mention", mention_id, {
            "network": m["network"], "external_id": external_id, "account": account.name,
            "author": m["author_handle"], "text": m["text"], "url": m["url"],
            "routes": [{"service": r.service, "channel": r.channel, "reason": r.reason}
                       for r in routes],
        }))
        alert_rows += [{"mention_id": mention_id, "service": r.service, "channel": r.channel,
                        "reason": r.reason} for r in routes]
    if alert_rows:
        conn.execute(insert(Alert.__table__), alert_rows)
        _queue_alerts(conn, [mention_id for mention_id, _ in new])
    audit.record_many(session, entries)
    inbox.on_new_mentions(session, router.config, [mention_id for mention_id, _ in new])
    return [mention_id for mention_id, _ in new]


def _queue_alerts(conn: Any, mention_ids: list[int]) -> None:
    """One `post_alert` outbox row per new alert, in alert order, by INSERT ... SELECT."""
    a, o = Alert.__table__.c, OutboxMessage.__table__.c
    t = now()
    src = (select(a.channel, literal("post_alert"), a.id, literal({}, o.payload.type),
                  literal("pending"), literal(0), literal(t, o.not_before.type),
                  literal(t, o.created_at.type))
           .where(a.mention_id.in_(mention_ids)).order_by(a.id))
    conn.execute(insert(OutboxMessage.__table__).from_select(
        [o.channel, o.op, o.alert_id, o.payload, o.status, o.attempts, o.not_before,
         o.created_at], src))
