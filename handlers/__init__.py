"""Slack listeners, one module per surface (as Bolt's own samples lay them out): each a
module-level function that parses what Slack sent, calls one service function and
answers. The runtime comes from Bolt's context (handlers/context.py)."""

from __future__ import annotations

from slack_bolt import App

from handlers import actions, commands, events, inbox, plans, views

SURFACES = (commands, events, actions, views, inbox, plans)


def register_all(app: App) -> None:
    for module in SURFACES:
        module.register(app)
