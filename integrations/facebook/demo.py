"""The demo's Facebook Page: a post with a resident's comment and a Messenger message
(a private message, alerted without its text in a public channel), pushed to the bot's
webhook once it listens (`commsdesk demo`, through bot/demo/networks.py)."""

from __future__ import annotations

from typing import Any

from integrations.facebook.emulator import FacebookEmulator

PAGE, TOKEN = "1000001", "demo-facebook-page-token"
SECRET, VERIFY = "demo-facebook-app-secret", "demo-verify-token"
COMMENTS = ("Is the library in Retford open on Saturday afternoons now?",)
MESSAGES = (
    ("7700123", "Hi, our bins were missed again at 14 Church Lane, Arnold. Can someone "
                "come back today? My number is 07700 900123"),
)


class Seed:
    in_campaign = False  # the demo's seeded campaign leaves it out
    def __init__(self) -> None:
        self.emulator = FacebookEmulator(app_secret=SECRET)
        self._pending: list[dict[str, Any]] = []

    def start(self, *, seed_mentions: bool) -> None:
        self.emulator.start()
        self.emulator.add_page(PAGE, "Nottinghamshire County Council", TOKEN, followers=41000)
        if not seed_mentions:
            return
        post = self.emulator.add_post(PAGE, "Our libraries' summer opening hours are here")
        for n, text in enumerate(COMMENTS):
            _, payload = self.emulator.add_comment(post, f"55500{n}", "Claire Evans", text)
            self._pending.append(payload)
        for psid, text in MESSAGES:
            self._pending.append(self.emulator.message_payload(PAGE, psid, text))

    def deliver_webhooks(self, bot_url: str) -> None:
        """The page pushes comments and messages: send the seeded ones once the bot is
        listening."""
        for payload in self._pending:
            self.emulator.deliver(f"{bot_url}/webhooks/facebook", payload)
        self._pending.clear()

    def stop(self) -> None:
        self.emulator.stop()

    def accounts(self) -> list[dict[str, Any]]:
        return [{"name": "nottscc-facebook", "network": "facebook", "handle": "nottinghamshirecc",
                 "credentials": "FACEBOOK", "page_id": PAGE}]

    def credentials(self) -> dict[tuple[str, str], dict[str, str]]:
        return {("facebook", "FACEBOOK"): {"page_access_token": TOKEN}}

    def env(self) -> dict[str, Any]:
        return {"facebook_graph_base_url": self.emulator.root_url,
                "facebook_app_secret": SECRET, "facebook_verify_token": VERIFY}
