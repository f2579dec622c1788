"""The drafts' state machine as a table, checked without a database."""

from __future__ import annotations

import pytest

from bot.domain import draft_machine as machine


def test_every_move_goes_between_known_states() -> None:
    for name, move in machine.MOVES.items():
        assert move.sources and set(move.sources) <= set(machine.STATES), name
        assert move.target in machine.STATES, name


def test_every_state_is_reached_from_pending() -> None:
    seen, frontier = {"pending"}, ["pending"]
    while frontier:
        state = frontier.pop()
        for name in machine.MOVES:
            nxt = machine.target(name)
            if machine.can(name, state) and nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(machine.STATES)


@pytest.mark.parametrize("state", ["published", "rejected", "superseded"])
def test_a_decided_draft_stays_decided(state: str) -> None:
    assert [m for m in machine.MOVES if machine.can(m, state)] == []


@pytest.mark.parametrize(("move", "state", "expected"), [
    ("approve", "pending", "approved"),
    ("approve", "approved", None),  # a second ✅ moves nothing
    ("approve", "publishing", None),
    ("edit", "approved", "pending"),  # an edit withdraws the approval
    ("edit", "publishing", None),  # too late: it is being posted
    ("edit", "published", None),
    ("reject", "failed", "rejected"),
    ("reject", "publishing", None),
    ("retry", "failed", "approved"),
    ("retry", "published", None),
    ("claim", "approved", "publishing"),
    ("claim", "pending", None),  # nothing is posted before it is approved
    ("release", "publishing", "approved"),
    ("publish", "approved", None),  # only a claim publishes
])
def test_moves(move: str, state: str, expected: str | None) -> None:
    assert machine.can(move, state) is (expected is not None)
    if expected is not None:
        assert machine.target(move) == expected


def test_only_a_claim_leads_to_publishing_and_only_publishing_to_published() -> None:
    assert [m for m, mv in machine.MOVES.items() if mv.target == "publishing"] == ["claim"]
    assert [m for m, mv in machine.MOVES.items() if mv.target == "published"] == ["publish"]
    assert machine.sources("publish") == ("publishing",)
