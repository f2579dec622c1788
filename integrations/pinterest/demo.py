"""The demo's Pinterest: the council's account and the board new pins go to
(`commsdesk demo`, through bot/demo/networks.py)."""

from __future__ import annotations

from typing import Any

from integrations.pinterest.emulator import PinterestEmulator

TOKEN, BOARD = "demo-pinterest-token", "549755885175"


class Seed:
    in_campaign = False  # the demo's seeded campaign leaves it out (its posts need an image)
    def __init__(self) -> None:
        self.emulator = PinterestEmulator()

    def start(self, *, seed_mentions: bool) -> None:
        self.emulator.start()
        self.emulator.add_account("nottscc", TOKEN, followers=900, boards=(BOARD,))

    def deliver_webhooks(self, bot_url: str) -> None:
        """Nothing is pushed (and nothing is read: pins only go out)."""

    def stop(self) -> None:
        self.emulator.stop()

    def accounts(self) -> list[dict[str, Any]]:
        return [{"name": "nottscc-pinterest", "network": "pinterest", "handle": "nottscc",
                 "credentials": "PINTEREST", "board_id": BOARD}]

    def credentials(self) -> dict[tuple[str, str], dict[str, str]]:
        return {("pinterest", "PINTEREST"): {"access_token": TOKEN}}

    def env(self) -> dict[str, Any]:
        return {"pinterest_api_base_url": self.emulator.root_url}
