"""Pinterest: a pin with image, alt text, link and board; follower count; limits and
faults (API v5 against the Pinterest emulator)."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot.config import ConfigError, parse_config
from integrations.base import Image, PermanentError, TransientError
from integrations.pinterest.emulator import PinterestEmulator
from integrations.pinterest.network import PinterestNetwork
from tests.harness import WENDY, wait_for
from tests.net_harness import NetHarness, config_with

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


def _picture(fmt: str, *, frames: int = 1, alpha: bool = False) -> bytes:
    from PIL import Image as PILImage

    mode = "RGBA" if alpha else "RGB"
    images = [PILImage.new(mode, (40, 30), (20 * n, 120, 200, 128 if alpha else 255)[:len(mode)])
              for n in range(frames)]
    buf = io.BytesIO()
    images[0].save(buf, fmt, save_all=frames > 1, append_images=images[1:])
    return buf.getvalue()


@pytest.fixture
def h(database_url: str, pins: PinterestEmulator) -> Iterator[NetHarness]:
    account = {"name": "nottscc-pins", "network": "pinterest", "handle": "nottscc",
               "credentials": "PINS", "board_id": BOARD}
    with NetHarness(database_url, config_with(account),
                    credentials={("pinterest", "PINS"): {"access_token": TOKEN}},
                    env={"pinterest_api_base_url": pins.root_url}) as harness:
        yield harness


@pytest.mark.parametrize(("fmt", "filename", "alpha", "mime", "magic"), [
    ("GIF", "map.gif", False, "image/png", b"\x89PNG"),
    ("WEBP", "walk.webp", False, "image/jpeg", b"\xff\xd8\xff"),
    ("WEBP", "logo.webp", True, "image/png", b"\x89PNG"),
])
def test_gif_and_webp_are_converted_when_shared_and_pinned_as_png_or_jpeg(
        h: NetHarness, pins: PinterestEmulator, fmt: str, filename: str, alpha: bool,
        mime: str, magic: bytes) -> None:
    """Pinterest takes only JPEG and PNG (ContentType in the v5 spec): a GIF or WebP shared
    on a Pinterest draft is converted as it is attached, so the approvers see what goes."""
    msg = h.publish_with_image("post nottscc-pins Sherwood walks", _picture(fmt, alpha=alpha),
                               filename, "A map of the walks")
    [image] = h.images()
    assert image.mime_type == mime and image.data.startswith(magic)
    assert image.filename == filename.rsplit(".", 1)[0] + (".png" if mime == "image/png" else ".jpg")
    [pin] = pins.pins.values()
    assert pin["_content_type"] == mime and pin["_media_bytes"] == len(image.data)
    h.settle()
    assert any("converted from" in (t.get("text") or "")
               for t in h.slack.thread("C0APPROVALS", msg["ts"]))


def test_animated_gif_is_refused_when_shared_not_at_publish_time(
        h: NetHarness, pins: PinterestEmulator) -> None:
    answer = str(h.slack.send_command(WENDY, "C0WASTE", "post nottscc-pins Lights switch-on")
                 .json()["text"])
    assert "Draft D1" in answer
    msg = h.approval_message()
    h.slack.share_file(WENDY, "C0APPROVALS", _picture("GIF", frames=3), "lights.gif",
                       alt_txt="Lights", thread_ts=msg["ts"])
    wait_for(lambda: "draft.image_refused" in h.audit_actions(), what="refused")
    h.settle()
    [told] = [e for e in h.slack.ephemerals(WENDY) if "animated" in e["text"]]
    assert "Pinterest takes only still JPEG and PNG" in told["text"] and "not attached" in told["text"]
    assert not h.images() and not pins.pins


def test_emulator_refuses_other_content_types(pins: PinterestEmulator) -> None:
    """As the spec's ContentType enum says: a GIF (or bytes that are not the type named)
    is refused with 400; the network refuses before sending."""
    net = _net(pins)
    gif = _picture("GIF")
    with pytest.raises(PermanentError, match="only JPEG and PNG"):
        net.publish("Map", images=[Image(gif, "A map", "map.gif", "image/gif")])
    body = {"board_id": BOARD, "title": "Map", "alt_text": "A map",
            "media_source": {"source_type": "image_base64", "content_type": "image/gif",
                             "data": base64.b64encode(gif).decode()}}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    r = httpx.post(f"{pins.root_url}/v5/pins", json=body, headers=headers)
    assert r.status_code == 400 and "content_type" in r.json()["message"]
    body["media_source"]["content_type"] = "image/png"  # type: ignore[index]
    r = httpx.post(f"{pins.root_url}/v5/pins", json=body, headers=headers)
    assert r.status_code == 400 and "not image/png" in r.json()["message"]
    assert not pins.pins


def test_a_token_without_the_pin_scopes_is_refused(pins: PinterestEmulator) -> None:
    """POST /pins needs boards:read, boards:write, pins:read and pins:write (the spec's
    security); a token without pins:write reads the account but cannot pin."""
    pins.add_account("reader", "read-token", boards=("1234",),
                     scopes="boards:read pins:read user_accounts:read")
    acc = parse_config({"slack": SLACK, "accounts": [{
        "name": "r", "network": "pinterest", "handle": "reader", "credentials": "R",
        "board_id": "1234"}]}).accounts[0]
    net = PinterestNetwork(acc, "read-token", pins.root_url, sleep=lambda s: None)
    assert net.verify_credentials()
    with pytest.raises(PermanentError, match="403"):
        net.publish("Walks", images=[Image(b"\x89PNG\r\n\x1a\n", "A path", "p.png", "image/png")])
    assert not pins.pins
