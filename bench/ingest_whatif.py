"""What would a faster `store_mentions` buy? Profile-guided prototypes, measured against the
real one and the raw Core insert in the same run. Nothing here is used by the bot.

    python -m bench.ingest_whatif [--db sqlite|postgresql|both] [--n 5000] [--repeat 3]

Each variant writes exactly what `commsdesk.services.ingest.store_mentions` writes (same
mentions, alerts, outbox rows, audit entries with the same details and digests, a chain
that `audit.verify` accepts); this is checked before anything is timed. Variants are
cumulative:

  A  the real store_mentions (ORM objects for alerts and outbox, ORM bulk audit insert)
  B  A + audit rows inserted with Core on the table, details serialised once, not three times
  C  B + alerts and outbox rows inserted with Core executemany (no ORM objects, no flush)
  D  C + no SELECT to reload the new mentions (RETURNING id, external_id; data from memory)
  E  D + alerts without RETURNING and the outbox filled by one INSERT ... SELECT

and, as a ceiling, W: a raw Core executemany of *all* the rows ingest writes (mentions,
alerts, outbox, audit; every value, hashes included, computed before the clock starts):
what the write volume alone costs on this machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bench.common import (
    BENCH_CONFIG,
    db_kinds,
    fresh_database,
    loadavg,
    machine_note,
    mixed_mentions,
    table,
    wait_quiet,
)
from bench.ingest import PAGE, _pages, _setup, run_raw
from commsdesk import db
from commsdesk.clock import now
from commsdesk.config import parse_config
from commsdesk.db import transaction
from commsdesk.domain import audit
from commsdesk.domain.routing import MentionFacts, Router
from commsdesk.integrations.base import FetchedMention
from commsdesk.models import Account, Alert, AuditEvent, Mention, OutboxMessage
from commsdesk.services import ingest
from commsdesk.services.ingest import _age_key, _insert

VARIANTS = "ABCDE"


def record_many_core(session: Session, entries: list[audit.Entry]) -> None:
    """audit.record_many with the same chain, details serialised once, Core insert."""
    if not entries:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": audit._PG_AUDIT_LOCK})
    last = session.execute(sa.select(AuditEvent.id, AuditEvent.hash)
                           .order_by(AuditEvent.id.desc()).limit(1)).first()
    next_id, prev = (last.id + 1, last.hash) if last else (1, audit.GENESIS)
    at = now()
    rows: list[dict[str, Any]] = []
    for e in entries:
        text = audit.canonical(e.details or {})
        d = hashlib.sha256(text.encode("utf-8")).hexdigest()
        h = audit.record_hash(id=next_id, at=at, actor=e.actor, action=e.action,
                              subject_kind=e.subject_kind, subject_id=str(e.subject_id),
                              details_digest=d, prev_hash=prev)
        rows.append({"id": next_id, "at": at, "actor": e.actor, "action": e.action,
                     "subject_kind": e.subject_kind, "subject_id": str(e.subject_id),
                     "details": json.loads(text), "details_digest": d, "prev_hash": prev,
                     "hash": h})
        prev, next_id = h, next_id + 1
    session.connection().execute(sa.insert(AuditEvent.__table__), rows)


def store_variant(variant: str, session: Session, account: Account,
                  fetched: Sequence[FetchedMention], router: Router) -> int:
    if variant == "A":
        return len(ingest.store_mentions(session, account, fetched, router))
    if not fetched:
        return 0
    unique = sorted({m.external_id: m for m in fetched}.values(), key=_age_key)
    rows = [{"network": account.network, "external_id": m.external_id,
             "account_id": account.id, "author_external_id": m.author_external_id,
             "author_handle": m.author_handle, "author_name": m.author_name, "text": m.text,
             "url": m.url, "posted_at": m.posted_at, "conversation_id": m.conversation_id,
             "in_reply_to_external_id": m.in_reply_to_external_id, "state": "open"}
            for m in unique]
    conn = session.connection()
    stmt = (_insert(session)(Mention.__table__)
            .on_conflict_do_nothing(index_elements=["network", "external_id"]))
    if variant >= "D":
        by_ext = {r["external_id"]: r for r in rows}
        got = sorted(conn.execute(stmt.returning(Mention.id, Mention.external_id), rows).all())
        new = [(mid, by_ext[ext]) for mid, ext in got]
    else:
        new_ids = [r.id for r in conn.execute(stmt.returning(Mention.id), rows)]
        new = [(m.id, {"network": m.network, "external_id": m.external_id,
                       "author_handle": m.author_handle, "text": m.text, "url": m.url})
               for m in session.scalars(sa.select(Mention).where(Mention.id.in_(new_ids))
                                        .order_by(Mention.id))]
    if not new:
        return 0
    entries: list[audit.Entry] = []
    alert_rows: list[dict[str, Any]] = []
    for mid, m in new:
        routes = router.route(MentionFacts(account.name, m["author_handle"], m["text"]))
        entries.append(audit.Entry("system", "mention.received", "mention", mid, {
            "network": m["network"], "external_id": m["external_id"], "account": account.name,
            "author": m["author_handle"], "text": m["text"], "url": m["url"]}))
        entries.append(audit.Entry("system", "mention.routed", "mention", mid, {
            "routes": [{"service": r.service, "channel": r.channel, "reason": r.reason}
                       for r in routes]}))
        alert_rows += [{"mention_id": mid, "service": r.service, "channel": r.channel,
                        "reason": r.reason} for r in routes]
    if variant == "B":
        alerts = [Alert(**a) for a in alert_rows]
        session.add_all(alerts)
        session.flush()
        session.add_all(OutboxMessage(channel=a.channel, op="post_alert", alert_id=a.id,
                                      payload={}) for a in alerts)
        session.flush()
    elif variant in "CD":
        made = conn.execute(sa.insert(Alert.__table__).returning(
            Alert.id, Alert.channel, sort_by_parameter_order=True), alert_rows).all()
        conn.execute(sa.insert(OutboxMessage.__table__),
                     [{"channel": ch, "op": "post_alert", "alert_id": aid, "payload": {}}
                      for aid, ch in made])
    else:  # E
        conn.execute(sa.insert(Alert.__table__), alert_rows)
        t = now()
        a = Alert.__table__
        src = (sa.select(a.c.channel, sa.literal("post_alert"), a.c.id,
                         sa.literal({}, OutboxMessage.__table__.c.payload.type),
                         sa.literal("pending"), sa.literal(0),
                         sa.literal(t, OutboxMessage.__table__.c.not_before.type),
                         sa.literal(t, OutboxMessage.__table__.c.created_at.type))
               .where(a.c.mention_id.in_([mid for mid, _ in new])).order_by(a.c.id))
        o = OutboxMessage.__table__.c
        conn.execute(sa.insert(OutboxMessage.__table__).from_select(
            [o.channel, o.op, o.alert_id, o.payload, o.status, o.attempts, o.not_before,
             o.created_at], src))
    record_many_core(session, entries)
    return len(new)


def run_variant(kind: str, variant: str, mentions: list[FetchedMention]
                ) -> tuple[float, dict[str, list[tuple[Any, ...]]]]:
    router = Router(parse_config(BENCH_CONFIG))
    with fresh_database(kind) as url:
        engine, account_id = _setup(url)
        sessions = db.make_sessionmaker(engine)
        t0 = time.perf_counter()
        for page in _pages(mentions):
            with transaction(sessions) as s:
                store_variant(variant, s, s.get_one(Account, account_id), page, router)
        elapsed = time.perf_counter() - t0
        with sessions() as s:
            result = audit.verify(s)
            if not result.ok:
                raise SystemExit(f"variant {variant}: {result.message()}")
            snap = {
                "mentions": [tuple(r) for r in s.execute(sa.select(
                    Mention.id, Mention.external_id, Mention.text, Mention.author_handle,
                    Mention.posted_at, Mention.state).order_by(Mention.id))],
                "alerts": [tuple(r) for r in s.execute(sa.select(
                    Alert.id, Alert.mention_id, Alert.service, Alert.channel, Alert.reason,
                    Alert.active).order_by(Alert.id))],
                "outbox": [tuple(r) for r in s.execute(sa.select(
                    OutboxMessage.id, OutboxMessage.channel, OutboxMessage.op,
                    OutboxMessage.alert_id, OutboxMessage.payload, OutboxMessage.status,
                    OutboxMessage.attempts).order_by(OutboxMessage.id))],
                "audit": [tuple(r) for r in s.execute(sa.select(
                    AuditEvent.id, AuditEvent.actor, AuditEvent.action, AuditEvent.subject_kind,
                    AuditEvent.subject_id, AuditEvent.details, AuditEvent.details_digest)
                    .order_by(AuditEvent.id))],
            }
        engine.dispose()
    return elapsed, snap


def run_all_rows_raw(kind: str, mentions: list[FetchedMention]) -> float:
    """Seconds to insert every row ingest writes (copied from a run of variant E, so all
    values are computed beforehand) with plain Core executemany, page by page."""
    router = Router(parse_config(BENCH_CONFIG))
    with fresh_database(kind) as src_url, fresh_database(kind) as dst_url:
        src, account_id = _setup(src_url)
        sessions = db.make_sessionmaker(src)
        for page in _pages(mentions):
            with transaction(sessions) as s:
                store_variant("E", s, s.get_one(Account, account_id), page, router)
        tables = [Mention.__table__, Alert.__table__, OutboxMessage.__table__,
                  AuditEvent.__table__]
        with src.connect() as conn:
            data = {t.name: [dict(r._mapping) for r in conn.execute(
                sa.select(t).order_by(t.c.id))] for t in tables}
        src.dispose()
        # page i: its mentions, their alerts, those alerts' outbox rows, their audit rows
        pages: list[dict[str, list[dict[str, Any]]]] = []
        alert_page: dict[int, int] = {}
        mention_page: dict[int, int] = {}
        for i, chunk in enumerate(_pages(data["mentions"])):
            pages.append({"mentions": list(chunk), "alerts": [], "outbox": [],
                          "audit_events": []})
            for m in chunk:
                mention_page[m["id"]] = i
        for a in data["alerts"]:
            alert_page[a["id"]] = mention_page[a["mention_id"]]
            pages[alert_page[a["id"]]]["alerts"].append(a)
        for o in data["outbox"]:
            pages[alert_page[o["alert_id"]]]["outbox"].append(o)
        for e in data["audit_events"]:
            if e["subject_kind"] == "mention":
                pages[mention_page[int(e["subject_id"])]]["audit_events"].append(e)
        dst, _ = _setup(dst_url)  # its account.configured record has id 1, as in src
        t0 = time.perf_counter()
        for page in pages:
            with dst.begin() as conn:
                for t in tables:
                    if page[t.name]:
                        conn.execute(sa.insert(t), page[t.name])
        elapsed = time.perf_counter() - t0
        dst.dispose()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    mentions = mixed_mentions(args.n)
    print(f"# ingest what-if · n={args.n} · pages of {PAGE} · best of {args.repeat}")
    print(f"# {machine_note()}\n")
    rows = []
    for kind in db_kinds(args.db):
        load_start = wait_quiet()
        # same rows written by every variant (checked on a small run first)
        small = mentions[:300]
        _, want = run_variant(kind, "A", small)
        for v in VARIANTS[1:]:
            _, got = run_variant(kind, v, small)
            if got != want:
                diff = [k for k in want if want[k] != got[k]]
                raise SystemExit(f"variant {v} on {kind} writes different {diff}")
        best = {v: float("inf") for v in VARIANTS}
        raw = float("inf")
        for _ in range(args.repeat):
            raw = min(raw, run_raw(kind, mentions))
            for v in VARIANTS:
                best[v] = min(best[v], run_variant(kind, v, mentions)[0])
        raw_rate = args.n / raw
        all_rows = min(run_all_rows_raw(kind, mentions) for _ in range(args.repeat))
        rows.append([kind, "W (ceiling)", f"{args.n / all_rows:,.0f}", f"{raw_rate:,.0f}",
                     f"{args.n / all_rows / raw_rate:.2f}", f"{best['A'] / all_rows:.2f}x"])
        for v in VARIANTS:
            rate = args.n / best[v]
            rows.append([kind, v, f"{rate:,.0f}", f"{raw_rate:,.0f}", f"{rate / raw_rate:.2f}",
                         f"{best['A'] / best[v]:.2f}x"])
        print(f"# {kind}: load average (1/5/15 min) at start {load_start}, at end {loadavg()}",
              flush=True)
    print(table(["db", "variant", "mentions/s", "raw insert/s", "ratio to raw",
                 "speed-up vs A"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
