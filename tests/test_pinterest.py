"""Pinterest: a pin with image, alt text, link and board; follower count; limits and
faults (API v5 against the Pinterest emulator)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from commsdesk.config import ConfigError, parse_config
from commsdesk.integrations.base import Image, PermanentError, TransientError
from commsdesk.integrations.pinterest.emulator import PinterestEmulator
from commsdesk.integrations.pinterest.network import PinterestNetwork

TOKEN = "pina_token"
BOARD = "549755885175"
SLACK = {"approvals_channel": "C0A", "default_channel": "C0B", "approvers_usergroup": "S0C"}


@pytest.fixture
def pins() -> Iterator[PinterestEmulator]:
    with PinterestEmulator() as emu:
        emu.add_account("nottscc", TOKEN, followers=1234, boards=(BOARD,))
        yield emu


def _net(emu: PinterestEmulator) -> PinterestNetwork:
    acc = parse_config({"slack": SLACK, "accounts": [{
        "name": "p", "network": "pinterest", "handle": "nottscc", "credentials": "P",
        "board_id": BOARD}]}).accounts[0]
    return PinterestNetwork(acc, TOKEN, emu.root_url, sleep=lambda s: None)


def test_pin_with_image_alt_text_link_and_board(pins: PinterestEmulator) -> None:
    net = _net(pins)
    image = Image(b"\x89PNG fake", "A family walking at Sherwood Pines", "walk.png", "image/png")
    pins.inject("pins", "429", reset_in=0)
    pub = net.publish("Autumn walks in Sherwood\nFind a route near you: "
                      "https://www.nottinghamshire.gov.uk/walks", images=[image])
    pin = pins.pins[pub.external_id]
    assert (pin["title"], pin["board_id"], pin["alt_text"]) == (
        "Autumn walks in Sherwood", BOARD, "A family walking at Sherwood Pines")
    assert pin["link"] == "https://www.nottinghamshire.gov.uk/walks"
    assert pin["_media_bytes"] == len(image.data) and pin["_content_type"] == "image/png"
    assert pub.url == f"https://www.pinterest.com/pin/{pub.external_id}/"
    assert net.followers() == 1234


def test_rules_and_lost_answers(pins: PinterestEmulator) -> None:
    net = _net(pins)
    img = Image(base64.b64decode("/9j/"), "Gritter at work")
    with pytest.raises(PermanentError, match="needs an image"):
        net.publish("Text only")
    with pytest.raises(PermanentError, match="cannot reply"):
        net.publish("hi", in_reply_to="1", images=[img])
    with pytest.raises(PermanentError, match="title"):
        net.publish("t" * 101, images=[img])
    with pytest.raises(PermanentError, match="alt text"):
        net.publish("Title", images=[Image(b"1", "")])
    pins.inject("pins", "drop_after_commit")
    with pytest.raises(TransientError):
        net.publish("Winter ready\nGritting routes", images=[img])
    found = net.find_published("Winter ready\nGritting routes", in_reply_to=None,
                               not_before=datetime.now(UTC) - timedelta(minutes=2))
    assert found is not None and len(pins.pins) == 1
    with pytest.raises(ConfigError, match="needs board_id"):
        parse_config({"slack": SLACK, "accounts": [{"name": "p", "network": "pinterest",
                                                    "handle": "n", "credentials": "P"}]})
