"""`commsdesk demo`: the whole product offline, in a browser, in one command."""

from __future__ import annotations

from bot.demo.runner import Demo, run_demo

__all__ = ["Demo", "run_demo"]
