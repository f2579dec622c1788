"""The audit trail: append-only in the database, hash-chained, verifiable, exportable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from commsdesk.db import make_sessionmaker, transaction
from commsdesk.domain import audit


def _write(engine: sa.Engine, n: int) -> None:
    factory = make_sessionmaker(engine)
    for i in range(n):
        with transaction(factory) as s:
            audit.record(
                s, actor="U123" if i % 2 else "system", action="mention.received",
                subject_kind="mention", subject_id=i,
                details={"text": f"bins not collected #{i} <!channel> café", "n": i},
            )


def _verify(engine: sa.Engine) -> audit.VerifyResult:
    with Session(engine) as s:
        return audit.verify(s)


def _drop_guards(conn: sa.Connection) -> None:
    """Deliberate tampering: what an attacker with DDL rights would do."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("DROP TRIGGER audit_events_no_update")
        conn.exec_driver_sql("DROP TRIGGER audit_events_no_delete")
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
    _write(engine, 23)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET details = :d WHERE id = 5"),
                     {"d": json.dumps({"_purged": True})})
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
    """A retention purge blanks personal text but keeps the digest: the database allows
    exactly that change, and the chain still verifies."""
    _write(engine, 3)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET details = :d WHERE id = 2"),
                     {"d": json.dumps({"_purged": True})})
    assert _verify(engine).ok
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET details = :d, actor = 'U9' WHERE id = 3"),
                     {"d": json.dumps({"_purged": True})})
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET details = :d WHERE id = 3"),
                     {"d": json.dumps({"_purged": False})})


def test_chain_is_linear_under_concurrent_writers(engine: sa.Engine) -> None:
    import threading

    threads = [threading.Thread(target=_write, args=(engine, 10)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = _verify(engine)
    assert result.ok and result.checked == 40


def _cli(args: list[str], database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "COMMSDESK_"))}
    env["DATABASE_URL"] = database_url
    return subprocess.run([sys.executable, "-m", "commsdesk.cli", *args], cwd=cwd, env=env,
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
