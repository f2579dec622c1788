"""The demo's Mastodon: the council's account on an emulated instance and a resident who
mentions it (`commsdesk demo`, through bot/demo/networks.py)."""

from __future__ import annotations

from typing import Any

from integrations.mastodon.emulator import MastodonEmulator

TOKEN = "demo-mastodon-token"
MENTIONS = (
    "@NottsCC@mastodon.example the recycling centre at Giltbrook had a queue out onto the "
    "road again today, any plans to extend the opening hours?",
)


class Seed:
    in_campaign = True  # the demo's seeded campaign has a variant for this account
    def __init__(self) -> None:
        self.emulator = MastodonEmulator(domain="mastodon.example")

    def start(self, *, seed_mentions: bool) -> None:
        self.emulator.start()
        self.emulator.add_account("NottsCC", "Nottinghamshire County Council", token=TOKEN,
                                  followers=2300)
        if seed_mentions:
            resident = self.emulator.add_account("gedling_gran", "Margaret",
                                                 domain="social.example")
            for text in MENTIONS:
                self.emulator.add_mention(resident, text)

    def deliver_webhooks(self, bot_url: str) -> None:
        """Nothing is pushed: mentions are polled."""

    def stop(self) -> None:
        self.emulator.stop()

    def accounts(self) -> list[dict[str, Any]]:
        return [{"name": "nottscc-mastodon", "network": "mastodon", "handle": "NottsCC",
                 "credentials": "MASTODON", "base_url": self.emulator.root_url}]

    def credentials(self) -> dict[tuple[str, str], dict[str, str]]:
        return {("mastodon", "MASTODON"): {"access_token": TOKEN}}

    def env(self) -> dict[str, Any]:
        return {}
