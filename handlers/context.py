"""How a listener reaches the running bot: bot/app.py's global middleware puts the
Runtime in Bolt's context under RT_KEY, and listeners take `context` (Bolt injects it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.runtime import Runtime

RT_KEY = "rt"


def runtime(context: Mapping[str, Any]) -> Runtime:
    rt = context[RT_KEY]
    assert isinstance(rt, Runtime)
    return rt
