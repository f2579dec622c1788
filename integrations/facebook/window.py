"""Messenger's reply window: a page may answer a message only within 24 hours of it
(the publisher refuses a reply after that; the approval card shows when it closes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

MESSAGING_WINDOW = timedelta(hours=24)


def closes(external_id: str) -> datetime | None:
    """When the page can no longer answer this mention: a Messenger message's id is
    `m:<psid>:<sent, ms since the epoch>`; a comment has no window (None)."""
    if not external_id.startswith("m:"):
        return None
    try:
        sent_ms = int(external_id.split(":", 2)[2])
    except (IndexError, ValueError):
        return None
    return datetime.fromtimestamp(sent_ms / 1000, UTC) + MESSAGING_WINDOW
