"""Private messages (issue 20): Facebook Messenger conversations and Mastodon direct
mentions (`mentions.origin = "private"`).

- Routed as any mention, but to a service's `private_channel` when it has one; in any
  other channel (the service's own, the default channel) the alert is marked private
  and shows no text (nor does its notification text, App Home or the approval card);
  the safeguarding channel, private by design, shows it as before.
- Answered through a draft and approval like any reply: Messenger's Send API
  (`messaging_type: RESPONSE`) inside its 24-hour window, which the approval card shows
  (and, once closed, says the reply cannot be sent; publishing refuses it with that
  reason); a Mastodon direct mention is answered as direct (the reply keeps the
  original's visibility: integrations/mastodon/network.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.config import Config
from bot.domain.routing import Route
from bot.models import Mention

PRIVATE = "private"
MESSENGER_WINDOW = timedelta(hours=24)


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


def is_messenger(m: Mention) -> bool:
    return m.network == "facebook" and m.external_id.startswith("m:")


def messenger_window_closes(m: Mention) -> datetime | None:
    """When the page can no longer answer this message (24 hours after it was sent, as
    the publisher checks it)."""
    if not is_messenger(m):
        return None
    try:
        sent_ms = int(m.external_id.split(":", 2)[2])
    except (IndexError, ValueError):
        return None
    return datetime.fromtimestamp(sent_ms / 1000, UTC) + MESSENGER_WINDOW


def card_line(m: Mention, at: datetime, tz: object) -> str | None:
    """mrkdwn for a reply's approval card: the Messenger window, or that a Mastodon direct
    mention is answered as direct."""
    from bot.blockkit.alerts import slack_date

    closes = messenger_window_closes(m)
    if closes is not None:
        if at < closes:
            left = closes - at
            hours = int(left.total_seconds() // 3600)
            minutes = int(left.total_seconds() % 3600 // 60)
            return (f":speech_balloon: Messenger reply window open until "
                    f"{slack_date(closes, tz)} ({hours} h {minutes:02d} min left): "  # type: ignore[arg-type]
                    "Messenger lets the page answer within 24 hours of the message.")
        return (f":no_entry: *Messenger reply window closed* {slack_date(closes, tz)}: "  # type: ignore[arg-type]
                "this reply cannot be sent (Messenger lets a page answer only within 24 "
                "hours of the person's message). Publishing it will be refused.")
    if m.origin == PRIVATE and m.network == "mastodon":
        return ":lock: A direct message: the reply is sent as a direct message too."
    return None
