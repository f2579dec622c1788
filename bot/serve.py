"""`commsdesk serve`: migrations, the scheduler, then the HTTP server (or Socket Mode)."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

import uvicorn

from commsdesk import db, logs
from commsdesk.app import build_bolt_app
from commsdesk.config import Settings
from commsdesk.db import transaction
from commsdesk.runtime import Runtime
from commsdesk.server import build_asgi
from commsdesk.services.ingest import sync_accounts

log = logs.get("commsdesk.serve")


class _Server(uvicorn.Server):
    """uvicorn, with the signals left to us so shutdown can finish our own work."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def run(settings: Settings, host: str, port: int) -> None:
    rt = Runtime.create(settings)
    before, head = db.upgrade(rt.engine)
    if before != head:
        log.info("database migrated", from_revision=before, to_revision=head)
    with transaction(rt.sessions) as s:
        sync_accounts(s, settings.config)
    bolt = build_bolt_app(rt)
    scheduler = None
    try:
        from commsdesk.scheduler import start_scheduler

        scheduler = start_scheduler(rt)
    except ImportError:  # pragma: no cover - scheduler lands with polling
        pass
    socket_handler = None
    if settings.env.socket_mode:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        socket_handler = SocketModeHandler(bolt, settings.env.slack_app_token)
        socket_handler.connect()
        log.info("socket mode connected")
    log.info("serving", host=host, port=port, database=rt.engine.dialect.name)
    server = _Server(uvicorn.Config(build_asgi(rt, bolt), host=host, port=port,
                                    log_level="warning", timeout_graceful_shutdown=10))

    def _stop(signum: int, _frame: object) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        server.should_exit = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        # stops accepting on SIGTERM/SIGINT and lets requests in flight finish
        server.run()
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=True)
        if socket_handler is not None:
            socket_handler.close()
        bolt.listener_runner.listener_executor.shutdown(wait=True)
        rt.engine.dispose()
        log.info("stopped")
