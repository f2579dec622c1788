"""Slack's Events API delivers at least once: each event id is stored the first time."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from bot.db import transaction
from bot.models import SlackEvent
from bot.runtime import Runtime


def first_delivery(rt: Runtime, event_id: str | None) -> bool:
    """False when Slack is retrying an event we already handled."""
    if not event_id:
        return True
    try:
        with transaction(rt.sessions) as s:
            s.add(SlackEvent(event_id=event_id))
        return True
    except IntegrityError:
        return False
