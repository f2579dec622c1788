"""`GET /calendar/<token>/calendar.ics` on `serve` (issue 21): the publishing calendar as an
iCalendar feed that Outlook (or any calendar) can subscribe to.

Calendar clients cannot sign requests or send headers, so the secret is in the path:
`COMMSDESK_CALENDAR_TOKEN` (at least 32 characters), compared in constant time over
bytes. Without the variable the route answers 404, as does any wrong token. The feed
shows post texts, account names and times, never residents' words."""

from __future__ import annotations

import hmac
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bot.clock import now
from bot.db import reading
from bot.runtime import Runtime
from bot.services import calendar

MIN_TOKEN_LENGTH = 32
PATH = "/calendar/{token}/calendar.ics"


def token_ok(configured: str | None, given: str) -> bool:
    if not configured or len(configured) < MIN_TOKEN_LENGTH:
        return False
    return hmac.compare_digest(configured.encode("utf-8"), given.encode("utf-8", "replace"))


def _feed(rt: Runtime) -> bytes:
    cfg = rt.settings.config
    with reading(rt.sessions) as s:
        cal = calendar.build(s, cfg, *calendar.feed_range(cfg, now()))
    return calendar.ics(cal)


def routes(rt: Runtime) -> list[Any]:
    async def feed(request: Request) -> Response:
        if not token_ok(rt.settings.env.commsdesk_calendar_token,
                        str(request.path_params.get("token", ""))):
            return PlainTextResponse("Not Found", status_code=404)
        body = await run_in_threadpool(_feed, rt)
        return Response(body, media_type="text/calendar; charset=utf-8",
                        headers={"Cache-Control": "private, max-age=300",
                                 "Content-Disposition": "inline; filename=calendar.ics"})

    return [Route(PATH, feed, methods=["GET"])]
