"""The inbox (issue 20) over HTTP on SQLite and PostgreSQL: saved replies, keyword
listening, triage by priority and sentiment, private messages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from commsdesk.models import AuditEvent, Draft, SavedReply, SavedReplyUse
from tests.harness import CARA, COLIN, HARRY, ROGUE, WENDY, Harness, block_texts, wait_for


@pytest.fixture
def h(database_url: str) -> Iterator[Harness]:
    with Harness(database_url) as harness:
        yield harness


def command(h: Harness, user: str, text: str, channel: str = "C0WASTE") -> str:
    r = h.slack.send_command(user, channel, text)
    assert r.status_code == 200, r.text
    return str(r.json().get("text", ""))


def approval_message(h: Harness, n: int = 1) -> dict[str, Any]:
    msgs = wait_for(lambda: len(h.alerts_in("C0APPROVALS")) >= n and h.alerts_in("C0APPROVALS"),
                    what="approval message")
    return msgs[n - 1]


def draft(h: Harness, draft_id: int = 1) -> Draft:
    with h.rt.sessions() as s:
        d = s.get(Draft, draft_id)
        assert d is not None
        return d


# ------------------------------------------------------------------ saved replies


BINS = "Sorry {author}, the {service} team is on it: quote {ref} if you call us."


def test_saved_reply_starts_a_draft_named_on_its_card_and_counted(h: Harness) -> None:
    assert "added" in command(h, CARA, f"saved add bins-missed {BINS}", "C0COMMS")
    listing = command(h, WENDY, "saved")
    assert "bins-missed" in listing and "{author}" in listing
    h.x.add_mention("1111", "jane", "bins not collected on Elm Road <!channel>")
    h.poll()
    h.settle()
    assert "There is no saved reply called `nope`" in command(h, WENDY, "reply M1 saved:nope")
    answer = command(h, WENDY, "reply M1 saved:bins-missed")
    assert "Draft D1 created" in answer
    assert draft(h).text == "Sorry @jane, the waste team is on it: quote M1 if you call us."
    card = block_texts(approval_message(h))
    assert "From saved reply `bins-missed`, unchanged" in card
    # an approver edits it: the card says what changed from the saved text
    msg = approval_message(h)
    h.slack.click_button(CARA, "C0APPROVALS", msg["ts"], "draft_edit", "1")
    view = wait_for(lambda: h.slack.open_views(CARA))[-1]
    h.slack.submit_view(CARA, view["id"], {"draft_text": {
        "draft_text_input": "Sorry @jane, the waste crew is on it: quote M1 if you call us."}})
    wait_for(lambda: "*changed*" in block_texts(h.slack.message("C0APPROVALS", msg["ts"]) or {}),
             what="card updated")
    card = block_texts(h.slack.message("C0APPROVALS", msg["ts"]) or {})
    assert "“team” → “crew”" in card
    # still approved like any draft: COLIN approves (CARA edited it)
    h.slack.add_reaction(COLIN, "C0APPROVALS", msg["ts"], "white_check_mark")
    wait_for(lambda: draft(h).state == "published", what="published")
    assert [p["text"] for p in h.x.posts_created()] == [
        "Sorry @jane, the waste crew is on it: quote M1 if you call us."]
    stats = command(h, CARA, "stats", "C0COMMS")
    assert "Saved replies used: *1* (bins-missed 1)" in stats
    assert "saved_reply.used" in h.audit_actions()


def test_saved_reply_from_the_draft_reply_modal(h: Harness) -> None:
    command(h, CARA, f"saved add waste/bins-missed {BINS}", "C0COMMS")
    command(h, CARA, "saved add thanks Thanks {author}!", "C0COMMS")
    h.x.add_mention("1111", "jane", "my bins were missed again")
    h.poll()
    h.settle()
    alert = h.alerts_in("C0WASTE")[0]
    h.slack.click_button(WENDY, "C0WASTE", alert["ts"], "alert_draft_reply", "1")
    view = wait_for(lambda: h.slack.open_views(WENDY))[-1]
    options = [o["value"] for b in view["blocks"] if b.get("block_id") == "saved_reply"
               for o in b["elements"][0]["options"]]
    assert len(options) == 2  # the waste team's first, then everyone's
    h.slack.click_view_button(WENDY, view["id"], "saved_reply_pick", options[0])

    def filled() -> str | None:
        v = h.slack.view(view["id"]) or {}
        for b in v.get("blocks", []):
            if b.get("block_id") == "draft_text":
                return b["element"].get("initial_value")
        return None

    text = wait_for(filled, what="saved text filled in")
    assert text == "Sorry @jane, the waste team is on it: quote M1 if you call us."
    r = h.slack.submit_view(WENDY, view["id"], {"draft_text": text})
    assert r.status_code == 200 and not r.content.strip(), r.text
    wait_for(lambda: h.count(Draft) == 1)
    card = block_texts(approval_message(h))
    assert "From saved reply `waste/bins-missed`, unchanged" in card
    with h.rt.sessions() as s:
        use = s.query(SavedReplyUse).one()
        assert (use.via, use.name, use.scope) == ("modal", "bins-missed", "waste")


def test_only_the_comms_team_changes_saved_replies(h: Harness) -> None:
    command(h, CARA, "saved add thanks Thanks {author}!", "C0COMMS")
    for user in (WENDY, ROGUE):
        for text in ("saved add mine Hello", "saved edit thanks Hacked", "saved remove thanks"):
            assert "Only the comms team" in command(h, user, text)
    assert h.count(AuditEvent, AuditEvent.action == "saved_reply.refused") == 6
    # asked live: someone removed from the group loses the right at once
    h.slack.set_usergroup_users("S0COMMS", [COLIN])
    assert "Only the comms team" in command(h, CARA, "saved edit thanks Hacked", "C0COMMS")
    # Slack cannot answer: refused, nothing changed
    h.slack.fail_next("usergroups.users.list", "internal_error")
    assert "Couldn't confirm" in command(h, COLIN, "saved remove thanks", "C0COMMS")
    assert "edited" not in " ".join(h.audit_actions())
    assert "updated" in command(h, COLIN, "saved edit thanks Many thanks {author}!", "C0COMMS")
    assert "Unknown placeholder {name}" in command(h, COLIN, "saved add x Hi {name}", "C0COMMS")
    with h.rt.sessions() as s:
        assert [(r.name, r.text) for r in s.query(SavedReply)] == [
            ("thanks", "Many thanks {author}!")]
    assert "removed" in command(h, COLIN, "saved remove thanks", "C0COMMS")
    assert h.count(SavedReply) == 0
