"""Slack listeners, one module per surface (as Bolt's own samples lay them out)."""

from __future__ import annotations

from typing import Any

from bot.runtime import Runtime


def register_all(app: Any, rt: Runtime) -> None:
    from handlers import actions, commands, events, inbox, plans, views

    for module in (commands, events, actions, views, inbox, plans):
        module.register(app, rt)
