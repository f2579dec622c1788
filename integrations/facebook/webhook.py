"""`GET|POST /webhooks/facebook`: the Graph API webhook for page feed comments and
Messenger messages.

GET answers the subscription challenge when `hub.verify_token` is FACEBOOK_VERIFY_TOKEN
(anything else, a malformed or non-ASCII token included, gets 403). POST checks
`X-Hub-Signature-256` (HMAC-SHA256 of the raw body with FACEBOOK_APP_SECRET) first: a bad,
malformed, non-ASCII or missing signature gets 401 and nothing is stored. Both compare
bytes in constant time (`hmac.compare_digest` raises on non-ASCII text). The body is
capped while read (`SPEC.body_limits`, 413 past it). Each comment or message
for a configured page (`page_id`) is stored and routed like a polled mention, before the
200 goes back (a failure answers 500, so Facebook delivers it again).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot import logs
from bot.db import transaction
from bot.services.accounts import sync_accounts
from bot.services.ingest import store_mentions
from integrations.base import FetchedMention
from integrations.facebook import SPEC
from integrations.facebook.network import comment_mention, message_id

log = logs.get("commsdesk.facebook")

MAX_BODY_BYTES = dict(SPEC.body_limits)["/webhooks/facebook"]  # refused while read by asgi.build_asgi's BodyLimit


def signature(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def _same(expected: str, given: str) -> bool:
    """Constant-time equality of two texts, whatever characters `given` holds."""
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogatepass"))


def signature_ok(app_secret: str | None, body: bytes, header: str | None) -> bool:
    if not app_secret or not header:
        return False
    return _same(signature(app_secret, body), header.strip())


def parse(payload: Any) -> dict[str, list[FetchedMention]]:
    """page id -> the comments and messages in one webhook delivery (others ignored)."""
    out: dict[str, list[FetchedMention]] = {}
    if not isinstance(payload, dict) or payload.get("object") != "page":
        return out
    for entry in payload.get("entry") or []:
        if not isinstance(entry, dict):
            continue
        page_id = str(entry.get("id") or "")
        found = out.setdefault(page_id, [])
        for change in entry.get("changes") or []:
            value = change.get("value") or {}
            if (change.get("field") != "feed" or value.get("item") != "comment"
                    or value.get("verb") != "add" or not value.get("comment_id")):
                continue
            created = value.get("created_time")
            # the same mention a poll builds for this comment (network.fetch_mentions)
            mention = comment_mention(
                page_id, post_id=str(value.get("post_id") or ""),
                comment_id=str(value["comment_id"]), message=value.get("message"),
                author=value.get("from"),
                posted_at=datetime.fromtimestamp(created, UTC) if isinstance(created, int) else None,
                parent_id=str(value.get("parent_id") or "") or None)
            if mention is not None:  # None: the page's own comments
                found.append(mention)
        for event in entry.get("messaging") or []:
            message = event.get("message") or {}
            sender = str((event.get("sender") or {}).get("id") or "")
            if not message or message.get("is_echo") or not sender or sender == page_id:
                continue
            ts = int(event.get("timestamp") or 0)
            found.append(FetchedMention(
                external_id=message_id(sender, ts),
                text=str(message.get("text") or "(an attachment)"),
                author_external_id=sender,
                author_name=None,
                url=f"https://www.facebook.com/{page_id}/inbox",
                posted_at=datetime.fromtimestamp(ts / 1000, UTC) if ts else None,
                conversation_id=f"m:{sender}",
                private=True,  # never shown in a public channel (services/private.py)
            ))
    return out


def store(rt: Any, payload: Any) -> int:
    """Store what a delivery holds for configured pages; returns how many were new."""
    by_page = parse(payload)
    accounts = {a.page_id: a.name for a in rt.settings.config.accounts
                if a.network == "facebook" and a.page_id}
    stored = 0
    for page_id, mentions in by_page.items():
        name = accounts.get(page_id)
        if name is None:
            if mentions:
                log.warning("facebook webhook for an unknown page", page_id=page_id)
            continue
        if not mentions:
            continue
        with transaction(rt.sessions) as s:
            account = sync_accounts(s, rt.settings.config)[name]
            stored += len(store_mentions(s, account, mentions, rt.router))
    if stored:
        rt.kick_outbox()
    return stored


def routes(rt: Any) -> list[Route]:
    env = rt.settings.env

    async def verify(request: Request) -> Response:
        q = request.query_params
        if (q.get("hub.mode") == "subscribe" and env.facebook_verify_token
                and _same(env.facebook_verify_token, q.get("hub.verify_token", ""))):
            return PlainTextResponse(q.get("hub.challenge", ""))
        return JSONResponse({"error": "verification failed"}, status_code=403)

    async def receive(request: Request) -> Response:
        body = await request.body()  # at most MAX_BODY_BYTES: BodyLimit refuses more
        if not signature_ok(env.facebook_app_secret, body,
                            request.headers.get("x-hub-signature-256")):
            return JSONResponse({"error": "invalid signature"}, status_code=401)
        try:
            payload = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "malformed payload"}, status_code=400)
        try:
            stored = await run_in_threadpool(store, rt, payload)
        except Exception:
            log.exception("storing a facebook webhook failed")
            return JSONResponse({"error": "not stored"}, status_code=500)
        return JSONResponse({"ok": True, "stored": stored})

    return [Route("/webhooks/facebook", verify, methods=["GET"]),
            Route("/webhooks/facebook", receive, methods=["POST"])]
