"""The Bolt app: verification, the runtime put in every request's context, then one
listener module per Slack surface (handlers/)."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from slack_bolt import App, BoltContext

from bot.runtime import Runtime
from handlers import commands, register_all
from handlers.context import RT_KEY


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """Runs each task in a copy of the submitter's contextvars, so what the request path
    bound (structlog's request_id) is on every log line a listener writes: a plain
    ThreadPoolExecutor runs tasks in the worker thread's own, empty context."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return super().submit(contextvars.copy_context().run, fn, *args, **kwargs)


def _app(rt: Runtime, *, process_before_response: bool, workers: int, name: str) -> App:
    env = rt.settings.env
    app = App(
        name="commsdesk",  # unnamed, Bolt walks the call stack for one: 0.1 s per app
        client=rt.slack,
        signing_secret=env.slack_signing_secret or "socket-mode-has-no-signing-secret",
        process_before_response=process_before_response,
        token_verification_enabled=False,
        request_verification_enabled=not env.socket_mode,
        listener_executor=ContextThreadPoolExecutor(max_workers=workers,
                                                    thread_name_prefix=name),
    )

    def put_runtime(context: BoltContext, next_: Callable[[], None]) -> None:
        """Global middleware: listeners reach the runtime as `context["rt"]`
        (handlers/context.runtime)."""
        context[RT_KEY] = rt
        next_()

    app.use(put_runtime)
    return app


def build_bolt_app(rt: Runtime) -> App:
    # Ack first, then run listeners in Bolt's thread pool: Slack gets its answer within
    # milliseconds and slow work happens after the ack. Listeners wait on the database
    # and on Slack; a wide pool keeps them from queueing behind each other.
    app = _app(rt, process_before_response=False, workers=32, name="bolt")
    register_all(app)
    return app


def build_command_app(rt: Runtime) -> App:
    """`/social` alone, in a Bolt app that runs its listener before answering (HTTP mode).

    The slash command does all its work before its ack (it validates, stores the draft
    and answers with the confirmation or the error), so there is nothing to run after
    the answer. Run the usual way, Bolt would hand the listener to its thread pool and
    look for the ack every 10 ms; here it runs in the request's own worker thread and
    the answer leaves as soon as ack() is called. Events and interactivity stay on the
    main app, which acks first and works after (Socket Mode uses the main app alone)."""
    app = _app(rt, process_before_response=True, workers=2, name="bolt-cmd")
    commands.register(app)
    return app
