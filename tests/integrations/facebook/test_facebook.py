"""Facebook Pages: a signed webhook comment in -> service channel -> /social reply ->
approval -> exactly one reply on that comment; Messenger replies inside the 24-hour
window; the GET challenge and bad signatures (against the Graph API emulator)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from bot.models import AuditEvent, Draft, DraftImage, Mention
from tests.harness import WENDY, block_texts, wait_for
from tests.net_harness import NetHarness, config_with

PAGE = "1000001"
TOKEN = "EAAB-page-token-nottscc"
SECRET = "fb-app-secret-123456"
VERIFY = "verify-me-please"


@pytest.fixture
def fb() -> Iterator:
    from integrations.facebook.emulator import FacebookEmulator

    with FacebookEmulator(app_secret=SECRET) as emu:
        emu.add_page(PAGE, "Nottinghamshire County Council", TOKEN, followers=321)
        yield emu


@pytest.fixture
def h(database_url: str, fb) -> Iterator[NetHarness]:
    account = {"name": "nottscc-fb", "network": "facebook", "handle": "nottinghamshirecc",
               "credentials": "FB", "page_id": PAGE}
    with NetHarness(database_url, config_with(account),
                    credentials={("facebook", "FB"): {"page_access_token": TOKEN}},
                    env={"facebook_graph_base_url": fb.root_url, "facebook_app_secret": SECRET,
                         "facebook_verify_token": VERIFY}) as harness:
        yield harness


def url(h: NetHarness) -> str:
    assert h.server is not None
    return f"{h.server.url}/webhooks/facebook"


def draft_state(h: NetHarness, draft_id: int = 1) -> str:
    with h.rt.sessions() as s:
        d = s.get(Draft, draft_id)
        return d.state if d else "missing"


def approve_first(h: NetHarness) -> dict:
    return h.approve()


def test_comment_webhook_to_one_reply_on_the_comment(h: NetHarness, fb) -> None:
    post = fb.add_post(PAGE, "Bin collections over Christmas")
    comment, payload = fb.add_comment(post, "555", "Jane Resident",
                                      "My recycling bin was missed <!channel>")
    r = fb.deliver(url(h), payload)
    assert r.status_code == 200, r.text
    assert fb.deliver(url(h), payload).status_code == 200  # redelivered: stored once
    h.settle()
    alerts = h.alerts_in("C0WASTE")
    assert len(alerts) == 1 and "&lt;!channel&gt;" in block_texts(alerts[0])
    with h.rt.sessions() as s:
        assert s.query(Mention).one().external_id == comment.id
    assert "Draft D1" in h.slack.send_command(WENDY, "C0WASTE",
                                              "reply M1 Sorry Jane, we'll collect it tomorrow"
                                              ).json()["text"]
    msg = approve_first(h)
    wait_for(lambda: draft_state(h) == "published", what="published")
    h.rt.publisher.sweep()
    replies = [c for c in fb.comments_on(comment.id) if c.author["id"] == PAGE]
    assert [c.message for c in replies] == ["Sorry Jane, we'll collect it tomorrow"]
    assert fb.by_page(PAGE) == [post, replies[0]]
    h.settle()
    assert any("Published D1" in (t.get("text") or "") for t in h.slack.thread("C0APPROVALS", msg["ts"]))
    sent = fb.requests_to("comments")
    assert all("appsecret_proof" in p for p in sent)


def test_bad_signature_is_401_and_stores_nothing(h: NetHarness, fb) -> None:
    post = fb.add_post(PAGE, "Roadworks")
    _, payload = fb.add_comment(post, "556", "Mallory", "the bins are a disgrace")
    assert fb.deliver(url(h), payload, secret="not-the-secret").status_code == 401
    assert fb.deliver(url(h), payload, signed=False).status_code == 401
    assert h.count(Mention) == 0 and "mention.received" not in h.audit_actions()
    assert h.count(AuditEvent) == h.count(AuditEvent, AuditEvent.action != "mention.received")


def test_verification_challenge(h: NetHarness) -> None:
    ok = httpx.get(url(h), params={"hub.mode": "subscribe", "hub.verify_token": VERIFY,
                                   "hub.challenge": "1158201444"})
    assert ok.status_code == 200 and ok.text == "1158201444"
    bad = httpx.get(url(h), params={"hub.mode": "subscribe", "hub.verify_token": "nope",
                                    "hub.challenge": "1158201444"})
    assert bad.status_code == 403 and "1158201444" not in bad.text


def test_messenger_reply_inside_the_window_and_refused_outside(h: NetHarness, fb) -> None:
    old = int((time.time() - 25 * 3600) * 1000)
    assert fb.deliver(url(h), fb.message_payload(PAGE, "PSID42", "is the tip open today?")
                      ).status_code == 200
    assert fb.deliver(url(h), fb.message_payload(PAGE, "PSID43", "bins on monday?", old)
                      ).status_code == 200
    h.settle()
    assert len(h.alerts_in("C0WASTE")) == 2
    h.slack.send_command(WENDY, "C0WASTE", "reply M1 Yes, 8am to 4pm")
    approve_first(h)
    wait_for(lambda: draft_state(h) == "published")
    assert fb.sent_messages == [{"recipient": "PSID42", "text": "Yes, 8am to 4pm",
                                 "messaging_type": "RESPONSE", "mid": fb.sent_messages[0]["mid"]}]
    h.slack.send_command(WENDY, "C0WASTE", "reply M2 Yes, as normal")
    h.approve(2)
    wait_for(lambda: draft_state(h, 2) == "failed")
    assert len(fb.sent_messages) == 1


def test_page_post_and_faults(h: NetHarness, fb) -> None:
    fb.inject("feed", "503")
    h.slack.send_command(WENDY, "C0WASTE", "post nottscc-fb Garden waste collections restart in March")
    approve_first(h)
    wait_for(lambda: draft_state(h) == "published")
    posts = fb.by_page(PAGE)
    assert [p.message for p in posts] == ["Garden waste collections restart in March"]
    assert h.rt.network("nottscc-fb").followers() == 321


# ------------------------------------------------------------------ images

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def _images(h: NetHarness) -> list[DraftImage]:
    with h.rt.sessions() as s:
        return list(s.query(DraftImage).order_by(DraftImage.id))


def test_image_with_alt_text_in_the_thread_is_one_photo_post(h: NetHarness, fb) -> None:
    alt = "A family walking under orange oak trees & a dog"
    h.publish_with_image("post nottscc-fb Autumn walks in Sherwood", PNG, "walk.png", alt)
    [post] = fb.by_page(PAGE)
    assert post.message == "Autumn walks in Sherwood"
    [photo] = fb.photos_of(post)
    assert (photo.data, photo.alt_text_custom, photo.mime_type, photo.filename) == (
        PNG, alt, "image/png", "walk.png")
    assert photo.published and photo.caption == "Autumn walks in Sherwood"
    assert len(fb.requests_to("photos")) == 1 and not fb.requests_to("feed")
    with h.rt.sessions() as s:
        assert s.get_one(Draft, 1).published_external_id == post.id
    actions = h.audit_actions()
    assert actions.index("draft.image_added") < actions.index("draft.approved") \
        < actions.index("draft.published")


def _net(fb):  # type: ignore[no-untyped-def]
    from bot.config import parse_config
    from integrations.facebook.network import FacebookNetwork

    acc = parse_config({"slack": {"approvals_channel": "C0A", "default_channel": "C0B",
                                  "approvers_usergroup": "S0C"},
                        "accounts": [{"name": "f", "network": "facebook", "handle": "n",
                                      "credentials": "F", "page_id": PAGE}]}).accounts[0]
    return FacebookNetwork(acc, TOKEN, fb.root_url, "v21.0", app_secret=SECRET,
                           sleep=lambda s: None)


def test_several_images_are_attached_to_one_feed_post_with_their_alt_text(fb) -> None:
    from integrations.base import Image, PermanentError

    net = _net(fb)
    images = [Image(PNG, "Library front door", "door.png", "image/png"),
              Image(PNG + b"2", "Reading corner", "corner.png", "image/png")]
    fb.inject("photos", "drop_after_commit")  # a lost answer: that photo is uploaded again
    pub = net.publish("Westgate library reopens on Monday", images=images)
    [post] = fb.by_page(PAGE)
    assert pub.external_id == post.id and post.message == "Westgate library reopens on Monday"
    photos = fb.photos_of(post)
    assert [(p.alt_text_custom, p.data, p.published) for p in photos] == [
        ("Library front door", PNG, False), ("Reading corner", PNG + b"2", False)]
    uploads = fb.requests_to("photos")
    assert [u["alt_text_custom"] for u in uploads] == [
        "Library front door", "Library front door", "Reading corner"]
    assert all(u["published"] == "false" and "appsecret_proof" in u for u in uploads)
    [feed] = fb.requests_to("feed")
    assert [json.loads(feed[f"attached_media[{i}]"]) for i in range(2)] == [
        {"media_fbid": p.id} for p in photos]
    assert len(fb.photos) == 3  # the orphan from the lost answer stays unpublished, unseen
    # an attached photo cannot be attached again; replies cannot carry images
    with pytest.raises(PermanentError, match="Invalid media_fbid"):
        net._graph("x", "POST", f"/{PAGE}/feed", data={
            "message": "again", "attached_media[0]": json.dumps({"media_fbid": photos[0].id})})
    comment, _ = fb.add_comment(post, "555", "Jane Resident", "Lovely!")
    with pytest.raises(PermanentError, match="publishes images only in new page posts"):
        net.publish("Thank you Jane", in_reply_to=comment.id, images=images[:1])
    assert not [c for c in fb.comments_on(comment.id) if c.author["id"] == PAGE]
    with pytest.raises(PermanentError, match="Requires upload file"):
        net._graph("x", "POST", f"/{PAGE}/photos", data={"caption": "no file"})


def test_an_image_on_a_reply_is_refused_when_shared(h: NetHarness, fb) -> None:
    """A Facebook comment cannot carry an image with alt text: the image is refused when it
    is shared in the thread (Capability.REPLY_MEDIA), not when the draft is published."""
    post = fb.add_post(PAGE, "Road closures this weekend")
    _comment, payload = fb.add_comment(post, "556", "Sam Resident", "Is Elm Road shut?")
    assert fb.deliver(url(h), payload).status_code == 200
    h.settle()
    assert "Draft D1" in h.slack.send_command(WENDY, "C0WASTE", "reply M1 Yes, until Monday"
                                              ).json()["text"]
    msg = h.approval_message()
    h.slack.share_file(WENDY, "C0APPROVALS", PNG, "map.png", alt_txt="A map of the closure",
                       thread_ts=msg["ts"])
    wait_for(lambda: "draft.image_refused" in h.audit_actions(), what="refusal audited")
    h.settle()
    assert any("a reply cannot carry images" in e["text"] for e in h.slack.ephemerals(WENDY))
    assert not _images(h) and not h.slack.calls_to("url_private")


# ------------------------------------------------------------------ polling backstop


def _mentions(h: NetHarness) -> list[Mention]:
    with h.rt.sessions() as s:
        return list(s.query(Mention).order_by(Mention.id))


def _as_fetched(m: Mention) -> tuple:
    return (m.external_id, m.text, m.author_external_id, m.author_handle, m.author_name, m.url,
            m.conversation_id, m.in_reply_to_external_id)


def _facebook_polled(h: NetHarness) -> int:
    [result] = [r for r in h.poll() if r.account == "nottscc-fb"]
    assert result.error is None, result.error
    return result.stored


def test_a_comment_whose_webhook_was_lost_is_found_by_a_poll_once(h: NetHarness, fb) -> None:
    from integrations.facebook.webhook import parse

    post = fb.add_post(PAGE, "Bin collections over Christmas")
    comment, payload = fb.add_comment(post, "555", "Jane Resident", "My bin was missed")
    fb.add_comment(post, PAGE, "Nottinghamshire County Council", "Sorry Jane, bins tomorrow",
                   parent=comment)  # the page's own reply: not a mention
    reply, reply_payload = fb.add_comment(post, "556", "Sam Resident", "Mine too, recycling",
                                          parent=comment)
    assert _facebook_polled(h) == 2
    h.settle()
    assert len(h.alerts_in("C0WASTE")) == 2
    stored = {m.external_id: m for m in _mentions(h)}
    assert set(stored) == {comment.id, reply.id}
    # exactly what the webhook would have stored for the same comments
    for p in (payload, reply_payload):
        [expected] = parse(p)[PAGE]
        m = stored[expected.external_id]
        assert _as_fetched(m) == (
            expected.external_id, expected.text, expected.author_external_id,
            expected.author_handle, expected.author_name, expected.url,
            expected.conversation_id, expected.in_reply_to_external_id)
    assert stored[reply.id].in_reply_to_external_id == comment.id
    assert stored[comment.id].in_reply_to_external_id == post.id
    # polling again, after a restart (the network's memory gone), and the late webhook
    assert _facebook_polled(h) == 0
    h.rt.network("nottscc-fb")._stored.clear()
    assert _facebook_polled(h) == 0
    r = fb.deliver(url(h), payload)
    assert r.status_code == 200 and r.json()["stored"] == 0
    h.settle()
    assert h.count(Mention) == 2 and len(h.alerts_in("C0WASTE")) == 2
    assert h.audit_actions().count("mention.received") == 2
    feed = fb.requests_to("feed")
    assert all("appsecret_proof" in p and p["access_token"] == TOKEN for p in feed)
    assert "comments.filter(stream).order(reverse_chronological)" in feed[0]["fields"]


def test_a_comment_delivered_by_webhook_and_then_polled_is_alerted_once(h: NetHarness,
                                                                        fb) -> None:
    post = fb.add_post(PAGE, "Tip opening hours")
    comment, payload = fb.add_comment(post, "555", "Jane Resident", "Is the tip open on Sunday?")
    assert fb.deliver(url(h), payload).json()["stored"] == 1
    h.settle()
    assert _facebook_polled(h) == 0
    h.rt.network("nottscc-fb")._stored.clear()
    assert _facebook_polled(h) == 0
    h.settle()
    assert [m.external_id for m in _mentions(h)] == [comment.id]
    assert len(h.alerts_in("C0WASTE")) == 1
    # and a reply to it can be drafted and published as before
    h.slack.send_command(WENDY, "C0WASTE", "reply M1 Yes, 9am to 4pm")
    h.approve()
    wait_for(lambda: draft_state(h) == "published", what="published")
    assert [c.message for c in fb.comments_on(comment.id)] == ["Yes, 9am to 4pm"]
    assert _facebook_polled(h) == 0  # the page's own reply is not a mention


def test_polling_the_feed_retries_5xx_and_rate_limits(h: NetHarness, fb) -> None:
    post = fb.add_post(PAGE, "Recycling centres")
    fb.add_comment(post, "555", "Jane Resident", "Which tip takes fridges?")
    fb.inject("feed", "503")
    fb.inject("feed", "429")
    assert _facebook_polled(h) == 1
    assert len(fb.requests_to("feed")) == 3
    fb.add_comment(post, "557", "Ann Resident", "And mattresses at the tip?")
    fb.inject("feed", "503", times=4)  # down for every attempt: the poll fails, nothing lost
    [failed] = [r for r in h.poll() if r.account == "nottscc-fb"]
    assert failed.error and "503" in failed.error
    assert _facebook_polled(h) == 1
    h.settle()
    assert len(h.alerts_in("C0WASTE")) == 2


@pytest.mark.parametrize("paging", ["time", "cursor"])
def test_polling_pages_through_posts_and_comments_within_the_window(fb, monkeypatch,
                                                                    paging: str) -> None:
    """The backstop asks the feed with `since`: Graph may page that by time (a `next` URL
    with `until` and `__paging_token`, no `cursors`) or by cursors; both are followed."""
    from datetime import UTC, datetime, timedelta

    from integrations.facebook import network as fbnet

    fb.time_paging = paging == "time"
    monkeypatch.setattr(fbnet, "FEED_PAGE_SIZE", 2)
    monkeypatch.setattr(fbnet, "COMMENTS_PAGE_SIZE", 2)
    old = fb.add_post(PAGE, "Last month's news")
    old.created = datetime.now(UTC) - timedelta(days=fbnet.POLL_DAYS + 1)
    fb.add_comment(old, "555", "Jane Resident", "too old to poll")
    posts = [fb.add_post(PAGE, f"post {i}") for i in range(5)]
    expected = set()
    for i, post in enumerate(posts):
        for j in range(i):
            c, _ = fb.add_comment(post, str(600 + j), f"Resident {j}", f"comment {i}.{j}")
            expected.add(c.id)
    net = _net(fb)
    pages = list(net.fetch_mentions(None))
    got = [m.external_id for p in pages for m in p.mentions]
    assert sorted(got) == sorted(expected)  # each once, the old post's comment not read
    feed = fb.requests_to("feed")
    assert len(feed) == 3 and "after" not in feed[0] and "until" not in feed[0]
    if paging == "time":
        assert feed[1]["until"] and feed[1]["__paging_token"] and "after" not in feed[1]
        assert "access_token" not in feed[1] or feed[1]["access_token"] != "EAAB-in-the-url"
    else:
        assert feed[1]["after"]
    cutoff = datetime.now(UTC) - timedelta(days=fbnet.POLL_DAYS)
    assert abs(int(feed[0]["since"]) - cutoff.timestamp()) < 60
    more = fb.requests_to("comments")
    assert more and all(p["filter"] == "stream" and p["order"] == "reverse_chronological"
                        for p in more)
    assert list(net.fetch_mentions(got[0])) == []  # everything yielded was consumed: stored
    # usage headers at the limit: the pass stops after the first answer (the next reads on)
    monkeypatch.setattr(fbnet, "MAX_USAGE_PERCENT", 0)
    net._stored.clear()
    before = len(fb.requests)
    assert len([m for p in net.fetch_mentions(None) for m in p.mentions]) == 2 + 2
    assert len(fb.requests) - before == 1


def test_usage_headers_near_the_limit_end_the_pass_and_set_the_wait() -> None:
    from integrations.facebook.network import _usage

    headers = httpx.Headers({
        "X-App-Usage": json.dumps({"call_count": 12, "total_cputime": 3, "total_time": 4}),
        "X-Business-Use-Case-Usage": json.dumps({PAGE: [{
            "type": "pages", "call_count": 97, "total_cputime": 10, "total_time": 10,
            "estimated_time_to_regain_access": 5}]})})
    assert _usage(headers) == (97.0, 300.0)
    assert _usage(httpx.Headers({"X-Page-Usage": "not json"})) == (0.0, None)
