"""Modal submissions."""

from __future__ import annotations

from typing import Any

from commsdesk.runtime import Runtime


def register(app: Any, rt: Runtime) -> None:
    return None
