"""The insider plays against the controls (issue 14): an approver who edits a draft and
then approves their own words, an approver just removed from the group, Slack failing
while a decision is made, a two-approval account worked by one person, and someone who
is neither in a service's channel nor in the comms team pressing that service's alert
buttons. Everything over HTTP with signed requests, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from bot.models import Alert, Approval, AuditEvent, Draft, Mention
from tests.harness import (
    CARA,
    COLIN,
    E2E_CONFIG,
    HARRY,
    ROGUE,
    WENDY,
    Harness,
    wait_for,
)

DAVE = "U0COMMS3"  # a third comms approver
APPROVE, REJECT = "white_check_mark", "x"
EDITED = "Bins will be collected on Tuesday this week because of the bank holiday"


@pytest.fixture
def h(database_url: str) -> Iterator[Harness]:
    with Harness(database_url) as harness:
        yield harness


@pytest.fixture
def h2(database_url: str) -> Iterator[Harness]:
    """@NottsCC needs two approvals; Dave is a third comms approver."""
    config: dict[str, Any] = copy.deepcopy(E2E_CONFIG)
    config["accounts"][0]["required_approvals"] = 2
    with Harness(database_url, config=config) as harness:
        harness.slack.add_user(DAVE, "dave")
        harness.slack.set_usergroup_users("S0COMMS", [CARA, COLIN, DAVE])
        yield harness


# ---------------------------------------------------------------- helpers


def draft(h: Harness, user: str, text: str, n: int = 1) -> dict[str, Any]:
    r = h.slack.send_command(user, "C0WASTE", f"post nottscc {text}")
    assert r.status_code == 200 and f"Draft D{n} created" in r.json()["text"], r.text
    msgs = wait_for(lambda: len(h.alerts_in("C0APPROVALS")) >= n and h.alerts_in("C0APPROVALS"),
                    what="approval message")
    return msgs[n - 1]


def edit(h: Harness, user: str, msg: dict[str, Any], text: str, version: int) -> None:
    """The Edit button on the approval message, then the modal submitted."""
    h.slack.click_button(user, "C0APPROVALS", msg["ts"], "draft_edit", "1")
    view = wait_for(lambda: h.slack.open_views(user), what="edit modal")[-1]
    r = h.slack.submit_view(user, view["id"], {"draft_text": {"draft_text_input": text}})
    assert r.status_code == 200 and "errors" not in r.text, r.text
    wait_for(lambda: the_draft(h).version == version, what=f"version {version}")


def button_value(h: Harness, msg: dict[str, Any], action: str = "draft_approve") -> str | None:
    shown = h.slack.message("C0APPROVALS", msg["ts"]) or {}
    for block in shown.get("blocks") or []:
        for element in block.get("elements") or []:
            if element.get("action_id") == action:
                return str(element.get("value"))
    return None


def click(h: Harness, user: str, msg: dict[str, Any], version: int,
          action: str = "draft_approve") -> None:
    """Press the button as the approval message shows it, once it shows this version."""
    wait_for(lambda: button_value(h, msg, action) == f"{the_draft(h).id}:v{version}",
             what=f"the message showing version {version}")
    h.slack.click_button(user, "C0APPROVALS", msg["ts"], action)


def the_draft(h: Harness, draft_id: int = 1) -> Draft:
    with h.rt.sessions() as s:
        d = s.get_one(Draft, draft_id)
        s.expunge(d)
        return d


def posts(h: Harness) -> list[str]:
    return [p["text"] for p in h.x.posts_created() if not p.get("deleted")]


def audits(h: Harness, action: str) -> list[Any]:
    """Audit records (actor, action, details) of one action, oldest first."""
    with h.rt.sessions() as s:
        return list(s.execute(sa.select(AuditEvent.actor, AuditEvent.action, AuditEvent.details)
                              .where(AuditEvent.action == action).order_by(AuditEvent.id)))


def approvals(h: Harness, decision: str) -> list[tuple[str, int, str]]:
    with h.rt.sessions() as s:
        return [(a.user_id, a.draft_version, a.via) for a in s.scalars(
            sa.select(Approval).where(Approval.decision == decision).order_by(Approval.id))]


def wait_refusals(h: Harness, n: int, action: str = "draft.decision_refused") -> list[Any]:
    return wait_for(lambda: len(audits(h, action)) >= n and audits(h, action),
                    what=f"{n} x {action}")


def said_to(h: Harness, user: str, fragment: str) -> bool:
    return any(fragment.lower() in (e.get("text") or "").lower()
               for e in h.slack.ephemerals(user=user))


def published_once(h: Harness, text: str) -> None:
    wait_for(lambda: the_draft(h).state == "published", what="published")
    h.rt.publisher.sweep()  # a sweep after the fact publishes nothing more
    h.settle()
    assert posts(h) == [text]
    assert len(audits(h, "draft.published")) == 1


# ---------------------------------------------------------------- four eyes


def test_an_approver_who_edits_a_draft_cannot_approve_it(h: Harness) -> None:
    msg = draft(h, WENDY, "Bins collected Tuesday")
    edit(h, CARA, msg, EDITED, version=2)  # an approver rewrites Wendy's draft...
    h.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], APPROVE)  # ...then approves it
    click(h, CARA, msg, version=2)
    refused = wait_refusals(h, 2)
    assert [r.actor for r in refused] == [CARA, CARA]
    assert {r.details["via"] for r in refused} == {"reaction", "button"}
    assert all(r.details["version"] == 2 and r.details["attempted"] == "approve"
               for r in refused)
    wait_for(lambda: said_to(h, CARA, "You edited D1"), what="Cara told why")
    h.rt.publisher.sweep()
    assert the_draft(h).state == "pending" and posts(h) == []
    assert approvals(h, "approve") == []
    assert [(u, v) for u, v, _ in approvals(h, "refused")] == [(CARA, 2), (CARA, 2)]

    h.slack.add_reaction(COLIN, "C0APPROVALS", msg["ts"], APPROVE)  # a second pair of eyes
    published_once(h, EDITED)
    approved = audits(h, "draft.approved")
    assert len(approved) == 1 and approved[0].actor == COLIN
    assert approved[0].details["version"] == 2 and approved[0].details["approvers"] == [COLIN]
    assert approvals(h, "approve") == [(COLIN, 2, "reaction")]


def test_the_author_cannot_approve_even_after_someone_else_edits(h: Harness) -> None:
    msg = draft(h, CARA, "Library fines abolished")  # a comms approver drafts
    edit(h, COLIN, msg, "Library fines abolished from 1 April", version=2)
    h.slack.click_button(CARA, "C0APPROVALS", msg["ts"], "draft_approve", "1")  # author
    h.slack.add_reaction(COLIN, "C0APPROVALS", msg["ts"], APPROVE)  # editor
    refused = wait_refusals(h, 2)
    assert sorted(r.actor for r in refused) == [CARA, COLIN]
    wait_for(lambda: said_to(h, CARA, "You wrote this draft") and said_to(h, COLIN, "You edited"))
    assert the_draft(h).state == "pending" and posts(h) == []
    h.slack.add_user(DAVE, "dave")  # a third approver, who neither wrote nor edited it
    h.slack.set_usergroup_users("S0COMMS", [CARA, COLIN, DAVE])
    h.slack.click_button(DAVE, "C0APPROVALS", msg["ts"], "draft_approve", "1")
    published_once(h, "Library fines abolished from 1 April")


def test_two_approvals_need_two_people_who_neither_wrote_nor_edited(h2: Harness) -> None:
    h = h2
    msg = draft(h, WENDY, "Bins collected Tuesday")
    h.slack.add_reaction(COLIN, "C0APPROVALS", msg["ts"], APPROVE)  # approves version 1
    wait_for(lambda: approvals(h, "approve") == [(COLIN, 1, "reaction")])
    edit(h, CARA, msg, EDITED, version=2)  # Colin's approval was of other words
    h.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], APPROVE)  # the editor: refused
    wait_refusals(h, 1)
    h.slack.add_reaction(DAVE, "C0APPROVALS", msg["ts"], APPROVE)  # one of two for v2
    wait_for(lambda: len(audits(h, "draft.approval_added")) == 2, what="Dave's approval")
    assert audits(h, "draft.approval_added")[-1].details["version"] == 2
    click(h, DAVE, msg, version=2)  # twice
    wait_for(lambda: said_to(h, DAVE, "already approved"), what="Dave told")
    time.sleep(0.3)
    h.rt.publisher.sweep()
    assert the_draft(h).state == "pending" and posts(h) == []
    click(h, COLIN, msg, version=2)  # v2 now
    published_once(h, EDITED)
    approved = audits(h, "draft.approved")[0]
    assert approved.details["version"] == 2 and approved.details["approvers"] == [COLIN, DAVE]
    assert approvals(h, "approve") == [(COLIN, 1, "reaction"), (DAVE, 2, "reaction"),
                                       (COLIN, 2, "button")]


def test_a_decision_names_the_version_it_was_shown(h: Harness) -> None:
    msg = draft(h, WENDY, "Bins collected Tuesday")
    wait_for(lambda: button_value(h, msg) == "1:v1", what="buttons naming version 1")
    assert button_value(h, msg, "draft_reject") == "1:v1"
    edit(h, WENDY, msg, EDITED, version=2)  # the author changes it meanwhile
    # Colin presses Approve and Reject on the message as it was (version 1)
    h.slack.click_button(COLIN, "C0APPROVALS", msg["ts"], "draft_approve", "1:v1")
    h.slack.click_button(COLIN, "C0APPROVALS", msg["ts"], "draft_reject", "1:v1")
    refused = wait_refusals(h, 2)
    assert all(r.details["version"] == 2 and "you saw version 1" in r.details["reason"]
               for r in refused)
    wait_for(lambda: said_to(h, COLIN, "read it again"), what="Colin told")
    assert the_draft(h).state == "pending" and posts(h) == []
    click(h, COLIN, msg, version=2)  # having read version 2
    published_once(h, EDITED)
    assert audits(h, "draft.approved")[0].details["version"] == 2


# ---------------------------------------------------------------- approver rights, live


def test_an_approver_removed_from_the_group_is_refused_a_second_later(h: Harness) -> None:
    first = draft(h, WENDY, "Recycling centres open on Monday")
    h.slack.add_reaction(CARA, "C0APPROVALS", first["ts"], APPROVE)  # Cara is an approver
    wait_for(lambda: the_draft(h).state == "published", what="D1 published")
    second = draft(h, WENDY, "Garden waste collections resume", n=2)
    h.slack.set_usergroup_users("S0COMMS", [COLIN])  # Cara leaves the comms team
    time.sleep(1)
    h.slack.add_reaction(CARA, "C0APPROVALS", second["ts"], APPROVE)
    h.slack.click_button(CARA, "C0APPROVALS", second["ts"], "draft_approve", "2")
    h.slack.click_button(CARA, "C0APPROVALS", second["ts"], "draft_reject", "2")
    refused = wait_refusals(h, 3)
    assert {r.details["attempted"] for r in refused} == {"approve", "reject"}
    assert all("approvers group" in r.details["reason"] for r in refused)
    h.rt.publisher.sweep()
    assert the_draft(h, 2).state == "pending"
    assert posts(h) == ["Recycling centres open on Monday"]
    h.slack.set_usergroup_users("S0COMMS", [CARA, COLIN])  # back: the next decision counts
    h.slack.click_button(CARA, "C0APPROVALS", second["ts"], "draft_approve", "2")
    wait_for(lambda: the_draft(h, 2).state == "published")


@pytest.mark.parametrize("fault", ["error", "503", "drop"])
def test_slack_failing_during_a_decision_refuses_it(h: Harness, fault: str) -> None:
    msg = draft(h, WENDY, "Tip opening hours are changing")
    # Cara was confirmed a moment ago (any cache would be warm)...
    assert h.rt.approvers.is_approver_live(CARA)
    # ...then Slack cannot answer (the client's own retries included)
    times = 1 if fault == "error" else 3  # (the client retries 5xx and dropped connections)
    h.slack.inject("usergroups.users.list", fault, times=times, error="fatal_error")
    h.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], APPROVE)
    refused = wait_refusals(h, 1)[0]
    assert refused.actor == CARA and "Couldn't confirm you are an approver" in \
        refused.details["reason"]
    wait_for(lambda: said_to(h, CARA, "couldn't confirm you are an approver, try again"),
             what="Cara told to try again")
    time.sleep(0.3)
    h.rt.publisher.sweep()
    assert the_draft(h).state == "pending" and posts(h) == []
    assert approvals(h, "approve") == []
    # the button too, while Slack still fails
    h.slack.inject("usergroups.users.list", fault, times=times, error="fatal_error")
    h.slack.click_button(CARA, "C0APPROVALS", msg["ts"], "draft_approve", "1")
    wait_refusals(h, 2)
    assert the_draft(h).state == "pending" and posts(h) == []
    # Slack answers again: trying again works
    h.slack.click_button(CARA, "C0APPROVALS", msg["ts"], "draft_approve", "1")
    published_once(h, "Tip opening hours are changing")


def test_pause_is_decided_live(h: Harness) -> None:
    h.slack.set_usergroup_users("S0COMMS", [COLIN])  # Cara has just left the comms team
    r = h.slack.send_command(CARA, "C0COMMS", "pause all checking something")
    assert "Only the comms approvers group" in r.json()["text"]
    h.slack.inject("usergroups.users.list", "error", times=1, error="fatal_error")
    r = h.slack.send_command(COLIN, "C0COMMS", "pause all checking something")
    assert "Couldn't confirm you are an approver" in r.json()["text"]
    assert [e.details["reason"] for e in audits(h, "publishing.pause_refused")] == [
        "not comms", "unconfirmed"]
    assert audits(h, "publishing.paused") == []
    r = h.slack.send_command(COLIN, "C0COMMS", "pause all checking something")
    assert "Publishing paused" in r.json()["text"]


# ---------------------------------------------------------------- alert buttons


def alert_in_waste(h: Harness) -> str:
    h.x.add_mention("1111", "jane", "bins not collected on Elm Road")
    h.poll()
    h.settle()
    return str(h.alerts_in("C0WASTE")[0]["ts"])


def mention_state(h: Harness) -> str:
    with h.rt.sessions() as s:
        return s.get_one(Mention, 1).state


def press(h: Harness, user: str, ts: str, action: str) -> None:
    """Press a button on the waste alert once it shows (the alert is updated by the outbox)."""
    def shown() -> bool:
        try:
            h.slack.click_button(user, "C0WASTE", ts, action, "1")
            return True
        except LookupError:
            return False

    wait_for(shown, what=f"{action} button")


def test_alert_buttons_refuse_outsiders_and_serve_channel_members(h: Harness) -> None:
    ts = alert_in_waste(h)
    # the waste channel: Wendy, and a crowd that takes three pages of conversations.members
    crowd = [f"U9{i:06d}" for i in range(2200)]
    h.slack.set_channel_members("C0WASTE", [*crowd, WENDY])
    refusals = 0

    def refused(action: str) -> None:
        nonlocal refusals
        refusals += 1
        got = wait_refusals(h, refusals, "alert.refused")[-1]
        assert got.actor == ROGUE and got.details["attempted"] == action
        assert got.details["channel"] == "C0WASTE"
        assert got.details["reason"] == "not in the alert's channel or the comms team"

    press(h, ROGUE, ts, "alert_claim")
    refused("claim")
    press(h, ROGUE, ts, "alert_no_reply")
    refused("close")
    wait_for(lambda: said_to(h, ROGUE, "Only members of <#C0WASTE> or the comms team"),
             what="Rogue told why")
    press(h, ROGUE, ts, "alert_reroute")  # no form for an outsider
    refused("reroute")
    assert h.slack.open_views(ROGUE) == []
    # Rogue was in the channel when the form opened, and has left when it is submitted
    h.slack.set_channel_members("C0WASTE", [*crowd, WENDY, ROGUE])
    press(h, ROGUE, ts, "alert_reroute")
    view = wait_for(lambda: h.slack.open_views(ROGUE), what="reroute form")[-1]
    h.slack.set_channel_members("C0WASTE", [*crowd, WENDY])
    r = h.slack.submit_view(ROGUE, view["id"], {"service": {"service_select": "highways"}})
    assert "Only members of" in r.json()["errors"]["service"]
    refused("reroute")
    assert mention_state(h) == "open"
    with h.rt.sessions() as s:
        assert [(a.channel, a.active) for a in s.scalars(sa.select(Alert))] == [
            ("C0WASTE", True)]
    press(h, WENDY, ts, "alert_no_reply")  # a member of the channel (on its third page)
    wait_for(lambda: mention_state(h) == "closed")
    press(h, ROGUE, ts, "alert_reopen")
    refused("reopen")
    assert mention_state(h) == "closed"
    actions = h.audit_actions()
    assert "mention.claimed" not in actions and "mention.reopened" not in actions
    assert actions.count("mention.closed") == 1 and "mention.rerouted" not in actions

    # the channel's member reopens and claims; a comms approver outside it reroutes
    press(h, WENDY, ts, "alert_reopen")
    wait_for(lambda: mention_state(h) == "open")
    press(h, WENDY, ts, "alert_claim")
    wait_for(lambda: mention_state(h) == "claimed")
    press(h, CARA, ts, "alert_reroute")
    view = wait_for(lambda: h.slack.open_views(CARA), what="reroute form")[-1]
    r = h.slack.submit_view(CARA, view["id"], {"service": {"service_select": "highways"}})
    assert r.status_code == 200 and "errors" not in r.text
    wait_for(lambda: h.alerts_in("C0HIGHWAYS"), what="alert in highways")
    assert len(audits(h, "alert.refused")) == refusals == 5


def test_alert_buttons_refused_when_slack_cannot_say(h: Harness) -> None:
    ts = alert_in_waste(h)
    h.slack.set_channel_members("C0WASTE", [WENDY])
    h.slack.inject("conversations.members", "error", times=1, error="fetch_members_failed")
    h.slack.inject("usergroups.users.list", "error", times=1, error="fatal_error")
    press(h, WENDY, ts, "alert_claim")
    got = wait_refusals(h, 1, "alert.refused")[0]
    assert got.actor == WENDY and got.details["reason"] == "unconfirmed"
    wait_for(lambda: said_to(h, WENDY, "Couldn't confirm you are in <#C0WASTE>"))
    assert mention_state(h) == "open"
    # one of the two answering is enough when it says yes
    h.slack.inject("conversations.members", "error", times=1, error="fetch_members_failed")
    press(h, CARA, ts, "alert_claim")
    wait_for(lambda: mention_state(h) == "claimed")
    assert len(audits(h, "alert.refused")) == 1
    # ...and never when it says no
    h.slack.inject("usergroups.users.list", "error", times=1, error="fatal_error")
    press(h, HARRY, ts, "alert_no_reply")
    got = wait_refusals(h, 2, "alert.refused")[-1]
    assert got.actor == HARRY and got.details["reason"] == "unconfirmed"
    assert mention_state(h) == "claimed"


def test_emulator_pages_conversations_members_as_slack_does() -> None:
    """What `Approvers.channel_members_live` reads: Slack's cursor pagination, and its
    errors for a bad cursor or limit (the real Web API shape, from the OpenAPI spec)."""
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    from bot.emulators.slack import SlackEmulator

    with SlackEmulator(bot_token="xoxb-test") as slack:
        people = [f"U{i:05d}" for i in range(250)]
        slack.add_channel("C0BIG", "big", members=people)
        web = WebClient(token="xoxb-test", base_url=slack.api_url)
        seen: list[str] = []
        cursor, pages = None, 0
        while True:
            resp = web.conversations_members(channel="C0BIG", limit=100, cursor=cursor)
            seen += resp["members"]
            pages += 1
            cursor = resp["response_metadata"]["next_cursor"]
            if not cursor:
                break
        assert pages == 3 and seen == [*people, "U0BOT"]  # every member once, in order
        assert len(web.conversations_members(channel="C0BIG")["members"]) == 100  # default
        for bad in ({"cursor": "not-a-cursor"}, {"limit": 0}):
            with pytest.raises(SlackApiError) as err:
                web.conversations_members(channel="C0BIG", **bad)
            assert err.value.response["error"] in ("invalid_cursor", "invalid_limit")
