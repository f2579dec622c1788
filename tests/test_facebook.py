"""Facebook Pages: a signed webhook comment in -> service channel -> /social reply ->
approval -> exactly one reply on that comment; Messenger replies inside the 24-hour
window; the GET challenge and bad signatures (against the Graph API emulator)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from commsdesk.models import AuditEvent, Draft, Mention
from tests.harness import WENDY, block_texts, wait_for
from tests.net_harness import NetHarness, config_with

PAGE = "1000001"
TOKEN = "EAAB-page-token-nottscc"
SECRET = "fb-app-secret-123456"
VERIFY = "verify-me-please"


@pytest.fixture
def fb() -> Iterator:
    from commsdesk.integrations.facebook.emulator import FacebookEmulator

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
