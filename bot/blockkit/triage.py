"""Triage shown on an alert: the priority and sentiment badges and the "Triage" menu."""

from __future__ import annotations

from typing import Any

from bot.blockkit.escape import escape
from bot.domain.triage import NORMAL, PRIORITIES, SENTIMENTS, URGENT
from bot.models import Mention

ACTION_TRIAGE = "alert_triage"

PRIORITY_BADGE = {URGENT: ":red_circle: *Urgent*", NORMAL: ":white_circle: Normal"}
SENTIMENT_BADGE = {"negative": ":slightly_frowning_face: Negative",
                   "neutral": ":neutral_face: Neutral",
                   "positive": ":slightly_smiling_face: Positive"}


def badge_line(m: Mention, *, corrected: bool = False) -> str:
    """mrkdwn: priority and sentiment at a glance (nothing from outside but a keyword of
    the council's own config, escaped)."""
    prio = PRIORITY_BADGE.get(m.priority or NORMAL, escape(m.priority or NORMAL))
    if m.priority == URGENT and m.priority_reason:
        prio += f" ({escape(m.priority_reason)})"
    line = prio
    if m.sentiment:
        line += " · " + SENTIMENT_BADGE.get(m.sentiment, escape(m.sentiment))
    return line + (" · _corrected by staff_" if corrected else "")


def menu(m: Mention, alert_id: int) -> dict[str, Any]:
    """The alert's "Triage" menu: the values it could be corrected to."""
    options = []
    for p in PRIORITIES:
        if p != (m.priority or NORMAL):
            options.append((f"priority:{p}", f"Mark {p}"))
    for t in SENTIMENTS:
        if t != m.sentiment:
            options.append((f"sentiment:{t}", f"Sentiment: {t}"))
    return {"type": "overflow", "action_id": ACTION_TRIAGE, "options": [
        {"text": {"type": "plain_text", "text": label}, "value": f"{alert_id}:{value}"}
        for value, label in options]}
