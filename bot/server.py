"""ASGI application: `POST /slack/events` (Bolt), `GET /healthz` and the networks' webhooks
(`GET|POST /webhooks/facebook`)."""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import structlog
from slack_bolt import App, BoltRequest
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from commsdesk import db, logs
from commsdesk.app import build_command_app
from commsdesk.models import Account, OutboxMessage, PollCursor
from commsdesk.replay import ReplayGuard
from commsdesk.runtime import Runtime

log = logs.get("commsdesk.server")

MAX_BODY_BYTES = 1_000_000  # Slack's payloads are far smaller; refuse anything bigger


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
    return out


def build_asgi(rt: Runtime, bolt: App, commands: App | None = None) -> Starlette:
    """The HTTP front: `/slack/events` (signature and replay checks, then Bolt) and
    `/healthz`. Slash commands go to `commands` (default: `build_command_app`), which
    answers from inside its listener; everything else to `bolt`, which acks first."""
    commands = commands if commands is not None else build_command_app(rt)
    # The event loop that answers Slack shares the interpreter lock with the listener,
    # outbox and publisher threads; a shorter switch interval (5 ms by default) lets it
    # take its turn sooner, which is what the ack's tail latency is made of.
    sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
    secret = rt.settings.env.slack_signing_secret
    verifier = SignatureVerifier(secret) if secret and not rt.settings.env.socket_mode else None
    replays = ReplayGuard(rt.sessions)

    async def slack_events(request: Request) -> Response:
        structlog.contextvars.bind_contextvars(request_id=uuid.uuid4().hex[:12])
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"error": "payload too large"}, status_code=413)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return JSONResponse({"error": "body is not UTF-8"}, status_code=400)
        if verifier is not None:
            ts = request.headers.get("x-slack-request-timestamp", "")
            sig = request.headers.get("x-slack-signature", "")
            # bad, or older than 5 minutes: 401 and nothing changes
            if not ts.isdigit() or not verifier.is_valid(body=text, timestamp=ts, signature=sig):
                return JSONResponse({"error": "invalid signature"}, status_code=401)
            # a captured request sent again inside those 5 minutes is refused too
            if not replays.first_sight(sig):
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
                resp = await run_in_threadpool(commands.dispatch, bolt_req)
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

    from commsdesk.integrations.facebook.webhook import routes as facebook_routes

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(replays.flush)

    return Starlette(
        lifespan=lifespan,
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            *facebook_routes(rt),  # GET/POST /webhooks/facebook
        ]
    )
