"""Buttons on a group's card (a CSV batch or a campaign): approve a row, approve all,
retry a row that failed. Each is decided by `services/decisions.decide`, as alone."""

from __future__ import annotations

from typing import Any

from commsdesk.blockkit import plans as plan_blocks
from commsdesk.runtime import Runtime
from commsdesk.services import plans
from commsdesk.services.decisions import decide


def register(app: Any, rt: Runtime) -> None:
    from commsdesk.handlers.actions import _user, _value_id, _value_version, tell

    def row_button(action_id: str, kind: str) -> None:
        @app.action(action_id)
        def handler(ack: Any, body: dict[str, Any]) -> None:
            ack()
            draft_id, user = _value_id(body), _user(body)
            if draft_id is None or not user:
                return
            decision = decide(rt, draft_id, user, kind, via="button",  # type: ignore[arg-type]
                              version=_value_version(body))
            if not decision.ok:
                tell(rt, body, decision.message)

    row_button(plan_blocks.ACTION_APPROVE_ROW, "approve")
    row_button(plan_blocks.ACTION_RETRY_ROW, "retry")

    @app.action(plan_blocks.ACTION_APPROVE_ALL)
    def approve_all(ack: Any, body: dict[str, Any]) -> None:
        ack()
        group_id, user = _value_id(body), _user(body)
        if group_id is None or not user:
            return
        tell(rt, body, plans.approve_all(rt, group_id, user).message)
