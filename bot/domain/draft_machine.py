"""The drafts' approval state machine, as a table: which move takes a draft from which
states to which. Pure; `bot/services/draft_states.py` and `bot/services/publication.py`
apply each move as one conditional UPDATE (compare-and-set) in the caller's
transaction, with `sources` in its WHERE, so retries, double reactions, concurrent
approvers and replicas can never move a draft twice.

    pending ──approve──▶ approved ──claim──▶ publishing ──publish──▶ published
       │                    │  ▲   ◀─release─┘   │
       ├─reject─▶ rejected  │  └──retry── failed ◀─fail
       ├─supersede─▶ superseded (another reply to the same mention was approved)
       └─expire─▶ expired (approved after its scheduled time)
    an edit of an open draft, or an image added to it, returns it to pending (an
    approval is withdrawn)
"""

from __future__ import annotations

from dataclasses import dataclass

# the column also admits "cancelled", which no move reaches (nothing cancels a draft yet)
STATES = ("pending", "approved", "publishing", "published", "failed", "rejected",
          "superseded", "expired")
# a person can still act on these (edit, approve, reject, retry)
OPEN = ("pending", "approved", "failed", "expired")


@dataclass(frozen=True)
class Move:
    sources: tuple[str, ...]
    target: str


MOVES: dict[str, Move] = {
    "approve": Move(("pending",), "approved"),
    "expire": Move(("pending",), "expired"),  # approved after its scheduled time
    "reject": Move(OPEN, "rejected"),
    "supersede": Move(("pending", "expired", "failed"), "superseded"),
    "retry": Move(("failed", "expired"), "approved"),
    "edit": Move(OPEN, "pending"),  # a new version: any approval is withdrawn
    "claim": Move(("approved",), "publishing"),
    "publish": Move(("publishing",), "published"),
    "fail": Move(("publishing",), "failed"),
    "release": Move(("publishing",), "approved"),  # tried again later (rate limit, unknown)
}


def sources(move: str) -> tuple[str, ...]:
    return MOVES[move].sources


def target(move: str) -> str:
    return MOVES[move].target


def can(move: str, state: str) -> bool:
    return state in MOVES[move].sources
