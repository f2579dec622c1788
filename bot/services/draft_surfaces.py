"""Where a draft shows: its approval message (or its group's card) and its mention's
alerts, queued for an update when the draft changes; and the link of its published post.
Below drafting, governance, decisions and the plans in the import order, so each of them
can refresh a draft without importing the others."""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.blockkit.escape import account_link_hosts, safe_link
from bot.models import Account, Draft
from bot.runtime import Runtime
from bot.services.alerts import refresh_alerts
from bot.services.groups import refresh_group_of
from bot.services.outbox import enqueue


def post_link(rt: Runtime, s: Session, draft: Draft, url: str | None) -> str:
    """mrkdwn for the link of a published post: a link only to the network's own hosts."""
    account = s.get_one(Account, draft.account_id)
    acc_cfg = rt.settings.config.account(account.name)
    return safe_link(url, url or "the post",
                     account_link_hosts(account.network, acc_cfg))


def refresh_draft(s: Session, draft: Draft) -> None:
    """Queue updates of everything that shows this draft."""
    if refresh_group_of(s, draft):  # shown on a batch's or campaign's one card
        pass
    elif draft.approval_channel:
        enqueue(s, draft.approval_channel, "update_approval", draft_id=draft.id)
    if draft.mention_id is not None:
        refresh_alerts(s, draft.mention_id)
