"""ASGI application: `POST /slack/events` (Bolt), `GET /healthz` and the networks' webhooks
(each network spec's `routes`, with its `body_limits`)."""

from __future__ import annotations

import contextlib
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog
from slack_bolt import App, BoltRequest
from slack_sdk.signature import Clock, SignatureVerifier
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot import db, logs
from bot.app import build_command_app
from bot.bodylimit import SLACK_MAX_BODY_BYTES, BodyLimit
from bot.calendar_feed import routes as calendar_routes
from bot.models import Account, OutboxMessage, PollCursor
from bot.replay import ReplayGuard
from bot.runtime import Runtime
from integrations import registry

log = logs.get("commsdesk.server")

MAX_BODY_BYTES = SLACK_MAX_BODY_BYTES  # refused while read: bodylimit.BodyLimit


class _WallClock(Clock):
    """slack_sdk's verifier clock, reading the same clock as the replay guard."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock()


def health(rt: Runtime) -> dict[str, Any]:
    """Database, scheduler, outbox backlog and the last successful poll per account."""
    if not db.ping(rt.engine):
        return {"status": "unavailable", "database": "down"}
    background = rt.extras.get("background")
    out: dict[str, Any] = {
        "status": "ok",
        "database": "ok",
        "scheduler": ("running" if background is not None and background.running()
                      else "stopped" if background is not None else "off"),
    }
    try:
        with db.reading(rt.sessions) as s:
            out["outbox_backlog"] = s.scalar(
                select(func.count()).select_from(OutboxMessage)
                .where(OutboxMessage.status.in_(("pending", "blocked")))) or 0
            out["last_poll"] = {
                name: at.isoformat() if at else None
                for name, at in s.execute(select(Account.name, PollCursor.updated_at)
                                          .join(PollCursor, PollCursor.account_id == Account.id,
                                                isouter=True))}
    except SQLAlchemyError:
        return {"status": "unavailable", "database": "down"}
    for spec in registry.specs():  # e.g. an API budget's use
        if spec.health is not None:
            key, target = spec.health
            out[key] = registry.load(target)(rt)
    return out


def build_asgi(rt: Runtime, bolt: App, commands: App | None = None, *,
               clock: Callable[[], float] = time.time) -> Starlette:
    """The HTTP front: `/slack/events` (signature and replay checks, then Bolt) and
    `/healthz`. Slash commands go to `commands` (default: `build_command_app`), which
    answers from inside its listener; everything else to `bolt`, which acks first.

    In Socket Mode (`SLACK_APP_TOKEN`) Slack's requests come over the socket, and HTTP
    serves no `/slack/events` at all (404): only `/healthz` and the webhooks, each with
    its own signature check. In HTTP mode a signing secret is required: there is no way
    to build this app with Slack's signature check off. `clock` (seconds since the epoch)
    is what the signature's timestamp and the replay guard are checked against."""
    env = rt.settings.env
    socket_mode = env.socket_mode
    secret = env.slack_signing_secret
    if not socket_mode and not secret:
        raise ValueError("SLACK_SIGNING_SECRET is required in HTTP mode: /slack/events "
                         "is never served without Slack's signature check")
    # (Socket Mode serves no /slack/events: nothing would use a command app)
    command_app: App = commands or (bolt if socket_mode else build_command_app(rt))
    # The event loop that answers Slack shares the interpreter lock with the listener,
    # outbox and publisher threads; a shorter switch interval (5 ms by default) lets it
    # take its turn sooner, which is what the ack's tail latency is made of.
    sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
    verifier = SignatureVerifier(secret or "", clock=_WallClock(clock))
    replays = ReplayGuard(rt.sessions, clock=clock)

    async def slack_events(request: Request) -> Response:
        structlog.contextvars.bind_contextvars(request_id=uuid.uuid4().hex[:12])
        body = await request.body()  # at most MAX_BODY_BYTES: BodyLimit refuses more
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return JSONResponse({"error": "body is not UTF-8"}, status_code=400)
        ts = request.headers.get("x-slack-request-timestamp", "")
        sig = request.headers.get("x-slack-signature", "")
        # bad, or stamped more than 5 minutes from now: 401 and nothing changes
        if not ts.isdigit() or not verifier.is_valid(body=text, timestamp=ts, signature=sig):
            return JSONResponse({"error": "invalid signature"}, status_code=401)
        # a captured request sent again while its timestamp is still accepted is refused too
        if not replays.first_sight(sig, int(ts)):
            return JSONResponse({"error": "replayed request"}, status_code=401)
        try:
            bolt_req = BoltRequest(
                body=text,
                query=request.url.query,
                headers={k: [v] for k, v in request.headers.items()},
            )
            # Bolt verifies again, acks, and hands listener work to its thread pool. For
            # Events API requests (JSON) that is all dispatch does (well under a
            # millisecond), so it runs here rather than hop into a worker thread and back,
            # which under load costs more than the dispatch. Interactivity waits in
            # dispatch for its listener's ack(), and `/social` (the body Bolt parsed has a
            # `command`) runs its listener inside dispatch: those go to a worker thread.
            if request.headers.get("content-type", "").startswith("application/json"):
                resp = bolt.dispatch(bolt_req)
            elif isinstance(bolt_req.body, dict) and "command" in bolt_req.body:
                resp = await run_in_threadpool(command_app.dispatch, bolt_req)
            else:
                resp = await run_in_threadpool(bolt.dispatch, bolt_req)
        except Exception as exc:  # malformed payloads get a clear 400, never a trace
            log.warning("malformed slack payload", error=type(exc).__name__)
            return JSONResponse({"error": "malformed payload"}, status_code=400)
        if resp.status >= 500:
            # listeners run after the ack, so a 5xx here means Bolt could not read the
            # payload's shape: answer as for any malformed payload
            log.warning("slack payload not understood", status=resp.status)
            return JSONResponse({"error": "malformed payload"}, status_code=400)
        return Response(
            content=resp.body,
            status_code=resp.status,
            headers={k: v[0] for k, v in resp.headers.items() if v},
        )

    async def healthz(_request: Request) -> Response:
        payload = await run_in_threadpool(health, rt)
        return JSONResponse(payload, status_code=200 if payload["database"] == "ok" else 503)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(replays.flush)

    slack = [] if socket_mode else [Route("/slack/events", slack_events, methods=["POST"])]
    network_routes = [route for spec in registry.specs() if spec.routes is not None
                      for route in registry.load(spec.routes)(rt)]
    return Starlette(
        lifespan=lifespan,
        routes=[
            *slack,  # HTTP mode only: in Socket Mode Slack's requests come over the socket
            Route("/healthz", healthz, methods=["GET"]),
            *network_routes,  # e.g. a network's webhooks
            *calendar_routes(rt),  # GET /calendar/<token>/calendar.ics
        ],
        middleware=[Middleware(BodyLimit, limits={
            "/slack/events": SLACK_MAX_BODY_BYTES,
            **{path: size for spec in registry.specs() for path, size in spec.body_limits},
        })],
    )
