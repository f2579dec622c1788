"""The Graph API for Facebook Pages on 127.0.0.1, and the "Facebook side" that delivers
signed webhooks (`X-Hub-Signature-256`) to the bot, with the shapes of the Graph API and
Webhooks docs: `{"id": ...}` on create, `{"data": [...], "paging": {...}}` on edges,
`{"error": {"message", "type", "code", "fbtrace_id"}}` on errors, `X-App-Usage` headers.

Photos: POST /{page-id}/photos (multipart ``source``, ``caption``, ``alt_text_custom``,
``published``) answers ``{"id": photo, "post_id": post}`` for a published photo post, or
``{"id": photo}`` for an unpublished one, which POST /{page-id}/feed can then attach
(``attached_media[i]={"media_fbid": ...}``, each photo once).

Edges (GET /{page-id}/feed, GET /{object-id}/comments) answer newest first for the feed
and as ``order`` says for comments (``chronological`` by default; ``filter=stream`` on a
post gives replies to comments too, ``toplevel`` only direct ones), honour ``since``/
``until`` (unix seconds) and ``limit``, and page with opaque ``paging.cursors`` plus a
``paging.next`` URL while more remain (``after=`` reads on). ``fields`` may nest a post's
comments as Graph's field expansion does:
``comments.filter(stream).order(reverse_chronological).limit(100){id,from,message,
created_time,parent}``; a reply's ``parent`` is the comment it answers.

Faults per endpoint key (``feed``, ``comments``, ``messages``, ``page``, ``photos``): the
shared kinds of :mod:`bot.emulators.base`; a ``"429"`` is Graph's code 4 "Application
request limit reached" (HTTP 400), with an ``X-Business-Use-Case-Usage`` header at 100%
(``reset_in`` seconds, default 60).
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from bot.emulators.base import Emulator, Route
from bot.emulators.http import Fault, Request, Response, json_response
from integrations.facebook.webhook import signature


def _error(status: int, message: str, code: int, kind: str = "OAuthException",
           subcode: int | None = None) -> Response:
    err: dict[str, Any] = {"message": message, "type": kind, "code": code,
                           "fbtrace_id": "AbCdEfGhIjK"}
    if subcode is not None:
        err["error_subcode"] = subcode
    return json_response({"error": err}, status)


def _fbtime(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def _cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{index}".encode()).decode()


def _offset(cursor: Any) -> int | None:
    try:
        text = base64.urlsafe_b64decode(str(cursor).encode()).decode()
        return int(text.partition("offset:")[2])
    except ValueError:
        return None


_NESTED_COMMENTS = re.compile(r"comments((?:\.\w+\([^)]*\))*)(?:\{([^}]*)\})?")


@dataclass
class FbObject:
    id: str
    kind: str  # "post" | "comment"
    author: dict[str, str]  # {"id", "name"}
    message: str
    parent: str | None = None  # a comment's post or comment
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    photos: list[str] = field(default_factory=list)  # a post's photo ids


@dataclass
class FbPhoto:
    id: str
    page_id: str
    data: bytes
    mime_type: str
    filename: str
    alt_text_custom: str | None
    caption: str
    published: bool
    post_id: str | None = None


@dataclass
class FbPage:
    id: str
    name: str
    token: str
    followers: int = 0


class FacebookEmulator(Emulator):
    def __init__(self, port: int = 0, *, app_secret: str = "fb-app-secret"):
        super().__init__(port)
        self.app_secret = app_secret
        self.pages: dict[str, FbPage] = {}
        self.objects: dict[str, FbObject] = {}
        self.photos: dict[str, FbPhoto] = {}
        self.sent_messages: list[dict[str, Any]] = []
        self._ids = itertools.count(100_000_000_001)
        self._path = ""  # the path of the request being answered (for paging.next)
        # a page's feed asked with since/until pages by time, as Graph's does (else cursors)
        self.time_paging = True

    def _next(self) -> str:
        return str(next(self._ids))

    # ------------------------------------------------------------ state helpers

    def add_page(self, page_id: str, name: str, token: str, followers: int = 0) -> FbPage:
        with self._lock:
            page = FbPage(page_id, name, token, followers)
            self.pages[page_id] = page
            return page

    def add_post(self, page_id: str, message: str) -> FbObject:
        with self._lock:
            post = FbObject(f"{page_id}_{self._next()}", "post",
                            {"id": page_id, "name": self.pages[page_id].name}, message)
            self.objects[post.id] = post
            return post

    def add_comment(self, post: FbObject, user_id: str, user_name: str, message: str,
                    parent: FbObject | None = None) -> tuple[FbObject, dict[str, Any]]:
        """A resident's comment; returns it and the webhook payload Facebook would send."""
        with self._lock:
            post_part = post.id.partition("_")[2]
            comment = FbObject(f"{post_part}_{self._next()}", "comment",
                               {"id": user_id, "name": user_name}, message,
                               parent=(parent or post).id)
            self.objects[comment.id] = comment
        page_id = post.id.partition("_")[0]
        value = {
            "from": {"id": user_id, "name": user_name},
            "post": {"status_type": "mobile_status_update", "is_published": True,
                     "updated_time": _fbtime(comment.created), "promotion_status": "inactive",
                     "permalink_url": f"https://www.facebook.com/{post.id}", "id": post.id},
            "message": message, "post_id": post.id, "comment_id": comment.id,
            "created_time": int(comment.created.timestamp()), "item": "comment",
            "parent_id": (parent or post).id, "verb": "add",
        }
        return comment, {"object": "page", "entry": [{
            "id": page_id, "time": int(time.time()), "changes": [{"field": "feed", "value": value}]}]}

    def message_payload(self, page_id: str, psid: str, text: str,
                        timestamp_ms: int | None = None) -> dict[str, Any]:
        ts = timestamp_ms or int(time.time() * 1000)
        return {"object": "page", "entry": [{"id": page_id, "time": ts, "messaging": [{
            "sender": {"id": psid}, "recipient": {"id": page_id}, "timestamp": ts,
            "message": {"mid": f"m_{self._next()}", "text": text}}]}]}

    def deliver(self, url: str, payload: dict[str, Any], *, secret: str | None = None,
                signed: bool = True) -> httpx.Response:
        """POST a webhook delivery to the bot as Facebook does (signed with the app secret)."""
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if signed:
            headers["X-Hub-Signature-256"] = signature(secret or self.app_secret, body)
        return httpx.post(url, content=body, headers=headers, timeout=10)

    def comments_on(self, object_id: str) -> list[FbObject]:
        with self._lock:
            return [o for o in self.objects.values() if o.kind == "comment" and o.parent == object_id]

    def by_page(self, page_id: str) -> list[FbObject]:
        with self._lock:
            return [o for o in self.objects.values() if o.author["id"] == page_id]

    def photos_of(self, post: FbObject) -> list[FbPhoto]:
        with self._lock:
            return [self.photos[i] for i in post.photos]

    # ------------------------------------------------------------ HTTP

    def routes(self) -> list[Route]:
        return [
            Route("POST", r"/v\d+\.\d+/(\d+)/feed", "feed", self._post_feed),
            Route("GET", r"/v\d+\.\d+/(\d+)/feed", "feed", self._get_edge),
            Route("POST", r"/v\d+\.\d+/(\d+)/photos", "photos", self._post_photo),
            Route("POST", r"/v\d+\.\d+/([\d_]+)/comments", "comments", self._post_comment),
            Route("GET", r"/v\d+\.\d+/([\d_]+)/comments", "comments", self._get_edge),
            Route("POST", r"/v\d+\.\d+/(\d+|me)/messages", "messages", self._post_message),
            Route("GET", r"/v\d+\.\d+/(\d+)", "page", self._get_page),
        ]

    def error_response(self, status: int, fault: Fault | None) -> Response:
        if status == 429:
            return _error(400, "(#4) Application request limit reached", 4)
        message = "An unexpected error has occurred. Please retry your request later."
        return _error(status, str((fault.params if fault else {}).get("message", message)), 2,
                      "OAuthException")

    def _limited(self, page: FbPage) -> Callable[[dict[str, str], float], Response]:
        """Graph's answer past the limit: code 4 (HTTP 400), the page's business use case
        usage at 100% and the minutes until it may call again."""
        def limited(headers: dict[str, str], wait: float) -> Response:
            response = self.error_response(429, None)
            response.headers["X-Business-Use-Case-Usage"] = json.dumps({page.id: [{
                "type": "pages", "call_count": 100, "total_cputime": 12, "total_time": 20,
                "estimated_time_to_regain_access": max(1, math.ceil(wait / 60))}]})
            return response

        return limited

    def handle(self, request: Request) -> Response:
        found = self.route(request)
        if found is None:
            return _error(400, "Unknown path components", 2500)
        params = dict(request.query)
        if request.body:
            if request.content_type == "application/json":
                try:
                    params.update(request.json() or {})
                except ValueError:
                    return _error(400, "Invalid JSON", 100)
            elif request.content_type == "multipart/form-data":
                params.update({name: (part.filename, part.data, part.content_type)
                               if part.filename is not None else part.text()
                               for name, part in request.multipart().items()})
            else:
                params.update(request.form())
        self.record(found.key, params)
        page = next((p for p in self.pages.values() if p.token == params.get("access_token")), None)
        if page is None:
            return _error(400, "Invalid OAuth access token - Cannot parse access token", 190)
        usage = {"X-App-Usage": json.dumps({"call_count": 1, "total_cputime": 1, "total_time": 1})}

        def work() -> Response:
            self._path = request.path
            return found.handler(page, params, *found.args)

        return self.answer(found.key, work, usage, rate_limited=self._limited(page))

    def _post_feed(self, page: FbPage, params: dict[str, Any], page_id: str) -> Response:
        if page_id != page.id:
            return _error(403, "(#200) The user hasn't authorized the application to perform "
                          "this action", 200)
        attached: list[FbPhoto] = []
        for key in sorted((k for k in params if k.startswith("attached_media[")),
                          key=lambda k: int(k[len("attached_media["):-1] or 0)):
            try:
                fbid = str(json.loads(params[key])["media_fbid"])
            except (ValueError, KeyError, TypeError):
                return _error(400, f"(#100) param {key} must be a JSON object with media_fbid", 100)
            photo = self.photos.get(fbid)
            if photo is None or photo.page_id != page.id or photo.published \
                    or photo.post_id is not None or photo in attached:
                return _error(400, f"(#100) Invalid media_fbid: {fbid}", 100)
            attached.append(photo)
        if not str(params.get("message") or "").strip() and not params.get("link") \
                and not attached:
            return _error(400, "(#100) Missing message or attachment", 100)
        if len(str(params.get("message") or "")) > 63206:
            return _error(400, "(#100) The message is too long", 100)
        post = self.add_post(page.id, str(params.get("message") or ""))
        for photo in attached:
            photo.post_id = post.id
            post.photos.append(photo.id)
        return json_response({"id": post.id})

    def _post_photo(self, page: FbPage, params: dict[str, Any], page_id: str) -> Response:
        if page_id != page.id:
            return _error(403, "(#200) The user hasn't authorized the application to perform "
                          "this action", 200)
        source = params.get("source")
        if not isinstance(source, tuple) and not params.get("url"):
            return _error(400, "(#324) Requires upload file", 324)
        if not isinstance(source, tuple):
            return _error(400, "(#100) url: this emulator takes uploaded files only", 100)
        filename, data, mime = source
        if not str(mime).startswith("image/") or not data:
            return _error(400, "(#324) Missing or invalid image file", 324)
        caption = str(params.get("caption") or params.get("message") or "")
        if len(caption) > 63206:
            return _error(400, "(#100) The message is too long", 100)
        published = str(params.get("published", "true")).lower() not in ("false", "0")
        photo = FbPhoto(self._next(), page.id, data, mime, filename or "",
                        params.get("alt_text_custom"), caption, published)
        self.photos[photo.id] = photo
        if not published:
            return json_response({"id": photo.id})
        post = self.add_post(page.id, caption)
        post.photos.append(photo.id)
        photo.post_id = post.id
        return json_response({"id": photo.id, "post_id": post.id})

    def _post_comment(self, page: FbPage, params: dict[str, Any], object_id: str) -> Response:
        target = self.objects.get(object_id)
        if target is None:
            return _error(400, f"(#100) Unsupported post request. Object with ID '{object_id}' "
                          "does not exist", 100, "GraphMethodException", 33)
        if not str(params.get("message") or "").strip():
            return _error(400, "(#100) Missing message or attachment", 100)
        base = target.id.partition("_")[2] if target.kind == "post" else target.id.partition("_")[0]
        comment = FbObject(f"{base}_{self._next()}", "comment", {"id": page.id, "name": page.name},
                           str(params["message"]), parent=target.id)
        self.objects[comment.id] = comment
        return json_response({"id": comment.id})

    def _post_message(self, page: FbPage, params: dict[str, Any], _who: str) -> Response:
        recipient = (params.get("recipient") or {}).get("id")
        text = (params.get("message") or {}).get("text")
        if not recipient or not text:
            return _error(400, "(#100) param recipient and message must be non-empty", 100)
        if params.get("messaging_type") not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
            return _error(400, "(#100) messaging_type is required", 100)
        mid = f"m_{self._next()}"
        self.sent_messages.append({"recipient": recipient, "text": text,
                                   "messaging_type": params["messaging_type"], "mid": mid})
        return json_response({"recipient_id": recipient, "message_id": mid})

    def _post_of(self, o: FbObject) -> FbObject | None:
        while o.kind == "comment" and o.parent in self.objects:
            o = self.objects[o.parent]
        return o if o.kind == "post" else None

    def _comments(self, target: FbObject, *, stream: bool, reverse: bool) -> list[FbObject]:
        if stream and target.kind == "post":
            items = [o for o in self.objects.values()
                     if o.kind == "comment" and self._post_of(o) is target]
        else:
            items = self.comments_on(target.id)
        items.sort(key=lambda o: (o.created, int(o.id.rpartition("_")[2])), reverse=reverse)
        return items

    def _page_of(self, items: list[FbObject], params: dict[str, Any], fields: str | None,
                 url: str) -> dict[str, Any]:
        """Graph's `{"data": [...], "paging": {"cursors", "next"?}}` for one page."""
        limit = max(1, min(100, int(params.get("limit") or 25)))
        start = _offset(params["after"]) + 1 if params.get("after") else 0
        chunk = items[start:start + limit]
        out: dict[str, Any] = {"data": [self._obj_json(o, fields) for o in chunk]}
        if chunk:
            end = start + len(chunk) - 1
            out["paging"] = {"cursors": {"before": _cursor(start), "after": _cursor(end)}}
            if end + 1 < len(items):
                out["paging"]["next"] = (f"{self.root_url}{url}?limit={limit}"
                                         f"&after={_cursor(end)}")
        return out

    def _get_edge(self, page: FbPage, params: dict[str, Any], object_id: str) -> Response:
        since = int(params["since"]) if params.get("since") else None
        until = int(params["until"]) if params.get("until") else None
        fields = params.get("fields")
        if object_id in self.pages:
            items = [o for o in self.objects.values() if o.kind == "post" and o.author["id"] == object_id]
            items.sort(key=lambda o: (o.created, int(o.id.rpartition("_")[2])), reverse=True)
        else:
            target = self.objects.get(object_id)
            if target is None:
                return _error(400, f"(#100) Object with ID '{object_id}' does not exist", 100,
                              "GraphMethodException", 33)
            items = self._comments(target, stream=params.get("filter") == "stream",
                                   reverse=params.get("order") == "reverse_chronological")
        # Graph's times are whole seconds
        items = [o for o in items if (since is None or int(o.created.timestamp()) >= since)
                 and (until is None or int(o.created.timestamp()) <= until)]
        if object_id in self.pages and (since is not None or until is not None) \
                and self.time_paging:
            return json_response(self._time_page_of(items, params, fields, self._path))
        return json_response(self._page_of(items, params, fields, self._path))

    def _time_page_of(self, items: list[FbObject], params: dict[str, Any], fields: str | None,
                      url: str) -> dict[str, Any]:
        """Time-based paging, as Graph answers a feed asked with `since`/`until`: no
        `cursors`, a `next` URL with `until` (the last item's time) and `__paging_token`
        (the last item), and a `previous` URL with `since`."""
        limit = max(1, min(100, int(params.get("limit") or 25)))
        token = params.get("__paging_token")
        if token:
            ids = [o.id for o in items]
            if token not in ids:
                return {"data": []}
            items = items[ids.index(token) + 1:]
        chunk = items[:limit]
        out: dict[str, Any] = {"data": [self._obj_json(o, fields) for o in chunk]}
        if chunk:
            keep = {k: v for k, v in params.items() if k in ("fields", "since", "limit")}
            out["paging"] = {"previous": f"{self.root_url}{url}?" + urlencode(
                {**keep, "since": int(chunk[0].created.timestamp()), "__previous": 1})}
            if len(items) > limit:
                out["paging"]["next"] = f"{self.root_url}{url}?" + urlencode(
                    {**keep, "until": int(chunk[-1].created.timestamp()),
                     "__paging_token": chunk[-1].id, "access_token": "EAAB-in-the-url"})
        return out

    def _obj_json(self, o: FbObject, fields: str | None = None) -> dict[str, Any]:
        out = {"id": o.id, "message": o.message, "from": o.author,
               "created_time": _fbtime(o.created)}
        if not fields:
            return out
        parent = self.objects.get(o.parent or "")
        if o.kind == "comment" and parent is not None and parent.kind == "comment" \
                and re.search(r"(^|,)parent(,|$)", fields):
            out["parent"] = {"id": parent.id, "message": parent.message, "from": parent.author,
                             "created_time": _fbtime(parent.created)}
        nested = _NESTED_COMMENTS.search(fields) if o.kind == "post" else None
        if nested is not None:
            mods = dict(re.findall(r"\.(\w+)\(([^)]*)\)", nested.group(1) or ""))
            comments = self._comments(o, stream=mods.get("filter") == "stream",
                                      reverse=mods.get("order") == "reverse_chronological")
            if comments:  # Graph leaves the field out when there are none
                version = self._path.split("/")[1] if self._path.count("/") > 1 else "v21.0"
                out["comments"] = self._page_of(
                    comments, {"limit": mods.get("limit") or 25}, nested.group(2) or "id",
                    f"/{version}/{o.id}/comments")
        return out

    def _get_page(self, page: FbPage, params: dict[str, Any], page_id: str) -> Response:
        target = self.pages.get(page_id)
        if target is None:
            return _error(404, f"(#803) Some of the aliases you requested do not exist: {page_id}",
                          803)
        return json_response({"id": target.id, "name": target.name,
                              "followers_count": target.followers})
