"""`audit verify` over a large trail vs raw SHA-256 of the same bytes, same run.

    python -m bench.audit_verify [--rows 1000000] [--db sqlite|postgresql] [--workers N]

Writes N audit records (realistic details), then times:
  verify1 commsdesk.domain.audit.verify over the whole chain in one process
  verify  the same with the processes `audit verify` uses (audit.default_workers)
  raw     hashlib.sha256 over exactly the bytes verify hashes (each record's canonical
          details and canonical header), already in memory: the floor for any verifier
  read    reading the same rows from the database without hashing (the I/O share)
Each verify runs in a fresh child process, as `commsdesk audit verify` does, through a
reading session; best of --repeat runs of each (raw too).
Target: verify rate >= 50% of the raw rate.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
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


def _verify_in_child(url: str, workers: int) -> dict[str, float]:
    """`audit.verify` as `commsdesk audit verify` runs it: in a fresh process (not this one,
    whose heap the million writes grew, which every forked worker would inherit), through
    a reading session. Returns its seconds and how many records the slow exact path
    checked (0 expected)."""
    out = subprocess.run([sys.executable, "-m", "bench.audit_verify", "--child", url,
                          "--workers", str(workers)], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _child(url: str, workers: int) -> None:
    engine = db.make_engine(url)
    exact = audit._exact_check
    fallbacks = 0

    def counted(conn, rid):  # type: ignore[no-untyped-def]
        nonlocal fallbacks
        fallbacks += 1
        return exact(conn, rid)

    audit._exact_check = counted  # type: ignore[assignment]
    with db.reading(db.make_sessionmaker(engine)) as s:
        t0 = time.perf_counter()
        result = audit.verify(s, workers=workers)
        seconds = time.perf_counter() - t0
    assert result.ok, result
    print(json.dumps({"seconds": seconds, "checked": result.checked, "fallbacks": fallbacks}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--workers", type=int, default=0,
                    help="processes for the second verify (0: what `audit verify` picks)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each; the best is shown")
    ap.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.workers)
        return
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

    workers = args.workers or audit.default_workers(args.rows)
    one, many = [], []
    for _ in range(args.repeat):  # alternating, so both see the same machine
        r1 = _verify_in_child(url, 1)
        assert r1["checked"] == args.rows, r1
        one.append(r1)
        rn = _verify_in_child(url, workers)
        assert rn["checked"] == args.rows, rn
        many.append(rn)
    t_verify1 = min(r["seconds"] for r in one)
    t_verify = min(r["seconds"] for r in many)
    fallbacks = max(r["fallbacks"] for r in one + many)

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
    raws = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        for p in payloads:
            hashlib.sha256(p).hexdigest()
        raws.append(time.perf_counter() - t0)
    t_raw = min(raws)
    n = args.rows
    print(f"best of {args.repeat}; verify runs in a fresh process each time, as the CLI does")
    print(f"{'what':<8}{'seconds':>10}{'records/s':>14}")
    print(f"{'verify1':<8}{t_verify1:>10.2f}{n / t_verify1:>14,.0f}   one process "
          f"({fallbacks} record(s) checked by the slow exact path)   runs: "
          + " ".join(f"{r['seconds']:.2f}" for r in one))
    print(f"{'verify':<8}{t_verify:>10.2f}{n / t_verify:>14,.0f}   {workers} process(es) "
          "(what `audit verify` uses)   runs: " + " ".join(f"{r['seconds']:.2f}" for r in many))
    print(f"{'read':<8}{t_read:>10.2f}{n / t_read:>14,.0f}   typed ORM rows, for comparison")
    print(f"{'raw':<8}{t_raw:>10.2f}{n / t_raw:>14,.0f}   runs: "
          + " ".join(f"{t:.2f}" for t in raws))
    print(f"verify / raw SHA-256 rate: {t_raw / t_verify:.1%} with {workers} process(es), "
          f"{t_raw / t_verify1:.1%} with one (target >= 50%)")
    print(f"load average: {loadavg()}")
    engine.dispose()
    if schema:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
