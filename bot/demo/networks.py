"""The demo's other networks: Mastodon, Bluesky, Facebook Pages, Flickr and Pinterest,
each an emulator with the council's account and a resident or two who mention it.

X is the demo's main stage (the page's public pane); these accounts sit beside it in
the same config, so their mentions arrive in the same Slack channels, labelled with
their network, and drafts for them are approved and published the same way.
Their emulators' state is not saved: a resumed demo starts them empty.
"""

from __future__ import annotations

from typing import Any

from integrations.bluesky.emulator import BlueskyEmulator
from integrations.facebook.emulator import FacebookEmulator
from integrations.flickr.emulator import FlickrEmulator
from integrations.mastodon.emulator import MastodonEmulator
from integrations.pinterest.emulator import PinterestEmulator

MASTO_TOKEN = "demo-mastodon-token"
BSKY_PASSWORD = "demo-app-password"
FB_PAGE, FB_TOKEN = "1000001", "demo-facebook-page-token"
FB_SECRET, FB_VERIFY = "demo-facebook-app-secret", "demo-verify-token"
FLICKR = {"api_key": "demo-flickr-key", "api_secret": "demo-flickr-secret",
          "oauth_token": "demo-flickr-token", "oauth_token_secret": "demo-flickr-token-secret"}
FLICKR_NSID = "12345678@N01"
PIN_TOKEN, PIN_BOARD = "demo-pinterest-token", "549755885175"

# what residents say on each network when the demo starts
MASTODON_MENTIONS = (
    "@NottsCC@mastodon.example the recycling centre at Giltbrook had a queue out onto the "
    "road again today, any plans to extend the opening hours?",
)
BLUESKY_MENTIONS = (
    "@nottscc.bsky.social street light out on Chilwell Road since Friday, it's pitch black "
    "at the bus stop",
)
FACEBOOK_COMMENTS = (
    "Is the library in Retford open on Saturday afternoons now?",
)
# a Messenger message: a private message, alerted without its text in a public channel
FACEBOOK_MESSAGES = (
    ("7700123", "Hi, our bins were missed again at 14 Church Lane, Arnold. Can someone "
                "come back today? My number is 07700 900123"),
)
FLICKR_COMMENTS = ("Lovely photo! Is the play area at Rufford suitable for under-fives?",)


class OtherNetworks:
    def __init__(self) -> None:
        self.mastodon = MastodonEmulator(domain="mastodon.example")
        self.bluesky = BlueskyEmulator()
        self.facebook = FacebookEmulator(app_secret=FB_SECRET)
        self.flickr = FlickrEmulator()
        self.pinterest = PinterestEmulator()
        self._pending_webhooks: list[dict[str, Any]] = []

    @property
    def emulators(self) -> list[Any]:
        return [self.mastodon, self.bluesky, self.facebook, self.flickr, self.pinterest]

    def start(self, *, seed_mentions: bool) -> None:
        for emu in self.emulators:
            emu.start()
        self.mastodon.add_account("NottsCC", "Nottinghamshire County Council",
                                  token=MASTO_TOKEN, followers=2300)
        self.bluesky.add_account("nottscc.bsky.social", "Nottinghamshire County Council",
                                 app_password=BSKY_PASSWORD, followers=1800)
        self.facebook.add_page(FB_PAGE, "Nottinghamshire County Council", FB_TOKEN,
                               followers=41000)
        self.flickr.add_app(FLICKR["api_key"], FLICKR["api_secret"])
        flickr_council = self.flickr.add_user(
            FLICKR_NSID, "nottscc", "Nottinghamshire County Council",
            token=(FLICKR["oauth_token"], FLICKR["oauth_token_secret"]))
        self.pinterest.add_account("nottscc", PIN_TOKEN, followers=900, boards=(PIN_BOARD,))
        if not seed_mentions:
            return
        resident = self.mastodon.add_account("gedling_gran", "Margaret", domain="social.example")
        for text in MASTODON_MENTIONS:
            self.mastodon.add_mention(resident, text)
        walker = self.bluesky.add_account("beeston.bsky.social", "Priti from Beeston")
        for text in BLUESKY_MENTIONS:
            self.bluesky.add_post(walker, text)
        post = self.facebook.add_post(FB_PAGE, "Our libraries' summer opening hours are here")
        for n, text in enumerate(FACEBOOK_COMMENTS):
            _, payload = self.facebook.add_comment(post, f"55500{n}", "Claire Evans", text)
            self._pending_webhooks.append(payload)
        for psid, text in FACEBOOK_MESSAGES:
            self._pending_webhooks.append(self.facebook.message_payload(FB_PAGE, psid, text))
        photo = self.flickr.add_photo(flickr_council, "The new play area at Rufford Abbey")
        visitor = self.flickr.add_user("99999999@N02", "ruffordfan", "Rufford Fan")
        for text in FLICKR_COMMENTS:
            self.flickr.add_comment(photo, visitor, text)

    def deliver_webhooks(self, bot_url: str) -> None:
        """Facebook pushes comments and messages: send the seeded ones once the bot is
        listening."""
        for payload in self._pending_webhooks:
            self.facebook.deliver(f"{bot_url}/webhooks/facebook", payload)
        self._pending_webhooks.clear()

    def stop(self) -> None:
        for emu in self.emulators:
            emu.stop()

    def accounts(self) -> list[dict[str, Any]]:
        return [
            {"name": "nottscc-mastodon", "network": "mastodon", "handle": "NottsCC",
             "credentials": "MASTODON", "base_url": self.mastodon.root_url},
            {"name": "nottscc-bluesky", "network": "bluesky", "handle": "nottscc.bsky.social",
             "credentials": "BLUESKY"},
            {"name": "nottscc-facebook", "network": "facebook", "handle": "nottinghamshirecc",
             "credentials": "FACEBOOK", "page_id": FB_PAGE},
            {"name": "nottscc-flickr", "network": "flickr", "handle": "nottscc",
             "credentials": "FLICKR"},
            {"name": "nottscc-pinterest", "network": "pinterest", "handle": "nottscc",
             "credentials": "PINTEREST", "board_id": PIN_BOARD},
        ]

    @staticmethod
    def credentials() -> dict[tuple[str, str], dict[str, str]]:
        return {("mastodon", "MASTODON"): {"access_token": MASTO_TOKEN},
                ("bluesky", "BLUESKY"): {"app_password": BSKY_PASSWORD},
                ("facebook", "FACEBOOK"): {"page_access_token": FB_TOKEN},
                ("flickr", "FLICKR"): dict(FLICKR),
                ("pinterest", "PINTEREST"): {"access_token": PIN_TOKEN}}

    def env(self) -> dict[str, Any]:
        return {"bluesky_api_base_url": self.bluesky.root_url,
                "facebook_graph_base_url": self.facebook.root_url,
                "facebook_app_secret": FB_SECRET, "facebook_verify_token": FB_VERIFY,
                "flickr_api_base_url": self.flickr.root_url,
                "pinterest_api_base_url": self.pinterest.root_url}
