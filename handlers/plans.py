"""Buttons on a group's card (a CSV batch or a campaign): approve a row, approve all,
retry a row that failed. Each is decided by `services/decisions.decide`, as alone."""

from __future__ import annotations

from typing import Any

from bot.blockkit import plans as plan_blocks
from bot.runtime import Runtime
from bot.services import plans


def register(app: Any, rt: Runtime) -> None:
    from handlers.actions import _user, _value_id, decision_button, tell

    # a row of the card is one draft: its buttons are the approval message's own
    decision_button(app, rt, plan_blocks.ACTION_APPROVE_ROW, "approve")
    decision_button(app, rt, plan_blocks.ACTION_RETRY_ROW, "retry")

    @app.action(plan_blocks.ACTION_APPROVE_ALL)
    def approve_all(ack: Any, body: dict[str, Any]) -> None:
        ack()
        group_id, user = _value_id(body), _user(body)
        if group_id is None or not user:
            return
        tell(rt, body, plans.approve_all(rt, group_id, user).message)
