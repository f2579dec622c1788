"""`/social` words added by issue 21, answered before the core grammar sees them:
`/social calendar [YYYY-Www]` (ephemeral, to the person asking) and, with
`services/campaigns.py`, several comma-separated accounts on `post`/`schedule`."""

from __future__ import annotations

from typing import Any

from bot.blockkit.escape import escape
from bot.clock import now
from bot.db import reading
from bot.runtime import Runtime
from bot.services import approval_steps, calendar, campaigns

CALENDAR_USAGE = "/social calendar [YYYY-Www]"


def answer(rt: Runtime, user: str, text: str) -> dict[str, Any] | None:
    """The ack's fields for a command this module answers, else None."""
    words = text.split()
    if not words:
        return None
    verb = words[0].lower()
    if verb == "calendar":
        return calendar_answer(rt, words[1:])
    if verb == "skip":
        return {"text": approval_steps.skip_command(rt, user, text.split(None, 1)[1]
                                                    if len(words) > 1 else "")}
    if verb in ("post", "schedule") and len(words) > 1 and "," in words[1]:
        return campaigns.slash_answer(rt, user, text)
    return None


def calendar_answer(rt: Runtime, args: list[str]) -> dict[str, Any]:
    if len(args) > 1:
        return {"text": f"Give at most one week. Usage: `{CALENDAR_USAGE}`"}
    cfg = rt.settings.config
    try:
        start = calendar.week_start(args[0] if args else None, cfg.tz, now())
    except calendar.WeekError as err:
        return {"text": f"{escape(str(err))} Usage: `{CALENDAR_USAGE}`"}
    with reading(rt.sessions) as s:
        cal = calendar.build(s, cfg, start)
    waiting = sum(1 for e in cal.entries if e.waiting)
    return {"text": f"Calendar, week {cal.key}: {len(cal.entries)} post(s), {waiting} waiting "
                    "for approval", "blocks": calendar.blocks(cal, max_blocks=45)}
