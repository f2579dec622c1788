"""Events API listeners: reactions (approval) and App Home."""

from __future__ import annotations

from typing import Any

from commsdesk.runtime import Runtime


def register(app: Any, rt: Runtime) -> None:
    @app.event("reaction_added")
    def on_reaction_added(event: dict[str, Any]) -> None:
        return None

    @app.event("reaction_removed")
    def on_reaction_removed(event: dict[str, Any]) -> None:
        return None
