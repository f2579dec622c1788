"""`commsdesk audit export` names the people and groups a record names (asked of Slack),
beside the record as it was recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient

from bot.db import transaction
from bot.services import audit
from bot.services.slack_names import SlackNames
from tests.harness import CARA, ROGUE, Harness

REASON = "Only <!subteam^S0COMMS> or <@U0COMMS1|cara> can approve; nothing was published."


@pytest.fixture
def h(database_url: str) -> Iterator[Harness]:
    with Harness(database_url) as harness:
        yield harness


def _export(h: Harness, fmt: str, names: SlackNames | None) -> list[str]:
    with h.rt.sessions() as s:
        return list(audit.iter_export(s, audit.export_query(actor=ROGUE), fmt,
                                      names=names.of_row if names else None))


def test_export_adds_names_and_keeps_the_ids(h: Harness) -> None:
    with transaction(h.rt.sessions) as s:
        audit.record(s, actor=ROGUE, action="draft.decision_refused", subject_kind="draft",
                     subject_id=1, details={"reason": REASON})
    names = SlackNames(WebClient(token=h.slack.bot_token, base_url=h.slack.api_url))
    row = json.loads(_export(h, "jsonl", names)[-1])
    assert row["names"] == {ROGUE: "rogue", "S0COMMS": "@comms", CARA: "cara"}
    assert row["details"]["reason"] == REASON and row["actor"] == ROGUE  # as recorded
    header, line = _export(h, "csv", names)
    assert header.strip().endswith(",names") and '""S0COMMS"":""@comms""' in line
    assert not _export(h, "csv", None)[0].strip().endswith(",names")  # no names: as before

    # Slack unreachable: the ids stand, asked once, and the export still completes
    down = SlackNames(WebClient(token="xoxb-x", base_url="http://127.0.0.1:9/api/", timeout=2))
    assert json.loads(_export(h, "jsonl", down)[-1])["names"] == {}
    assert down.user("U0OTHER") is None
