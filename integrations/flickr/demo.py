"""The demo's Flickr: the council's photo of a play area and a visitor's comment on it
(`commsdesk demo`, through bot/demo/networks.py)."""

from __future__ import annotations

from typing import Any

from integrations.flickr.emulator import FlickrEmulator

KEYS = {"api_key": "demo-flickr-key", "api_secret": "demo-flickr-secret",
        "oauth_token": "demo-flickr-token", "oauth_token_secret": "demo-flickr-token-secret"}
NSID = "12345678@N01"
COMMENTS = ("Lovely photo! Is the play area at Rufford suitable for under-fives?",)


class Seed:
    in_campaign = False  # the demo's seeded campaign leaves it out (its posts need an image)
    def __init__(self) -> None:
        self.emulator = FlickrEmulator()

    def start(self, *, seed_mentions: bool) -> None:
        self.emulator.start()
        self.emulator.add_app(KEYS["api_key"], KEYS["api_secret"])
        council = self.emulator.add_user(
            NSID, "nottscc", "Nottinghamshire County Council",
            token=(KEYS["oauth_token"], KEYS["oauth_token_secret"]))
        if not seed_mentions:
            return
        photo = self.emulator.add_photo(council, "The new play area at Rufford Abbey")
        visitor = self.emulator.add_user("99999999@N02", "ruffordfan", "Rufford Fan")
        for text in COMMENTS:
            self.emulator.add_comment(photo, visitor, text)

    def deliver_webhooks(self, bot_url: str) -> None:
        """Nothing is pushed: comments are polled."""

    def stop(self) -> None:
        self.emulator.stop()

    def accounts(self) -> list[dict[str, Any]]:
        return [{"name": "nottscc-flickr", "network": "flickr", "handle": "nottscc",
                 "credentials": "FLICKR"}]

    def credentials(self) -> dict[tuple[str, str], dict[str, str]]:
        return {("flickr", "FLICKR"): dict(KEYS)}

    def env(self) -> dict[str, Any]:
        return {"flickr_api_base_url": self.emulator.root_url}
