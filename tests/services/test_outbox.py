"""The outbox's coalescing: one update shows the latest state and stands in for older
queued updates of the same message, but never for one queued while it was rendering."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from bot.models import Draft, OutboxMessage
from bot.services.draft_surfaces import refresh_draft
from tests.harness import WENDY, Harness, wait_for


@pytest.fixture
def h(database_url: str) -> Iterator[Harness]:
    with Harness(database_url) as harness:
        yield harness


def new_draft(h: Harness) -> tuple[int, str]:
    answer = h.slack.send_command(WENDY, "C0WASTE", "post nottscc Gritters out tonight")
    assert "Draft D1" in answer.json()["text"]
    msg = wait_for(lambda: h.alerts_in("C0APPROVALS"), what="approval message")[0]
    h.settle()
    return 1, str(msg["ts"])


def buttons(h: Harness, ts: str) -> set[str]:
    msg = next(m for m in h.slack.messages("C0APPROVALS") if m["ts"] == ts)
    return {el.get("action_id", "") for b in msg.get("blocks", [])
            for el in b.get("elements", []) if isinstance(el, dict)}


def test_an_update_queued_while_another_renders_is_still_sent(h: Harness) -> None:
    """The adversary is timing: the draft fails (and its refresh is queued) just after the
    outbox rendered the older state. That refresh must go out, not be counted as covered."""
    draft_id, ts = new_draft(h)
    real = h.rt.renderers["update_approval"]
    fired: list[int] = []

    def render_then_a_change_lands(s: Any, row: OutboxMessage, rt: Any) -> Any:
        call = real(s, row, rt)
        if not fired:
            fired.append(row.id)
            with h.rt.sessions.begin() as other:  # another worker, committing meanwhile
                other.execute(sa.update(Draft).where(Draft.id == draft_id).values(
                    state="failed", last_error="answered 503"))
                refresh_draft(other, other.get_one(Draft, draft_id))
        return call

    h.rt.renderers["update_approval"] = render_then_a_change_lands
    with h.rt.sessions.begin() as s:
        refresh_draft(s, s.get_one(Draft, draft_id))  # an update of the pending draft
    h.rt.kick_outbox()
    wait_for(lambda: fired, what="the first update rendered")
    h.settle()
    assert "draft_retry" in buttons(h, ts), "the failed state's update was swallowed"
    with h.rt.sessions() as s:
        errors = list(s.scalars(sa.select(OutboxMessage.last_error)
                                .where(OutboxMessage.op == "update_approval")))
    assert "coalesced" not in errors


def test_older_queued_updates_are_covered_by_one_send(h: Harness) -> None:
    draft_id, _ts = new_draft(h)
    before = len(h.slack.calls_to("chat.update"))
    with h.rt.sessions.begin() as s:  # five refreshes queued before the outbox looks
        for _ in range(5):
            refresh_draft(s, s.get_one(Draft, draft_id))
    h.rt.kick_outbox()
    h.settle()
    assert len(h.slack.calls_to("chat.update")) - before == 1
    with h.rt.sessions() as s:
        errors = list(s.scalars(sa.select(OutboxMessage.last_error)
                                .where(OutboxMessage.op == "update_approval")))
    assert errors.count("coalesced") == 4, errors


def test_a_post_whose_answer_slack_loses_is_looked_for_not_posted_again(h: Harness) -> None:
    """Slack makes the message, then the connection drops before its answer: the outbox
    (not its HTTP client, blindly) tries again, and looks in the channel first."""
    h.slack.inject("chat.postMessage", "drop_after_commit", channel="C0WASTE")
    h.x.add_mention("1111", "jane", "bins not collected on Elm Road")
    h.poll()
    h.settle(timeout=60)
    assert len(h.alerts_in("C0WASTE")) == 1
    posts = [c for c in h.slack.calls_to("chat.postMessage")
             if c.params.get("channel") == "C0WASTE"]
    assert len(posts) == 1, [c.status for c in posts]  # the lost one, never a second
    assert h.slack.calls_to("conversations.history"), "the retry did not look first"
