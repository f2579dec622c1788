"""Migrations apply to empty SQLite and PostgreSQL; no drift from the models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from bot import db


def test_upgrade_empty_database_then_no_drift(database_url: str) -> None:
    engine = db.make_engine(database_url)
    before, head = db.upgrade(engine)
    assert before is None and head is not None
    assert db.schema_status(engine) == (head, head)
    with engine.connect() as conn:
        cfg = db.alembic_config()
        cfg.attributes["connection"] = conn
        command.check(cfg)  # raises if models and migrations differ
    assert db.upgrade(engine) == (head, head)  # idempotent
    engine.dispose()


def test_sqlite_pragmas(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_newer_schema_is_refused(database_url: str) -> None:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_future'"))
    with pytest.raises(db.DatabaseError, match="newer than this commsdesk"):
        db.upgrade(engine)
    engine.dispose()


def _cli(args: list[str], database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "COMMSDESK_"))}
    env["DATABASE_URL"] = database_url
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_db_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    r = _cli(["db", "upgrade"], url, tmp_path)
    assert r.returncode == 0 and "upgraded from empty" in r.stdout, r.stderr
    r = _cli(["db", "upgrade"], url, tmp_path)
    assert r.returncode == 0 and "already at" in r.stdout


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg://postgres@127.0.0.1:1/test", "cannot reach the database"),
        ("sqlite:////nonexistent-dir/x/y.db", "cannot reach the database"),
        ("notadb://x", "DATABASE_URL"),
    ],
)
def test_cli_unreachable_database_is_one_sentence(tmp_path: Path, url: str, expected: str) -> None:
    r = _cli(["db", "upgrade"], url, tmp_path)
    assert r.returncode == 1
    assert expected in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_cli_newer_schema_is_one_sentence(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    _cli(["db", "upgrade"], url, tmp_path)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'abc123'"))
    engine.dispose()
    r = _cli(["db", "upgrade"], url, tmp_path)
    assert r.returncode == 1 and "newer than this commsdesk" in r.stderr
    assert "Traceback" not in r.stderr


def test_upgrade_keeps_existing_data(database_url: str) -> None:
    """An install made at the first revision, with data, upgrades to the newest."""
    engine = db.make_engine(database_url)
    with engine.connect() as conn, conn.begin():
        cfg = db.alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO accounts (id, name, network, handle, created_at) "
                             "VALUES (1, 'nottscc', 'x', 'NottsCC', '2026-01-01 00:00:00')"))
        conn.execute(sa.text(
            "INSERT INTO mentions (id, network, external_id, account_id, text, state, fetched_at)"
            " VALUES (1, 'x', '99', 1, 'bins', 'open', '2026-01-01 00:00:00')"))
        conn.execute(sa.text(
            "INSERT INTO drafts (id, account_id, mention_id, kind, text, version, author, state,"
            " attempts, created_at, updated_at) VALUES (1, 1, 1, 'reply', 'sorry', 1, 'U1',"
            " 'pending', 0, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"))
    before, head = db.upgrade(engine)
    assert before == "0001" and head != "0001"
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT text FROM drafts WHERE id = 1")).scalar() == "sorry"
        assert conn.execute(sa.text("SELECT escalated FROM mentions WHERE id = 1")).scalar() \
            in (0, False)
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()
