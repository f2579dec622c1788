"""Drafts by /social, emoji approval by the comms team, exactly-once publishing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from bot import clock
from bot.models import Approval, AuditEvent, Draft, DraftVersion
from tests.harness import CARA, COLIN, HARRY, ROGUE, WENDY, Harness, block_texts, wait_for


@pytest.fixture
def h(database_url: str) -> Iterator[Harness]:
    with Harness(database_url) as harness:
        yield harness


def mention(h: Harness, text: str = "bins not collected on Elm Road", author: str = "jane") -> str:
    tweet = h.x.add_mention("1111", author, text)
    h.poll()
    h.settle()
    return str(tweet["id"])


def command(h: Harness, user: str, text: str, channel: str = "C0WASTE") -> str:
    r = h.slack.send_command(user, channel, text)
    assert r.status_code == 200, r.text
    return str(r.json().get("text", ""))


def approval_message(h: Harness, n: int = 1) -> dict[str, Any]:
    msgs = wait_for(lambda: len(h.alerts_in("C0APPROVALS")) >= n and h.alerts_in("C0APPROVALS"),
                    what="approval message")
    return msgs[n - 1]


def posts(h: Harness) -> list[dict[str, Any]]:
    return [p for p in h.x.posts_created() if not p.get("deleted")]


def draft_state(h: Harness, draft_id: int = 1) -> str:
    with h.rt.sessions() as s:
        d = s.get(Draft, draft_id)
        return d.state if d else "missing"


def test_reply_is_published_once_after_approval(h: Harness) -> None:
    tweet_id = mention(h)
    answer = command(h, WENDY, "reply M1 Sorry Jane & thanks, a crew is on its way <today>!")
    assert "Draft D1 created" in answer
    msg = approval_message(h)
    text = block_texts(msg)
    assert "Sorry Jane &amp; thanks" in text and "&lt;today&gt;" in text  # shown escaped
    assert "In reply to M1" in text and "/280 characters" in text
    assert "<#C0APPROVALS>" in answer  # the ack is the one confirmation: no second ephemeral
    alert_ts = h.alerts_in("C0WASTE")[0]["ts"]
    wait_for(lambda: "Draft pending" in block_texts(h.slack.message("C0WASTE", alert_ts) or {}))
    assert posts(h) == []
    h.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], "white_check_mark")
    wait_for(lambda: draft_state(h) == "published", what="published")
    created = posts(h)
    assert len(created) == 1
    assert created[0]["text"] == "Sorry Jane & thanks, a crew is on its way <today>!"
    assert created[0]["referenced_tweets"] == [{"type": "replied_to", "id": tweet_id}]
    h.settle()
    # the thread reply and both message updates go out through the outbox, paced per
    # channel: wait for each (under load an update can follow the settle)
    wait_for(lambda: any("Published D1" in (m.get("text") or "") and created[0]["id"] in m["text"]
                         for m in h.slack.thread("C0APPROVALS", msg["ts"])), what="thread reply")
    wait_for(lambda: "Replied" in block_texts(h.slack.message("C0WASTE", alert_ts) or {}),
             what="the alert says Replied")
    wait_for(lambda: "Published" in block_texts(h.slack.message("C0APPROVALS", msg["ts"]) or {}),
             what="the approval message says Published")
    actions = h.audit_actions()
    for a in ("draft.created", "draft.approved", "draft.publishing", "draft.published"):
        assert actions.count(a) == 1, a


def test_new_post_via_button_approval(h: Harness) -> None:
    assert "Draft D1" in command(h, HARRY, "post nottscc Gritters are out tonight on all A roads")
    msg = approval_message(h)
    h.slack.click_button(COLIN, "C0APPROVALS", msg["ts"], "draft_approve", "1")
    wait_for(lambda: draft_state(h) == "published")
    assert [p["text"] for p in posts(h)] == ["Gritters are out tonight on all A roads"]
    assert not posts(h)[0].get("referenced_tweets")


def test_refusals_publish_nothing_and_are_audited(h: Harness) -> None:
    command(h, CARA, "post nottscc Library opening hours change next week", channel="C0COMMS")
    msg = approval_message(h)
    h.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], "white_check_mark")  # own draft
    h.slack.add_reaction(ROGUE, "C0APPROVALS", msg["ts"], "white_check_mark")  # not an approver
    h.slack.add_reaction(ROGUE, "C0APPROVALS", msg["ts"], "x")  # not an approver
    h.slack.add_reaction(COLIN, "C0APPROVALS", msg["ts"], "tada")  # another emoji
    # the same emoji on a message in another channel cannot approve
    h.slack.post_user_message(WENDY, "C0WASTE", "fake approval message")
    other = h.slack.messages("C0WASTE")[-1]
    h.slack.add_reaction(COLIN, "C0WASTE", other["ts"], "white_check_mark")
    wait_for(lambda: h.count(AuditEvent, AuditEvent.action == "draft.decision_refused") == 3)
    wait_for(lambda: len(h.slack.ephemerals(user=ROGUE)) == 2
             and any("someone else" in e["text"] for e in h.slack.ephemerals(user=CARA)))
    assert "approvers group" in h.slack.ephemerals(user=ROGUE)[0]["text"]
    assert draft_state(h) == "pending" and posts(h) == []
    assert h.count(Approval, Approval.decision == "refused") == 3


def test_retried_event_and_double_reaction_publish_once(h: Harness) -> None:
    command(h, WENDY, "post nottscc Recycling centres open on bank holiday Monday")
    msg = approval_message(h)
    event = {"type": "reaction_added", "user": CARA, "reaction": "white_check_mark",
             "item": {"type": "message", "channel": "C0APPROVALS", "ts": msg["ts"]},
             "item_user": "U0BOT", "event_ts": "1.1"}
    h.slack.send_event(event, event_id="EvSAME1")
    h.slack.send_event(event, event_id="EvSAME1", retry_num=1)
    h.slack.send_event(event, event_id="EvSAME1", retry_num=2)
    h.slack.add_reaction(COLIN, "C0APPROVALS", msg["ts"], "white_check_mark")
    h.slack.click_button(COLIN, "C0APPROVALS", msg["ts"], "draft_approve", "1")
    wait_for(lambda: draft_state(h) == "published")
    h.rt.publisher.sweep()
    h.settle()
    assert len(posts(h)) == 1
    assert h.count(AuditEvent, AuditEvent.action == "draft.approved") == 1


def test_twenty_concurrent_approvals_give_one_post(h: Harness) -> None:
    approvers = [f"U0APP{i:02d}" for i in range(20)]
    for u in approvers:
        h.slack.add_user(u, u.lower())
    h.slack.set_usergroup_users("S0COMMS", [CARA, COLIN, *approvers])
    command(h, WENDY, "post nottscc Bin collections are running a day late this week")
    msg = approval_message(h)
    barrier = threading.Barrier(20)

    def approve(u: str) -> None:
        barrier.wait()
        h.slack.add_reaction(u, "C0APPROVALS", msg["ts"], "white_check_mark")

    threads = [threading.Thread(target=approve, args=(u,)) for u in approvers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_for(lambda: draft_state(h) == "published")
    h.rt.publisher.sweep()
    assert len(posts(h)) == 1
    assert h.count(Approval, Approval.decision == "approve") == 1


def test_reject_is_final(h: Harness) -> None:
    command(h, WENDY, "post nottscc Something off-message")
    msg = approval_message(h)
    h.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], "x")
    wait_for(lambda: draft_state(h) == "rejected")
    h.slack.add_reaction(COLIN, "C0APPROVALS", msg["ts"], "white_check_mark")
    wait_for(lambda: h.slack.ephemerals(user=COLIN))
    assert "already rejected" in h.slack.ephemerals(user=COLIN)[-1]["text"]
    h.rt.publisher.sweep()
    assert draft_state(h) == "rejected" and posts(h) == []


def test_competing_draft_is_superseded(h: Harness) -> None:
    mention(h)
    command(h, WENDY, "reply M1 We're on it, sorry!")
    command(h, HARRY, "reply M1 Thanks, passed to the waste team")
    first, second = approval_message(h, 1), approval_message(h, 2)
    h.slack.add_reaction(CARA, "C0APPROVALS", second["ts"], "white_check_mark")
    wait_for(lambda: draft_state(h, 2) == "published")
    assert draft_state(h, 1) == "superseded"
    h.slack.add_reaction(COLIN, "C0APPROVALS", first["ts"], "white_check_mark")
    h.rt.publisher.sweep()
    h.settle()
    assert [p["text"] for p in posts(h)] == ["Thanks, passed to the waste team"]
    assert "Superseded" in block_texts(h.slack.message("C0APPROVALS", first["ts"]) or {})


def test_edit_withdraws_approval_and_keeps_versions(h: Harness) -> None:
    when = (clock.now() + timedelta(days=2)).astimezone(h.rt.settings.config.tz)
    command(h, WENDY, f"schedule nottscc {when:%Y-%m-%d %H:%M} Half-term activities at YPCs")
    msg = approval_message(h)
    h.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], "white_check_mark")
    wait_for(lambda: draft_state(h) == "approved")
    h.slack.click_button(WENDY, "C0APPROVALS", msg["ts"], "draft_edit", "1")
    view = wait_for(lambda: h.slack.open_views(WENDY))[-1]
    h.slack.submit_view(WENDY, view["id"], {"draft_text": {
        "draft_text_input": "Half-term activities at all Young People's Centres"}})
    wait_for(lambda: draft_state(h) == "pending")
    assert h.count(DraftVersion) == 2
    assert "draft.approval_withdrawn" in h.audit_actions()
    h.settle()
    assert "v2" in block_texts(h.slack.message("C0APPROVALS", msg["ts"]) or {})


def test_transient_errors_are_retried_into_one_post(h: Harness) -> None:
    h.x.inject("create_tweet", "503", times=3)
    command(h, WENDY, "post nottscc Tip opening hours are changing")
    msg = approval_message(h)
    h.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], "white_check_mark")
    wait_for(lambda: draft_state(h) == "published", timeout=20)
    assert len(posts(h)) == 1
    assert len(h.x.requests_to("create_tweet")) == 4


def test_lost_answer_is_reconciled_not_resent(h: Harness) -> None:
    h.x.inject("create_tweet", "drop_after_commit")
    command(h, WENDY, "post nottscc Garden waste collections restart in March")
    msg = approval_message(h)
    h.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], "white_check_mark")
    wait_for(lambda: draft_state(h) == "published", timeout=20)
    assert len(posts(h)) == 1


def test_permanent_error_fails_then_retry_posts_once(h: Harness) -> None:
    text = "Council tax bills are on their way"
    dup = h.x.add_tweet("1111", text, via_api=True)
    command(h, WENDY, f"post nottscc {text}")
    msg = approval_message(h)
    h.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], "white_check_mark")
    wait_for(lambda: draft_state(h) == "failed")
    h.settle()
    thread = h.slack.thread("C0APPROVALS", msg["ts"])
    assert any("failed" in (m.get("text") or "") and "duplicate" in m["text"] for m in thread)
    assert "Retry" in block_texts(h.slack.message("C0APPROVALS", msg["ts"]) or {})
    h.x.tweets[dup["id"]].deleted = True  # the old post is removed on X
    h.slack.click_button(ROGUE, "C0APPROVALS", msg["ts"], "draft_retry", "1")
    wait_for(lambda: h.slack.ephemerals(user=ROGUE))
    assert draft_state(h) == "failed"
    h.slack.click_button(COLIN, "C0APPROVALS", msg["ts"], "draft_retry", "1")
    wait_for(lambda: draft_state(h) == "published")
    assert len(posts(h)) == 1


def test_scheduled_post_goes_out_at_its_time_and_survives_restart(database_url: str) -> None:
    with Harness(database_url) as h:
        when = (clock.now() + timedelta(hours=3)).astimezone(h.rt.settings.config.tz)
        answer = command(h, WENDY, f"schedule nottscc {when:%Y-%m-%d %H:%M} Roadworks start")
        assert "once approved" in answer
        msg = approval_message(h)
        h.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], "white_check_mark")
        wait_for(lambda: draft_state(h) == "approved")
        h.rt.publisher.sweep()
        assert posts(h) == []
        x = h.x
        h._own_x = False  # keep the X emulator for the restarted bot
    try:
        with Harness(database_url, x=x) as h2:
            h2.rt.publisher.sweep()
            assert posts(h2) == []
            clock.shift(timedelta(hours=3, minutes=1))
            h2.rt.publisher.sweep()
            wait_for(lambda: draft_state(h2) == "published")
            assert [p["text"] for p in posts(h2)] == ["Roadworks start"]
    finally:
        clock.shift(-timedelta(hours=3, minutes=1))
        x.stop()


def test_approval_after_scheduled_time_expires(h: Harness) -> None:
    when = (clock.now() + timedelta(minutes=10)).astimezone(h.rt.settings.config.tz)
    command(h, WENDY, f"schedule nottscc {when:%Y-%m-%d %H:%M} Flu clinics this week")
    msg = approval_message(h)
    clock.shift(timedelta(minutes=15))
    try:
        h.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], "white_check_mark")
        wait_for(lambda: draft_state(h) == "expired")
        h.rt.publisher.sweep()
        assert posts(h) == []
        wait_for(lambda: "after its scheduled time" in block_texts(
            h.slack.message("C0APPROVALS", msg["ts"]) or {}))
        assert any("has passed" in e["text"] for e in h.slack.ephemerals(user=CARA))
    finally:
        clock.shift(-timedelta(minutes=15))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("reply", "Say which mention"),
        ("reply M999 hello", "M999 is not a mention"),
        ("reply https://x.com/someone/status/123 hello", "not a mention commsdesk has received"),
        ("reply banana hello", "is not a mention reference"),
        ("reply M1", "The reply text is missing"),
        ("post", "Say which account"),
        ("post nottscc", "The post text is missing"),
        ("post nobody hello", "There is no account called `nobody`"),
        ("post nottscc " + "a" * 281, "the limit is 280"),
        ("post nottscc " + "日本" * 71, "the limit is 280"),
        ("schedule nottscc tomorrow 9am hi", "YYYY-MM-DD HH:MM"),
        ("schedule nottscc 2001-01-01 09:00 hi", "in the past"),
        ("schedule nottscc 2999-01-01 09:00", "The post text is missing"),
        ("dance", "not something /social knows"),
    ],
)
def test_malformed_commands_get_help_and_store_nothing(h: Harness, text: str,
                                                       expected: str) -> None:
    r = h.slack.send_command(WENDY, "C0WASTE", text)
    assert r.status_code == 200
    assert r.elapsed.total_seconds() < 3
    assert expected in r.json()["text"], r.json()["text"]
    assert h.count(Draft) == 0
    # nothing audited but the accounts the bot synced from its config at start-up
    assert h.count(AuditEvent, AuditEvent.action != "account.configured") == 0


def test_help(h: Harness) -> None:
    for text in ("help", ""):
        assert "/social schedule" in command(h, WENDY, text)


def test_length_counts_urls_as_23(h: Harness) -> None:
    url = "https://www.nottinghamshire.gov.uk/" + "x" * 200
    assert "Draft D1" in command(h, WENDY, f"post nottscc Details: {url}")


def test_draft_reply_modal_counts_live_and_creates_the_draft(h: Harness) -> None:
    mention(h, "pothole on Mansfield Road near the school", author="bob")
    alert = h.alerts_in("C0HIGHWAYS")[0]
    h.slack.click_button(HARRY, "C0HIGHWAYS", alert["ts"], "alert_draft_reply", "1")
    view = wait_for(lambda: h.slack.open_views(HARRY))[-1]
    shown = block_texts(view)
    assert "pothole on Mansfield Road" in shown and "@NottsCC" in shown and "0/280" in shown
    h.slack.click_view_button(HARRY, view["id"], "draft_text_input",
                              value="Thanks Bob, reported to highways 👍")
    wait_for(lambda: "35/280" in block_texts(h.slack.view(view["id"]) or {}),
             what="live count")
    h.slack.submit_view(HARRY, view["id"], {"draft_text": {
        "draft_text_input": "Thanks Bob, reported to highways 👍"}})
    msg = approval_message(h)
    assert "Thanks Bob" in block_texts(msg) and "In reply to M1" in block_texts(msg)
    h.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], "white_check_mark")
    wait_for(lambda: draft_state(h) == "published")
    assert posts(h)[0]["text"] == "Thanks Bob, reported to highways 👍"


def test_modal_refuses_too_long_text_with_an_inline_error(h: Harness) -> None:
    mention(h, "bins")
    alert = h.alerts_in("C0WASTE")[0]
    h.slack.click_button(WENDY, "C0WASTE", alert["ts"], "alert_draft_reply", "1")
    view = wait_for(lambda: h.slack.open_views(WENDY))[-1]
    r = h.slack.submit_view(WENDY, view["id"], {"draft_text": {"draft_text_input": "b" * 300}})
    assert r.json()["response_action"] == "errors"
    assert "limit is 280" in r.json()["errors"]["draft_text"]
    assert h.count(Draft) == 0


def test_first_commands_at_once_on_a_fresh_database(h: Harness) -> None:
    """The first requests of a new bot arrive together: each creates its draft (the
    accounts one of them is adding are not used by the others before they exist)."""
    from concurrent.futures import ThreadPoolExecutor

    def send(i: int) -> int:
        return h.slack.send_command(WENDY, "C0WASTE", f"post nottscc Notice {i}").status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(send, range(32)))
    assert codes == [200] * 32
    wait_for(lambda: h.count(Draft) == 32, what="32 drafts")
