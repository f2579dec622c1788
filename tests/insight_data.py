"""A fixed data set for the insight tests (stats, report, App Home), with the figures
worked out by hand in the comments. Council time is Europe/London (GMT in early March
2026). Services: waste (SLA 4 working hours), highways (SLA 8), unrouted (default 4)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.config import Config
from bot.models import Alert, Draft, Mention
from bot.services.accounts import sync_accounts
from tests.harness import E2E_CONFIG

LONDON = ZoneInfo("Europe/London")

INSIGHT_CONFIG: dict[str, Any] = copy.deepcopy(E2E_CONFIG)
for _svc in INSIGHT_CONFIG["services"]:
    if _svc["name"] == "waste":
        _svc["sla_hours"] = 4
    if _svc["name"] == "highways":
        _svc["sla_hours"] = 8


def local(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=LONDON).astimezone(UTC)


# ref: (services, posted, claimed, replied, closed)
#   claim / reply in working hours, SLA outcome
MARCH: dict[str, tuple[tuple[str, ...], datetime, datetime | None, datetime | None,
                       datetime | None]] = {
    # 0.5 h / 1.0 h, met
    "M1": (("waste",), local(2026, 3, 2, 10), local(2026, 3, 2, 10, 30),
           local(2026, 3, 2, 11), None),
    # Mon 16:00: claim Tue 09:30 = 1.5 h, reply Tue 12:00 = 4.0 h, met exactly
    "M2": (("waste",), local(2026, 3, 2, 16), local(2026, 3, 3, 9, 30),
           local(2026, 3, 3, 12), None),
    # Fri 15:00: claim Mon 09:15 = 2.25 h, reply Mon 14:00 = 7.0 h, missed
    "M3": (("waste",), local(2026, 3, 6, 15), local(2026, 3, 9, 9, 15),
           local(2026, 3, 9, 14), None),
    # Wed 20:00, "no reply needed" Thu 09:45 = 0.75 h, met; no claim, no reply
    "M4": (("waste",), local(2026, 3, 4, 20), None, None, local(2026, 3, 5, 9, 45)),
    # Tue 12:00, reply Wed 12:00 = 8.0 h, met (highways SLA 8)
    "M5": (("highways",), local(2026, 3, 3, 12), None, local(2026, 3, 4, 12), None),
    # Thu 12:00, never answered: missed
    "M6": (("highways",), local(2026, 3, 5, 12), None, None, None),
    # Saturday 11:00, unrouted, reply Mon 10:00 = 1.0 h, met
    "M7": ((), local(2026, 3, 7, 11), None, local(2026, 3, 9, 10), None),
    # both services, 10:05: claim 10:11 = 0.1 h, reply 11:17 = 1.2 h, met
    "M8": (("highways", "waste"), local(2026, 3, 10, 10, 5), local(2026, 3, 10, 10, 11),
           local(2026, 3, 10, 11, 17), None),
    # February's mention, replied in March: a reply out in March, not a mention in
    "M9": (("waste",), local(2026, 2, 27, 16), None, local(2026, 3, 2, 10), None),
}

CHANNELS = {"waste": "C0WASTE", "highways": "C0HIGHWAYS"}


def seed(s: Session, cfg: Config, data: dict[str, Any] | None = None, *,
         author: str = "U0WASTE", approver: str = "U0COMMS1") -> dict[str, int]:
    """Store the mentions, their alerts and published replies; returns ref -> mention id."""
    accounts = sync_accounts(s, cfg)
    acc = accounts["nottscc"]
    ids: dict[str, int] = {}
    for n, (ref, (services, posted, claimed, replied, closed)) in enumerate(
            sorted((data or MARCH).items(), key=lambda kv: kv[1][1])):
        state = "replied" if replied else "closed" if closed else (
            "claimed" if claimed else "open")
        m = Mention(network="x", external_id=f"{9000 + n}", account_id=acc.id,
                    author_handle=f"resident{n}", author_name=f"Resident {n}",
                    text=f"{ref}: about the bins and the roads",
                    url=f"https://x.com/resident{n}/status/{9000 + n}",
                    posted_at=posted, fetched_at=posted + timedelta(seconds=40), state=state,
                    claimed_by="U0WASTE" if claimed else None, claimed_at=claimed,
                    closed_by="U0WASTE" if closed else None, closed_at=closed)
        s.add(m)
        s.flush()
        ids[ref] = m.id
        for svc in services or (None,):
            s.add(Alert(mention_id=m.id, service=svc,
                        channel=CHANNELS.get(svc or "", cfg.slack.default_channel),
                        reason="keyword", ts=f"{int(posted.timestamp())}.{n:06d}"))
        if replied:
            s.add(Draft(account_id=acc.id, mention_id=m.id, kind="reply", text="Thanks!",
                        author=author, state="published", approved_by=approver,
                        approved_at=replied, published_at=replied, created_at=posted,
                        updated_at=replied, published_external_id=f"{8000 + n}",
                        published_url=f"https://x.com/NottsCC/status/{8000 + n}"))
    # a new post in March, and a rejected draft (counts nowhere)
    s.add(Draft(account_id=acc.id, kind="post", text="Gritters out tonight", author=author,
                state="published", published_at=local(2026, 3, 11, 17),
                created_at=local(2026, 3, 11, 16), updated_at=local(2026, 3, 11, 17)))
    s.add(Draft(account_id=acc.id, kind="post", text="Off message", author=author,
                state="rejected", created_at=local(2026, 3, 11, 16),
                updated_at=local(2026, 3, 11, 16)))
    s.flush()
    return ids
