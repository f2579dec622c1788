"""The demo's Bluesky: the council's account and a resident who mentions it
(`commsdesk demo`, through bot/demo/networks.py)."""

from __future__ import annotations

from typing import Any

from integrations.bluesky.emulator import BlueskyEmulator

PASSWORD = "demo-app-password"
MENTIONS = (
    "@nottscc.bsky.social street light out on Chilwell Road since Friday, it's pitch black "
    "at the bus stop",
)


class Seed:
    in_campaign = True  # the demo's seeded campaign has a variant for this account
    def __init__(self) -> None:
        self.emulator = BlueskyEmulator()

    def start(self, *, seed_mentions: bool) -> None:
        self.emulator.start()
        self.emulator.add_account("nottscc.bsky.social", "Nottinghamshire County Council",
                                  app_password=PASSWORD, followers=1800)
        if seed_mentions:
            walker = self.emulator.add_account("beeston.bsky.social", "Priti from Beeston")
            for text in MENTIONS:
                self.emulator.add_post(walker, text)

    def deliver_webhooks(self, bot_url: str) -> None:
        """Nothing is pushed: notifications are polled."""

    def stop(self) -> None:
        self.emulator.stop()

    def accounts(self) -> list[dict[str, Any]]:
        return [{"name": "nottscc-bluesky", "network": "bluesky",
                 "handle": "nottscc.bsky.social", "credentials": "BLUESKY"}]

    def credentials(self) -> dict[tuple[str, str], dict[str, str]]:
        return {("bluesky", "BLUESKY"): {"app_password": PASSWORD}}

    def env(self) -> dict[str, Any]:
        return {"bluesky_api_base_url": self.emulator.root_url}
