"""The one place the bot is wired together:
migrate -> accounts -> runtime -> Bolt -> ASGI (with every integration's routes) -> background.

`commsdesk serve`, `commsdesk demo`, the tests' harness and the fault trial all call
`build` (or `build_runtime` for a runtime alone) with their overrides, so there is one
order of start-up and one place that hands the runtime its services: the publisher, the
approvers and the outbox's renderers. Nothing here is imported by the modules it wires.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slack_bolt import App
from sqlalchemy import Engine
from starlette.applications import Starlette

from bot import db
from bot.app import build_bolt_app
from bot.asgi import build_asgi
from bot.config import Settings
from bot.runtime import Runtime
from bot.scheduler import Background, start_scheduler
from bot.services import alerts, drafting, outbox, plans, report
from bot.services.accounts import account_ids
from bot.services.approvers import Approvers
from bot.services.outbox import Renderer
from bot.services.publishing import Publisher


def renderers() -> dict[str, Renderer]:
    """What the outbox sends for each kind of row, rendered from the database at send time."""
    return {
        "notice": outbox.render_notice,
        "post_alert": alerts.render_post_alert,
        "update_alert": alerts.render_update_alert,
        "post_approval": drafting.render_post_approval,
        "update_approval": drafting.render_update_approval,
        "ephemeral": drafting.render_ephemeral,
        "post_group": plans.render_post_group,
        "update_group": plans.render_update_group,
        "weekly_report": report.render_weekly_report,
    }


def build_runtime(settings: Settings, engine: Engine | None = None) -> Runtime:
    """The runtime with its services handed in (nothing is migrated or started)."""
    rt = Runtime.create(settings, engine)
    rt.publisher = Publisher(rt)
    rt.approvers = Approvers(rt)
    rt.renderers = renderers()
    return rt


@dataclass
class Bot:
    rt: Runtime
    bolt: App
    asgi: Starlette
    migrated: tuple[str | None, str | None] = (None, None)  # revision before, after
    background: Background | None = None
    _stopped: bool = field(default=False, repr=False)

    def start_background(self, *, poll: bool = True) -> Background:
        """Polling, scheduled posts, insight jobs and the outbox thread."""
        self.background = start_scheduler(self.rt, poll=poll)
        return self.background

    def stop(self) -> None:
        """Background first, then Bolt's listeners, then a publish in flight finishes and
        records its result."""
        if self._stopped:
            return
        self._stopped = True
        if self.background is not None:
            self.background.shutdown(wait=True)
        self.bolt.listener_runner.listener_executor.shutdown(wait=True)
        self.rt.publisher.shutdown()


def build(
    settings: Settings,
    *,
    engine: Engine | None = None,
    runtime: Runtime | None = None,
    migrate: bool = True,
    before_migrate: Callable[[Runtime], Any] | None = None,
    background: bool = False,
    poll: bool = True,
    asgi_options: dict[str, Any] | None = None,
) -> Bot:
    """Build the bot in its one order. Overrides: an `engine` or a whole `runtime` (tests,
    the trial), `migrate=False` when the caller migrated already, `before_migrate` (serve's
    SQLite single-process lock), `background` to start the scheduler now (`serve`; the demo
    starts it later with `Bot.start_background`), `asgi_options` for `build_asgi`."""
    rt = runtime or build_runtime(settings, engine)
    if before_migrate is not None:
        before_migrate(rt)
    migrated: tuple[str | None, str | None] = (None, None)
    if migrate:
        migrated = db.upgrade(rt.engine, settings.env.database_migration_url)
    with db.transaction(rt.sessions) as s:
        account_ids(rt, s)  # the config's accounts are in the database before any request
    bolt = build_bolt_app(rt)
    bot = Bot(rt, bolt, build_asgi(rt, bolt, **(asgi_options or {})), migrated)
    if background:
        bot.start_background(poll=poll)
    return bot
