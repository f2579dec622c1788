"""`audit verify` over a large trail vs raw SHA-256 of the same bytes, same run.

    python -m bench.audit_verify [--rows 1000000] [--db sqlite|postgresql] [--workers N]

Writes N audit records (realistic details), then times:
  verify1 commsdesk.domain.audit.verify over the whole chain in one process
  verify  the same with the processes `audit verify` uses (audit.default_workers)
  raw     hashlib.sha256 over exactly the bytes verify hashes (each record's canonical
          details and canonical header), already in memory: the floor for any verifier
  read    reading the same rows from the database without hashing (the I/O share)
Target: verify rate >= 50% of the raw rate.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bench.common import loadavg
from commsdesk import db
from commsdesk.domain import audit
from commsdesk.models import AuditEvent

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def fill(engine: sa.Engine, rows: int) -> None:
    chunk = 10_000
    done = 0
    while done < rows:
        n = min(chunk, rows - done)
        with Session(engine) as s, s.begin():
            audit.record_many(s, [
                audit.Entry("system" if i % 3 else "U0COMMS1", "mention.received", "mention",
                            done + i, {"network": "x", "external_id": str(10**18 + done + i),
                                       "account": "nottscc", "author": f"resident{i % 977}",
                                       "text": f"the bins on Elm Road were missed again #{i}",
                                       "url": f"https://x.com/r/status/{10**18 + done + i}"})
                for i in range(n)])
        done += n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--workers", type=int, default=0,
                    help="processes for the second verify (0: what `audit verify` picks)")
    args = ap.parse_args()
    schema = None
    if args.db == "sqlite":
        tmp = tempfile.mkdtemp()
        url = f"sqlite:///{Path(tmp) / 'audit.db'}"
    else:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        url = f"{PG}?options=-csearch_path%3D{schema}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    t0 = time.perf_counter()
    fill(engine, args.rows)
    print(f"wrote {args.rows:,} records in {time.perf_counter() - t0:.1f} s ({args.db})")

    # one process first, counting records the fast path could not confirm (0 expected)
    exact = audit._exact_check
    fallbacks = 0

    def counted(conn, rid):  # type: ignore[no-untyped-def]
        nonlocal fallbacks
        fallbacks += 1
        return exact(conn, rid)

    audit._exact_check = counted  # type: ignore[assignment]
    with Session(engine) as s:
        t0 = time.perf_counter()
        result = audit.verify(s, workers=1)
        t_verify1 = time.perf_counter() - t0
    audit._exact_check = exact  # type: ignore[assignment]
    assert result.ok and result.checked == args.rows, result
    workers = args.workers or audit.default_workers(args.rows)
    with Session(engine) as s:
        t0 = time.perf_counter()
        result = audit.verify(s, workers=workers)
        t_verify = time.perf_counter() - t0
    assert result.ok and result.checked == args.rows, result

    with Session(engine) as s:
        t0 = time.perf_counter()
        rows = s.execute(sa.select(AuditEvent.id, AuditEvent.at, AuditEvent.actor,
                                   AuditEvent.action, AuditEvent.subject_kind,
                                   AuditEvent.subject_id, AuditEvent.details,
                                   AuditEvent.details_digest, AuditEvent.prev_hash)).all()
        t_read = time.perf_counter() - t0
    payloads = []
    for r in rows:
        payloads.append(audit.canonical(r.details).encode())
        payloads.append(audit.canonical({"id": r.id, "at": audit._time(r.at), "actor": r.actor,
                                         "action": r.action,
                                         "subject": [r.subject_kind, r.subject_id],
                                         "details": r.details_digest,
                                         "prev": r.prev_hash}).encode())
    del rows
    t0 = time.perf_counter()
    for p in payloads:
        hashlib.sha256(p).hexdigest()
    t_raw = time.perf_counter() - t0
    n = args.rows
    print(f"{'what':<8}{'seconds':>10}{'records/s':>14}")
    print(f"{'verify1':<8}{t_verify1:>10.2f}{n / t_verify1:>14,.0f}   one process "
          f"({fallbacks} record(s) checked by the slow exact path)")
    print(f"{'verify':<8}{t_verify:>10.2f}{n / t_verify:>14,.0f}   {workers} process(es) "
          "(what `audit verify` uses)")
    print(f"{'read':<8}{t_read:>10.2f}{n / t_read:>14,.0f}")
    print(f"{'raw':<8}{t_raw:>10.2f}{n / t_raw:>14,.0f}")
    print(f"verify / raw SHA-256 rate: {t_raw / t_verify:.1%} with {workers} process(es), "
          f"{t_raw / t_verify1:.1%} with one (target >= 50%)")
    print(f"load average: {loadavg()}")
    print(f"verify / (read + raw) rate: {(t_raw + t_read) / t_verify:.1%}")
    engine.dispose()
    if schema:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
