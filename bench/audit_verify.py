"""`audit verify` over a large keyed trail vs raw HMAC-SHA256 of the same bytes, same run.

    python -m bench.audit_verify [--rows 1000000] [--db sqlite|postgresql] [--workers N]

Writes N audit records (realistic details, keyed chain), then times:
  verify1 bot.services.audit.verify over the whole chain in one process
  verifyN the same with N processes (what `audit verify` uses: audit.default_workers)
  raw1    the cryptography verify does, over exactly the bytes it hashes, already in
          memory, in one process: each record's canonical header HMAC-SHA256'd under the
          key (from the key's precomputed inner/outer states: the fastest HMAC Python has;
          `hmac.digest` is shown too, slower) and its canonical details SHA-256'd (their
          digest, which the HMAC covers). The floor for any verifier.
  rawN    the same split over N processes (started beforehand, bytes already in each;
          the slowest process's time)
  read    reading the same rows from the database without hashing (the I/O share)
Each verify runs in a fresh child process, as `commsdesk audit verify` does, through a
reading session; median of --repeat runs of each (raw too). Targets: verify1 >= 50% of
raw1 and verifyN >= 50% of rawN.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bench.common import loadavg
from bot import db
from bot.audit_keys import pads, parse_keys, use_keyring
from bot.models import AuditEvent
from bot.services import audit

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
KEY = "bench-audit-key-0123456789abcdefghijklmnopqrstuvwxyz"  # the bench's own


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
    use_keyring(engine, parse_keys(KEY))
    exact = audit._exact_check
    fallbacks = 0

    def counted(chk, rid):  # type: ignore[no-untyped-def]
        nonlocal fallbacks
        fallbacks += 1
        return exact(chk, rid)

    audit._exact_check = counted  # type: ignore[assignment]
    with db.reading(db.make_sessionmaker(engine)) as s:
        t0 = time.perf_counter()
        result = audit.verify(s, workers=workers)
        seconds = time.perf_counter() - t0
    assert result.ok, result
    print(json.dumps({"seconds": seconds, "checked": result.checked, "fallbacks": fallbacks}))


_PAYLOADS: list[tuple[bytes, bytes]] = []  # (header, details) of every record, in memory
_HASHES: list[str] = []  # their stored hashes (to show the bytes are the ones hashed)


def _raw_slice(part: int, parts: int, key: bytes, check: bool = False,
               one_shot: bool = False) -> Any:
    """HMAC-SHA256 of each header and SHA-256 of each details in this part of the
    payloads; seconds (or, with `check`, how many records match their stored hashes)."""
    inner, outer = pads(key)
    sha = hashlib.sha256
    chunk = _PAYLOADS[part::parts]
    t0 = time.perf_counter()
    if one_shot:
        for header, details in chunk:
            hmac.digest(key, header, "sha256").hex()
            sha(details).hexdigest()
    elif not check:
        for header, details in chunk:
            i = inner.copy()
            i.update(header)
            o = outer.copy()
            o.update(i.digest())
            o.hexdigest()
            sha(details).hexdigest()
    else:
        return sum(1 for (header, _), h in zip(chunk, _HASHES, strict=True)
                   if hmac.new(key, header, "sha256").hexdigest() == h)
    return time.perf_counter() - t0


def _raw_worker(part: int, parts: int, key: bytes, start: Any, out: Any) -> None:
    start.wait()
    out.put(_raw_slice(part, parts, key))


def _raw_parallel(workers: int, key: bytes) -> float:
    """The raw hashing split over `workers` forked processes (the payloads already in
    each), released together: the slowest one's seconds."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_raw_worker, args=(i, workers, key, start, out))
             for i in range(workers)]
    for p in procs:
        p.start()
    time.sleep(0.5)  # every process up and waiting
    start.set()
    times = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return max(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--workers", type=int, default=0,
                    help="processes for the second verify (0: what `audit verify` picks)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each; the median is shown")
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
    keyring = parse_keys(KEY)
    use_keyring(engine, keyring)
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
    t_verify1 = statistics.median(r["seconds"] for r in one)
    t_verify = statistics.median(r["seconds"] for r in many)
    fallbacks = max(r["fallbacks"] for r in one + many)

    with Session(engine) as s:
        t0 = time.perf_counter()
        rows = s.execute(sa.select(AuditEvent.id, AuditEvent.at, AuditEvent.actor,
                                   AuditEvent.action, AuditEvent.subject_kind,
                                   AuditEvent.subject_id, AuditEvent.details,
                                   AuditEvent.details_digest, AuditEvent.prev_hash,
                                   AuditEvent.key_id, AuditEvent.hash)).all()
        t_read = time.perf_counter() - t0
    global _PAYLOADS
    for r in rows:
        _PAYLOADS.append((audit.canonical({"id": r.id, "at": audit._time(r.at), "actor": r.actor,
                                           "action": r.action,
                                           "subject": [r.subject_kind, r.subject_id],
                                           "details": r.details_digest, "key": r.key_id,
                                           "prev": r.prev_hash}).encode(),
                          audit.canonical(r.details).encode()))
        _HASHES.append(r.hash)
    del rows
    assert _raw_slice(0, 1, keyring.current, check=True) == args.rows  # the same bytes
    raw1, rawn, rawd = [], [], []
    for _ in range(args.repeat):
        raw1.append(_raw_slice(0, 1, keyring.current))
        rawn.append(_raw_parallel(workers, keyring.current))
        rawd.append(_raw_slice(0, 1, keyring.current, one_shot=True))
    t_raw1, t_rawn = statistics.median(raw1), statistics.median(rawn)
    t_rawd = statistics.median(rawd)
    n = args.rows

    def runs(values: list[float]) -> str:
        return " ".join(f"{v:.2f}" for v in values)

    print(f"median of {args.repeat}; verify runs in a fresh process each time, as the CLI does")
    print(f"{'what':<9}{'seconds':>9}{'records/s':>12}")
    print(f"{'verify1':<9}{t_verify1:>9.2f}{n / t_verify1:>12,.0f}   one process "
          f"({fallbacks} record(s) checked by the slow exact path)   runs: "
          + runs([r["seconds"] for r in one]))
    print(f"{'verify' + str(workers):<9}{t_verify:>9.2f}{n / t_verify:>12,.0f}   {workers} "
          "process(es) (what `audit verify` uses)   runs: " + runs([r["seconds"] for r in many]))
    print(f"{'raw1':<9}{t_raw1:>9.2f}{n / t_raw1:>12,.0f}   HMAC (precomputed states) + "
          "SHA-256, one process   runs: " + runs(raw1))
    print(f"{'raw' + str(workers):<9}{t_rawn:>9.2f}{n / t_rawn:>12,.0f}   the same, {workers} "
          "process(es)   runs: " + runs(rawn))
    print(f"{'hmac.dig':<9}{t_rawd:>9.2f}{n / t_rawd:>12,.0f}   (hmac.digest + SHA-256, one "
          "process: for comparison)   runs: " + runs(rawd))
    print(f"{'read':<9}{t_read:>9.2f}{n / t_read:>12,.0f}   typed ORM rows, for comparison")
    print(f"verify / raw HMAC-SHA256 rate: one process {t_raw1 / t_verify1:.1%}, "
          f"{workers} against {workers} {t_rawn / t_verify:.1%} (target >= 50% each)")
    print(f"load average: {loadavg()}")
    engine.dispose()
    if schema:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
