"""The inbox features' lines on shared surfaces (issue 20): what the approval card adds
for a draft started from a saved reply, and (later) the reply window of a private
message. Each line is mrkdwn with its outside text already escaped."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from bot.clock import now
from bot.config import Config
from bot.models import Draft, Mention
from bot.runtime import Runtime
from bot.services import private, saved_replies, triage


def card_lines(rt: Runtime, s: Session, draft: Draft) -> list[str]:
    lines: list[str] = []
    saved = saved_replies.card_line(s, draft)
    if saved:
        lines.append(saved)
    if draft.mention_id is not None and draft.state in ("pending", "approved", "failed",
                                                        "expired"):
        mention = s.get(Mention, draft.mention_id)
        window = private.card_line(mention, now(), rt.settings.config.tz) if mention else None
        if window:
            lines.append(window)
    return lines


def stats_lines(s: Session, services: list[str] | None, period: Any) -> list[str]:
    """What `/social stats` adds: mentions by priority and sentiment (and triage
    corrections) of the services (None: all), saved replies used in the period."""
    return [*triage.breakdown_lines(s, period.start, period.end, services),
            saved_replies.stats_line(s, period.start, period.end)]


def on_new_mentions(s: Session, cfg: Config, mention_ids: list[int]) -> None:
    """Called in the transaction that stored new mentions (heard ones included), after
    their alerts: priority and sentiment (services/triage.py)."""
    triage.classify(s, cfg, mention_ids)
