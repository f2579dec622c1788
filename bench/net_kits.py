"""One account on each of the six networks, with its emulator: what the exactly-once tests
(tests/integrations/test_exactly_once_networks.py) and the fault trial (bench/fault_trial.py) need to
publish there, hurt the network, and count what it really shows.

A kit names the emulator's fault key for the call that makes a post (`create`) and for
the one the publisher looks with (`look`), whether a post needs an image (Flickr and
Pinterest posts are photos and pins; Facebook's photo post is used so that making a post
and reading the feed are different endpoints), and counts the live posts with a text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.emulators.http import EmulatorServer

NETWORKS = ("x", "mastodon", "bluesky", "facebook", "flickr", "pinterest")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
ALT = "A gritter lorry on a snowy road at dusk"

MASTO_TOKEN = "masto-token-nottscc"
BSKY_PASSWORD = "abcd-efgh-ijkl-mnop"
FB_PAGE, FB_TOKEN, FB_SECRET = "1000001", "EAAB-page-token-nottscc", "fb-app-secret-123456"
FLICKR_CREDS = {"api_key": "flickr-key", "api_secret": "flickr-app-secret",
                "oauth_token": "72157-token", "oauth_token_secret": "token-secret-xyz"}
FLICKR_NSID = "12345678@N01"
PIN_TOKEN, PIN_BOARD = "pina_token", "549755885175"


@dataclass
class Kit:
    network: str
    account: str  # the account's name in the config
    create: str  # fault key of the call that makes a post
    look: str  # fault key of the call the publisher looks with
    image: bool = False
    emulator: Any = None
    config_account: dict[str, Any] | None = None  # None: X, already in the base config
    credentials: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    council: Any = None

    def inject(self, which: str, kind: str, times: int = 1, **params: Any) -> None:
        key = self.create if which == "create" else self.look
        self.emulator.inject(key, kind, times, **params)
        if which == "look" and self.network == "bluesky":  # looking by record key first
            self.emulator.inject("com.atproto.repo.getRecord", kind, times, **params)

    def posts(self, text: str) -> int:
        """How many live posts with this text the council's account has."""
        emu = self.emulator
        first = text.partition("\n")[0].strip()
        if self.network == "x":
            return sum(1 for p in emu.posts_created() if not p.get("deleted")
                       and p.get("sent_text") == text)
        if self.network == "mastodon":
            from integrations.common import html_to_text

            return sum(1 for s in emu.posts_by(self.council.id)
                       if html_to_text(s.text) == text or s.text == text)
        if self.network == "bluesky":
            return sum(1 for r in emu.posts_by(self.council.did) if r.value.get("text") == text)
        if self.network == "facebook":
            with emu._lock:
                return sum(1 for o in emu.objects.values() if o.kind == "post"
                           and o.message == text and not getattr(o, "deleted", False))
        if self.network == "flickr":
            with emu._lock:
                return sum(1 for p in emu.photos.values() if p.owner == FLICKR_NSID
                           and p.title == first)
        if self.network == "pinterest":
            with emu._lock:
                return sum(1 for p in emu.pins.values() if p.get("title") == first)
        raise ValueError(self.network)

    def stop(self) -> None:
        if self.network != "x" and self.emulator is not None:
            self.emulator.stop()


def make_kit(network: str, x: EmulatorServer | None = None) -> Kit:
    """The kit for `network`, its emulator started (X: pass the X emulator in use)."""
    if network == "x":
        kit = Kit("x", "nottscc", "create_tweet", "timeline", emulator=x)
        if x is not None:
            kit.council = "1111"
        return kit
    if network == "mastodon":
        from integrations.mastodon.emulator import MastodonEmulator

        emu: Any = MastodonEmulator(domain="mastodon.example")
        emu.start()
        council = emu.add_account("NottsCC", "Nottinghamshire County Council", token=MASTO_TOKEN)
        return Kit("mastodon", "nottscc-masto", "post_status", "account_statuses",
                   emulator=emu, council=council,
                   config_account={"name": "nottscc-masto", "network": "mastodon",
                                   "handle": "NottsCC", "credentials": "MASTO",
                                   "base_url": emu.root_url},
                   credentials={("mastodon", "MASTO"): {"access_token": MASTO_TOKEN}})
    if network == "bluesky":
        from integrations.bluesky.emulator import BlueskyEmulator

        emu = BlueskyEmulator()
        emu.start()
        council = emu.add_account("nottscc.bsky.social", "Nottinghamshire County Council",
                                  app_password=BSKY_PASSWORD)
        return Kit("bluesky", "nottscc-bsky", "com.atproto.repo.createRecord",
                   "com.atproto.repo.listRecords", emulator=emu, council=council,
                   config_account={"name": "nottscc-bsky", "network": "bluesky",
                                   "handle": "nottscc.bsky.social", "credentials": "BSKY"},
                   credentials={("bluesky", "BSKY"): {"app_password": BSKY_PASSWORD}},
                   env={"bluesky_api_base_url": emu.root_url})
    if network == "facebook":
        from integrations.facebook.emulator import FacebookEmulator

        emu = FacebookEmulator(app_secret=FB_SECRET)
        emu.start()
        council = emu.add_page(FB_PAGE, "Nottinghamshire County Council", FB_TOKEN)
        return Kit("facebook", "nottscc-fb", "photos", "feed", image=True, emulator=emu,
                   council=council,
                   config_account={"name": "nottscc-fb", "network": "facebook",
                                   "handle": "nottinghamshirecc", "credentials": "FB",
                                   "page_id": FB_PAGE},
                   credentials={("facebook", "FB"): {"page_access_token": FB_TOKEN}},
                   env={"facebook_graph_base_url": emu.root_url,
                        "facebook_app_secret": FB_SECRET, "facebook_verify_token": "verify"})
    if network == "flickr":
        from integrations.flickr.emulator import FlickrEmulator

        emu = FlickrEmulator()
        emu.start()
        emu.add_app(FLICKR_CREDS["api_key"], FLICKR_CREDS["api_secret"])
        council = emu.add_user(FLICKR_NSID, "nottscc", "Nottinghamshire County Council",
                               token=(FLICKR_CREDS["oauth_token"],
                                      FLICKR_CREDS["oauth_token_secret"]))
        return Kit("flickr", "nottscc-flickr", "upload", "flickr.people.getPhotos", image=True,
                   emulator=emu, council=council,
                   config_account={"name": "nottscc-flickr", "network": "flickr",
                                   "handle": "nottscc", "credentials": "FLICKR"},
                   credentials={("flickr", "FLICKR"): dict(FLICKR_CREDS)},
                   env={"flickr_api_base_url": emu.root_url})
    if network == "pinterest":
        from integrations.pinterest.emulator import PinterestEmulator

        emu = PinterestEmulator()
        emu.start()
        emu.add_account("nottscc", PIN_TOKEN, boards=(PIN_BOARD,))
        return Kit("pinterest", "nottscc-pins", "pins", "board_pins", image=True, emulator=emu,
                   config_account={"name": "nottscc-pins", "network": "pinterest",
                                   "handle": "nottscc", "credentials": "PINS",
                                   "board_id": PIN_BOARD},
                   credentials={("pinterest", "PINS"): {"access_token": PIN_TOKEN}},
                   env={"pinterest_api_base_url": emu.root_url})
    raise ValueError(f"unknown network {network}")
