"""Request bodies capped while they are read (an ASGI middleware around every route).

A body over its route's limit is refused with 413 as soon as `Content-Length` says so
(before a byte of it is read) or, without one (chunked), as soon as the bytes read so far
pass the limit: the middleware counts each chunk the application takes from the server
and stops there. Nothing buffers the rest, so the memory a hostile request costs is the
limit, never its size. The 413 says `Connection: close`, so the server stops reading the
connection instead of draining what the client still sends.

The limits are each sender's own maximum (see SECURITY.md):

* `/slack/events`: 1 MiB. Slack documents no request size, but what a payload can carry
  is bounded by its documented limits (message text 40,000 characters, 50 blocks in a
  message and 100 in a modal, 3,000 characters in a text object or an input's value), and
  the messages and modals whose actions come back to us are our own, far inside them.
* a network's webhooks: the limit its spec gives (`NetworkSpec.body_limits`, e.g. 1 MiB
  for a page's deliveries, a few KB each, batched by the thousand at most).
* anything else (`GET /healthz`, a webhook's `GET` verification, unknown paths): 64 KiB;
  none of them reads a body.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SLACK_MAX_BODY_BYTES = 1 << 20
DEFAULT_MAX_BODY_BYTES = 64 << 10

_TOO_LARGE = b'{"error":"payload too large"}'


class BodyTooLarge(Exception):
    """Raised from `receive` once a body passes its limit (caught by `BodyLimit`)."""


async def _refuse(send: Send) -> None:
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(_TOO_LARGE)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": _TOO_LARGE})


class BodyLimit:
    def __init__(self, app: ASGIApp, limits: Mapping[str, int],
                 default: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app, self.limits, self.default = app, dict(limits), default

    def limit(self, path: str) -> int:
        return self.limits.get(path, self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope["path"])
        has_body = False
        for name, value in scope["headers"]:
            # (h11 refuses a malformed Content-Length before we see it)
            if name == b"content-length" and value.isdigit():
                if int(value) > limit:
                    await _refuse(send)
                    return
                has_body = has_body or int(value) > 0
            elif name == b"transfer-encoding":
                has_body = True
        seen = 0
        started = read_all = False

        async def counted() -> Message:
            nonlocal seen, read_all
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
                read_all = not message.get("more_body", False)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if has_body and not read_all:
                    # answered without reading the body (404, 405, a GET with a body):
                    # close the connection rather than drain what the client still sends
                    message = {**message, "headers": [*message.get("headers", []),
                                                      (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if not started:
                await _refuse(send)
