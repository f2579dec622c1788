"""Slack's Web API over the workspace: ``POST|GET /api/<method>`` with the bot token
(Bearer or ``token=``), answered with Slack's own shapes and errors (``{"ok": false,
"error": ...}``), as slack_sdk's ``WebClient(base_url=emulator.api_url)`` expects; also
the ``response_url`` a command or an action carries, the upload URL of
``files.getUploadURLExternal`` and ``url_private`` downloads.

Faults per Web API method (or ``"*"``): the shared kinds of :mod:`bot.emulators.base`
(``429`` takes ``retry_after`` seconds) and ``error`` (``error=...``, answered as Slack's
``{"ok": false}``); a fault with ``channel=...`` applies to calls about that channel only.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

from bot.emulators.base import FAULT_KINDS, RateHeaders
from bot.emulators.http import Fault, Request, Response, json_response, text_response
from bot.emulators.slack.workspace import (
    MAX_TEXT_LENGTH,
    Call,
    SlackChannel,
    SlackError,
    StoredMessage,
    StoredView,
    Workspace,
    _as_bool,
    _as_json,
    _block_id,
    _RateLimited,
)


def _json_or_none(response: Response) -> dict[str, Any] | None:
    try:
        data = json.loads(response.body) if response.body else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


class WebApi(Workspace):
    """The ``/api/<method>`` handlers, the response URLs and file transfers."""

    rate_headers = RateHeaders(retry_after=True)

    def web_api_methods(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {
            "api.test": lambda params: {"args": params},
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "reactions.get": self._reactions_get,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroups_users_list,
            "users.info": self._users_info,
            "users.list": self._users_list,
            "conversations.info": self._conversations_info,
            "conversations.list": self._conversations_list,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "conversations.members": self._conversations_members,
            "conversations.open": self._conversations_open,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
            "files.info": self._files_info,
        }

    # faults ------------------------------------------------------------------------
    def fault_kinds(self) -> frozenset[str]:
        return FAULT_KINDS | {"error"}

    def error_response(self, status: int, fault: Fault | None) -> Response:
        if status == 429:
            return json_response({"ok": False, "error": "ratelimited"}, 429)
        return json_response({"ok": False, "error": "service_unavailable" if status == 503
                              else "fatal_error"}, status)

    def other_fault(self, fault: Fault, headers: dict[str, str]) -> Response | None:
        if fault.kind == "error":
            return json_response({"ok": False, "error": fault.params.get("error", "fatal_error")})
        return None

    def inject(self, method: str, kind: str, times: int = 1, **params: Any) -> None:
        """Queue a fault for a Web API method (or ``"*"``): kinds ``error`` (``error=...``,
        optional ``channel=...``), ``429`` (``retry_after``) and the shared ones."""
        super().inject(method, kind, times, **params)

    def fail_next(
        self, method: str, error: str = "channel_not_found", times: int = 1, channel: str | None = None
    ) -> None:
        self.inject(method, "error", times, error=error, channel=channel)

    def rate_limit_next(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        self.inject(method, "429", times, retry_after=retry_after)

    def server_error_next(self, method: str, status: int = 500, times: int = 1) -> None:
        if status not in (500, 502, 503, 504):
            raise ValueError("status must be a 5xx code")
        self.inject(method, str(status), times)

    # HTTP entry point ------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/api/"):
            return self._web_api(request, path[len("/api/"):])
        if path.startswith("/response_url/") and request.method == "POST":
            return self._response_url(request, path.rsplit("/", 1)[-1])
        if path.startswith("/upload/v1/") and request.method == "POST":
            return self._upload(path.rsplit("/", 1)[-1], request.body)
        if path.startswith("/files-pri/") and request.method == "GET":
            return self._download(request)
        if path == "/emulator/state":
            return json_response(self.state())
        return json_response({"ok": False, "error": "not_found"}, 404)

    def _web_api(self, request: Request, method: str) -> Response:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            body = request.json()
            if isinstance(body, dict):
                params.update(body)
        elif request.content_type == "application/x-www-form-urlencoded":
            params.update(request.form())
        auth = request.headers.get("authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else params.get("token")
        params.pop("token", None)
        handler = self.web_api_methods().get(method)
        if not token:
            response = json_response({"ok": False, "error": "not_authed"})
        elif token != self.bot_token:
            response = json_response({"ok": False, "error": "invalid_auth"})
        elif handler is None:
            response = json_response({"ok": False, "error": "unknown_method", "req_method": method})
        else:
            target = params.get("channel") or params.get("channel_id")
            response = self.answer(method, lambda: self._call(handler, params),
                                   accept=lambda f: f.params.get("channel") in (None, target))
        with self._lock:
            self.calls.append(Call(method, params, time.time(), None if response.drop
                                   else response.status, _json_or_none(response)))
        return response

    def _call(self, handler: Callable[[dict[str, Any]], dict[str, Any]], params: dict[str, Any]
              ) -> Response:
        try:
            data = handler(params)
        except SlackError as exc:
            return json_response({"ok": False, "error": exc.error})
        except _RateLimited as exc:
            return self.rate_limited({}, exc.retry_after)
        return json_response({"ok": True, **data})

    # Web API methods -------------------------------------------------------------------------
    def _parse_view(self, params: dict[str, Any]) -> dict[str, Any]:
        view = _as_json(params.get("view"), None)
        if not isinstance(view, dict) or "type" not in view:
            raise SlackError("invalid_arguments")
        blocks = view.get("blocks", [])
        if not isinstance(blocks, list) or not all(isinstance(b, dict) and "type" in b for b in blocks):
            raise SlackError("invalid_arguments")
        for block in blocks:
            block.setdefault("block_id", _block_id())
        return view

    def _blocks(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        blocks = _as_json(params.get("blocks"), [])
        if not isinstance(blocks, list) or not all(isinstance(b, dict) and "type" in b for b in blocks):
            raise SlackError("invalid_blocks")
        return blocks

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self.users[self.bot_user_id].name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            channel = self._channel(params.get("channel"))
            if not channel.bot_is_member:
                raise SlackError("not_in_channel")
            text = str(params.get("text") or "")
            blocks = self._blocks(params)
            attachments = _as_json(params.get("attachments"), [])
            if not text and not blocks and not attachments:
                raise SlackError("no_text")
            if len(text) > MAX_TEXT_LENGTH:
                raise SlackError("msg_too_long")
            now = time.time()
            if self.enforce_rate_limits:
                recent = [t for t in self._post_times.get(channel.id, [])
                          if now - t < self.rate_limit_window]
                if len(recent) >= self.rate_limit_burst:
                    raise _RateLimited(1)
            msg = StoredMessage(
                channel.id,
                self._next_ts(),
                text,
                user=self.bot_user_id,
                bot_id=self.bot_id,
                blocks=blocks,
                attachments=attachments if isinstance(attachments, list) else [],
                thread_ts=params.get("thread_ts") or None,
                reply_broadcast=_as_bool(params.get("reply_broadcast")),
                metadata=_as_json(params.get("metadata"), None),
            )
            self._store(msg)
            self._post_times.setdefault(channel.id, []).append(now)
            return {"channel": channel.id, "ts": msg.ts, "message": self._message_json(msg)}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            msg = self._message_or_error(params, "ts")
            if msg.bot_id != self.bot_id:
                raise SlackError("cant_update_message")
            if "text" in params:
                text = str(params.get("text") or "")
                if len(text) > MAX_TEXT_LENGTH:
                    raise SlackError("msg_too_long")
                msg.text = text
            if "blocks" in params:
                msg.blocks = self._blocks(params)
                for block in msg.blocks:
                    block.setdefault("block_id", _block_id())
            if "attachments" in params:
                msg.attachments = _as_json(params.get("attachments"), [])
            msg.edited = {"user": self.bot_user_id, "ts": self._next_ts()}
            return {"channel": msg.channel, "ts": msg.ts, "text": msg.text,
                    "message": self._message_json(msg)}

    def _chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            msg = self._message_or_error(params, "ts")
            if msg.bot_id != self.bot_id:
                raise SlackError("cant_delete_message")
            self._messages[msg.channel].remove(msg)
            return {"channel": msg.channel, "ts": msg.ts}

    def _chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            channel = self._channel(params.get("channel"))
            user = params.get("user")
            if user not in self.users:
                raise SlackError("user_not_found")
            if not channel.bot_is_member:
                raise SlackError("not_in_channel")
            if user not in self._members(channel):
                raise SlackError("user_not_in_channel")
            text = str(params.get("text") or "")
            blocks = self._blocks(params)
            if not text and not blocks and not params.get("attachments"):
                raise SlackError("no_text")
            ts = self._add_ephemeral(channel.id, user, text, blocks, params.get("thread_ts"), "api")
            return {"message_ts": ts}

    def _chat_get_permalink(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            msg = self._message_or_error(params, "message_ts")
            return {"channel": msg.channel, "permalink": self.permalink(msg.channel, msg.ts)}

    def _reaction_target(self, params: dict[str, Any]) -> tuple[StoredMessage, str]:
        msg = self._message_or_error(params, "timestamp")
        name = str(params.get("name") or "").strip(":")
        if not name:
            raise SlackError("invalid_name")
        return msg, name

    def _reactions_add(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            msg, name = self._reaction_target(params)
            users = msg.reactions.setdefault(name, [])
            if self.bot_user_id in users:
                raise SlackError("already_reacted")
            users.append(self.bot_user_id)
            event = self._reaction_event("reaction_added", self.bot_user_id, msg, name)
        if self.bot_events_url and self.deliver_bot_reactions:
            self._tell_bot_later(event)
        return {}

    def _reactions_remove(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            msg, name = self._reaction_target(params)
            users = msg.reactions.get(name, [])
            if self.bot_user_id not in users:
                raise SlackError("no_reaction")
            users.remove(self.bot_user_id)
            if not users:
                del msg.reactions[name]
            event = self._reaction_event("reaction_removed", self.bot_user_id, msg, name)
        if self.bot_events_url and self.deliver_bot_reactions:
            self._tell_bot_later(event)
        return {}

    def _reactions_get(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            msg = self._message_or_error(params, "timestamp")
            return {"type": "message", "channel": msg.channel, "message": self._message_json(msg)}

    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            content = self._parse_view(params)
            if content["type"] != "modal":
                raise SlackError("invalid_arguments")
            user = self._use_trigger(params.get("trigger_id")) or ""
            stored = self._create_view(content, user)
            return {"view": self._view_json(stored)}

    def _views_push(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            content = self._parse_view(params)
            user = self._use_trigger(params.get("trigger_id")) or ""
            stored = self._create_view(content, user, self._top_modal(user))
            return {"view": self._view_json(stored)}

    def _find_view(self, params: dict[str, Any]) -> StoredView:
        view_id, external_id = params.get("view_id"), params.get("external_id")
        for stored in self._views.values():
            if stored.id == view_id or (external_id and stored.content.get("external_id") == external_id):
                return stored
        raise SlackError("not_found")

    def _views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            stored = self._find_view(params)
            content = self._parse_view(params)
            if params.get("hash") and params["hash"] != stored.hash:
                raise SlackError("hash_conflict")
            stored.content = content
            stored.hash = self._new_view_hash()
            return {"view": self._view_json(stored)}

    def _views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            user = params.get("user_id")
            if user not in self.users:
                raise SlackError("user_not_found")
            content = self._parse_view(params)
            if content["type"] != "home":
                raise SlackError("invalid_arguments")
            view_id = self._home_views.get(user)
            if view_id is None:
                stored = self._create_view(content, user)
                self._home_views[user] = stored.id
            else:
                stored = self._views[view_id]
                if params.get("hash") and params["hash"] != stored.hash:
                    raise SlackError("hash_conflict")
                stored.content, stored.hash = content, self._new_view_hash()
            return {"view": self._view_json(stored)}

    def _usergroups_list(self, params: dict[str, Any]) -> dict[str, Any]:
        include_users = _as_bool(params.get("include_users"))
        with self._lock:
            return {"usergroups": [self._usergroup_json(g, include_users)
                                   for g in self.usergroups.values()]}

    def _usergroups_users_list(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            group = self.usergroups.get(params.get("usergroup", ""))
            if group is None:
                raise SlackError("no_such_subteam")
            return {"users": list(group.users)}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            user = self.users.get(params.get("user", ""))
            if user is None:
                raise SlackError("user_not_found")
            return {"user": user.to_json(self.team_id)}

    def _users_list(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"members": [u.to_json(self.team_id) for u in self.users.values()],
                    "response_metadata": {"next_cursor": ""}}

    def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"channel": self._channel_json(self._channel(params.get("channel")))}

    def _conversations_list(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"channels": [self._channel_json(c) for c in self.channels.values() if not c.is_im],
                    "response_metadata": {"next_cursor": ""}}

    def _readable_channel(self, params: dict[str, Any]) -> SlackChannel:
        channel = self._channel(params.get("channel"))
        if not channel.bot_is_member:
            raise SlackError("not_in_channel")
        return channel

    def _conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            channel = self._readable_channel(params)
            inclusive = _as_bool(params.get("inclusive"))
            oldest, latest = params.get("oldest"), params.get("latest")
            limit = min(int(params.get("limit") or 100), 999)
            msgs = [m for m in reversed(self._messages.get(channel.id, []))
                    if not m.is_reply or m.reply_broadcast]
            if oldest:
                msgs = [m for m in msgs if float(m.ts) > float(oldest)
                        or (inclusive and m.ts == oldest)]
            if latest:
                msgs = [m for m in msgs if float(m.ts) < float(latest)
                        or (inclusive and m.ts == latest)]
            start = int(params.get("cursor") or 0)
            page = msgs[start:start + limit]
            has_more = start + limit < len(msgs)
            with_metadata = _as_bool(params.get("include_all_metadata"))
            return {
                "messages": [self._message_json(m) | ({"metadata": m.metadata}
                                                      if with_metadata and m.metadata else {})
                             for m in page],
                "has_more": has_more,
                "pin_count": 0,
                "response_metadata": {"next_cursor": str(start + limit) if has_more else ""},
            }

    def _conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            channel = self._readable_channel(params)
            ts = str(params.get("ts"))
            if self._find_message(channel.id, ts) is None:
                raise SlackError("thread_not_found")
            with_metadata = _as_bool(params.get("include_all_metadata"))
            msgs = [self._message_json(m) | ({"metadata": m.metadata}
                                             if with_metadata and m.metadata else {})
                    for m in self._messages.get(channel.id, [])
                    if m.ts == ts or m.thread_ts == ts]
            return {"messages": msgs, "has_more": False,
                    "response_metadata": {"next_cursor": ""}}

    def _conversations_members(self, params: dict[str, Any]) -> dict[str, Any]:
        """Paginated as Slack does: ``limit`` (default 100, at most 1,000) and an opaque
        ``cursor`` from the previous page's ``response_metadata.next_cursor``."""
        try:
            limit = min(int(params.get("limit") or 100), 1000)
        except (TypeError, ValueError):
            raise SlackError("invalid_limit") from None
        if limit < 1:
            raise SlackError("invalid_limit")
        start = 0
        if params.get("cursor"):
            try:
                kind, _, offset = base64.b64decode(str(params["cursor"])).decode().partition(":")
                start = int(offset)
            except (ValueError, UnicodeDecodeError):
                raise SlackError("invalid_cursor") from None
            if kind != "offset" or start < 0:
                raise SlackError("invalid_cursor")
        with self._lock:
            channel = self._channel(params.get("channel"))
            members = self._members(channel)
        page = members[start:start + limit]
        more = start + limit < len(members)
        cursor = base64.b64encode(f"offset:{start + limit}".encode()).decode() if more else ""
        return {"members": page, "response_metadata": {"next_cursor": cursor}}

    def _conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            users = str(params.get("users") or "").split(",")
            if len(users) != 1 or users[0] not in self.users:
                raise SlackError("user_not_found")
            return {"channel": {"id": self._im_with(users[0]).id}}

    def _files_get_upload_url(self, params: dict[str, Any]) -> dict[str, Any]:
        filename, length = params.get("filename"), params.get("length")
        if not filename or not str(length or "").isdigit():
            raise SlackError("invalid_arguments")
        with self._lock:
            file_id = self._next_id("F")
            self.files[file_id] = {
                "id": file_id, "name": filename, "title": filename, "size": int(str(length)),
                "user": self.bot_user_id, "created": int(time.time()), "channels": [],
                "content": None, "complete": False,
            }
        return {"upload_url": f"{self.root_url}/upload/v1/{file_id}", "file_id": file_id}

    def _upload(self, file_id: str, content: bytes) -> Response:
        with self._lock:
            record = self.files.get(file_id)
            if record is None:
                return text_response("file not found", 404)
            record["content"] = content
            record["size"] = len(content)
        return text_response(f"OK - {len(content)}")

    def _download(self, request: Request) -> Response:
        """``url_private``: the file's bytes for a request carrying the bot token (with
        ``files:read``); without it Slack answers 200 with its HTML sign-in page."""
        parts = request.path.split("/")  # /files-pri/T-F/name
        file_id = parts[2].rsplit("-", 1)[-1] if len(parts) > 3 else ""
        auth = request.headers.get("authorization", "")
        with self._lock:
            self.calls.append(Call("url_private", {"file": file_id}, time.time(), 200))
            record = self.files.get(file_id)
            if auth != f"Bearer {self.bot_token}":
                return Response(200, b"<!DOCTYPE html><html><body>Sign in to Slack</body></html>",
                                {"Content-Type": "text/html; charset=utf-8"})
            if record is None or record["content"] is None:
                return text_response("Not found", 404)
            content = record["content"]
            mimetype = record.get("mimetype") or "application/octet-stream"
        return Response(200, content, {"Content-Type": mimetype})

    def _files_complete_upload(self, params: dict[str, Any]) -> dict[str, Any]:
        files = _as_json(params.get("files"), None)
        if not isinstance(files, list) or not files:
            raise SlackError("invalid_arguments")
        with self._lock:
            records = []
            for item in files:
                record = self.files.get(item.get("id", ""))
                if record is None or record["content"] is None:
                    raise SlackError("file_not_found")
                record["title"] = item.get("title") or record["title"]
                record["complete"] = True
                records.append(record)
            channel_ids = [c for c in [params.get("channel_id"),
                                       *str(params.get("channels") or "").split(",")] if c]
            for channel_id in channel_ids:
                channel = self._channel(channel_id)
                if not channel.bot_is_member:
                    raise SlackError("not_in_channel")
                for record in records:
                    record["channels"].append(channel.id)
                msg = StoredMessage(
                    channel.id, self._next_ts(), str(params.get("initial_comment") or ""),
                    user=self.bot_user_id, bot_id=self.bot_id,
                    thread_ts=params.get("thread_ts") or None,
                    files=[self._file_json(r) for r in records],
                )
                self._store(msg)
            return {"files": [self._file_json(r) for r in records]}

    def _files_info(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            record = self.files.get(params.get("file", ""))
            if record is None or not record["complete"]:
                raise SlackError("file_not_found")
            return {"file": self._file_json(record)}

    def _response_url(self, request: Request, key: str) -> Response:
        with self._lock:
            context = self._response_urls.get(key)
            if context is None:
                return json_response({"ok": False, "error": "expired_url"}, 404)
            try:
                body = request.json() if request.content_type == "application/json" else \
                    json.loads(request.form().get("payload", "null"))
            except json.JSONDecodeError:
                body = None
            if not isinstance(body, dict):
                return json_response({"ok": False, "error": "invalid_payload"}, 400)
            self.response_url_posts.append({"id": key, **body})
            text = str(body.get("text") or "")
            blocks = body.get("blocks") or []
            original = (self._find_message(context.channel, context.message_ts)
                        if context.message_ts and not context.is_ephemeral else None)
            if _as_bool(body.get("delete_original")):
                if original is not None:
                    self._messages[context.channel].remove(original)
                elif context.is_ephemeral:
                    self._ephemerals = [e for e in self._ephemerals
                                        if e["ts"] != context.message_ts]
            elif _as_bool(body.get("replace_original")) and context.message_ts:
                if original is not None:
                    original.text, original.blocks = text, blocks
                    for block in original.blocks:
                        block.setdefault("block_id", _block_id())
                    original.edited = {"user": self.bot_user_id, "ts": self._next_ts()}
                else:
                    for eph in self._ephemerals:
                        if eph["ts"] == context.message_ts:
                            eph.update(text=text, blocks=blocks)
            elif body.get("response_type") == "in_channel":
                msg = StoredMessage(context.channel, self._next_ts(), text, user=self.bot_user_id,
                                    bot_id=self.bot_id, blocks=blocks,
                                    thread_ts=body.get("thread_ts") or None)
                self._store(msg)
            else:
                self._add_ephemeral(context.channel, context.user, text, blocks,
                                    body.get("thread_ts"), "response_url")
        return json_response({"ok": True})
