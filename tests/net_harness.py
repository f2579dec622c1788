"""The e2e harness (tests/harness.py) with one more network's emulator plugged in:
its accounts' credentials go into `Settings.credentials`, its base URL into the env."""

from __future__ import annotations

import copy
import dataclasses
import time
from typing import Any

from bot.config import Settings
from bot.models import Draft, DraftImage
from tests.harness import CARA, E2E_CONFIG, WENDY, Harness, wait_for


def config_with(*accounts: dict[str, Any], services: list[dict[str, Any]] | None = None
                ) -> dict[str, Any]:
    cfg = copy.deepcopy(E2E_CONFIG)
    cfg["accounts"] += list(accounts)
    if services is not None:
        cfg["services"] = services
    return cfg


class NetHarness(Harness):
    def __init__(self, database_url: str, config: dict[str, Any], *,
                 credentials: dict[tuple[str, str], dict[str, str]],
                 env: dict[str, Any] | None = None):
        super().__init__(database_url, config)
        self.network_credentials = credentials
        self.env_overrides = env or {}

    def settings(self) -> Settings:
        base = super().settings()
        env = base.env.model_copy(update=self.env_overrides)
        return dataclasses.replace(base, env=env,
                                   credentials={**base.credentials, **self.network_credentials})

    def approval_message(self, n: int = 1) -> dict[str, Any]:
        """The n-th approval message, once the draft knows it (so a reaction on it counts)."""
        msg: dict[str, Any] = wait_for(
            lambda: len(self.alerts_in("C0APPROVALS")) >= n and self.alerts_in("C0APPROVALS")[n - 1],
            what="approval message")
        wait_for(lambda: self.count(Draft, Draft.approval_ts == msg["ts"]) == 1,
                 what="approval message stored on the draft")
        return msg

    def approve(self, n: int = 1, user: str = CARA) -> dict[str, Any]:
        msg = self.approval_message(n)
        self.slack.add_reaction(user, "C0APPROVALS", msg["ts"], "white_check_mark")
        return msg

    def draft_state(self, draft_id: int = 1) -> str:
        with self.rt.sessions() as s:
            d = s.get(Draft, draft_id)
            return d.state if d else "missing"

    def images(self) -> list[DraftImage]:
        with self.rt.sessions() as s:
            return list(s.query(DraftImage).order_by(DraftImage.id))

    def publish_with_image(self, command: str, data: bytes, filename: str,
                           alt: str) -> dict[str, Any]:
        """The image story: draft by `/social`, an image with alt text shared in the
        approval message's thread, approved by emoji, published. Returns the message."""
        answer = str(self.slack.send_command(WENDY, "C0WASTE", command).json()["text"])
        assert "Draft D1" in answer, answer
        msg = self.approval_message()
        self.slack.share_file(WENDY, "C0APPROVALS", data, filename, alt_txt=alt,
                              thread_ts=msg["ts"])
        wait_for(lambda: len(self.images()) == 1, what="image stored")
        self.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], "white_check_mark")
        wait_for(lambda: self.draft_state() == "published", what="published")
        self.rt.publisher.sweep()
        return msg

    def start(self) -> NetHarness:
        super().start()
        for acc in self.rt.settings.config.accounts:
            net = self.rt.network(acc.name)
            if hasattr(net, "_sleep"):
                net._sleep = lambda s: time.sleep(min(s, 0.05))
        return self
