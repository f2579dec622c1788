"""ASGI application: `POST /slack/events` (Bolt) and `GET /healthz`."""

from __future__ import annotations

from slack_bolt import App, BoltRequest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from commsdesk import db
from commsdesk.runtime import Runtime

MAX_BODY_BYTES = 1_000_000  # Slack's payloads are far smaller; refuse anything bigger


def build_asgi(rt: Runtime, bolt: App) -> Starlette:
    async def slack_events(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"error": "payload too large"}, status_code=413)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return JSONResponse({"error": "body is not UTF-8"}, status_code=400)
        bolt_req = BoltRequest(
            body=text,
            query=request.url.query,
            headers={k: [v] for k, v in request.headers.items()},
        )
        # Bolt verifies the signature (401 when bad or older than 5 minutes),
        # acks, and hands listener work to its own thread pool.
        resp = await run_in_threadpool(bolt.dispatch, bolt_req)
        return Response(
            content=resp.body,
            status_code=resp.status,
            headers={k: v[0] for k, v in resp.headers.items() if v},
        )

    async def healthz(_request: Request) -> Response:
        ok = await run_in_threadpool(db.ping, rt.engine)
        payload = {"status": "ok" if ok else "unavailable", "database": "ok" if ok else "down"}
        return JSONResponse(payload, status_code=200 if ok else 503)

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
