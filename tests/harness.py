"""The whole product in one test: Slack and X emulators, the real Bolt app over
HTTP with signed requests, the real database, outbox and publisher threads."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa

from bot import clock, db
from bot.bootstrap import build
from bot.config import Settings
from bot.emulators.slack import SlackEmulator
from bot.services.outbox import Outbox
from bot.services.polling import PollResult, poll_all
from integrations.x.emulator import XEmulator
from integrations.x.network import XCredentials
from tests.conftest import BASE_CONFIG, BOT_TOKEN, SIGNING_SECRET, ThreadedServer, make_settings

T = TypeVar("T")

# people
WENDY = "U0WASTE"  # waste officer (drafter)
HARRY = "U0HIGHWAYS"  # highways officer (drafter)
CARA = "U0COMMS1"  # comms officer (approver)
COLIN = "U0COMMS2"  # comms officer (approver)
ROGUE = "U0ROGUE"  # someone who is not an approver

E2E_CONFIG: dict[str, Any] = copy.deepcopy(BASE_CONFIG)
E2E_CONFIG["accounts"].append(
    {"name": "nottslibraries", "network": "x", "handle": "NottsLibraries", "user_id": "2222",
     "credentials": "LIBRARIES"})
E2E_CONFIG["services"] = [
    {"name": "waste", "channel": "C0WASTE", "keywords": ["bin", "bins", "recycling", "tip"]},
    {"name": "highways", "channel": "C0HIGHWAYS", "keywords": ["pothole", "potholes", "gritting"]},
    {"name": "libraries", "channel": "C0LIBRARIES", "keywords": ["library"],
     "accounts": ["nottslibraries"]},
    {"name": "vip", "channel": "C0VIP", "keywords": ["mayor"], "authors": ["councillorjo"]},
]


def wait_for(predicate: Callable[[], T], timeout: float = 20.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Harness:
    def __init__(self, database_url: str, config: dict[str, Any] | None = None,
                 x: XEmulator | None = None):
        self.database_url = database_url
        self.config = config or E2E_CONFIG
        self.slack = SlackEmulator(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
        self._own_x = x is None
        self.x = x or XEmulator()
        self._stop = threading.Event()
        self.server: ThreadedServer | None = None

    def settings(self) -> Settings:
        return make_settings(self.database_url, config=self.config,
                             slack_api_url=self.slack.api_url, x_api_base_url=self.x.root_url)

    def start_emulators(self) -> Settings:
        """Slack and X emulators up, with the workspace (channels, people, the comms user
        group) and the accounts the config names. Returns the bot's settings for them."""
        self.slack.start()
        if self._own_x:
            self.x.start()
        for cid, name in [("C0APPROVALS", "comms-approvals"), ("C0COMMS", "comms"),
                          ("C0WASTE", "waste"), ("C0HIGHWAYS", "highways"),
                          ("C0LIBRARIES", "libraries"), ("C0VIP", "vip")]:
            self.slack.add_channel(cid, name)
        for uid, name in [(WENDY, "wendy"), (HARRY, "harry"), (CARA, "cara"), (COLIN, "colin"),
                          (ROGUE, "rogue")]:
            self.slack.add_user(uid, name)
        self.slack.add_usergroup("S0COMMS", "comms", [CARA, COLIN])
        if self._own_x:
            self.x.add_user("1111", "NottsCC", "Nottinghamshire County Council")
            self.x.add_user("2222", "NottsLibraries", "Inspire Libraries")
        settings = self.settings()
        for acc in settings.config.accounts:
            creds = XCredentials.of(settings.credentials[("x", acc.credentials)])
            # with the secrets: the emulator checks each OAuth 1.0a signature, as X does
            self.x.register_credentials(acc.user_id or "", access_token=creds.access_token,
                                        consumer_key=creds.consumer_key,
                                        consumer_secret=creds.consumer_secret,
                                        access_token_secret=creds.access_token_secret)
        return settings

    def start(self) -> Harness:
        settings = self.start_emulators()
        self.engine = db.make_engine(self.database_url)
        # the bot as `serve` builds it (bot/bootstrap.py); the outbox runs below, polls on call
        self.bot = build(settings, engine=self.engine)
        self.rt, self.bolt = self.bot.rt, self.bot.bolt
        self.rt.publisher._sleep = lambda s: time.sleep(min(s, 0.05))
        for name in (a.name for a in settings.config.accounts):
            self.rt.network(name)._sleep = lambda s: time.sleep(min(s, 0.05))  # type: ignore[attr-defined]
        self.server = ThreadedServer(self.bot.asgi).__enter__()
        self.slack.bot_events_url = f"{self.server.url}/slack/events"
        self.outbox = Outbox(self.rt)
        self.outbox_thread = threading.Thread(target=self.outbox.run_forever, args=(self._stop,),
                                              daemon=True)
        self.outbox_thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.rt.kick_outbox()
        self.outbox_thread.join(timeout=10)
        if self.server is not None:
            self.server.__exit__(None, None, None)
        self.bot.stop()
        self.engine.dispose()
        self.slack.stop()
        if self._own_x:
            self.x.stop()

    def __enter__(self) -> Harness:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------ helpers

    def poll(self) -> list[PollResult]:
        return poll_all(self.rt)

    def settle(self, timeout: float = 15.0) -> None:
        """Wait until the outbox has nothing deliverable left."""
        wait_for(lambda: self.outbox.pending() == 0, timeout, "outbox to drain")
        time.sleep(0.05)

    def count(self, model: Any, *where: Any) -> int:
        with self.rt.sessions() as s:
            return s.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0

    def audit_actions(self) -> list[str]:
        from bot.models import AuditEvent

        with self.rt.sessions() as s:
            return list(s.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)))

    def alerts_in(self, channel: str) -> list[dict[str, Any]]:
        return [m for m in self.slack.messages(channel) if m.get("blocks")]


def block_texts(message: dict[str, Any]) -> str:
    """Everything a person would read in a message's blocks, joined."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("plain_text", "mrkdwn") and isinstance(node.get("text"), str):
                out.append(node["text"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(message.get("blocks") or [])
    return "\n".join(out)


def set_clock(monkeypatch: pytest.MonkeyPatch, when: datetime) -> None:
    """The bot's clock reads `when` now (and runs on from there)."""
    monkeypatch.setattr(clock, "_offset", when - datetime.now(UTC))
