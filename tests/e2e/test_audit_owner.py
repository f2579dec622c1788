"""The audit trail against the database's owner: what someone who can drop the triggers,
delete rows and recompute hashes (but holds neither the audit key nor the Slack channel
the checkpoints go to) can do, and what `audit verify` then says. And on PostgreSQL,
that `serve`'s role cannot do it at all."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from bot import clock, db
from bot.bootstrap import build_runtime
from bot.db import make_sessionmaker, transaction
from bot.emulators.slack import SlackEmulator
from bot.services import audit, checkpoints, retention
from tests.conftest import (
    AUDIT_KEY,
    BASE_CONFIG,
    BOT_TOKEN,
    PG_ADMIN_URL,
    SIGNING_SECRET,
    make_settings,
    pg_or_skip,
)
from tests.processes import ServeProcess, to_toml

AUDIT_CHANNEL = "C0COMMSAUDIT"


def _write(engine: sa.Engine, n: int) -> None:
    factory = make_sessionmaker(engine)
    for i in range(n):
        with transaction(factory) as s:
            audit.record(s, actor="U123", action="mention.received", subject_kind="mention",
                         subject_id=i, details={"text": f"bins not collected #{i}"})


def _drop_guards(conn: sa.Connection) -> None:
    """What the database's owner may do: the app's triggers are no obstacle to it."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_events_no_update")
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_events_no_delete")
    else:
        conn.exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER USER")


def _config(**audit_cfg: Any) -> dict[str, Any]:
    cfg = copy.deepcopy(BASE_CONFIG)
    cfg["audit"] = audit_cfg
    return cfg


def _verify_cli(cwd: Path, config: dict[str, Any], database_url: str,
                extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    path = cwd / "verify.toml"
    path.write_text(to_toml(config))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "COMMSDESK_", "DATABASE_URL"))}
    env.update({"DATABASE_URL": database_url, "COMMSDESK_AUDIT_KEY": AUDIT_KEY,
                "COMMSDESK_CONFIG": str(path), **(extra or {})})
    return subprocess.run([sys.executable, "-m", "bot.cli", "audit", "verify"], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


def _last_id(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT max(id) FROM audit_events").scalar() or 0)


def test_deleted_newest_records_are_named_against_the_checkpoint_file(
        engine: sa.Engine, database_url: str, tmp_path: Path) -> None:
    cp_file = tmp_path / "checkpoints.jsonl"
    config = _config(checkpoint_file=str(cp_file))
    rt = build_runtime(make_settings(database_url, config=config), engine)
    _write(engine, 9)
    cp = checkpoints.write(rt)
    assert cp is not None and cp.n == 9
    # a line with a signature none of our keys makes (anyone may append to a file)
    cp_file.open("a").write('{"n": 2, "head": "' + "0" * 64 + '", "at": "2999-01-01T00:00:00Z",'
                            ' "key": "abcdef012345", "sig": "' + "1" * 64 + '"}\n')
    r = _verify_cli(tmp_path, config, database_url)
    assert r.returncode == 0 and "anchored" in r.stdout and "ignored" in r.stdout, r
    assert AUDIT_KEY not in r.stdout + r.stderr

    with engine.begin() as conn:  # the newest 3, triggers dropped
        _drop_guards(conn)
        conn.exec_driver_sql("DELETE FROM audit_events WHERE id > 6")
    with Session(engine) as s:
        assert audit.verify(s).ok  # the chain alone cannot see a cut tail
    r = _verify_cli(tmp_path, config, database_url)
    assert r.returncode == 1, r
    assert "records 7-9 are gone since the checkpoint of" in r.stderr, r.stderr
    # new records reusing the ids chain on cleanly, but not to the checkpoint's head
    _write(engine, 4)
    r = _verify_cli(tmp_path, config, database_url)
    assert r.returncode == 1 and "record 9 does not match the checkpoint" in r.stderr, r.stderr

    with engine.begin() as conn:  # every row
        _drop_guards(conn)
        conn.exec_driver_sql("DELETE FROM audit_events")
    r = _verify_cli(tmp_path, config, database_url)
    assert r.returncode == 1 and "records 1-9 are gone since the checkpoint of" in r.stderr, r


def test_a_stale_checkpoint_is_reported(engine: sa.Engine, database_url: str,
                                        tmp_path: Path) -> None:
    config = _config(checkpoint_file=str(tmp_path / "cp.jsonl"), checkpoint_interval_minutes=30)
    settings = make_settings(database_url, config=config)
    rt = build_runtime(settings, engine)
    _write(engine, 3)
    checkpoints.write(rt)
    found = checkpoints.read_file(str(tmp_path / "cp.jsonl"))
    tz = settings.config.tz
    with Session(engine) as s:
        assert checkpoints.check(s, found, settings.audit_keyring(), 30, tz, "f").ok
        later = clock.now() + timedelta(minutes=61)
        quiet = checkpoints.check(s, found, settings.audit_keyring(), 30, tz, "f", at=later)
        assert quiet.ok and "more than two intervals" in quiet.lines[-1]  # nothing since
    _write(engine, 2)
    with Session(engine) as s:
        stale = checkpoints.check(s, found, settings.audit_keyring(), 30, tz, "f", at=later)
    assert not stale.ok and "records 4-5 are not anchored" in stale.lines[-1], stale


def test_checkpoints_posted_on_schedule_and_at_shutdown_and_read_back(
        engine: sa.Engine, database_url: str, tmp_path: Path) -> None:
    """A real `serve`: a checkpoint in the configured channel when its schedule starts and
    another at shutdown (SIGTERM); `audit verify` reads them back from Slack."""
    _write(engine, 5)
    slack = SlackEmulator(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
    slack.start()
    try:
        for cid, name in [("C0APPROVALS", "approvals"), ("C0COMMS", "comms"),
                          ("C0WASTE", "waste"), (AUDIT_CHANNEL, "comms-audit")]:
            slack.add_channel(cid, name)
        config = _config(checkpoint_channel=AUDIT_CHANNEL, checkpoint_interval_minutes=1)
        config["accounts"] = []
        bot = ServeProcess(tmp_path, config, database_url, slack.api_url, "http://127.0.0.1:9")
        try:
            bot.wait_ready()
            deadline = time.monotonic() + 20
            while not slack.messages(AUDIT_CHANNEL) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert bot.terminate() == 0, bot.log()
        finally:
            bot.kill()
        posted = slack.messages(AUDIT_CHANNEL)
        assert len(posted) == 2, (posted, bot.log())
        assert "(schedule)" in posted[0]["text"] and "(shutdown)" in posted[1]["text"]
        assert AUDIT_KEY not in bot.log() and all(AUDIT_KEY not in m["text"] for m in posted)
        if engine.dialect.name == "postgresql":  # the test role made the tables: it warns
            assert "owns the audit table" in bot.log() and "db grant" in bot.log()
        last = _last_id(engine)
        env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": slack.api_url}
        r = _verify_cli(tmp_path, config, database_url, env)
        assert r.returncode == 0 and f"({last:,} record(s)) matches" in r.stdout, r
        with engine.begin() as conn:
            _drop_guards(conn)
            conn.exec_driver_sql(f"DELETE FROM audit_events WHERE id > {last - 2}")
        r = _verify_cli(tmp_path, config, database_url, env)
        assert r.returncode == 1, r
        assert f"records {last - 1}-{last} are gone since the checkpoint of" in r.stderr, r
        # a checkpoint channel that cannot be read is said, not passed over
        r = _verify_cli(tmp_path, config, database_url,
                        {"SLACK_BOT_TOKEN": "xoxb-wrong", "SLACK_API_URL": slack.api_url})
        assert r.returncode == 1 and "could not be read" in r.stderr, r
    finally:
        slack.stop()


# ---------------------------------------------------------------- least privilege


@pytest.fixture
def pg_roles() -> Any:
    """An owner role (migrations) and an app role (serve) in a schema of their own."""
    pg_or_skip()
    tag = uuid.uuid4().hex[:8]
    owner, app, schema = f"cd_owner_{tag}", f"cd_app_{tag}", f"t_roles_{tag}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{owner}" LOGIN')
        conn.exec_driver_sql(f'CREATE ROLE "{app}" LOGIN')
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}" AUTHORIZATION "{owner}"')
    base = PG_ADMIN_URL.replace("postgres@", "{}@", 1) + f"?options=-csearch_path%3D{schema}"
    try:
        yield base.format(owner), base.format(app), app
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            for role in (app, owner):
                conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
                conn.exec_driver_sql(f'DROP ROLE "{role}"')
        admin.dispose()


def _cli(args: list[str], env: dict[str, str | None],
         cwd: Path) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "COMMSDESK_"))}
    full.update({"COMMSDESK_AUDIT_KEY": AUDIT_KEY})
    full.update({k: v for k, v in env.items() if v is not None})
    for k in [k for k, v in env.items() if v is None]:  # None: not set at all
        full.pop(k, None)
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=120)


def test_app_role_cannot_rewrite_the_trail(pg_roles: Any, tmp_path: Path) -> None:
    owner_url, app_url, app = pg_roles
    env = {"DATABASE_URL": app_url, "DATABASE_MIGRATION_URL": owner_url}
    r = _cli(["db", "upgrade"], env, tmp_path)
    assert r.returncode == 0 and f"privileges of role {app!r}" in r.stdout, r
    r = _cli(["db", "grant", "--role", app], env, tmp_path)
    assert r.returncode == 0 and "GRANT SELECT, INSERT ON" in r.stdout, r
    assert '"audit_events" TO' in r.stdout and "audit_events_purge" in r.stdout

    owner_engine, app_engine = db.make_engine(owner_url), db.make_engine(app_url)
    try:
        assert "owns the audit table" in (db.audit_privilege_warning(owner_engine) or "")
        assert db.audit_privilege_warning(app_engine) is None
        rt = build_runtime(make_settings(app_url), app_engine)
        _write(app_engine, 4)  # the app role appends (and serve would need nothing more)
        for stmt in ("UPDATE audit_events SET actor = 'U999' WHERE id = 1",
                     "DELETE FROM audit_events WHERE id = 4",
                     "TRUNCATE audit_events",
                     "ALTER TABLE audit_events DISABLE TRIGGER USER",
                     "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only",
                     "DROP TRIGGER audit_events_append_only ON audit_events",
                     "DROP TABLE audit_events",
                     "ALTER TABLE audit_events OWNER TO CURRENT_USER"):
            with pytest.raises(DBAPIError, match=r"permission denied|must be owner"), \
                    app_engine.begin() as conn:
                conn.exec_driver_sql(stmt)
        # ... yet retention purges personal details, through the owner's function
        clock.shift(timedelta(days=400))
        try:
            done = retention.run(rt, days=30)
        finally:
            clock.shift(-timedelta(days=400))
        assert done.audit_records == 4, done
        r = _cli(["audit", "verify"], {"DATABASE_URL": app_url}, tmp_path)
        assert r.returncode == 0 and "5 record(s)" in r.stdout, r
        with app_engine.connect() as conn:
            purged = conn.exec_driver_sql("SELECT count(*) FROM audit_events "
                                          "WHERE jsonb_exists(details::jsonb, '_purged')").scalar()
        assert purged == 4
    finally:
        owner_engine.dispose()
        app_engine.dispose()


# ---------------------------------------------------------------- the key's setup


def test_init_writes_a_fresh_key_and_check_config_asks_for_one(tmp_path: Path) -> None:
    keys = []
    for d in ("a", "b"):
        r = _cli(["init", "--dir", str(tmp_path / d)], {}, tmp_path)
        assert r.returncode == 0, r
        example = (tmp_path / d / ".env.example").read_text()
        line = next(x for x in example.splitlines() if x.startswith("COMMSDESK_AUDIT_KEY="))
        keys.append(line.split("=", 1)[1])
        assert ((tmp_path / d / ".env.example").stat().st_mode & 0o077) == 0
    assert keys[0] != keys[1] and all(len(k) >= 32 for k in keys), keys
    (tmp_path / "a" / ".env.example").rename(tmp_path / "a" / ".env")
    r = _cli(["check-config"], {"COMMSDESK_AUDIT_KEY": None}, tmp_path / "a")
    assert "COMMSDESK_AUDIT_KEY" not in r.stderr  # .env's key was taken
    cfg = tmp_path / "c.toml"
    cfg.write_text(to_toml(BASE_CONFIG))
    env: dict[str, str | None] = {"COMMSDESK_AUDIT_KEY": None, "COMMSDESK_CONFIG": str(cfg), "SLACK_BOT_TOKEN": BOT_TOKEN,
           "SLACK_SIGNING_SECRET": SIGNING_SECRET}
    r = _cli(["check-config"], env, tmp_path)
    assert r.returncode == 1 and "COMMSDESK_AUDIT_KEY is not set" in r.stderr, r
    r = _cli(["check-config"], {**env, "COMMSDESK_AUDIT_KEY": "short"}, tmp_path)
    assert r.returncode == 1 and "too short" in r.stderr and "short" not in r.stdout, r
