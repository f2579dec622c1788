"""Images on drafts, end to end over HTTP: an image shared in the thread of the approval
message is fetched from Slack (files.info + url_private with the bot token), stored with
the draft, shown on the approval message, required to have alt text, withdrawn-approval
on change, and published with its alt text (Pinterest emulator); a network that takes no
images refuses it up front and stores nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.models import Approval, AuditEvent, Draft, DraftImage
from integrations.pinterest.emulator import PinterestEmulator
from tests.harness import CARA, WENDY, block_texts, wait_for
from tests.net_harness import NetHarness, config_with

TOKEN = "pina_token"
BOARD = "549755885175"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


@pytest.fixture
def pins() -> Iterator[PinterestEmulator]:
    with PinterestEmulator() as emu:
        emu.add_account("nottscc", TOKEN, followers=10, boards=(BOARD,))
        yield emu


@pytest.fixture
def h(database_url: str, pins: PinterestEmulator) -> Iterator[NetHarness]:
    account = {"name": "nottscc-pins", "network": "pinterest", "handle": "nottscc",
               "credentials": "PINS", "board_id": BOARD}
    with NetHarness(database_url, config_with(account),
                    credentials={("pinterest", "PINS"): {"access_token": TOKEN}},
                    env={"pinterest_api_base_url": pins.root_url}) as harness:
        yield harness


def _draft(h: NetHarness, command: str) -> dict:
    answer = str(h.slack.send_command(WENDY, "C0WASTE", command).json()["text"])
    assert "Draft D1" in answer, answer
    return h.approval_message()


def _approval_text(h: NetHarness, ts: str) -> str:
    msg = h.slack.message("C0APPROVALS", ts)
    assert msg is not None
    return block_texts(msg)


def _images(h: NetHarness) -> list[DraftImage]:
    with h.rt.sessions() as s:
        return list(s.query(DraftImage).order_by(DraftImage.id))


def test_image_with_alt_text_in_the_thread_is_published_with_the_pin(
        h: NetHarness, pins: PinterestEmulator) -> None:
    msg = _draft(h, "post nottscc-pins Autumn walks in Sherwood")
    alt = "A family walking under <orange> oak trees & a dog"
    h.slack.share_file(WENDY, "C0APPROVALS", PNG, "walk.png", alt_txt=alt, thread_ts=msg["ts"])
    wait_for(lambda: len(_images(h)) == 1, what="image stored")
    [image] = _images(h)
    assert (image.data, image.alt_text, image.mime_type, image.filename) == (
        PNG, alt, "image/png", "walk.png")
    # fetched the way a real bot must: files.info, then url_private with the bot token
    assert h.slack.calls_to("files.info") and h.slack.calls_to("url_private")
    h.settle()
    wait_for(lambda: "1 image attached" in _approval_text(h, msg["ts"]), what="approval shows it")
    shown = _approval_text(h, msg["ts"])
    assert "walk.png" in shown and "&lt;orange&gt; oak trees &amp; a dog" in shown
    assert any("Image walk.png attached to D1" in (t.get("text") or "")
               for t in h.slack.thread("C0APPROVALS", msg["ts"]))
    h.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], "white_check_mark")
    wait_for(lambda: h.draft_state() == "published", what="published")
    h.rt.publisher.sweep()
    assert len(pins.pins) == 1
    [pin] = pins.pins.values()
    assert pin["title"] == "Autumn walks in Sherwood" and pin["alt_text"] == alt
    assert pin["_media_bytes"] == len(PNG) and pin["_content_type"] == "image/png"
    actions = h.audit_actions()
    assert actions.index("draft.image_added") < actions.index("draft.approved") \
        < actions.index("draft.published")


def test_missing_alt_text_blocks_approval_until_given_in_the_thread(
        h: NetHarness, pins: PinterestEmulator) -> None:
    msg = _draft(h, "post nottscc-pins Gritting routes for winter")
    h.slack.share_file(WENDY, "C0APPROVALS", PNG, "IMG_2041.png", thread_ts=msg["ts"])
    wait_for(lambda: len(_images(h)) == 1, what="image stored")
    assert _images(h)[0].alt_text is None
    h.settle()
    assert "no alt text" in _approval_text(h, msg["ts"])
    assert any("cannot be approved yet" in (t.get("text") or "")
               for t in h.slack.thread("C0APPROVALS", msg["ts"]))
    h.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], "white_check_mark")
    wait_for(lambda: any("no alt text" in e["text"] for e in h.slack.ephemerals(CARA)),
             what="refusal told to the approver")
    assert h.draft_state() == "pending" and not pins.pins
    assert h.count(Approval, Approval.decision == "refused") == 1
    # the author gives it in the thread; then it can be approved
    h.slack.post_user_message(WENDY, "C0APPROVALS", "alt: A gritter lorry spreading salt",
                              thread_ts=msg["ts"])
    wait_for(lambda: _images(h)[0].alt_text == "A gritter lorry spreading salt",
             what="alt text saved")
    h.settle()
    assert "A gritter lorry spreading salt" in _approval_text(h, msg["ts"])
    h.slack.remove_reaction(CARA, "C0APPROVALS", msg["ts"], "white_check_mark")
    h.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], "white_check_mark")
    wait_for(lambda: h.draft_state() == "published", what="published")
    [pin] = pins.pins.values()
    assert pin["alt_text"] == "A gritter lorry spreading salt"
    assert "draft.image_alt_text_set" in h.audit_actions()


def test_image_added_after_approval_withdraws_the_approval(
        h: NetHarness, pins: PinterestEmulator) -> None:
    msg = _draft(h, "schedule nottscc-pins 2099-06-01 09:00 Summer reading challenge")
    h.slack.share_file(WENDY, "C0APPROVALS", PNG, "first.png", alt_txt="Children reading",
                       thread_ts=msg["ts"])
    wait_for(lambda: len(_images(h)) == 1, what="first image")
    h.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], "white_check_mark")
    wait_for(lambda: h.draft_state() == "approved", what="approved")
    h.slack.share_file(WENDY, "C0APPROVALS", PNG + b"2", "second.png",
                       text="alt: A library shelf", thread_ts=msg["ts"])
    wait_for(lambda: len(_images(h)) == 2, what="second image")
    assert h.draft_state() == "pending"
    assert _images(h)[1].alt_text == "A library shelf"
    with h.rt.sessions() as s:
        d = s.get_one(Draft, 1)
        assert d.version == 3 and d.approved_by is None
        withdrawn = s.query(Approval).filter_by(decision="withdrawn").one()
        assert withdrawn.reason == "image added after approval"
        events = s.query(AuditEvent).filter_by(action="draft.approval_withdrawn").all()
        assert [e.details["reason"] for e in events] == ["image added after approval"]
    h.settle()
    wait_for(lambda: "2 images attached" in _approval_text(h, msg["ts"]), what="shown")
    assert "Waiting for approval" in _approval_text(h, msg["ts"])
    assert any("approval was withdrawn" in (t.get("text") or "")
               for t in h.slack.thread("C0APPROVALS", msg["ts"]))
    assert not pins.pins


def test_network_without_media_refuses_the_image_and_stores_nothing(h: NetHarness) -> None:
    from integrations.base import Capability

    # every network commsdesk ships takes images; a text-only one (a future integration
    # that declares no MEDIA) is stood in for by this account's network without it
    net = h.rt.network("nottscc")
    net.capabilities = net.capabilities - {Capability.MEDIA}  # type: ignore[misc]
    msg = _draft(h, "post nottscc Bin collections are running as normal")
    h.slack.share_file(WENDY, "C0APPROVALS", PNG, "bins.png", alt_txt="A green bin",
                       thread_ts=msg["ts"])
    wait_for(lambda: "draft.image_refused" in h.audit_actions(), what="refusal audited")
    h.settle()
    [told] = [e for e in h.slack.ephemerals(WENDY) if "cannot publish images" in e["text"]]
    assert "@NottsCC on X," in told["text"] and "not attached" in told["text"]
    assert told.get("thread_ts") == msg["ts"]
    assert not _images(h) and not h.slack.calls_to("url_private")
    with h.rt.sessions() as s:
        assert s.get_one(Draft, 1).version == 1


def test_only_the_author_or_an_approver_may_add_images(h: NetHarness) -> None:
    from tests.harness import HARRY

    msg = _draft(h, "post nottscc-pins Library opening hours")
    h.slack.share_file(HARRY, "C0APPROVALS", PNG, "x.png", alt_txt="Something",
                       thread_ts=msg["ts"])
    wait_for(lambda: "draft.image_refused" in h.audit_actions(), what="refusal audited")
    assert not _images(h)
