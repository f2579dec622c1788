"""Private messages (issue 20): e.g. Messenger conversations and fediverse direct
mentions (`mentions.origin = "private"`).

- Routed as any mention, but to a service's `private_channel` when it has one; in any
  other channel (the service's own, the default channel) the alert is marked private
  and shows no text (nor does its notification text, App Home or the approval card);
  the safeguarding channel, private by design, shows it as before.
- Answered through a draft and approval like any reply; a network with a reply window
  (its spec's `reply_window`, e.g. Messenger's 24 hours) has it shown on the approval
  card (and, once closed, that the reply cannot be sent; publishing refuses it with
  that reason); on a network whose spec says `private_replies_stay_private` a direct
  mention is answered as direct (the reply keeps the original's visibility).
"""

from __future__ import annotations

from datetime import datetime

from bot.blockkit.alerts import slack_date
from bot.config import Config
from bot.domain.routing import Route
from bot.models import Mention
from integrations import registry

PRIVATE = "private"


def private_routes(cfg: Config, routes: list[Route]) -> list[Route]:
    """Each route to a service with a private channel moved to that channel."""
    out = []
    for r in routes:
        svc = next((sv for sv in cfg.services if sv.name == r.service), None)
        if svc is not None and svc.private_channel:
            out.append(Route(r.service, svc.private_channel, f"{r.reason} (private message)"))
        else:
            out.append(r)
    return out


def private_channels(cfg: Config) -> frozenset[str]:
    """Channels where a private message's text may be shown."""
    chans = {sv.private_channel for sv in cfg.services if sv.private_channel}
    if cfg.safeguarding.channel:
        chans.add(cfg.safeguarding.channel)
    return frozenset(chans)


def reply_window_closes(m: Mention) -> datetime | None:
    """When the account can no longer answer this mention (its network's `reply_window`,
    as the publisher checks it), or None: no window."""
    spec = registry.spec(m.network)
    if spec is None or spec.reply_window is None:
        return None
    closes: datetime | None = registry.load(spec.reply_window)(m.external_id)
    return closes


def card_line(m: Mention, at: datetime, tz: object) -> str | None:
    """mrkdwn for a reply's approval card: the network's reply window, or that a direct
    mention is answered as direct."""
    closes = reply_window_closes(m)
    spec = registry.spec(m.network)
    window = spec.reply_window_name if spec else ""
    if closes is not None:
        if at < closes:
            left = closes - at
            hours = int(left.total_seconds() // 3600)
            minutes = int(left.total_seconds() % 3600 // 60)
            return (f":speech_balloon: {window} reply window open until "
                    f"{slack_date(closes, tz)} ({hours} h {minutes:02d} min left): "  # type: ignore[arg-type]
                    f"{window} lets the page answer within 24 hours of the message.")
        return (f":no_entry: *{window} reply window closed* {slack_date(closes, tz)}: "  # type: ignore[arg-type]
                f"this reply cannot be sent ({window} lets a page answer only within 24 "
                "hours of the person's message). Publishing it will be refused.")
    if m.origin == PRIVATE and spec is not None and spec.private_replies_stay_private:
        return ":lock: A direct message: the reply is sent as a direct message too."
    return None
