"""Real `commsdesk serve` processes: graceful SIGTERM, SIGKILL mid-publish, two replicas."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from bot import db
from bot.emulators.slack import SlackEmulator
from bot.models import AuditEvent, Draft
from integrations.x.emulator import XEmulator
from tests.conftest import BOT_TOKEN, SIGNING_SECRET
from tests.harness import CARA, COLIN, E2E_CONFIG, ROGUE, WENDY, wait_for
from tests.processes import ServeProcess


class World:
    def __init__(self, tmp: Path, database_url: str):
        self.tmp = tmp
        self.database_url = database_url
        self.slack = SlackEmulator(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
        self.x = XEmulator()
        self.procs: list[ServeProcess] = []

    def __enter__(self) -> World:
        self.slack.start()
        self.x.start()
        for cid in ("C0APPROVALS", "C0COMMS", "C0WASTE", "C0HIGHWAYS", "C0LIBRARIES", "C0VIP"):
            self.slack.add_channel(cid, cid.lower())
        for uid in (WENDY, CARA, COLIN, ROGUE):
            self.slack.add_user(uid, uid.lower())
        self.slack.add_usergroup("S0COMMS", "comms", [CARA, COLIN])
        self.x.add_user("1111", "NottsCC")
        self.x.add_user("2222", "NottsLibraries")
        self.x.register_credentials("1111", access_token="1111-at-nottscc")
        self.x.register_credentials("2222", access_token="2222-at-libraries")
        return self

    def __exit__(self, *exc: Any) -> None:
        for p in self.procs:
            p.kill() if p.proc.poll() is None else None
        self.slack.stop()
        self.x.stop()

    def serve(self, name: str, env: dict[str, str] | None = None) -> ServeProcess:
        p = ServeProcess(self.tmp, E2E_CONFIG, self.database_url, self.slack.api_url,
                         self.x.root_url, extra_env=env, name=name)
        self.procs.append(p)
        return p.wait_ready()

    def draft_state(self) -> str | None:
        engine = db.make_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return conn.execute(sa.select(Draft.state).where(Draft.id == 1)).scalar()
        finally:
            engine.dispose()

    def posts(self) -> list[dict[str, Any]]:
        return [p for p in self.x.posts_created() if not p.get("deleted")]

    def draft_and_approval_message(self, bot: ServeProcess) -> dict[str, Any]:
        self.slack.bot_events_url = f"{bot.url}/slack/events"
        r = self.slack.send_command(WENDY, "C0WASTE", "post nottscc Libraries open late on Friday")
        assert "Draft D1" in r.json()["text"], r.text
        return wait_for(lambda: [m for m in self.slack.messages("C0APPROVALS")
                                 if m.get("blocks")], timeout=15)[0]


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[World]:
    with World(tmp_path, database_url) as w:
        yield w


def test_poll_once_delivers_and_exits(world: World) -> None:
    import subprocess
    import sys

    from tests.processes import bot_env

    world.x.add_mention("1111", "jane", "bins not collected on Elm Road")
    world.x.add_mention("1111", "bob", "pothole on the A60")
    env = bot_env(world.tmp, E2E_CONFIG, world.database_url, world.slack.api_url,
                  world.x.root_url)
    r = subprocess.run([sys.executable, "-m", "bot.cli", "poll", "--once"], env=env,
                       cwd=world.tmp, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "nottscc: 2 new mention(s)" in r.stdout and "2 Slack message(s) delivered" in r.stdout
    assert len(world.slack.messages("C0WASTE")) == 1
    assert len(world.slack.messages("C0HIGHWAYS")) == 1
    r = subprocess.run([sys.executable, "-m", "bot.cli", "poll", "--once"], env=env,
                       cwd=world.tmp, capture_output=True, text=True, timeout=120)
    assert "nottscc: 0 new mention(s)" in r.stdout
    assert BOT_TOKEN not in r.stdout + r.stderr


def test_sigterm_stops_gracefully(world: World) -> None:
    bot = world.serve("graceful")
    health = wait_for(lambda: (lambda h: h["last_poll"]["nottscc"] and h)(
        httpx.get(f"{bot.url}/healthz").json()), what="first poll")
    assert health["status"] == "ok" and health["scheduler"] == "running"
    assert isinstance(health["outbox_backlog"], int) and set(health["last_poll"]) == {"nottscc",
                                                                          "nottslibraries"}
    if world.database_url.startswith("sqlite"):
        second = ServeProcess(world.tmp, E2E_CONFIG, world.database_url, world.slack.api_url,
                              world.x.root_url, name="second")
        assert second.proc.wait(timeout=30) == 1
        assert "SQLite runs one bot process at a time" in second.log()
    assert bot.terminate() == 0
    assert "stopped" in bot.log()
    assert BOT_TOKEN not in bot.log() and SIGNING_SECRET not in bot.log()


@pytest.mark.parametrize("point", ["publish:before_network", "publish:after_network"])
def test_sigkill_mid_publish_ends_with_exactly_one_post(world: World, point: str) -> None:
    bot = world.serve("doomed", {"COMMSDESK_FAULT_KILL_AT": point})
    msg = world.draft_and_approval_message(bot)
    world.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], "white_check_mark")
    bot.proc.wait(timeout=20)
    assert bot.proc.returncode == -9  # killed as by a power cut
    assert world.draft_state() == "publishing"
    assert len(world.posts()) == (1 if point == "publish:after_network" else 0)
    # restarted later (the crashed process's 5-minute claim has run out)
    again = world.serve("restarted", {"COMMSDESK_CLOCK_OFFSET_SECONDS": "600"})
    wait_for(lambda: world.draft_state() == "published", timeout=20, what="published")
    assert len(world.posts()) == 1
    again.terminate()


def test_two_replicas_on_postgresql_publish_once(world: World, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("replicas need PostgreSQL; SQLite is single-process")
    a = world.serve("replica-a")
    b = world.serve("replica-b")
    msg = world.draft_and_approval_message(a)
    event = {"type": "reaction_added", "user": CARA, "reaction": "white_check_mark",
             "item": {"type": "message", "channel": "C0APPROVALS", "ts": msg["ts"]},
             "item_user": "U0BOT", "event_ts": "1.2"}
    envelope = {"type": "event_callback", "team_id": "T0COUNCIL", "api_app_id": "A0COMMSDESK",
                "event_id": "EvREPLICA", "event_time": 1, "event": event}
    body = json.dumps(envelope)
    ev2 = dict(envelope, event_id="EvREPLICA2", event=dict(event, user=COLIN))
    body2 = json.dumps(ev2)

    def send(url: str, payload: str) -> None:
        httpx.post(f"{url}/slack/events", content=payload,
                   headers={**world.slack.sign(payload), "Content-Type": "application/json"})

    threads = [threading.Thread(target=send, args=(u, p))
               for u in (a.url, b.url) for p in (body, body2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_for(lambda: world.draft_state() == "published", timeout=20)
    import time

    time.sleep(6)  # both replicas' publish sweeps run at least once more
    assert len(world.posts()) == 1
    engine = db.make_engine(database_url)
    with engine.connect() as conn:
        approved = conn.execute(sa.select(sa.func.count()).select_from(AuditEvent)
                                .where(AuditEvent.action == "draft.approved")).scalar()
    engine.dispose()
    assert approved == 1
    a.terminate()
    b.terminate()


def test_two_replicas_whole_loop_with_duplicate_deliveries(world: World,
                                                           database_url: str) -> None:
    """200 mentions and 50 approvals through two `serve` processes on one PostgreSQL,
    every Slack delivery sent to both: one alert per mention per channel, one post
    per approved draft."""
    if not database_url.startswith("postgresql"):
        pytest.skip("replicas need PostgreSQL; SQLite is single-process")
    topics = ["bin", "pothole", "library", "mayor", "council"]
    for i in range(200):
        world.x.add_mention("1111", f"res{i}", f"{topics[i % 5]} question number {i}")
    fast = {"COMMSDESK_SLACK_POST_INTERVAL": "0.02"}
    a = world.serve("replica-a", fast)
    b = world.serve("replica-b", fast)
    channels = ["C0WASTE", "C0HIGHWAYS", "C0LIBRARIES", "C0VIP", "C0COMMS"]

    def alerts() -> list[dict[str, Any]]:
        return [m for c in channels for m in world.slack.messages(c) if m.get("blocks")]

    wait_for(lambda: len(alerts()) >= 200, timeout=90, what="200 alerts")
    import time

    time.sleep(2)
    texts = [m["text"] for m in alerts()]
    assert len(texts) == 200 and len(set(texts)) == 200  # none twice, none lost

    def deliver_to_both(kind: str, payload: dict[str, Any]) -> None:
        body = json.dumps(payload)
        for target in (a, b, a):  # each replica, then a Slack retry
            httpx.post(f"{target.url}/slack/events", content=body,
                       headers={**world.slack.sign(body, int(time.time())),
                                "Content-Type": "application/json",
                                "X-Slack-Retry-Num": "1"})

    world.slack.bot_events_url = f"{a.url}/slack/events"
    for i in range(50):
        r = world.slack.send_command(WENDY, "C0WASTE", f"post nottscc Update number {i}")
        assert f"Draft D{i + 1}" in r.json()["text"]
    approvals = wait_for(lambda: len(world.slack.messages("C0APPROVALS")) >= 50
                         and world.slack.messages("C0APPROVALS"), timeout=60)
    for n, msg in enumerate(approvals[:50]):
        event = {"type": "reaction_added", "user": CARA if n % 2 else COLIN,
                 "reaction": "white_check_mark", "event_ts": f"{n}.5",
                 "item": {"type": "message", "channel": "C0APPROVALS", "ts": msg["ts"]}}
        deliver_to_both("event", {"type": "event_callback", "team_id": "T0COUNCIL",
                                  "api_app_id": "A0COMMSDESK", "event_id": f"EvBOTH{n}",
                                  "event_time": 1, "event": event})
    wait_for(lambda: len(world.posts()) >= 50, timeout=60, what="50 posts")
    time.sleep(6)  # both replicas' sweeps run again
    posted = [p["text"] for p in world.posts()]
    assert len(posted) == 50 and len(set(posted)) == 50
    a.terminate()
    b.terminate()


@pytest.mark.parametrize("point", ["outbox:after_send@2", "poll:after_store"])
def test_sigkill_during_ingest_or_delivery_loses_and_repeats_nothing(world: World,
                                                                   point: str) -> None:
    for i in range(4):
        world.x.add_mention("1111", f"res{i}", f"bin {i} missed")
    bot = ServeProcess(world.tmp, E2E_CONFIG, world.database_url, world.slack.api_url,
                       world.x.root_url, extra_env={"COMMSDESK_FAULT_KILL_AT": point},
                       name="doomed")  # it may die before it ever answers /healthz
    world.procs.append(bot)
    bot.proc.wait(timeout=30)
    assert bot.proc.returncode == -9
    # restarted after the dead process's leases ran out
    again = world.serve("restarted", {"COMMSDESK_CLOCK_OFFSET_SECONDS": "900"})
    wait_for(lambda: len([m for m in world.slack.messages("C0WASTE") if m.get("blocks")]) >= 4,
             timeout=30, what="4 alerts")
    import time

    time.sleep(2)
    texts = [m["text"] for m in world.slack.messages("C0WASTE") if m.get("blocks")]
    assert len(texts) == 4 and len(set(texts)) == 4
    again.terminate()
