"""Buttons on a group's card (a CSV batch or a campaign): approve a row, approve all,
retry a row that failed. Each is decided by `services/decisions.decide`, as alone."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot.blockkit import plans as plan_blocks
from bot.services import plans
from handlers.actions import approve, retry
from handlers.common import tell, user_of, value_id
from handlers.context import runtime


def approve_all(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
    ack()
    rt = runtime(context)
    group_id, user = value_id(body), user_of(body)
    if group_id is None or not user:
        return
    tell(rt, body, plans.approve_all(rt, group_id, user).message)


def register(app: App) -> None:
    # a row of the card is one draft: its buttons are the approval message's own
    app.action(plan_blocks.ACTION_APPROVE_ROW)(approve)
    app.action(plan_blocks.ACTION_RETRY_ROW)(retry)
    app.action(plan_blocks.ACTION_APPROVE_ALL)(approve_all)
