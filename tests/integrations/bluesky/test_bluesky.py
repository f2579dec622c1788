"""Bluesky: mention/reply notification in -> service channel -> /social reply -> approval ->
exactly one reply with the right root + parent refs and facets (against the Bluesky emulator)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.config import parse_config
from bot.domain import slash
from bot.models import Draft, DraftImage, Mention
from integrations.base import Image, PermanentError, TransientError
from integrations.bluesky import richtext
from integrations.bluesky.emulator import BlueskyEmulator
from integrations.bluesky.network import BlueskyNetwork, image_size
from tests.harness import CARA, HARRY, WENDY, block_texts, wait_for
from tests.net_harness import NetHarness, config_with

PASSWORD = "abcd-efgh-ijkl-mnop"


@pytest.fixture
def bsky() -> Iterator[BlueskyEmulator]:
    with BlueskyEmulator() as emu:
        emu.council = emu.add_account("nottscc.bsky.social", "Nottinghamshire County Council",  # type: ignore[attr-defined]
                                      app_password=PASSWORD, followers=12)
        emu.jane = emu.add_account("jane.bsky.social", "Jane Resident")  # type: ignore[attr-defined]
        emu.sam = emu.add_account("sam.example.org", "Sam")  # type: ignore[attr-defined]
        yield emu


@pytest.fixture
def h(database_url: str, bsky: BlueskyEmulator) -> Iterator[NetHarness]:
    account = {"name": "nottscc-bsky", "network": "bluesky", "handle": "nottscc.bsky.social",
               "credentials": "BSKY"}
    with NetHarness(database_url, config_with(account),
                    credentials={("bluesky", "BSKY"): {"app_password": PASSWORD}},
                    env={"bluesky_api_base_url": bsky.root_url}) as harness:
        yield harness


def draft_state(h: NetHarness, draft_id: int = 1) -> str:
    with h.rt.sessions() as s:
        d = s.get(Draft, draft_id)
        return d.state if d else "missing"


def test_reply_in_a_thread_has_root_and_parent_refs_and_facets(h: NetHarness,
                                                               bsky: BlueskyEmulator) -> None:
    jane, sam, council = bsky.jane, bsky.sam, bsky.council  # type: ignore[attr-defined]
    root = bsky.add_post(sam, "Elm Road is a mess this morning")
    mid = bsky.add_post(jane, "@nottscc.bsky.social the potholes on Elm Road are back, "
                              "and *still* no gritting", reply_to=root)
    bsky.add_like(jane, mid)  # not a mention: ignored
    h.poll()
    h.settle()
    alerts = h.alerts_in("C0HIGHWAYS")
    assert len(alerts) == 1 and "potholes on Elm Road" in block_texts(alerts[0])
    with h.rt.sessions() as s:
        m = s.query(Mention).one()
    assert m.external_id == richtext.compact_id(mid.uri) and len(m.external_id) <= 64
    assert m.url == f"https://bsky.app/profile/jane.bsky.social/post/{mid.uri.rsplit('/', 1)[1]}"
    assert m.in_reply_to_external_id == richtext.compact_id(root.uri)
    text = ("Thanks @jane.bsky.social, passed to the team: "
            "https://www.nottinghamshire.gov.uk/roads #Highways")
    answer = h.slack.send_command(HARRY, "C0HIGHWAYS", f"reply {m.url} {text}").json()["text"]
    assert "Draft D1 created" in answer
    msg = h.approval_message()
    assert "/300 characters" in block_texts(msg)
    h.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], "white_check_mark")
    wait_for(lambda: draft_state(h) == "published", what="published")
    h.rt.publisher.sweep()
    [reply] = bsky.posts_by(council.did)
    assert reply.value["text"] == text
    assert reply.value["reply"] == {"root": {"uri": root.uri, "cid": root.cid},
                                    "parent": {"uri": mid.uri, "cid": mid.cid}}
    data = text.encode()
    features = {f["features"][0]["$type"].rsplit("#", 1)[1]:
                (data[f["index"]["byteStart"]:f["index"]["byteEnd"]].decode(), f["features"][0])
                for f in reply.value["facets"]}
    assert features["mention"] == ("@jane.bsky.social", {
        "$type": "app.bsky.richtext.facet#mention", "did": jane.did})
    assert features["link"][0] == "https://www.nottinghamshire.gov.uk/roads"
    assert features["tag"][1]["tag"] == "Highways"
    h.settle()
    assert any(reply.uri.rsplit("/", 1)[1] in (t.get("text") or "")
               for t in h.slack.thread("C0APPROVALS", msg["ts"]))
    h.poll()  # the cursor moved: nothing new
    with h.rt.sessions() as s:
        assert s.query(Mention).count() == 1


def test_new_post_counts_graphemes(h: NetHarness, bsky: BlueskyEmulator) -> None:
    family = "\U0001F468\u200D\U0001F469\u200D\U0001F467"  # one grapheme, 8 UTF-16 units
    ok = "Libraries are open " + family * 200
    too_long = "x" * 301
    answer = h.slack.send_command(HARRY, "C0HIGHWAYS", f"post nottscc-bsky {too_long}").json()["text"]
    assert "the limit is 300" in answer
    assert "Draft D1" in h.slack.send_command(HARRY, "C0HIGHWAYS",
                                              f"post nottscc-bsky {ok}").json()["text"]
    h.approve()
    wait_for(lambda: draft_state(h) == "published")
    [post] = bsky.posts_by(bsky.council.did)  # type: ignore[attr-defined]
    assert post.value["text"] == ok and "reply" not in post.value


def _net(bsky: BlueskyEmulator) -> BlueskyNetwork:
    acc = parse_config({"slack": {"approvals_channel": "C0A", "default_channel": "C0B",
                                  "approvers_usergroup": "S0C"},
                        "accounts": [{"name": "b", "network": "bluesky",
                                      "handle": "nottscc.bsky.social", "credentials": "B"}]}
                       ).accounts[0]
    return BlueskyNetwork(acc, PASSWORD, bsky.root_url, sleep=lambda s: None)


def test_paging_faults_session_refresh_and_lost_answers(bsky: BlueskyEmulator) -> None:
    jane = bsky.jane  # type: ignore[attr-defined]
    posts = [bsky.add_post(jane, f"@nottscc.bsky.social question {i}") for i in range(60)]
    net = _net(bsky)
    bsky.inject("app.bsky.notification.listNotifications", "429", reset_in=0)
    bsky.inject("app.bsky.notification.listNotifications", "502")
    pages = list(net.fetch_mentions(None))
    ids = sorted(m.external_id for p in pages for m in p.mentions)
    assert len(pages) == 2 and ids == sorted(richtext.compact_id(p.uri) for p in posts)
    cursor = pages[-1].cursor
    assert cursor is not None and cursor.startswith("t:")
    before = len(bsky.requests_to("app.bsky.notification.listNotifications"))
    again = [m.external_id for p in net.fetch_mentions(cursor) for m in p.mentions]
    # only those indexed at the cursor's very moment are read again (de-duplicated on store)
    assert set(again) <= set(ids) and len(again) < 60
    assert len(bsky.requests_to("app.bsky.notification.listNotifications")) == before + 1
    assert len(bsky.requests_to("com.atproto.server.createSession")) == 1  # session reused
    bsky.expire_sessions()
    assert net.followers() == 12
    assert len(bsky.requests_to("com.atproto.server.refreshSession")) == 1
    bsky.inject("com.atproto.repo.createRecord", "drop_after_commit")
    with pytest.raises(TransientError):
        net.publish("Bins are collected as normal on Monday", in_reply_to=ids[0])
    found = net.find_published("Bins are collected as normal on Monday", in_reply_to=ids[0],
                               not_before=datetime.now(UTC) - timedelta(minutes=2))
    assert found is not None and found.external_id.endswith(bsky.council.did)  # type: ignore[attr-defined]


def test_parse_bluesky_links() -> None:
    url = "https://bsky.app/profile/jane.bsky.social/post/3kabcdefghi22"
    assert slash.parse_ref(url + "?ref=x") == slash.MentionRef(network="bluesky", url=url)
    assert richtext.uri_from_compact(richtext.compact_id("at://did:plc:abc/app.bsky.feed.post/3k2")) \
        == "at://did:plc:abc/app.bsky.feed.post/3k2"
    assert richtext.length("e\u0301" * 300) == 300


# ------------------------------------------------------------------ images

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
# a real PNG header: 1200 x 800 (IHDR), so the post gets an aspect ratio
PNG_1200x800 = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (1200).to_bytes(4, "big")
                + (800).to_bytes(4, "big") + b"\x08\x02\x00\x00\x00" + b"\0" * 64)


def _images(h: NetHarness) -> list[DraftImage]:
    with h.rt.sessions() as s:
        return list(s.query(DraftImage).order_by(DraftImage.id))


def test_image_with_alt_text_in_the_thread_is_published_in_the_embed(
        h: NetHarness, bsky: BlueskyEmulator) -> None:
    alt = "A family walking under orange oak trees & a dog"
    h.publish_with_image("post nottscc-bsky Autumn walks in Sherwood", PNG, "walk.png", alt)
    [post] = bsky.posts_by(bsky.council.did)  # type: ignore[attr-defined]
    assert post.value["text"] == "Autumn walks in Sherwood"
    embed = post.value["embed"]
    assert embed["$type"] == "app.bsky.embed.images"
    [(blob, shown_alt)] = bsky.images_of(post)
    assert (blob.data, blob.mime_type, shown_alt) == (PNG, "image/png", alt)
    assert embed["images"][0]["image"] == {"$type": "blob", "ref": {"$link": blob.cid},
                                           "mimeType": "image/png", "size": len(PNG)}
    assert len(bsky.requests_to("com.atproto.repo.uploadBlob")) == 1
    assert len(bsky.requests_to("com.atproto.repo.createRecord")) == 1
    actions = h.audit_actions()
    assert actions.index("draft.image_added") < actions.index("draft.approved") \
        < actions.index("draft.published")


def test_image_over_a_megabyte_fails_the_draft_with_a_clear_reason(
        h: NetHarness, bsky: BlueskyEmulator) -> None:
    assert "Draft D1" in h.slack.send_command(
        WENDY, "C0WASTE", "post nottscc-bsky Gritting map for winter").json()["text"]
    msg = h.approval_message()
    h.slack.share_file(WENDY, "C0APPROVALS", PNG * 500, "map.png", alt_txt="Gritting routes",
                       thread_ts=msg["ts"])  # 1,028,000 bytes: commsdesk takes it, Bluesky not
    wait_for(lambda: len(_images(h)) == 1, what="image stored")
    h.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], "white_check_mark")
    wait_for(lambda: draft_state(h) == "failed", what="failed")
    h.settle()
    assert any("1,000,000 bytes" in (t.get("text") or "")
               for t in h.slack.thread("C0APPROVALS", msg["ts"]))
    assert not bsky.posts_by(bsky.council.did)  # type: ignore[attr-defined]
    assert not bsky.requests_to("com.atproto.repo.uploadBlob")


def test_blob_refs_aspect_ratio_and_image_rules(bsky: BlueskyEmulator) -> None:
    net = _net(bsky)
    council = bsky.council  # type: ignore[attr-defined]
    images = [Image(PNG_1200x800, "Library front door", "door.png", "image/png"),
              Image(PNG, "Reading corner", "corner.png", "image/png")]
    bsky.inject("com.atproto.repo.uploadBlob", "drop")  # a lost upload is uploaded again
    pub = net.publish("Westgate library reopens on Monday", images=images)
    [post] = bsky.posts_by(council.did)
    assert pub.external_id == richtext.compact_id(post.uri)
    entries = post.value["embed"]["images"]
    assert [e["alt"] for e in entries] == ["Library front door", "Reading corner"]
    assert entries[0]["aspectRatio"] == {"width": 1200, "height": 800}
    assert "aspectRatio" not in entries[1]  # no header to read it from
    assert [b.data for b, _ in bsky.images_of(post)] == [PNG_1200x800, PNG]
    assert all(e["image"]["ref"]["$link"].startswith("bafkrei") for e in entries)
    view = bsky._post_view(post)["embed"]
    assert view["$type"] == "app.bsky.embed.images#view"
    assert [i["alt"] for i in view["images"]] == ["Library front door", "Reading corner"]
    # the limits, refused before anything is uploaded
    uploads = len(bsky.requests_to("com.atproto.repo.uploadBlob"))
    with pytest.raises(PermanentError, match="at most 4 images"):
        net.publish("Five", images=[images[1]] * 5)
    big = Image(b"\xff\xd8" + b"\0" * 1_000_000, "Too big", "big.jpg", "image/jpeg")
    with pytest.raises(PermanentError, match=r"big\.jpg is 1,000,002 bytes; Bluesky takes "
                                             r"images of at most 1,000,000 bytes"):
        net.publish("Big", images=[big])
    assert len(bsky.requests_to("com.atproto.repo.uploadBlob")) == uploads
    # the emulator validates embeds as the PDS does: a blob must have been uploaded
    bogus = {"$type": "blob", "ref": {"$link": "bafkreinothere"}, "mimeType": "image/png",
             "size": 10}
    with pytest.raises(PermanentError, match="Could not find blob"):
        net._call("x", lambda: net._xrpc("POST", "com.atproto.repo.createRecord", body={
            "repo": council.did, "collection": richtext.POST_COLLECTION, "record": {
                "$type": richtext.POST_COLLECTION, "text": "x", "createdAt": "2025-01-01T00:00:00Z",
                "embed": {"$type": "app.bsky.embed.images",
                          "images": [{"alt": "", "image": bogus}]}}}))
    assert image_size(PNG_1200x800) == (1200, 800)
    jpeg = b"\xff\xd8\xff\xe0\x00\x10" + b"\0" * 14 + b"\xff\xc0\x00\x11\x08\x02\x58\x03\x20"
    assert image_size(jpeg) == (800, 600)


def test_post_with_an_older_record_key_still_arrives(h: NetHarness, bsky: BlueskyEmulator) -> None:
    """Record keys are the client's: a post from a client whose clock is behind has an older
    TID than posts already polled. The cursor is the AppView's indexing order, so it arrives."""
    jane, sam = bsky.jane, bsky.sam  # type: ignore[attr-defined]
    first = bsky.add_post(jane, "@nottscc.bsky.social the potholes on Elm Road")
    h.poll()
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    skewed = bsky.add_post(sam, "@nottscc.bsky.social Elm Road potholes again",
                           rkey=richtext.tid(int(an_hour_ago.timestamp() * 1_000_000), 7),
                           created_at=an_hour_ago)
    assert richtext.compact_id(skewed.uri) < richtext.compact_id(first.uri)
    h.poll()
    h.poll()  # resumed from the stored cursor: nothing twice
    h.settle()
    with h.rt.sessions() as s:
        assert sorted(m.external_id for m in s.query(Mention)) == sorted(
            richtext.compact_id(p.uri) for p in (first, skewed))
    assert len(h.alerts_in("C0HIGHWAYS")) == 2
