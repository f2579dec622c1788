"""`commsdesk serve`: migrations, the scheduler, then the HTTP server (or Socket Mode)."""

from __future__ import annotations

import contextlib
import fcntl
import signal
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot import db, logs, memory
from bot.bootstrap import build
from bot.config import Settings
from bot.db import DatabaseError
from bot.runtime import Runtime
from bot.services import checkpoints

log = logs.get("commsdesk.serve")


class _Server(uvicorn.Server):
    """uvicorn, with the signals left to us so shutdown can finish our own work."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def single_process_lock(rt: Runtime) -> object | None:
    """SQLite serves one process: a second `serve` on the same file says so and stops."""
    if rt.engine.dialect.name != "sqlite" or not rt.engine.url.database:
        return None
    path = Path(rt.engine.url.database).with_suffix(".serve.lock")
    handle = open(path, "w")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise DatabaseError(
            f"another `commsdesk serve` is already using {rt.engine.url.database}: SQLite "
            "runs one bot process at a time; use PostgreSQL (DATABASE_URL) for replicas"
        ) from None
    return handle


def run(settings: Settings, host: str, port: int) -> None:
    locks: list[object | None] = []
    bot = build(settings, before_migrate=lambda rt: locks.append(single_process_lock(rt)),
                background=True)
    rt, bolt, (before, head) = bot.rt, bot.bolt, bot.migrated
    if warning := db.audit_privilege_warning(rt.engine):
        log.warning(warning)
    if before != head:
        log.info("database migrated", from_revision=before, to_revision=head)
    socket_handler = None
    if settings.env.socket_mode:
        socket_handler = SocketModeHandler(bolt, settings.env.slack_app_token)
        socket_handler.connect()
        log.info("socket mode connected")
    log.info("serving", host=host, port=port, database=rt.engine.dialect.name)
    server = _Server(uvicorn.Config(bot.asgi, host=host, port=port,
                                    log_level="warning", timeout_graceful_shutdown=10))

    def _stop(signum: int, _frame: object) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        server.should_exit = True

    frozen = memory.freeze_startup()  # full collections then skip what startup built
    log.debug("startup heap frozen", objects=frozen)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        # stops accepting on SIGTERM/SIGINT and lets requests in flight finish
        server.run()
    finally:
        if socket_handler is not None:
            socket_handler.close()
        bot.stop()  # background, listeners, then a publish in flight records its result
        checkpoints.write_safely(rt, "shutdown")  # the last head, anchored
        rt.engine.dispose()
        for lock in locks:
            if lock is not None:
                lock.close()  # type: ignore[attr-defined]
        log.info("stopped")
