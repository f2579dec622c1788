"""Shared fixtures: a real database (SQLite and PostgreSQL), a real bot over HTTP."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot import db
from bot.config import Environment, Settings, parse_config

PG_ADMIN_URL = os.environ.get(
    "COMMSDESK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"
# the audit chain's key in tests (a fixed one: records written by a test, its bot and its
# CLI subprocesses verify alike); processes that build no Settings read it from here too
AUDIT_KEY = "test-audit-key-0123456789abcdefghijklmnopqrstuvwxyz"
os.environ.setdefault("COMMSDESK_AUDIT_KEY", AUDIT_KEY)


def _pg_available() -> bool:
    try:
        eng = sa.create_engine(PG_ADMIN_URL)
        with eng.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        eng.dispose()
        return True
    except Exception:
        return False


_PG_OK: bool | None = None


def pg_or_skip() -> None:
    global _PG_OK
    if _PG_OK is None:
        _PG_OK = _pg_available()
    if not _PG_OK:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI but not reachable at {PG_ADMIN_URL}")
        pytest.skip("PostgreSQL not reachable")


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for one test: runs never collide."""
    pg_or_skip()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'commsdesk.db'}"
    else:
        yield request.getfixturevalue("pg_schema_url")


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    eng = db.make_engine(database_url)
    db.upgrade(eng)
    yield eng
    eng.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


BASE_CONFIG: dict[str, Any] = {
    "timezone": "Europe/London",
    "poll_interval_seconds": 60,
    "slack": {
        "approvals_channel": "C0APPROVALS",
        "default_channel": "C0COMMS",
        "approvers_usergroup": "S0COMMS",
    },
    "accounts": [
        {"name": "nottscc", "network": "x", "handle": "NottsCC", "user_id": "1111",
         "credentials": "NOTTSCC"},
    ],
    "services": [
        {"name": "waste", "channel": "C0WASTE", "keywords": ["bin", "bins", "recycling", "tip"]},
    ],
}


def make_settings(
    database_url: str,
    *,
    config: dict[str, Any] | None = None,
    slack_api_url: str = "http://127.0.0.1:9/api/",
    x_api_base_url: str = "http://127.0.0.1:9",
) -> Settings:
    cfg = parse_config(config or BASE_CONFIG)
    env = Environment(
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_app_token=None,
        slack_api_url=slack_api_url,
        x_api_base_url=x_api_base_url,
        database_url=database_url,
        commsdesk_audit_key=AUDIT_KEY,
    )
    creds = {
        ("x", a.credentials): {
            "consumer_key": f"ck-{a.credentials.lower()}",
            "consumer_secret": f"cs-{a.credentials.lower()}-secret",
            "access_token": f"{a.user_id or '1'}-at-{a.credentials.lower()}",
            "access_token_secret": f"ats-{a.credentials.lower()}-secret",
        }
        for a in cfg.accounts
    }
    return Settings(config=cfg, env=env, config_path=Path("commsdesk.toml"), credentials=creds)


class ThreadedServer:
    """The real ASGI app under uvicorn, in a thread, on a free port."""

    def __init__(self, app: Any):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
