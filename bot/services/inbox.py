"""The inbox features' lines on shared surfaces (issue 20): what the approval card adds
for a draft started from a saved reply, and (later) the reply window of a private
message. Each line is mrkdwn with its outside text already escaped."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from commsdesk.config import Config
from commsdesk.models import Draft
from commsdesk.runtime import Runtime


def card_lines(rt: Runtime, s: Session, draft: Draft) -> list[str]:
    from commsdesk.services import saved_replies

    lines: list[str] = []
    saved = saved_replies.card_line(s, draft)
    if saved:
        lines.append(saved)
    return lines


def stats_lines(s: Session, cfg: Config, scope: Any, period: Any) -> list[str]:
    """What `/social stats` adds: saved replies used in the period."""
    from commsdesk.services import saved_replies

    return [saved_replies.stats_line(s, period.start, period.end)]


def on_new_mentions(s: Session, rt: Runtime, mention_ids: list[int]) -> None:
    """Called in the transaction that stored new mentions (heard ones included)."""
