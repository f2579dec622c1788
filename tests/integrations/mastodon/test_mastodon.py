"""Mastodon: mention notification in -> service channel -> /social reply -> approval ->
exactly one reply, in the thread, with the original's visibility (Mastodon.py against
the Mastodon emulator)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.config import ConfigError, parse_config
from bot.domain import slash
from bot.models import Account, Draft, Mention, PollCursor
from integrations.base import TransientError
from integrations.mastodon.emulator import MastodonEmulator
from integrations.mastodon.network import MastodonNetwork, mastodon_length
from tests.harness import CARA, WENDY, block_texts, wait_for
from tests.net_harness import NetHarness, config_with

TOKEN = "masto-token-nottscc"


@pytest.fixture
def masto() -> Iterator[MastodonEmulator]:
    with MastodonEmulator(domain="mastodon.example") as emu:
        emu.council = emu.add_account("NottsCC", "Nottinghamshire County Council",  # type: ignore[attr-defined]
                                      token=TOKEN)
        emu.jane = emu.add_account("jane", "Jane Resident", domain="social.example")  # type: ignore[attr-defined]
        yield emu


@pytest.fixture
def h(database_url: str, masto: MastodonEmulator) -> Iterator[NetHarness]:
    account = {"name": "nottscc-masto", "network": "mastodon", "handle": "NottsCC",
               "credentials": "MASTO", "base_url": masto.root_url}
    with NetHarness(database_url, config_with(account),
                    credentials={("mastodon", "MASTO"): {"access_token": TOKEN}}) as harness:
        yield harness


def draft_state(h: NetHarness, draft_id: int = 1) -> str:
    with h.rt.sessions() as s:
        d = s.get(Draft, draft_id)
        return d.state if d else "missing"


def approval(h: NetHarness) -> dict:
    return h.approval_message()


@pytest.mark.parametrize("visibility", ["public", "private"])
def test_mention_to_reply_on_the_thread_with_same_visibility(h: NetHarness, masto: MastodonEmulator,
                                                             visibility: str) -> None:
    jane = masto.jane  # type: ignore[attr-defined]
    council = masto.council  # type: ignore[attr-defined]
    original = masto.add_mention(jane, "@NottsCC@mastodon.example my bins were not collected <b>again</b>",
                                 visibility=visibility)
    h.poll()
    h.settle()
    alerts = h.alerts_in("C0WASTE")
    assert len(alerts) == 1
    text = block_texts(alerts[0])
    assert "bins were not collected" in text and "&lt;b&gt;again&lt;/b&gt;" in text
    with h.rt.sessions() as s:
        m = s.query(Mention).one()
        assert (m.network, m.external_id) == ("mastodon", original.id)
        assert m.author_handle == "jane@social.example"
        assert m.url == f"https://social.example/@jane/{original.id}"
    # the post's link works as the reference
    answer = str(h.slack.send_command(WENDY, "C0WASTE",
                                      f"reply {m.url} Sorry Jane, a crew is on its way").json()["text"])
    assert "Draft D1 created" in answer
    msg = approval(h)
    assert "/500 characters" in block_texts(msg)
    h.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], "white_check_mark")
    wait_for(lambda: draft_state(h) == "published", what="published")
    h.rt.publisher.sweep()
    replies = masto.posts_by(council.id)
    assert len(replies) == 1
    reply = replies[0]
    assert reply.in_reply_to_id == original.id
    assert reply.visibility == visibility
    assert reply.text == "@jane@social.example Sorry Jane, a crew is on its way"
    assert jane.id in reply.mentions
    h.settle()
    thread = h.slack.thread("C0APPROVALS", msg["ts"])
    assert any(f"/@NottsCC/{reply.id}" in (t.get("text") or "") for t in thread)
    # a second poll brings nothing new (the cursor moved past the mention)
    h.poll()
    with h.rt.sessions() as s:
        assert s.query(Mention).count() == 1


def test_new_post_and_limit(h: NetHarness, masto: MastodonEmulator) -> None:
    long = "Gritters " * 60
    answer = str(h.slack.send_command(WENDY, "C0WASTE", f"post nottscc-masto {long}").json()["text"])
    assert "the limit is 500" in answer
    r = h.slack.send_command(WENDY, "C0WASTE", "post nottscc-masto Gritters are out tonight")
    assert "Draft D1" in r.json()["text"]
    h.slack.add_reaction(CARA, "C0APPROVALS", approval(h)["ts"], "white_check_mark")
    wait_for(lambda: draft_state(h) == "published")
    [post] = masto.posts_by(masto.council.id)  # type: ignore[attr-defined]
    assert post.text == "Gritters are out tonight" and post.visibility == "public"
    assert post.in_reply_to_id is None


def _net(masto: MastodonEmulator) -> MastodonNetwork:
    acc = parse_config({"slack": {"approvals_channel": "C0A", "default_channel": "C0B",
                                  "approvers_usergroup": "S0C"},
                        "accounts": [{"name": "m", "network": "mastodon", "handle": "NottsCC",
                                      "credentials": "M", "base_url": masto.root_url}]}).accounts[0]
    return MastodonNetwork(acc, TOKEN, sleep=lambda s: None)


def test_faults_pagination_and_idempotent_retry(masto: MastodonEmulator) -> None:
    jane = masto.jane  # type: ignore[attr-defined]
    ids = [masto.add_mention(jane, f"@NottsCC hello {i}").id for i in range(45)]
    masto.add_follow(jane, masto.council)  # type: ignore[attr-defined]
    net = _net(masto)
    masto.inject("notifications", "429", reset_in=0)
    masto.inject("notifications", "503")
    pages = list(net.fetch_mentions(None))
    assert len(pages) == 2
    assert sorted(m.external_id for p in pages for m in p.mentions) == sorted(ids)
    cursor = pages[-1].cursor
    assert cursor is not None and cursor.startswith("n:")
    more = [masto.add_mention(jane, f"@NottsCC again {i}").id for i in range(2)]
    assert [m.external_id for p in net.fetch_mentions(cursor) for m in p.mentions] == more[::-1]
    assert masto.requests_to("notifications")[-1]["since_id"] == cursor[2:]
    # a cursor stored before notification cursors (a status id) is read once, then replaced
    legacy = list(net.fetch_mentions(ids[40]))
    assert {m.external_id for p in legacy for m in p.mentions} >= set(more) | set(ids[41:])
    assert legacy[-1].cursor is not None and legacy[-1].cursor.startswith("n:")
    assert net.followers() == 1
    # the answer to a post is lost: the post exists; trying again must not post twice
    masto.inject("post_status", "drop_after_commit")
    with pytest.raises(TransientError):
        net.publish("Road closed on Elm Road")
    found = net.find_published("Road closed on Elm Road", in_reply_to=None,
                               not_before=datetime.now(UTC) - timedelta(minutes=2))
    assert found is not None
    again = net.publish("Road closed on Elm Road")  # same Idempotency-Key
    assert again.external_id == found.external_id
    assert len(masto.posts_by(masto.council.id)) == 1  # type: ignore[attr-defined]


def test_rules() -> None:
    assert mastodon_length("see https://www.nottinghamshire.gov.uk/" + "x" * 100) == 4 + 23
    assert mastodon_length("@jane@social.example hi") == len("@jane hi")
    assert slash.parse_ref("https://mastodon.social/@jane/1234567") == slash.MentionRef(
        network="mastodon", url="https://mastodon.social/@jane/1234567")
    with pytest.raises(ConfigError, match="needs base_url"):
        parse_config({"slack": {"approvals_channel": "C0A", "default_channel": "C0B",
                                "approvers_usergroup": "S0C"},
                      "accounts": [{"name": "m", "network": "mastodon", "handle": "N",
                                    "credentials": "M"}]})


# ------------------------------------------------------------------ images

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def test_image_with_alt_text_in_the_thread_is_published_as_a_described_attachment(
        h: NetHarness, masto: MastodonEmulator) -> None:
    alt = "A family walking under orange oak trees & a dog"
    h.publish_with_image("post nottscc-masto Autumn walks in Sherwood", PNG, "walk.png", alt)
    [post] = masto.posts_by(masto.council.id)  # type: ignore[attr-defined]
    assert post.text == "Autumn walks in Sherwood"
    [media] = masto.media_of(post)
    assert (media.data, media.description, media.mime_type, media.filename) == (
        PNG, alt, "image/png", "walk.png")
    shown = masto._status_json(post)["media_attachments"]
    assert [(a["type"], a["description"]) for a in shown] == [("image", alt)]
    assert shown[0]["url"] and len(masto.media) == 1
    assert len(masto.requests_to("media")) == 1 and len(masto.requests_to("post_status")) == 1
    actions = h.audit_actions()
    assert actions.index("draft.image_added") < actions.index("draft.approved") \
        < actions.index("draft.published")


def test_media_description_processing_and_limits(masto: MastodonEmulator) -> None:
    from integrations.base import Image, PermanentError

    net = _net(masto)
    council = masto.council  # type: ignore[attr-defined]
    # a large upload answers 202 with url null; the bot polls GET /api/v1/media/:id
    masto.async_media_over = 100
    masto.processing_polls = 2
    big = Image(PNG, "Gritter lorry at the depot", "gritter.png", "image/png")
    small = Image(b"GIF89a\x10\x00\x08\x00" + b"\0" * 20, "Map of gritting routes", "map.gif",
                  "image/gif")
    pub = net.publish("Gritters are out tonight", images=[big, small])
    [post] = masto.posts_by(council.id)
    assert pub.external_id == post.id
    assert [(m.description, m.data) for m in masto.media_of(post)] == [
        ("Gritter lorry at the depot", PNG), ("Map of gritting routes", small.data)]
    assert len(masto.requests_to("get_media")) == 3  # 206, 206, 200 for the big one only
    shown = masto._status_json(post)["media_attachments"]
    assert shown[1]["meta"]["original"]["size"] == "16x8"
    # Mastodon's rules, checked before anything is uploaded
    uploads = len(masto.requests_to("media"))
    with pytest.raises(PermanentError, match="at most 4 images"):
        net.publish("Five pictures", images=[small] * 5)
    with pytest.raises(PermanentError, match="Mastodon allows 1500"):
        net.publish("Long alt", images=[Image(PNG, "x" * 1501, "a.png", "image/png")])
    assert len(masto.requests_to("media")) == uploads
    # the emulator refuses what the real API refuses
    from mastodon import MastodonAPIError

    with pytest.raises(MastodonAPIError, match="Description is too long"):
        net.api.media_post(PNG, mime_type="image/png", description="d" * 1501)
    masto.processing_polls = 5
    masto.async_media_over = 10
    pending = net.api.media_post(PNG, mime_type="image/png", description="Still processing")
    assert pending["url"] is None
    with pytest.raises(MastodonAPIError, match="not finished processing"):
        net.api.status_post("too soon", media_ids=[pending["id"]])
    # an upload whose answer was lost is simply uploaded again (an orphan is harmless)
    masto.async_media_over = 10**9
    masto.inject("media", "drop")
    net.publish("Library reopens", images=[small])
    assert masto.posts_by(council.id)[-1].text == "Library reopens"


def test_late_federated_mention_with_an_older_status_id_still_arrives(
        h: NetHarness, masto: MastodonEmulator) -> None:
    """A remote status's id comes from its created_at: one that federates late has an id
    below statuses already seen. The cursor is the notification id, so it still arrives."""
    jane = masto.jane  # type: ignore[attr-defined]
    first = masto.add_mention(jane, "@NottsCC@mastodon.example the bins on Elm Road")
    h.poll()
    late = masto.add_mention(jane, "@NottsCC@mastodon.example the tip was shut",
                             status_id=str(int(first.id) - 7_000))
    assert int(late.id) < int(first.id)
    h.poll()
    h.settle()
    with h.rt.sessions() as s:
        assert {m.external_id for m in s.query(Mention)} == {first.id, late.id}
        cursor = s.query(PollCursor).join(Account, Account.id == PollCursor.account_id).filter(
            Account.name == "nottscc-masto").one().since_id
    assert cursor == f"n:{masto.notifications[-1].id}"
    # resumed from the notification cursor: nothing again, and asked with since_id
    h.poll()
    assert masto.requests_to("notifications")[-1]["since_id"] == cursor[2:]
    with h.rt.sessions() as s:
        assert s.query(Mention).count() == 2
    assert len(h.alerts_in("C0WASTE")) == 2


def test_a_token_without_write_scope_reads_but_cannot_post(masto: MastodonEmulator) -> None:
    """The emulator checks scopes as Mastodon does: 403 outside the token's scopes."""
    from integrations.base import PermanentError

    reader = masto.add_account("NottsRead", token="read-only-token", scopes="read")
    masto.add_mention(masto.jane, "@NottsRead hello")  # type: ignore[attr-defined]
    acc = parse_config({"slack": {"approvals_channel": "C0A", "default_channel": "C0B",
                                  "approvers_usergroup": "S0C"},
                        "accounts": [{"name": "r", "network": "mastodon", "handle": "NottsRead",
                                      "credentials": "R", "base_url": masto.root_url}]}).accounts[0]
    net = MastodonNetwork(acc, "read-only-token", sleep=lambda s: None)
    assert [m.text for p in net.fetch_mentions(None) for m in p.mentions] == ["@NottsRead hello"]
    with pytest.raises(PermanentError, match="403"):
        net.publish("Bins are on time")
    assert not masto.posts_by(reader.id)
