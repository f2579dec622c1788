"""The audit trail: append-only in the database, a keyed hash chain, verifiable, exportable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from bot.audit_keys import parse_keys, use_keyring
from bot.db import make_sessionmaker, transaction
from bot.services import audit
from bot.services.retention import _purge_audit_details
from tests.conftest import AUDIT_KEY


def _write(engine: sa.Engine, n: int) -> None:
    factory = make_sessionmaker(engine)
    for i in range(n):
        with transaction(factory) as s:
            audit.record(
                s, actor="U123" if i % 2 else "system", action="mention.received",
                subject_kind="mention", subject_id=i,
                details={"text": f"bins not collected #{i} <!channel> café", "n": i},
            )


def _verify(engine: sa.Engine, keyring: object = None) -> audit.VerifyResult:
    with Session(engine) as s:
        return audit.verify(s, keyring=keyring)  # type: ignore[arg-type]


def _purge(engine: sa.Engine, ids: list[int]) -> None:
    """What a retention purge does to audit records: markers that keep each record's
    digest, and a keyed purge record listing them (services/retention.py's own code)."""
    with transaction(make_sessionmaker(engine)) as s:
        _purge_audit_details(s, ids)
        audit.record(s, actor="system", action=audit.PURGE_ACTION, subject_kind="retention",
                     subject_id="test", details={"purged": audit.id_ranges(ids)})


def _drop_guards(conn: sa.Connection) -> None:
    """Deliberate tampering: what an attacker with DDL rights would do."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_events_no_update")
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_events_no_delete")
    else:
        conn.exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER USER")


def test_intact_chain_verifies(engine: sa.Engine) -> None:
    _write(engine, 5)
    result = _verify(engine)
    assert result.ok and result.checked == 5


def test_empty_chain_verifies(engine: sa.Engine) -> None:
    assert _verify(engine).ok


def test_database_refuses_update_and_delete(engine: sa.Engine) -> None:
    _write(engine, 2)
    for stmt in ("UPDATE audit_events SET actor = 'U999' WHERE id = 1",
                 "DELETE FROM audit_events WHERE id = 2"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql(stmt)
    assert _verify(engine).ok


def test_changed_row_is_named(engine: sa.Engine) -> None:
    _write(engine, 4)
    with engine.begin() as conn:
        _drop_guards(conn)
        conn.exec_driver_sql("UPDATE audit_events SET actor = 'U999' WHERE id = 3")
    result = _verify(engine)
    assert not result.ok and result.bad_id == 3


def test_changed_details_are_named(engine: sa.Engine) -> None:
    _write(engine, 4)
    with engine.begin() as conn:
        _drop_guards(conn)
        conn.execute(sa.text("UPDATE audit_events SET details = :d WHERE id = 2"),
                     {"d": json.dumps({"text": "nothing to see", "n": 1})})
    result = _verify(engine)
    assert not result.ok and result.bad_id == 2 and "details" in (result.reason or "")


def test_deleted_row_is_named(engine: sa.Engine) -> None:
    _write(engine, 4)
    with engine.begin() as conn:
        _drop_guards(conn)
        conn.exec_driver_sql("DELETE FROM audit_events WHERE id = 2")
    result = _verify(engine)
    assert not result.ok and result.bad_id == 2


def test_deleted_last_row_then_new_rows_is_named(engine: sa.Engine) -> None:
    _write(engine, 3)
    with engine.begin() as conn:
        _drop_guards(conn)
        conn.exec_driver_sql("DELETE FROM audit_events WHERE id = 2")
        conn.exec_driver_sql("DELETE FROM audit_events WHERE id = 3")
    assert _verify(engine).ok  # a truncated tail is only visible against an outside copy
    _write(engine, 1)
    assert _verify(engine).ok


def test_inserted_row_is_named(engine: sa.Engine) -> None:
    _write(engine, 3)
    with engine.begin() as conn:
        row = conn.execute(sa.text("SELECT * FROM audit_events WHERE id = 3")).mappings().one()
        forged = dict(row)
        forged.update(id=4, actor="U666", hash="f" * 64, prev_hash=row["hash"])
        forged["details"] = json.dumps(forged["details"]) if not isinstance(forged["details"], str) else forged["details"]
        conn.execute(
            sa.text("INSERT INTO audit_events (id, at, actor, action, subject_kind, subject_id, "
                    "details, details_digest, prev_hash, hash) VALUES (:id, :at, :actor, :action, "
                    ":subject_kind, :subject_id, :details, :details_digest, :prev_hash, :hash)"),
            forged,
        )
    result = _verify(engine)
    assert not result.ok and result.bad_id == 4


@pytest.mark.parametrize("tamper", [
    None,
    "UPDATE audit_events SET actor = 'U999' WHERE id = 13",
    "UPDATE audit_events SET details_digest = '" + "0" * 64 + "' WHERE id = 13",
    "DELETE FROM audit_events WHERE id = 13",
    "DELETE FROM audit_events WHERE id = 10",  # the first record of a range
    "UPDATE audit_events SET prev_hash = 'x' WHERE id = 21",
    "UPDATE audit_events SET id = 2000000000 WHERE id = 23",  # far beyond the rest
])
def test_parallel_ranges_name_the_same_record(engine: sa.Engine, tamper: str | None) -> None:
    """Ranges verified by several processes report what one walk in id order reports."""
    _write(engine, 22)
    _purge(engine, [5])  # record 23 authorizes it
    with engine.begin() as conn:
        if tamper:
            _drop_guards(conn)
            conn.exec_driver_sql(tamper)
    serial = _verify(engine)
    assert serial.ok is (tamper is None)
    for batch, workers in ((1, 1), (3, 1), (3, 2), (10, 3)):
        with Session(engine) as s:
            assert audit.verify(s, batch=batch, workers=workers) == serial, (batch, workers)


@pytest.mark.parametrize("tampered", [None, 3, 4])
def test_values_that_json_escapes_verify_and_their_escaped_text_is_tampering(
        engine: sa.Engine, tampered: int | None) -> None:
    """Values with characters JSON escapes (quote, backslash, control character) verify;
    a row changed to hold the escaped text instead (so that its values, put in the header
    unescaped, give the very bytes that were hashed) is named."""
    _write(engine, 2)
    factory = make_sessionmaker(engine)
    with transaction(factory) as s:
        audit.record(s, actor='U1 "quoted"', action="draft.edited", subject_kind="draft",
                     subject_id="7", details={"text": 'said "hi"\n'})
        audit.record(s, actor="U2", action="draft.note", subject_kind="draft",
                     subject_id="back\\slash\ttab", details={})
    _write(engine, 2)
    assert _verify(engine).ok
    if tampered is None:
        return
    escaped = {3: ("actor", 'U1 \\"quoted\\"'), 4: ("subject_id", "back\\\\slash\\ttab")}
    column, value = escaped[tampered]
    with engine.begin() as conn:
        _drop_guards(conn)
        conn.execute(sa.text(f"UPDATE audit_events SET {column} = :v WHERE id = :i"),
                     {"v": value, "i": tampered})
    result = _verify(engine)
    assert not result.ok and result.bad_id == tampered, result


def test_details_stored_in_another_json_form_verify(engine: sa.Engine) -> None:
    """Records written before details were stored in canonical form (json.dumps' spaces,
    escaped non-ASCII) verify through the slower path; changed values are still named."""
    _write(engine, 6)
    with engine.begin() as conn:
        _drop_guards(conn)
        for rid, details in conn.execute(sa.text("SELECT id, details FROM audit_events")).all():
            value = details if isinstance(details, dict) else json.loads(details)
            conn.execute(sa.text("UPDATE audit_events SET details = :d WHERE id = :i"),
                         {"d": json.dumps(value), "i": rid})
    assert _verify(engine).ok
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET details = :d WHERE id = 4"),
                     {"d": json.dumps({"text": "bins not collected #3 <!channel> cafe", "n": 3})})
    result = _verify(engine)
    assert not result.ok and result.bad_id == 4, result


def test_details_that_are_not_json_are_named(engine: sa.Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's json column refuses text that is not JSON")
    _write(engine, 30)
    with engine.begin() as conn:
        _drop_guards(conn)
        conn.exec_driver_sql("UPDATE audit_events SET details = '{\"text\": ' WHERE id = 17")
    for batch, workers in ((10_000, 1), (5, 1), (5, 2)):
        with Session(engine) as s:
            result = audit.verify(s, batch=batch, workers=workers)
        assert not result.ok and result.bad_id == 17 and result.checked == 16, result
        assert "details" in (result.reason or "")


def test_purged_details_keep_the_chain(engine: sa.Engine) -> None:
    """A retention purge replaces personal details with a marker keeping their digest:
    the database allows exactly that change, and the chain still verifies."""
    _write(engine, 3)
    _purge(engine, [2])
    assert _verify(engine).ok
    with engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT details, details_digest FROM audit_events "
                                    "WHERE id = 2")).one()
    details = kept[0] if isinstance(kept[0], dict) else json.loads(kept[0])
    assert details == {"_purged": True, "digest": kept[1]}
    digest = kept[1]
    for bad in ({"_purged": True, "digest": digest, "x": 1}, {"_purged": True},
                {"_purged": True, "digest": "0" * 64}, {"_purged": False, "digest": digest}):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text("UPDATE audit_events SET details = :d WHERE id = 3"),
                         {"d": json.dumps(bad)})
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET details = :d, actor = 'U9' WHERE id = 3"),
                     {"d": audit.canonical(audit.purged_details(digest))})


def _details_digest(engine: sa.Engine, rid: int) -> str:
    with engine.connect() as conn:
        return str(conn.execute(sa.text("SELECT details_digest FROM audit_events WHERE id = :i"),
                                {"i": rid}).scalar_one())


@pytest.mark.parametrize("forged", ["other details", "bare marker", "unauthorized"])
def test_purge_markers_nobody_authorized_fail(engine: sa.Engine, forged: str) -> None:
    """Details under a purge marker that no keyed purge record authorizes, or that say
    more than the marker (forged approvers), or lose the digest, are named."""
    _write(engine, 4)
    _purge(engine, [1])  # a real purge (record 5), of record 1 only
    assert _verify(engine).ok
    markers = {
        "other details": {"_purged": True, "approvers": ["UFORGED"]},
        "bare marker": {"_purged": True},
        "unauthorized": audit.purged_details(_details_digest(engine, 3)),
    }
    with engine.begin() as conn:
        _drop_guards(conn)
        conn.execute(sa.text("UPDATE audit_events SET details = :d WHERE id = 3"),
                     {"d": audit.canonical(markers[forged])})
    for batch, workers in ((10_000, 1), (2, 2)):
        with Session(engine) as s:
            result = audit.verify(s, batch=batch, workers=workers)
        assert not result.ok and result.bad_id == 3 and not result.key_problem, result
        assert "purged" in (result.reason or "")


def test_recomputed_unkeyed_chain_is_named(engine: sa.Engine) -> None:
    """Changing a record and recomputing a plain SHA-256 chain over it and everything
    after it (all anyone without the key can do) is named at the changed record."""
    _write(engine, 6)
    with engine.begin() as conn:
        _drop_guards(conn)
        rows = conn.execute(sa.text("SELECT id, at, actor, action, subject_kind, subject_id, "
                                    "details, prev_hash FROM audit_events WHERE id >= 3 "
                                    "ORDER BY id")).all()
        prev = rows[0].prev_hash
        for r in rows:
            details = r.details if isinstance(r.details, dict) else json.loads(r.details)
            if r.id == 3:
                details = {"text": "nothing to see", "n": 2}
            at = r.at if not isinstance(r.at, str) else __import__("datetime").datetime.fromisoformat(r.at)
            d = audit.digest(details)
            h = audit.record_hash(id=r.id, at=at, actor=r.actor, action=r.action,
                                  subject_kind=r.subject_kind, subject_id=r.subject_id,
                                  details_digest=d, prev_hash=prev)
            conn.execute(sa.text("UPDATE audit_events SET details = :d, details_digest = :dd, "
                                 "prev_hash = :p, hash = :h, key_id = NULL WHERE id = :i"),
                         {"d": audit.canonical(details), "dd": d, "p": prev, "h": h, "i": r.id})
            prev = h
    result = _verify(engine)
    assert not result.ok and result.bad_id == 3 and not result.key_problem, result


OLD_KEY = "old-audit-key-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def test_rotated_key_old_and_new_records_verify(engine: sa.Engine) -> None:
    old = parse_keys(OLD_KEY)
    use_keyring(engine, old)
    _write(engine, 3)
    both = parse_keys(f"{AUDIT_KEY},{OLD_KEY}")  # the new key signs, the old one verifies
    use_keyring(engine, both)
    _write(engine, 3)
    result = _verify(engine)
    assert result.ok and result.checked == 6, result
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(sa.text("SELECT key_id FROM audit_events ORDER BY id"))]
    assert ids == [old.current_id] * 3 + [both.current_id] * 3 and old.current_id != ids[-1]
    # without the old key the old records cannot be checked: said so, not "broken"
    result = _verify(engine, parse_keys(AUDIT_KEY))
    assert not result.ok and result.key_problem and result.bad_id == 1, result
    assert old.current_id in (result.reason or "") and "key" in result.message()
    assert "broken" not in result.message()


def test_wrong_key_is_a_key_problem_not_tampering(engine: sa.Engine, database_url: str,
                                                  tmp_path: Path) -> None:
    _write(engine, 4)
    result = _verify(engine, parse_keys("a-wrong-key-0000000000000000000000000000"))
    assert not result.ok and result.key_problem and result.bad_id == 1, result
    assert "wrong or missing key" in result.message() and "broken" not in result.message()
    r = _cli(["audit", "verify"], database_url, tmp_path,
             key="a-wrong-key-0000000000000000000000000000")
    assert r.returncode == 1 and "wrong or missing key" in r.stderr and "broken" not in r.stderr
    r = _cli(["audit", "verify"], database_url, tmp_path, key="")
    assert r.returncode == 1 and "COMMSDESK_AUDIT_KEY" in r.stderr, r.stderr


def test_unkeyed_trail_migrates_with_a_marker(engine: sa.Engine) -> None:
    """A trail written before the keyed chain (plain SHA-256, key_id NULL) keeps verifying;
    the first keyed record is the marker linked to its last record; an unkeyed record
    after the keyed part began is named."""
    _write(engine, 4)
    _purge(engine, [2])
    # make it a trail as the unkeyed chain wrote it (the old purge's bare marker included)
    with engine.begin() as conn:
        _drop_guards(conn)
        rows = conn.execute(sa.text("SELECT id, at, actor, action, subject_kind, subject_id, "
                                    "details, details_digest FROM audit_events ORDER BY id")).all()
        prev = audit.GENESIS
        for r in rows:
            at = r.at if not isinstance(r.at, str) else __import__("datetime").datetime.fromisoformat(r.at)
            details = r.details if isinstance(r.details, dict) else json.loads(r.details)
            if r.id == 2:
                details = {"_purged": True}
            h = audit.record_hash(id=r.id, at=at, actor=r.actor, action=r.action,
                                  subject_kind=r.subject_kind, subject_id=r.subject_id,
                                  details_digest=r.details_digest, prev_hash=prev)
            conn.execute(sa.text("UPDATE audit_events SET prev_hash = :p, hash = :h, "
                                 "key_id = NULL, details = :d WHERE id = :i"),
                         {"p": prev, "h": h, "i": r.id, "d": audit.canonical(details)})
            prev = h
    # record 2's bare marker is authorized by nothing yet
    assert not _verify(engine).ok
    _write(engine, 2)  # the keyed chain begins: marker (6), then 7, 8
    result = _verify(engine)
    assert result.ok and result.checked == 8, result
    with engine.connect() as conn:
        marker = conn.execute(sa.text("SELECT action, prev_hash, key_id, details FROM "
                                      "audit_events WHERE id = 6")).one()
    details = marker[3] if isinstance(marker[3], dict) else json.loads(marker[3])
    assert marker[0] == audit.KEYED_ACTION and marker[1] == prev and marker[2]
    assert details["unkeyed_records"] == 5 and details["purged"] == [[2, 2]]
    with engine.begin() as conn:
        _drop_guards(conn)
        conn.exec_driver_sql("UPDATE audit_events SET key_id = NULL WHERE id = 8")
    result = _verify(engine)
    assert not result.ok and result.bad_id == 8 and "unkeyed" in (result.reason or ""), result


def test_chain_is_linear_under_concurrent_writers(engine: sa.Engine) -> None:
    import threading

    threads = [threading.Thread(target=_write, args=(engine, 10)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = _verify(engine)
    assert result.ok and result.checked == 40


def _cli(args: list[str], database_url: str, cwd: Path,
         key: str = AUDIT_KEY) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "COMMSDESK_"))}
    env["DATABASE_URL"] = database_url
    if key:
        env["COMMSDESK_AUDIT_KEY"] = key
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_verify_and_export(engine: sa.Engine, database_url: str, tmp_path: Path) -> None:
    _write(engine, 6)
    r = _cli(["audit", "verify"], database_url, tmp_path)
    assert r.returncode == 0 and "6 record(s)" in r.stdout
    out = tmp_path / "trail.jsonl"
    r = _cli(["audit", "export", "--format", "jsonl", "--output", str(out)], database_url, tmp_path)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[0]["details"]["text"].endswith("café")
    r = _cli(["audit", "export", "--format", "csv", "--actor", "U123"], database_url, tmp_path)
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith("id,at,actor") and len(lines) == 4
    r = _cli(["audit", "export", "--since", "2999-01-01"], database_url, tmp_path)
    assert r.stdout.strip().splitlines() == [lines[0]]
    r = _cli(["audit", "export", "--since", "yesterday"], database_url, tmp_path)
    assert r.returncode == 2 and "not a date" in r.stderr
    with engine.begin() as conn:
        _drop_guards(conn)
        conn.exec_driver_sql("UPDATE audit_events SET action = 'draft.approved' WHERE id = 5")
    r = _cli(["audit", "verify"], database_url, tmp_path)
    assert r.returncode == 1 and "record 5" in r.stderr and "Traceback" not in r.stderr
