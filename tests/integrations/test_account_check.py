"""`check-config --online`: each account's credentials are tried against its network
(every network's emulator here)."""

from __future__ import annotations

import copy
import dataclasses

from integrations.account_check import check_networks
from integrations.bluesky.emulator import BlueskyEmulator
from integrations.facebook.emulator import FacebookEmulator
from integrations.flickr.emulator import FlickrEmulator
from integrations.mastodon.emulator import MastodonEmulator
from integrations.pinterest.emulator import PinterestEmulator
from integrations.x.emulator import XEmulator
from tests.conftest import BASE_CONFIG, make_settings

GOOD = {
    ("mastodon", "M"): {"access_token": "masto-ok"},
    ("bluesky", "B"): {"app_password": "app-pass-ok"},
    ("facebook", "F"): {"page_access_token": "fb-ok"},
    ("flickr", "L"): {"api_key": "k", "api_secret": "s", "oauth_token": "t",
                      "oauth_token_secret": "ts"},
    ("pinterest", "P"): {"access_token": "pin-ok"},
}


def test_good_and_bad_credentials_on_every_network(tmp_path) -> None:
    with XEmulator() as x, MastodonEmulator() as masto, BlueskyEmulator() as bsky, \
            FacebookEmulator() as fb, FlickrEmulator() as flickr, PinterestEmulator() as pins:
        x.add_user("1111", "NottsCC", "Nottinghamshire County Council")
        masto.add_account("NottsCC", token="masto-ok")
        bsky.add_account("nottscc.bsky.social", app_password="app-pass-ok")
        fb.add_page("1000001", "Notts", "fb-ok")
        flickr.add_app("k", "s")
        flickr.add_user("1@N01", "nottscc", token=("t", "ts"))
        pins.add_account("nottscc", "pin-ok", boards=("77",))
        cfg = copy.deepcopy(BASE_CONFIG)
        cfg["accounts"] += [
            {"name": "m", "network": "mastodon", "handle": "NottsCC", "credentials": "M",
             "base_url": masto.root_url},
            {"name": "b", "network": "bluesky", "handle": "nottscc.bsky.social", "credentials": "B"},
            {"name": "f", "network": "facebook", "handle": "notts", "credentials": "F",
             "page_id": "1000001"},
            {"name": "l", "network": "flickr", "handle": "nottscc", "credentials": "L"},
            {"name": "p", "network": "pinterest", "handle": "nottscc", "credentials": "P",
             "board_id": "77"},
        ]
        base = make_settings(f"sqlite:///{tmp_path}/x.db", config=cfg, x_api_base_url=x.root_url)
        x.register_credentials("1111", access_token=base.credentials[("x", "NOTTSCC")]["access_token"])
        env = base.env.model_copy(update={
            "bluesky_api_base_url": bsky.root_url, "facebook_graph_base_url": fb.root_url,
            "flickr_api_base_url": flickr.root_url, "pinterest_api_base_url": pins.root_url})
        xs = {k: v for k, v in base.credentials.items() if k[0] == "x"}
        good = dataclasses.replace(base, env=env, credentials={**xs, **GOOD})
        assert check_networks(good) == []
        bad = dataclasses.replace(good, credentials={**xs, **{
            k: {p: v + "-wrong" for p, v in parts.items()} for k, parts in GOOD.items()}})
        problems = check_networks(bad)
        assert [p.split(":")[0] for p in problems] == [
            "accounts 'm'", "accounts 'b'", "accounts 'f'", "accounts 'l'", "accounts 'p'"]
        missing = dataclasses.replace(good, credentials=xs)
        assert any("MASTODON_M_ACCESS_TOKEN" in p for p in check_networks(missing))
