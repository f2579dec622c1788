"""The HTTP endpoint: Slack signatures verified on every request; /healthz."""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.parse
import uuid
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa

from bot import db
from bot.app import build_bolt_app
from bot.asgi import build_asgi
from bot.bootstrap import build_runtime
from bot.models import AuditEvent
from bot.runtime import Runtime
from tests.conftest import PG_ADMIN_URL, SIGNING_SECRET, ThreadedServer, make_settings, pg_or_skip
from tests.harness import Harness


def sign(body: str, ts: int, secret: str = SIGNING_SECRET) -> dict[str, str]:
    sig = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": f"v0={sig}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def command_body(text: str) -> str:
    return urllib.parse.urlencode({
        "token": "legacy", "team_id": "T0COUNCIL", "channel_id": "C0WASTE",
        "user_id": "U0WASTE", "user_name": "wendy", "command": "/social", "text": text,
        "response_url": "http://127.0.0.1:9/response", "trigger_id": "1.2.3",
        "api_app_id": "A0COMMS",
    })


@pytest.fixture
def bot(database_url: str) -> Iterator[tuple[str, Runtime]]:
    with Harness(database_url) as h:
        assert h.server is not None
        yield h.server.url, h.rt


def test_signed_request_is_accepted(bot: tuple[str, Runtime]) -> None:
    url, _ = bot
    body = command_body("help")
    r = httpx.post(f"{url}/slack/events", content=body, headers=sign(body, int(time.time())))
    assert r.status_code == 200
    assert "/social reply" in r.json()["text"]


def test_malformed_bodies_are_refused_cleanly(bot: tuple[str, Runtime]) -> None:
    url, _ = bot
    for body in (b"\xff\xfe not utf-8", b"x" * 2_000_000):
        r = httpx.post(f"{url}/slack/events", content=body,
                       headers=sign(body.decode("latin-1"), int(time.time())))
        assert r.status_code in (400, 401, 413)


@pytest.mark.parametrize(
    "headers",
    [
        lambda body: sign(body, int(time.time()), secret="not-the-secret"),
        lambda body: sign(body, int(time.time()) - 6 * 60),  # six minutes old
        lambda body: {**sign(body, int(time.time())), "X-Slack-Signature": "v0=" + "0" * 64},
        lambda body: {"Content-Type": "application/x-www-form-urlencoded"},
    ],
    ids=["forged", "stale", "garbled", "unsigned"],
)
def test_bad_signature_gets_401_and_changes_nothing(bot: tuple[str, Runtime], headers: object) -> None:
    url, rt = bot
    body = command_body("post nottscc hello residents")
    r = httpx.post(f"{url}/slack/events", content=body, headers=headers(body))  # type: ignore[operator]
    assert r.status_code == 401
    with rt.sessions() as s:
        # nothing audited but the accounts synced from the config at start-up
        assert s.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                        .where(AuditEvent.action != "account.configured")) == 0


def test_healthz_ok(bot: tuple[str, Runtime]) -> None:
    url, _ = bot
    r = httpx.get(f"{url}/healthz")
    assert r.status_code == 200 and r.json()["database"] == "ok"


def test_healthz_503_when_database_is_gone() -> None:
    pg_or_skip()
    name = f"gone_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    settings = make_settings(url)
    rt = Runtime(settings, engine, db.make_sessionmaker(engine), build_runtime(settings, engine).slack)
    try:
        with ThreadedServer(build_asgi(rt, build_bolt_app(rt))) as server:
            assert httpx.get(f"{server.url}/healthz").status_code == 200
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
            r = httpx.get(f"{server.url}/healthz", timeout=30)
            assert r.status_code == 503 and r.json()["database"] == "down"
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
