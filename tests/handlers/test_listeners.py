"""Listeners one by one: each called directly, as Bolt would call it, with a real
runtime (the shared Harness: SQLite or PostgreSQL, the Slack and X emulators) and
Bolt-like `ack`/`respond` callables that record what they were given."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from slack_bolt import BoltContext

from bot.blockkit.modals import DRAFT_TEXT_BLOCK, REROUTE_BLOCK
from bot.models import AuditEvent, Draft
from handlers import actions, commands, events, views
from handlers.context import RT_KEY
from tests.harness import CARA, ROGUE, WENDY, Harness


class Recorded:
    """A stand-in for Bolt's `ack` or `respond`: remembers each call's arguments."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, text: str | None = None, **kwargs: Any) -> None:
        self.calls.append({**({"text": text} if text is not None else {}), **kwargs})


@pytest.fixture
def h(database_url: str) -> Iterator[Harness]:
    with Harness(database_url) as harness:
        yield harness


def new_audit(h: Harness) -> list[str]:
    """Audit actions recorded since start-up (which records the configured accounts)."""
    return [a for a in h.audit_actions() if a != "account.configured"]


def context(h: Harness) -> BoltContext:
    return BoltContext({RT_KEY: h.rt})


def social(h: Harness, user: str, text: str) -> Recorded:
    ack = Recorded()
    commands.social(ack=ack, command={"user_id": user, "text": text, "channel_id": "C0COMMS"},
                    context=context(h))
    return ack


def test_social_with_bad_text_answers_once_and_stores_nothing(h: Harness) -> None:
    ack = social(h, WENDY, "frobnicate the bins")
    assert len(ack.calls) == 1
    assert ack.calls[0]["response_type"] == "ephemeral"
    assert "/social" in ack.calls[0]["text"]  # says how to use it
    assert h.count(Draft) == 0 and new_audit(h) == []


def test_social_with_an_unknown_account_names_the_accounts(h: Harness) -> None:
    ack = social(h, CARA, "post nosuch Hello")
    assert len(ack.calls) == 1
    assert "no account called `nosuch`" in ack.calls[0]["text"]
    assert "nottscc" in ack.calls[0]["text"]
    assert h.count(Draft) == 0


def test_social_post_stores_the_draft_and_confirms_it(h: Harness) -> None:
    ack = social(h, CARA, "post nottscc Library opening hours change next week")
    assert [c["response_type"] for c in ack.calls] == ["ephemeral"]
    assert ack.calls[0]["text"].startswith(":memo: Draft D1 created")
    assert "<#C0APPROVALS>" in ack.calls[0]["text"]
    assert h.count(Draft) == 1
    assert h.count(AuditEvent, AuditEvent.action == "draft.created") == 1


def test_pause_by_someone_outside_comms_is_refused_and_audited(h: Harness) -> None:
    ack = social(h, ROGUE, "pause all fire at the depot")
    assert len(ack.calls) == 1 and ack.calls[0]["text"].startswith(":no_entry:")
    assert new_audit(h) == ["publishing.pause_refused"]


def test_edit_form_out_of_date_is_an_error_on_the_text(h: Harness) -> None:
    ack = Recorded()
    views.draft_edit(ack=ack, body={"user": {"id": CARA}},
                     view={"private_metadata": "{}", "state": {"values": {}}},
                     context=context(h))
    assert ack.calls == [{"response_action": "errors",
                          "errors": {DRAFT_TEXT_BLOCK: "This form is out of date."}}]


def test_draft_reply_for_an_unknown_mention_stores_nothing(h: Harness) -> None:
    ack = Recorded()
    view = {"private_metadata": '{"mention_id": 999}',
            "state": {"values": {DRAFT_TEXT_BLOCK: {"draft_text_input": {"value": "Hi"}}}}}
    views.draft_reply(ack=ack, body={"user": {"id": CARA}}, view=view, context=context(h))
    assert len(ack.calls) == 1
    assert "M999 is not a mention" in ack.calls[0]["errors"][DRAFT_TEXT_BLOCK]
    assert h.count(Draft) == 0


def test_reroute_form_without_a_service_asks_for_one(h: Harness) -> None:
    ack = Recorded()
    views.reroute(ack=ack, body={"user": {"id": CARA}},
                  view={"private_metadata": "1", "state": {"values": {}}}, context=context(h))
    assert ack.calls == [{"response_action": "errors", "errors": {REROUTE_BLOCK: "Pick a service."}}]


def test_a_button_without_a_value_is_acked_and_does_nothing(h: Harness) -> None:
    ack, respond = Recorded(), Recorded()
    actions.approve(ack=ack, body={"user": {"id": CARA}, "actions": [{}]}, context=context(h))
    actions.claim(ack=ack, body={"user": {"id": CARA}, "actions": [{}]}, respond=respond,
                  context=context(h))
    assert ack.calls == [{}, {}] and respond.calls == []
    assert new_audit(h) == []


def test_approving_an_unknown_draft_tells_the_presser(h: Harness) -> None:
    ack = Recorded()
    body = {"user": {"id": CARA}, "channel": {"id": "C0APPROVALS"},
            "actions": [{"value": "42:v1"}]}
    actions.approve(ack=ack, body=body, context=context(h))
    assert ack.calls == [{}]
    told = h.slack.ephemerals(user=CARA)
    assert [e["text"] for e in told] == ["That draft no longer exists."]


def test_removing_a_reaction_changes_nothing(h: Harness) -> None:
    assert events.on_reaction_removed() is None
    assert new_audit(h) == []
