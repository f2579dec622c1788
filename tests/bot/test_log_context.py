"""Every log line a Slack request causes carries its request id, including the lines
written by Bolt's listener threads (contextvars do not cross into a plain thread pool)."""

from __future__ import annotations

import contextvars
import json
from collections.abc import Iterator

import pytest
import structlog

from bot import logs
from bot.app import ContextThreadPoolExecutor
from tests.harness import WENDY, Harness, wait_for


@pytest.fixture
def h(database_url: str) -> Iterator[Harness]:
    with Harness(database_url) as harness:
        yield harness


def test_executor_runs_tasks_in_the_submitters_context() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    var.set("outer")
    with ContextThreadPoolExecutor(max_workers=2) as pool:
        assert pool.submit(var.get).result() == "outer"
        token = var.set("inner")
        assert pool.submit(lambda x: (x, var.get()), 1).result() == (1, "inner")
        var.reset(token)


def test_listener_log_lines_carry_the_request_id(h: Harness,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("INFO", "json", h.rt.settings.secrets())
    try:
        structlog.contextvars.clear_contextvars()
        h.slack.send_command(WENDY, "C0WASTE", "post nottscc Libraries open late on Friday")
        lines: list[dict[str, object]] = []

        def created() -> bool:
            out = capsys.readouterr()
            for raw in (out.err + out.out).splitlines():
                if raw.startswith("{"):
                    lines.append(json.loads(raw))
            return any(line.get("event") == "draft created" for line in lines)

        wait_for(created, what="the listener's 'draft created' line")
    finally:
        logs.configure("INFO", "console", [])
    line = next(line for line in lines if line.get("event") == "draft created")
    request_id = line.get("request_id")
    assert isinstance(request_id, str) and len(request_id) == 12, line
