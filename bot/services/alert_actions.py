"""What the buttons and menus on an alert do, one function per action: the person is
authorized (asked of Slack now; a refusal is audited by `alerts.authorize`), then the
change is made in one transaction and the alert's update queued."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot.db import transaction
from bot.domain.triage import Correction
from bot.runtime import Runtime
from bot.services import alerts, triage

_MOVES: dict[str, Callable[[Session, int, str], alerts.Outcome]] = {
    "claim": alerts.claim, "close": alerts.close, "reopen": alerts.reopen}


@dataclass(frozen=True)
class Pressed:
    """`refused`: they may not act here (told through the response_url, which reaches
    someone outside the channel too); `problem`: nothing changed, and why."""

    refused: str | None = None
    problem: str | None = None


def press(rt: Runtime, alert_id: int, user: str, name: str) -> Pressed:
    """Claim, close or reopen the mention behind an alert."""
    refused = alerts.authorize(rt, alert_id, user, name)
    if refused is not None:
        return Pressed(refused=f":no_entry: {refused.message}")
    with transaction(rt.sessions) as s:
        outcome = _MOVES[name](s, alert_id, user)
    rt.kick_outbox()
    return Pressed(problem=None if outcome.ok else outcome.message)


def reroute(rt: Runtime, alert_id: int, user: str, service: str) -> str | None:
    """Send the mention to another service (the reroute form): None when done, else why
    not (short enough for the form's error line)."""
    refused = alerts.authorize(rt, alert_id, user, "reroute")
    if refused is not None:
        return refused.message[:150]
    with transaction(rt.sessions) as s:
        outcome = alerts.reroute(s, alert_id, user, service, rt)
    if not outcome.ok:
        return outcome.message
    rt.kick_outbox()
    return None


def correct_triage(rt: Runtime, choice: Correction, user: str) -> Pressed:
    """The alert's Triage menu: correct a mention's priority or sentiment."""
    refused = alerts.authorize(rt, choice.alert_id, user, "triage")
    if refused is not None:
        return Pressed(refused=f":no_entry: {refused.message}")
    with transaction(rt.sessions) as s:
        ok, message = triage.correct(s, choice, user)
    rt.kick_outbox()
    return Pressed(problem=None if ok else message)
