"""Ingest throughput: mentions stored + audited + routed + queued per second, next to raw
SQLAlchemy Core inserts in the same run.

    python -m bench.ingest [--db sqlite|postgresql|both] [--n 5000] [--repeat 3] [--profile]

Two baselines, both plain Core executemany with every value computed beforehand:

* raw, same rows: every row ingest writes for those mentions (the mention, its alerts,
  their outbox rows, its audit record), copied from an ingest run and inserted again
  page by page. This is the target's baseline: ingest / raw >= 0.30, i.e. routing,
  hashing the audit chain, de-duplication and the ORM-free statements may cost at most
  about 3x what writing the same rows costs.
* raw, mentions only: ``insert(Mention)`` of the mention rows alone (a fifth of the rows
  ingest writes), for comparison with the first measurements.

Every path writes in pages of 100 mentions, one transaction per page, as polling does,
each on a fresh database (temp SQLite file / new PostgreSQL schema); absolute rates
depend on the machine, the ratios much less.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

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
from bot import db
from bot.config import parse_config
from bot.db import transaction
from bot.domain.routing import MentionFacts, Router
from bot.models import Account, Alert, AuditEvent, Mention, OutboxMessage
from bot.services.accounts import sync_accounts
from bot.services.ingest import store_mentions
from integrations.base import FetchedMention

PAGE = 100  # the X API's max_results, and what polling stores per transaction
TARGET = 0.30


def _setup(url: str) -> tuple[sa.Engine, int]:
    engine = db.make_engine(url)
    db.upgrade(engine)
    sessions = db.make_sessionmaker(engine)
    with transaction(sessions) as s:
        account_id = sync_accounts(s, parse_config(BENCH_CONFIG))["nottscc"].id
    return engine, account_id


def _pages(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i:i + PAGE] for i in range(0, len(items), PAGE)]


def run_raw(kind: str, mentions: list[FetchedMention]) -> float:
    """Seconds for a plain Core executemany of the mention rows (no audit, routing, outbox)."""
    with fresh_database(kind) as url:
        engine, account_id = _setup(url)
        rows = [{"network": "x", "external_id": m.external_id, "account_id": account_id,
                 "author_external_id": m.author_external_id, "author_handle": m.author_handle,
                 "author_name": m.author_name, "text": m.text, "url": m.url,
                 "posted_at": m.posted_at, "conversation_id": m.conversation_id,
                 "in_reply_to_external_id": m.in_reply_to_external_id, "state": "open"}
                for m in mentions]
        stmt = sa.insert(Mention)
        t0 = time.perf_counter()
        for page in _pages(rows):
            with engine.begin() as conn:
                conn.execute(stmt, list(page))
        elapsed = time.perf_counter() - t0
        with engine.connect() as conn:
            stored = conn.scalar(sa.select(sa.func.count()).select_from(Mention))
        engine.dispose()
    if stored != len(mentions):
        raise SystemExit(f"raw insert stored {stored} of {len(mentions)} rows")
    return elapsed


def run_all_rows_raw(kind: str, mentions: list[FetchedMention]) -> float:
    """Seconds to insert every row ingest writes for these mentions (copied from an ingest
    run, so all values are computed beforehand) with plain Core executemany, page by page."""
    router = Router(parse_config(BENCH_CONFIG))
    tables = [Mention.__table__, Alert.__table__, OutboxMessage.__table__, AuditEvent.__table__]
    with fresh_database(kind) as src_url, fresh_database(kind) as dst_url:
        src, account_id = _setup(src_url)
        sessions = db.make_sessionmaker(src)
        for page in _pages(mentions):
            with transaction(sessions) as s:
                store_mentions(s, s.get_one(Account, account_id), page, router)
        with src.connect() as conn:
            data = {t.name: [dict(r._mapping) for r in conn.execute(
                sa.select(t).order_by(t.c.id))] for t in tables}
        src.dispose()
        # page i: its mentions, their alerts, those alerts' outbox rows, their audit rows
        pages: list[dict[str, list[dict[str, Any]]]] = []
        mention_page: dict[int, int] = {}
        alert_page: dict[int, int] = {}
        for i, chunk in enumerate(_pages(data["mentions"])):
            pages.append({"mentions": list(chunk), "alerts": [], "outbox": [],
                          "audit_events": []})
            mention_page.update((m["id"], i) for m in chunk)
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
        with dst.connect() as conn:
            copied = {t.name: conn.scalar(sa.select(sa.func.count()).select_from(t))
                      for t in tables}
        dst.dispose()
    want = {t.name: len(data[t.name]) for t in tables}
    want["audit_events"] = len(data["audit_events"])  # + account.configured, as in src
    if copied != want:
        raise SystemExit(f"raw copy wrote {copied}, expected {want}")
    return elapsed


def run_ingest(kind: str, mentions: list[FetchedMention],
               profile: cProfile.Profile | None = None) -> tuple[float, dict[str, int]]:
    """Seconds for store_mentions over the same rows, page by page, plus row counts."""
    config = parse_config(BENCH_CONFIG)
    router = Router(config)
    with fresh_database(kind) as url:
        engine, account_id = _setup(url)
        sessions = db.make_sessionmaker(engine)
        if profile is not None:
            profile.enable()
        t0 = time.perf_counter()
        for page in _pages(mentions):
            with transaction(sessions) as s:
                account = s.get_one(Account, account_id)
                store_mentions(s, account, page, router)
        elapsed = time.perf_counter() - t0
        if profile is not None:
            profile.disable()
        with sessions() as s:
            counts = {name: s.scalar(sa.select(sa.func.count()).select_from(model)) or 0
                      for name, model in [("mentions", Mention), ("alerts", Alert),
                                          ("outbox", OutboxMessage), ("audit", AuditEvent)]}
        engine.dispose()
    expected_alerts = sum(len(router.route(MentionFacts("nottscc", m.author_handle, m.text)))
                          for m in mentions)
    want = {"mentions": len(mentions), "alerts": expected_alerts, "outbox": expected_alerts,
            "audit": len(mentions) + 1}  # mention.received each, + account.configured
    if counts != want:
        raise SystemExit(f"ingest wrote {counts}, expected {want}")
    return elapsed, counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each path (alternating, fresh database each); best is reported")
    ap.add_argument("--profile", action="store_true",
                    help="cProfile one extra ingest run per database and print the top entries")
    args = ap.parse_args(argv)

    mentions = mixed_mentions(args.n)
    print(f"# ingest throughput · n={args.n} · pages of {PAGE} · best of {args.repeat}")
    print(f"# {machine_note()}\n")
    rows = []
    ok = True
    for kind in db_kinds(args.db):
        load_start = wait_quiet()
        raw_t: list[float] = []
        all_t: list[float] = []
        ing_t: list[float] = []
        counts: dict[str, int] = {}
        for i in range(args.repeat):
            # alternate the order so neither path always runs on a warmer machine
            if i % 2 == 0:
                all_t.append(run_all_rows_raw(kind, mentions))
                raw_t.append(run_raw(kind, mentions))
                t, counts = run_ingest(kind, mentions)
                ing_t.append(t)
            else:
                t, counts = run_ingest(kind, mentions)
                ing_t.append(t)
                raw_t.append(run_raw(kind, mentions))
                all_t.append(run_all_rows_raw(kind, mentions))
        raw_rate = args.n / min(raw_t)
        all_rate = args.n / min(all_t)
        ing_rate = args.n / min(ing_t)
        ratio = ing_rate / all_rate
        ok &= ratio >= TARGET
        rows.append([kind, f"{ing_rate:,.0f}", f"{args.n / statistics.median(ing_t):,.0f}",
                     f"{all_rate:,.0f}", f"**{ratio:.2f}**",
                     f"{'met' if ratio >= TARGET else 'MISSED'} (>= {TARGET:.2f})",
                     f"{raw_rate:,.0f}", f"{ing_rate / raw_rate:.2f}",
                     f"{counts['alerts']} alerts / {counts['outbox']} outbox / "
                     f"{counts['audit']} audit"])
        print(f"# {kind}: load average (1/5/15 min) at start {load_start}, at end {loadavg()}",
              flush=True)
        if args.profile:
            prof = cProfile.Profile()
            run_ingest(kind, mentions, prof)
            out = io.StringIO()
            stats = pstats.Stats(prof, stream=out).strip_dirs().sort_stats("cumulative")
            stats.print_stats(35)
            print(f"## cProfile of store_mentions on {kind} (cumulative)\n{out.getvalue()}")
            out = io.StringIO()
            pstats.Stats(prof, stream=out).strip_dirs().sort_stats("tottime").print_stats(20)
            print(f"## cProfile of store_mentions on {kind} (own time)\n{out.getvalue()}")
    print(table(["db", "ingest mentions/s (best)", "ingest (median)",
                 "raw, same rows: mentions/s", "ingest / raw", "target",
                 "raw, mention rows only: mentions/s", "ingest / that",
                 "rows written by ingest"], rows))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
