"""Tamper-evident audit trail: an append-only, keyed hash chain.

Each record's hash is an HMAC-SHA256, under a key kept outside the database
(`COMMSDESK_AUDIT_KEY`, see `audit_keys`), of its id, time, actor, action, subject, the
digest of its details, the id of the key and the previous record's hash; without the
key nobody can recompute the chain. Records written before the key (migration 0008) keep
their plain SHA-256 hashes and verify as they are; the first keyed record is a marker
(`audit.keyed`) linked to the last of them, and no unkeyed record may follow it.

The details themselves (which may hold a resident's words) are covered only through
their digest, so a GDPR retention purge can replace them with
`{"_purged": true, "digest": <their digest>}` and the chain still verifies; a purged
record verifies only when a later keyed `retention.purged` record lists its id.

`record()` must be called inside the transaction of the action it records.
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import hashlib
import hmac
import io
import json
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any

from sqlalchemy import Select, event, func, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from bot.audit_keys import AuditKeyError, Keyring, keyring_for, pads
from bot.clock import now
from bot.db import make_engine
from bot.models import AuditEvent

GENESIS = "0" * 64
PURGED_KEY = "_purged"
KEYED_ACTION = "audit.keyed"  # the first keyed record: where the keyed chain begins
PURGE_ACTION = "retention.purged"
# keyed records whose details list (under "purged") the ids of records purged by then
AUTHORIZING_ACTIONS = (PURGE_ACTION, KEYED_ACTION)
_PG_AUDIT_LOCK = 0x636F6D6D  # "comm": serialises appends to the chain across replicas


# one encoder, built once: json.dumps with these options builds a new one on every call
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                              default=str)


def canonical(value: Any) -> str:
    return _CANONICAL.encode(value)


def digest(value: Any) -> str:
    return hashlib.sha256(canonical(value).encode("utf-8")).hexdigest()


def _time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_hash(
    *,
    id: int,
    at: datetime,
    actor: str,
    action: str,
    subject_kind: str,
    subject_id: str,
    details_digest: str,
    prev_hash: str,
    key_id: str | None = None,
    key: bytes | None = None,
) -> str:
    """A record's hash: plain SHA-256 for the records of the unkeyed chain (`key_id`
    None), else HMAC-SHA256 under `key`, whose id the hashed text names."""
    body: dict[str, Any] = {
        "id": id,
        "at": _time(at),
        "actor": actor,
        "action": action,
        "subject": [subject_kind, subject_id],
        "details": details_digest,
        "prev": prev_hash,
    }
    if key_id is None:
        return hashlib.sha256(canonical(body).encode("utf-8")).hexdigest()
    if key is None:
        raise AuditKeyError(f"no audit key with id {key_id}")
    body["key"] = key_id
    return hmac.new(key, canonical(body).encode("utf-8"), hashlib.sha256).hexdigest()


def id_ranges(ids: list[int]) -> list[list[int]]:
    """Sorted ids as inclusive [first, last] ranges (how purge records list them)."""
    out: list[list[int]] = []
    for i in sorted(ids):
        if out and out[-1][1] + 1 == i:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def purged_details(details_digest: str) -> dict[str, Any]:
    """What a retention purge leaves of a record's details: the proof of what they were."""
    return {PURGED_KEY: True, "digest": details_digest}


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    subject_kind: str,
    subject_id: str | int,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one record to the chain, in the caller's transaction."""
    record_many(session, [Entry(actor, action, subject_kind, subject_id, details)])


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    bad_id: int | None = None
    reason: str | None = None
    key_problem: bool = False  # the key is wrong or missing: not evidence of tampering

    def message(self) -> str:
        if self.ok:
            return f"audit trail intact: {self.checked} record(s) verified"
        if self.key_problem:
            return f"audit trail not verified (a key problem, not tampering): {self.reason}"
        return f"audit trail broken at record {self.bad_id}: {self.reason}"


_VERIFY_COLUMNS = (AuditEvent.id, AuditEvent.at, AuditEvent.actor, AuditEvent.action,
                   AuditEvent.subject_kind, AuditEvent.subject_id, AuditEvent.details,
                   AuditEvent.details_digest, AuditEvent.prev_hash, AuditEvent.hash,
                   AuditEvent.key_id)

# Verification reads plain DBAPI rows and checks each record on its own: its hash from its
# own fields and its stored `prev_hash`, plus the link `prev_hash` == the previous record's
# stored hash. So the trail can be cut into id ranges verified in parallel; the first bad
# record is the smallest one any range reports, which is what a walk in id order finds.
_VERIFY_SQL = ("SELECT id, at, actor, action, subject_kind, subject_id, details, "
               "details_digest, prev_hash, hash, key_id FROM audit_events "
               "WHERE id >= {p} AND id < {p} ORDER BY id")
_VERIFY_PREV_SQL = ("SELECT id, hash, key_id FROM audit_events WHERE id < {p} "
                    "ORDER BY id DESC LIMIT 1")
_VERIFY_CHUNK = 50_000  # ids per unit of work (and per progress report)
_PARALLEL_FROM = 200_000  # records: below this one process is quicker than starting others


@dataclass(frozen=True)
class _Bad:
    rid: int  # the row where the walk stops (orders failures as a walk in id order would)
    checked: int
    bad_id: int
    reason: str
    key_problem: bool = False


class _Checker:
    """What checking a range needs besides its rows: the keys (and their HMAC states)
    and, looked up once when a purged record is met, which ids purge records authorize."""

    def __init__(self, conn: Any, keys: dict[str, bytes]):
        self.conn = conn
        self.keys = keys
        self.pads = {kid: pads(secret) for kid, secret in keys.items()}
        self._auth: tuple[list[int], list[tuple[int, int, int]]] | None = None

    def _load_authorizations(self) -> tuple[list[int], list[tuple[int, int, int]]]:
        sqlite = self.conn.dialect.name == "sqlite"
        cur = self.conn.connection.dbapi_connection.cursor()
        cur.execute("SELECT id, " + ("CAST(details AS TEXT)" if sqlite else "details::text")
                    + ", details_digest FROM audit_events WHERE key_id IS NOT NULL AND action IN "
                    + ("(?, ?)" if sqlite else "(%s, %s)") + " ORDER BY id",
                    AUTHORIZING_ACTIONS)
        spans: list[tuple[int, int, int]] = []
        for by, details_text, details_digest in cur.fetchall():
            try:
                details = json.loads(details_text)
            except (TypeError, ValueError):
                continue
            # only what the record's own (keyed) digest covers authorizes anything
            if not isinstance(details, dict) or digest(details) != details_digest:
                continue
            for span in details.get("purged") or []:
                if (isinstance(span, list) and len(span) == 2
                        and all(type(v) is int for v in span)):
                    spans.append((span[0], span[1], by))
        cur.close()
        spans.sort()
        return [s[0] for s in spans], spans

    def authorized(self, rid: int) -> bool:
        """Whether a later keyed purge (or the keyed chain's marker) lists record `rid`."""
        if self._auth is None:
            self._auth = self._load_authorizations()
        los, spans = self._auth
        i = bisect.bisect_right(los, rid)
        return any(lo <= rid <= hi and by > rid for lo, hi, by in spans[max(0, i - 8):i]) or any(
            lo <= rid <= hi and by > rid for lo, hi, by in spans[:max(0, i - 8)])

    def purge_ok(self, rid: int, details: Any, details_digest: str) -> bool:
        """A purged record's details: exactly the purge marker, keeping the record's own
        digest (or the bare marker of purges made before the keyed chain), and authorized."""
        if not isinstance(details, dict) or details.get(PURGED_KEY) is not True:
            return False
        if set(details) - {PURGED_KEY, "digest"}:
            return False
        if details.get("digest", details_digest) != details_digest:
            return False
        return self.authorized(rid)


_UNSET = object()


def _is_purge_marker(details: Any) -> bool:
    return isinstance(details, dict) and PURGED_KEY in details


def _transition(prev_kid: str | None, rid: int, kid: str | None, action: Any,
                chk: _Checker) -> _Bad | None:
    """The rules where a record's key id differs from the one before it (and for the
    first record of a range)."""
    if kid is None:
        if prev_kid is not None:
            return _Bad(rid, rid - 1, rid, "it is not keyed, but the keyed chain began before "
                        "it (an unkeyed record cannot follow keyed ones)")
        return None
    if prev_kid is None and rid != 1 and action != KEYED_ACTION:
        # (a trail keyed from its first record needs no marker)
        return _Bad(rid, rid - 1, rid, "the keyed chain begins at it, but it is not the "
                    f"chain's marker record ({KEYED_ACTION})")
    if kid not in chk.keys:
        if not chk.keys:
            return _Bad(rid, rid - 1, rid, "the trail is keyed from this record on and no "
                        "audit key was given: set COMMSDESK_AUDIT_KEY (or [audit] key_file)",
                        key_problem=True)
        return _Bad(rid, rid - 1, rid, f"it is signed with audit key id {kid}, which is not "
                    f"among the keys given (ids {', '.join(chk.keys)}): a wrong or missing "
                    "key; add the key it names (old keys verify, the first one signs)",
                    key_problem=True)
    return None


def _exact_check(chk: _Checker, rid: int) -> str | None:
    """The reference check of one record (typed values, `digest` and `record_hash`):
    the fallback whenever the fast path does not confirm a record. None = it is fine."""
    # the values the ORM would give (the columns' own result processors), read on the raw
    # DBAPI connection: no SQLAlchemy transaction, so no SQLite write lock to wait for
    conn = chk.conn
    sqlite = conn.dialect.name == "sqlite"
    cur = conn.connection.dbapi_connection.cursor()
    cur.execute(_VERIFY_SQL.format(p="?" if sqlite else "%s"), (rid, rid + 1))
    raw = cur.fetchone()
    cur.close()
    procs = [c.type._cached_result_processor(conn.dialect, None) for c in _VERIFY_COLUMNS]
    try:
        (_rid, at, actor, action, kind, subject, details, details_digest, prev_hash,
         stored_hash, kid) = (proc(v) if proc else v for proc, v in zip(procs, raw, strict=True))
    except ValueError:  # JSONDecodeError: details that are not JSON any more
        return "its details were changed (they are not valid JSON)"
    if _is_purge_marker(details):
        if not chk.purge_ok(rid, details, details_digest):
            return ("its details are marked purged, but no later purge record authorizes it "
                    "or the marker does not keep its digest")
    elif digest(details) != details_digest:
        return "its details were changed"
    if kid is not None and kid not in chk.keys:
        return f"it names audit key id {kid}, which is not among the keys given"
    h = record_hash(id=rid, at=at, actor=actor, action=action, subject_kind=kind,
                    subject_id=subject, details_digest=details_digest, prev_hash=prev_hash,
                    key_id=kid, key=chk.keys.get(kid) if kid is not None else None)
    if not hmac.compare_digest(h, stored_hash or ""):
        return "its contents do not match its hash"
    return None


_PG_TIME = "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"


def _verify_rows(cur: Any, sqlite: bool, lo: int, hi: int) -> Any:
    """The rows lo <= id < hi as the DBAPI gives them, the details as stored, not decoded
    (SQLite: their bytes, `CAST(details AS BLOB)`; PostgreSQL: the `json` column's text),
    which for what `_append` writes is byte for byte the canonical form `details_digest`
    hashes. PostgreSQL also renders the time as `record_hash` does (`_time`)."""
    sql = _VERIFY_SQL.format(p="?" if sqlite else "%s")
    if sqlite:
        sql = sql.replace(" details,", " CAST(details AS BLOB),", 1)
    else:
        sql = sql.replace(" at,", f" {_PG_TIME},", 1).replace(" details,", " details::text,", 1)
    cur.execute(sql, (lo, hi))
    return cur


def _verify_range(conn: Any, lo: int, hi: int, keys: dict[str, bytes]
                  ) -> tuple[int, _Bad | None]:
    """Check the records with lo <= id < hi (and the first one's link to the record before
    lo). Returns (records checked, first failure or None).

    A record passes when bytes built from its stored values hash to its stored hashes;
    whatever the fast paths below cannot confirm goes to `_exact_check`, the reference
    check, which decides. So the fast paths can only be slow, never wrong, as long as the
    bytes they build from a row equal the canonical bytes only for the row's own values.

    Fastest (what `_append` writes): the details' stored bytes are hashed as they are, and
    the header `record_hash` hashes is built with the row's values put in unescaped,
    between plain quotes, and HMACed from the key's precomputed states. When that matches
    the stored hash it equals the canonical header written with the record; since it has
    no backslash, none of the values needed escaping, so each value is what was written,
    byte for byte (SQLite's `at` must also have the space it stores). Next (older rows,
    values with characters JSON escapes, purged details): the same bytes `record_hash`
    and `digest` hash, built with the C encoders `json.dumps` uses (`_encoded_ok`)."""
    assert isinstance(conn, Connection)
    chk = _Checker(conn, keys)
    sqlite = conn.dialect.name == "sqlite"
    sha = hashlib.sha256
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cur.execute(_VERIFY_PREV_SQL.format(p="?" if sqlite else "%s"), (lo,))
    before = cur.fetchone()
    expected_id, prev, prev_kid = ((before[0] + 1, before[1], before[2]) if before
                                   else (1, GENESIS, None))
    first_expected = expected_id
    # the key id whose HMAC states `inner`/`outer` hold (None: unkeyed records); the
    # first record always goes through `_transition`
    loaded: Any = _UNSET
    inner = outer = None
    rows = _verify_rows(cur, sqlite, lo, hi)
    # SQLite hands back its stored time text ("YYYY-MM-DD HH:MM:SS.ffffff") and the
    # details' bytes; PostgreSQL the time already rendered and the details' text. Two
    # copies of one loop, each with its fast path inlined: this loop is the whole cost.
    while batch := rows.fetchmany(2000):
        if sqlite:
            for row in batch:
                (rid, at, actor, action, kind, subject, details, details_digest, prev_hash,
                 h, kid) = row
                if rid != expected_id or prev_hash != prev:
                    return expected_id - first_expected, _link_failure(rid, expected_id)
                if kid != loaded:
                    bad = _transition(prev_kid if loaded is _UNSET else loaded, rid, kid,
                                      action, chk)
                    if bad is not None:
                        return expected_id - first_expected, bad
                    loaded = kid
                    inner, outer = chk.pads[kid] if kid is not None else (None, None)
                try:  # an f-string: no format string to parse per record
                    if inner is not None:
                        header = (f'{{"action":"{action}","actor":"{actor}","at":"'
                                  f'{at.replace(" ", "T", 1)}Z","details":"{details_digest}",'
                                  f'"id":{rid},"key":"{kid}","prev":"{prev_hash}","subject":'
                                  f'["{kind}","{subject}"]}}')
                        i = inner.copy()
                        i.update(header.encode())
                        o = outer.copy()  # type: ignore[union-attr]
                        o.update(i.digest())
                        hx = o.hexdigest()
                    else:
                        header = (f'{{"action":"{action}","actor":"{actor}","at":"'
                                  f'{at.replace(" ", "T", 1)}Z","details":"{details_digest}",'
                                  f'"id":{rid},"prev":"{prev_hash}","subject":["{kind}",'
                                  f'"{subject}"]}}')
                        hx = sha(header.encode()).hexdigest()
                    ok = (hx == h and sha(details).hexdigest() == details_digest
                          and at[10] == " " and len(at) == 26 and "\\" not in header)
                except (TypeError, ValueError, AttributeError, IndexError, UnicodeError):
                    ok = False
                if not ok and not _encoded_ok(_sqlite_time(at), row, chk):
                    reason = _exact_check(chk, rid)
                    if reason is not None:
                        return expected_id - first_expected, _Bad(rid, rid - 1, rid, reason)
                prev = h
                expected_id += 1
        else:
            for row in batch:
                (rid, t, actor, action, kind, subject, details, details_digest, prev_hash,
                 h, kid) = row
                if rid != expected_id or prev_hash != prev:
                    return expected_id - first_expected, _link_failure(rid, expected_id)
                if kid != loaded:
                    bad = _transition(prev_kid if loaded is _UNSET else loaded, rid, kid,
                                      action, chk)
                    if bad is not None:
                        return expected_id - first_expected, bad
                    loaded = kid
                    inner, outer = chk.pads[kid] if kid is not None else (None, None)
                try:
                    if inner is not None:
                        header = (f'{{"action":"{action}","actor":"{actor}","at":"{t}",'
                                  f'"details":"{details_digest}","id":{rid},"key":"{kid}",'
                                  f'"prev":"{prev_hash}","subject":["{kind}","{subject}"]}}')
                        i = inner.copy()
                        i.update(header.encode())
                        o = outer.copy()  # type: ignore[union-attr]
                        o.update(i.digest())
                        hx = o.hexdigest()
                    else:
                        header = (f'{{"action":"{action}","actor":"{actor}","at":"{t}",'
                                  f'"details":"{details_digest}","id":{rid},'
                                  f'"prev":"{prev_hash}","subject":["{kind}","{subject}"]}}')
                        hx = sha(header.encode()).hexdigest()
                    ok = (hx == h and sha(details.encode()).hexdigest() == details_digest
                          and "\\" not in header)
                except (TypeError, ValueError, AttributeError, UnicodeError):
                    ok = False
                if not ok and not _encoded_ok(t, row, chk):
                    reason = _exact_check(chk, rid)
                    if reason is not None:
                        return expected_id - first_expected, _Bad(rid, rid - 1, rid, reason)
                prev = h
                expected_id += 1
    cur.close()
    return expected_id - first_expected, None


def _sqlite_time(at: Any) -> str | None:
    """SQLite's stored time text as `_time` renders it (None: not in the form written)."""
    if type(at) is str and len(at) == 26 and at[10] == " ":
        return at[:10] + "T" + at[11:] + "Z"
    return None


def _link_failure(rid: int, expected_id: int) -> _Bad:
    if rid != expected_id:
        return _Bad(rid, expected_id - 1, expected_id if rid > expected_id else rid,
                    f"expected record {expected_id} next but found {rid} "
                    "(a record was removed or inserted)")
    return _Bad(rid, rid - 1, rid, "its link to the previous record does not match "
                "(a record before it was removed, inserted or changed)")


_ESCAPED_HEADER = ('{"action":%s,"actor":%s,"at":"%s","details":%s,"id":%d,"prev":%s,'
                   '"subject":[%s,%s]}')
_ESCAPED_KEYED_HEADER = ('{"action":%s,"actor":%s,"at":"%s","details":%s,"id":%d,"key":%s,'
                         '"prev":%s,"subject":[%s,%s]}')


def _encoded_ok(t: str | None, row: tuple[Any, ...], chk: _Checker) -> bool:
    """The record's hashes, from the bytes `record_hash` and `digest` hash, built from the
    raw DBAPI values with the same C encoders `json.dumps` uses: `t` is the record's time
    as `_time` renders it (None: not known), the row's details their stored JSON text."""
    rid, _at, actor, action, kind, subject, details, details_digest, prev_hash, h, kid = row
    estr = encode_basestring
    try:
        if t is None or type(rid) is not int:
            return False
        if kid is None:
            header = _ESCAPED_HEADER % (estr(action), estr(actor), t, estr(details_digest), rid,
                                        estr(prev_hash), estr(kind), estr(subject))
            hx = hashlib.sha256(header.encode()).hexdigest()
        else:
            key = chk.keys.get(kid)
            if key is None:
                return False
            header = _ESCAPED_KEYED_HEADER % (
                estr(action), estr(actor), t, estr(details_digest), rid, estr(kid),
                estr(prev_hash), estr(kind), estr(subject))
            hx = hmac.new(key, header.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(hx, h):
            return False
        details = json.loads(details)
        if _is_purge_marker(details):
            return chk.purge_ok(rid, details, details_digest)
        return bool(digest(details) == details_digest)
    except (TypeError, ValueError, AttributeError, UnicodeError):
        return False


_worker_engine: Any = None


def _verify_range_in_worker(url: str, lo: int, hi: int, keys: dict[str, bytes]
                            ) -> tuple[int, _Bad | None]:
    # the engine is made by the first task, not by a pool initializer: an initializer
    # that fails (database unreachable) makes the pool restart its processes forever,
    # and the ranges would never be answered; a task's error reaches the parent
    global _worker_engine
    if _worker_engine is None:
        _worker_engine = make_engine(url)
    with _worker_engine.connect() as conn:
        return _verify_range(conn, lo, hi, keys)


def default_workers(total: int) -> int:
    """How many processes `audit verify` uses for a trail of `total` records."""
    if total < _PARALLEL_FROM:
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


def verify(session: Session, batch: int = _VERIFY_CHUNK,
           progress: Callable[[int], None] | None = None, workers: int = 1,
           total: int | None = None, keyring: Keyring | None = None) -> VerifyResult:
    """Check the whole chain; report the first record that does not fit (in id order).

    Reads plain DBAPI rows in id ranges of `batch`, so a million records verify in
    bounded memory; `progress(n)` is told as ranges finish, in order. With `workers` > 1
    the ranges are checked by that many processes (file or server databases only).
    `total`: the number of records, if the caller has counted them already. `keyring`:
    the audit keys (default: the engine's, else `COMMSDESK_AUDIT_KEY`).
    """
    conn = session.connection()
    ring = keyring if keyring is not None else keyring_for(conn.engine)
    keys = dict(ring.keys) if ring is not None else {}
    # min and max asked apart: together SQLite scans the whole table for them
    lowest = conn.execute(select(func.min(AuditEvent.id))).scalar()
    if lowest is None:
        return VerifyResult(True, 0)
    first, last = min(1, lowest), conn.execute(select(func.max(AuditEvent.id))).scalar_one()
    url = conn.engine.url
    parallel = workers > 1 and last - first >= batch and not (
        url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"))
    # the processes start while the records are counted (unless the caller counted)
    with _pool(workers) if parallel else contextlib.nullcontext() as pool:
        if total is None:
            total = conn.execute(select(func.count()).select_from(AuditEvent)).scalar()
        if total == last - first + 1:
            # no gaps (as an intact trail has none): ranges by id arithmetic, nothing to read
            ranges: Iterator[tuple[int, int]] = (
                (lo, min(lo + batch, last + 1)) for lo in range(first, last + 1, batch))
        else:
            ranges = _ranges(conn, first, last, batch)
        if pool is not None:
            results = _verify_parallel(pool, url.render_as_string(hide_password=False),
                                       ranges, workers, progress, keys)
        else:
            results = _verify_serial(conn, ranges, progress, keys)
        checked = 0
        for n, bad in results:
            if bad is not None:
                return VerifyResult(False, bad.checked, bad.bad_id, bad.reason,
                                    bad.key_problem)
            checked += n
    return VerifyResult(True, checked)


def _ranges(conn: Any, first: int, last: int, batch: int) -> Iterator[tuple[int, int]]:
    """Id ranges of `batch` records each (cut where the records are, not by id arithmetic:
    a forged record with a huge id must not mean millions of empty ranges)."""
    lo = first
    while True:
        cut = conn.execute(select(AuditEvent.id).where(AuditEvent.id >= lo)
                           .order_by(AuditEvent.id).offset(batch).limit(1)).scalar()
        if cut is None:
            yield lo, last + 1
            return
        yield lo, cut
        lo = cut


def _verify_serial(conn: Any, ranges: Iterator[tuple[int, int]],
                   progress: Callable[[int], None] | None, keys: dict[str, bytes]
                   ) -> Iterator[tuple[int, _Bad | None]]:
    for lo, hi in ranges:
        n, bad = _verify_range(conn, lo, hi, keys)
        yield n, bad
        if bad is not None:
            return
        if progress is not None:
            progress(n)


@contextlib.contextmanager
def _pool(workers: int) -> Iterator[Any]:
    """The process pool of a parallel verify. Left by closing it and waiting for the
    few ranges queued ahead (never `terminate()`: killing processes that are mid-task
    can leave the pool's queue locked, and the parent then waits forever)."""
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    pool = ctx.Pool(workers)
    try:
        yield pool
    finally:
        pool.close()
        pool.join()


def _verify_parallel(pool: Any, url: str, ranges: Iterator[tuple[int, int]], workers: int,
                     progress: Callable[[int], None] | None, keys: dict[str, bytes]
                     ) -> Iterator[tuple[int, _Bad | None]]:
    pending: deque[Any] = deque()
    while True:
        while len(pending) < 4 * workers:  # a few ranges queued ahead per process
            span = next(ranges, None)
            if span is None:
                break
            pending.append(pool.apply_async(_verify_range_in_worker, (url, *span, keys)))
        if not pending:
            return
        # in id order, so progress and the first failure are too
        n, bad = pending.popleft().get()
        yield n, bad
        if bad is not None:
            return
        if progress is not None:
            progress(n)


def head(session: Session) -> tuple[int, str] | None:
    """The newest record's (id, hash): what a checkpoint anchors."""
    row = session.execute(select(AuditEvent.id, AuditEvent.hash)
                          .order_by(AuditEvent.id.desc()).limit(1)).first()
    return (row.id, row.hash) if row else None


# ---------------------------------------------------------------- export

EXPORT_FIELDS = (
    "id", "at", "actor", "action", "subject_kind", "subject_id", "details", "prev_hash", "hash",
    "key_id",
)


def export_query(
    since: datetime | None = None,
    until: datetime | None = None,
    actor: str | None = None,
) -> Select[tuple[AuditEvent]]:
    q = select(AuditEvent).order_by(AuditEvent.id)
    if since is not None:
        q = q.where(AuditEvent.at >= since)
    if until is not None:
        q = q.where(AuditEvent.at < until)
    if actor is not None:
        q = q.where(AuditEvent.actor == actor)
    return q


def count(session: Session, q: Select[tuple[AuditEvent]]) -> int:
    return session.scalar(select(func.count()).select_from(q.subquery())) or 0


def as_row(ev: AuditEvent, tz: Any = UTC) -> dict[str, Any]:
    return {
        "id": ev.id,
        "at": ev.at.astimezone(tz).isoformat(),
        "actor": ev.actor,
        "action": ev.action,
        "subject_kind": ev.subject_kind,
        "subject_id": ev.subject_id,
        "details": ev.details,
        "prev_hash": ev.prev_hash,
        "hash": ev.hash,
        "key_id": ev.key_id,
    }


def iter_export(
    session: Session, q: Select[tuple[AuditEvent]], fmt: str, tz: Any = UTC,
    names: Callable[[dict[str, Any]], dict[str, str]] | None = None,
) -> Iterator[str]:
    """Yield the export as text chunks (one per record, CSV header first). `names`: a
    record's Slack ids -> names (services.slack_names), added as a `names` field."""
    fields = (*EXPORT_FIELDS, "names") if names else EXPORT_FIELDS
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=fields)
        writer.writeheader()
        yield buf.getvalue()
    for ev in session.execute(q.execution_options(yield_per=1000)).scalars():
        row = as_row(ev, tz)
        if names:
            row["names"] = names(row)
        if fmt == "jsonl":
            yield canonical(row) + "\n"
        else:
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=fields)
            writer.writerow({**row, "details": canonical(row["details"]),
                             **({"names": canonical(row["names"])} if names else {})})
            yield buf.getvalue()


@dataclass(frozen=True)
class Entry:
    actor: str
    action: str
    subject_kind: str
    subject_id: str | int
    details: dict[str, Any] | None = None


def record_many(session: Session, entries: list[Entry]) -> None:
    """Append several records (same chain rules as `record`).

    The records are written when the caller's transaction commits (`before_commit`), so
    the chain's lock (PostgreSQL advisory lock; SQLite's writer lock) is held only for
    that last insert and the commit, not for the whole transaction; a transaction that
    rolls back leaves no records."""
    session.info.setdefault(_PENDING, []).extend(entries)


_PENDING = "commsdesk_audit_pending"


@event.listens_for(Session, "before_commit")
def _append_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending:
        _append(session, pending)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _append(session: Session, entries: list[Entry]) -> None:
    bind = session.get_bind()
    ring = keyring_for(getattr(bind, "engine", bind))
    if ring is None:
        raise AuditKeyError("no audit key: set COMMSDESK_AUDIT_KEY (or [audit] key_file); "
                            "`commsdesk init` writes one into .env.example")
    session.flush()  # the caller's own rows first, so the lock below is held briefly
    if bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})
    last = session.execute(
        select(AuditEvent.id, AuditEvent.hash, AuditEvent.key_id)
        .order_by(AuditEvent.id.desc()).limit(1)
    ).first()
    next_id, prev = (last.id + 1, last.hash) if last else (1, GENESIS)
    if last is not None and last.key_id is None:
        # the keyed chain begins after an unkeyed one: its marker, linked to the last
        # unkeyed record, lists the records purged before (their purges left no keyed
        # record to authorize them). A new trail is keyed from its first record.
        entries = [Entry("system", KEYED_ACTION, "audit", ring.current_id, {
            "unkeyed_records": last.id, "unkeyed_head": prev,
            "purged": id_ranges(_unkeyed_purged(session))}), *entries]
    kid, key = ring.current_id, ring.current
    at = now()  # the time of the commit: the chain's order is the order of the times
    rows: list[dict[str, Any]] = []
    for e in entries:
        text_form = canonical(e.details or {})
        d = hashlib.sha256(text_form.encode("utf-8")).hexdigest()
        h = record_hash(id=next_id, at=at, actor=e.actor, action=e.action,
                        subject_kind=e.subject_kind, subject_id=str(e.subject_id),
                        details_digest=d, prev_hash=prev, key_id=kid, key=key)
        rows.append({"id": next_id, "at": at, "actor": e.actor, "action": e.action,
                     "subject_kind": e.subject_kind, "subject_id": str(e.subject_id),
                     "details": json.loads(text_form), "details_digest": d,
                     "prev_hash": prev, "hash": h, "key_id": kid})
        prev, next_id = h, next_id + 1
    session.execute(insert(AuditEvent.__table__), rows)


def _unkeyed_purged(session: Session) -> list[int]:
    if session.get_bind().dialect.name == "sqlite":
        sql = "SELECT id FROM audit_events WHERE json_extract(details, '$._purged') IS NOT NULL"
    else:
        sql = "SELECT id FROM audit_events WHERE jsonb_exists(details::jsonb, '_purged')"
    return list(session.scalars(text(sql)))
