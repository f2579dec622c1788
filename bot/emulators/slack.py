"""An offline Slack: a Web API emulator plus the "Slack side" client.

The Web API half answers slack_sdk's ``WebClient(base_url=emulator.start())``
with Slack's own shapes and errors. The client half sends the bot what Slack
sends (events, slash commands, interactivity), signed with the signing secret
exactly as Slack signs them, to ``bot_events_url``.

Message dicts returned by the query helpers (``messages``, ``thread``, ...) are
shaped as ``conversations.history`` shows them (reactions as a list of
``{"name", "users", "count"}``); :meth:`SlackEmulator.reactions` gives the
``{name: [user ids]}`` form.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import random
import string
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from .http import (
    EmulatorServer,
    Request,
    Response,
    apply_delay,
    json_response,
    text_response,
    transport_fault_response,
)

log = logging.getLogger(__name__)

RATE_LIMITED_METHOD = "chat.postMessage"
MAX_TEXT_LENGTH = 40_000


class SlackError(Exception):
    """Raised inside a Web API method: answered as ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class _RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


@dataclass
class Call:
    """One Web API call as received (token removed) and how it was answered."""

    method: str
    params: dict[str, Any]
    time: float
    status: int | None
    response: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return bool(self.response and self.response.get("ok"))

    @property
    def error(self) -> str | None:
        return None if self.response is None else self.response.get("error")


@dataclass
class Delivery:
    """One request the emulator sent to the bot, and what came back."""

    kind: str  # event | command | block_actions | view_submission | view_closed | url_verification
    payload: dict[str, Any]
    headers: dict[str, str]
    status: int | None = None
    body: str | None = None
    error: str | None = None


@dataclass
class SlackUser:
    id: str
    name: str
    real_name: str
    is_bot: bool = False

    def to_json(self, team_id: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": False,
            "real_name": self.real_name,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "profile": {
                "real_name": self.real_name,
                "display_name": self.name,
                "real_name_normalized": self.real_name,
                "display_name_normalized": self.name,
                "team": team_id,
            },
        }


@dataclass
class SlackChannel:
    id: str
    name: str
    bot_is_member: bool = True
    members: list[str] | None = None  # None: everyone in the workspace is a member
    is_im: bool = False
    is_private: bool = False


@dataclass
class SlackUsergroup:
    id: str
    handle: str
    users: list[str]
    name: str


@dataclass
class StoredMessage:
    channel: str
    ts: str
    text: str
    user: str | None = None
    bot_id: str | None = None
    blocks: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    reply_broadcast: bool = False
    reactions: dict[str, list[str]] = field(default_factory=dict)
    edited: dict[str, str] | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] | None = None  # chat.postMessage `metadata` (event_type + payload)

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts


@dataclass
class StoredView:
    id: str
    type: str  # modal | home
    user: str
    content: dict[str, Any]
    hash: str
    root_view_id: str
    previous_view_id: str | None = None
    closed: bool = False


@dataclass
class _Trigger:
    user: str
    issued: float
    used: bool = False


@dataclass
class _ResponseURL:
    channel: str
    user: str
    message_ts: str | None = None
    is_ephemeral: bool = False


def slack_escape(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` as Slack does in slash-command text and messages."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in {"1", "true", "yes"}
    return bool(value)


def _as_json(value: Any, default: Any) -> Any:
    if value is None or value == "":
        return default
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise SlackError("invalid_arguments") from exc
    return value


def _random_id(prefix: str, length: int = 10) -> str:
    return prefix + "".join(random.choices(string.ascii_uppercase + string.digits, k=length))


def _block_id() -> str:
    return "".join(random.choices(string.ascii_letters + string.digits + "=+", k=5))


class SlackEmulator(EmulatorServer):
    """A Slack workspace and Web API on 127.0.0.1. ``start()`` returns the ``.../api/`` base URL."""

    def __init__(
        self,
        signing_secret: str = "test-signing-secret",
        bot_token: str = "xoxb-test-token",
        team_id: str = "T0COUNCIL",
        bot_user_id: str = "U0BOT",
        port: int = 0,
        *,
        bot_id: str = "B0BOT",
        app_id: str = "A0COMMSDESK",
        team_domain: str = "council",
        team_name: str = "Council",
        bot_name: str = "commsdesk",
        verification_token: str = "legacy-verification-token",
    ) -> None:
        super().__init__(port)
        self.signing_secret = signing_secret
        self.bot_token = bot_token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.team_domain = team_domain
        self.team_name = team_name
        self.verification_token = verification_token

        # behaviour switches
        self.bot_events_url: str | None = None
        self.client_timeout: float = 10.0
        self.enforce_rate_limits: bool = False
        self.rate_limit_burst: int = 3
        self.rate_limit_window: float = 1.0
        self.check_triggers: bool = True
        self.trigger_ttl: float = 3.0
        self.deliver_bot_reactions: bool = True

        self._lock = threading.RLock()
        self.users: dict[str, SlackUser] = {}
        self.channels: dict[str, SlackChannel] = {}
        self.usergroups: dict[str, SlackUsergroup] = {}
        self._messages: dict[str, list[StoredMessage]] = {}
        self._ephemerals: list[dict[str, Any]] = []
        self._views: dict[str, StoredView] = {}
        self._home_views: dict[str, str] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self._post_times: dict[str, list[float]] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._response_urls: dict[str, _ResponseURL] = {}
        self._last_ts_us = 0
        self._counter = 0

        self.calls: list[Call] = []
        self.deliveries: list[Delivery] = []
        self.response_url_posts: list[dict[str, Any]] = []
        self.last_event_id: str | None = None
        self._http: httpx.Client | None = None
        self._background: list[threading.Thread] = []

        self.add_user(bot_user_id, bot_name, real_name=bot_name, is_bot=True)
        self._methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
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

    # lifecycle -------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        """The Web API base URL, ``http://127.0.0.1:PORT/api/``."""
        return f"{self.root_url}/api/"

    def start(self) -> str:
        super().start()
        return self.api_url

    def stop(self) -> None:
        for thread in list(self._background):
            thread.join(timeout=self.client_timeout)
        super().stop()
        if self._http is not None:
            self._http.close()
            self._http = None

    # seeding ---------------------------------------------------------------------
    def add_user(
        self, id: str, name: str, real_name: str | None = None, *, is_bot: bool = False
    ) -> SlackUser:
        with self._lock:
            user = SlackUser(id, name, real_name or name, is_bot)
            self.users[id] = user
            return user

    def add_channel(
        self,
        id: str,
        name: str,
        bot_is_member: bool = True,
        *,
        members: Iterable[str] | None = None,
        is_private: bool = False,
    ) -> SlackChannel:
        """``members=None`` makes every user a member (handy); a list makes membership strict."""
        with self._lock:
            channel = SlackChannel(
                id, name.lstrip("#"), bot_is_member, None if members is None else list(members),
                is_private=is_private,
            )
            self.channels[id] = channel
            self._messages.setdefault(id, [])
            return channel

    def add_usergroup(
        self, id: str, handle: str, user_ids: Iterable[str], *, name: str | None = None
    ) -> SlackUsergroup:
        with self._lock:
            group = SlackUsergroup(id, handle, list(user_ids), name or handle)
            self.usergroups[id] = group
            return group

    def set_usergroup_users(self, id: str, user_ids: Iterable[str]) -> None:
        with self._lock:
            self.usergroups[id].users = list(user_ids)

    def set_channel_members(self, id: str, user_ids: Iterable[str] | None) -> None:
        """People join or leave a channel (``None``: everyone is a member again)."""
        with self._lock:
            self.channels[id].members = None if user_ids is None else list(user_ids)

    def post_user_message(
        self,
        user_id: str,
        channel_id: str,
        text: str,
        *,
        thread_ts: str | None = None,
        send_event: bool = True,
    ) -> str:
        """A person posts in a channel; returns the message ts (and tells the bot, by default)."""
        with self._lock:
            channel = self._channel(channel_id)
            msg = StoredMessage(channel.id, self._next_ts(), text, user=user_id, thread_ts=thread_ts)
            self._store(msg)
        if send_event and self.bot_events_url:
            event: dict[str, Any] = {
                "type": "message",
                "channel": channel.id,
                "user": user_id,
                "text": text,
                "ts": msg.ts,
                "event_ts": msg.ts,
                "team": self.team_id,
                "client_msg_id": str(uuid.uuid4()),
                "channel_type": "im" if channel.is_im else "channel",
            }
            if thread_ts:
                event["thread_ts"] = thread_ts
            self.send_event(event)
        return msg.ts

    def share_file(
        self,
        user_id: str,
        channel_id: str,
        content: bytes,
        filename: str,
        *,
        text: str = "",
        title: str | None = None,
        alt_txt: str | None = None,
        mimetype: str = "image/png",
        thread_ts: str | None = None,
        send_event: bool = True,
    ) -> tuple[str, str]:
        """A person uploads a file into a channel (or a thread), as Slack's client does;
        returns (message ts, file id) and sends the ``message``/``file_share`` event."""
        with self._lock:
            channel = self._channel(channel_id)
            file_id = self._next_id("F")
            record: dict[str, Any] = {
                "id": file_id, "name": filename, "title": title or filename,
                "mimetype": mimetype, "filetype": filename.rsplit(".", 1)[-1].lower(),
                "pretty_type": filename.rsplit(".", 1)[-1].upper(), "size": len(content),
                "user": user_id, "created": int(time.time()), "channels": [channel.id],
                "mode": "hosted", "is_external": False, "is_public": not channel.is_private,
                "content": content, "complete": True,
            }
            if alt_txt:
                record["alt_txt"] = alt_txt
            self.files[file_id] = record
            msg = StoredMessage(channel.id, self._next_ts(), text, user=user_id,
                                thread_ts=thread_ts, files=[self._file_json(record)])
            self._store(msg)
            event: dict[str, Any] = {
                "type": "message", "subtype": "file_share", "text": text,
                "files": [self._file_json(record)], "upload": False, "user": user_id,
                "display_as_bot": False, "ts": msg.ts, "event_ts": msg.ts,
                "channel": channel.id, "team": self.team_id,
                "channel_type": "group" if channel.is_private else "channel",
            }
            if msg.thread_ts:
                event["thread_ts"] = msg.thread_ts
                parent = self._find_message(channel.id, msg.thread_ts)
                if parent is not None:
                    event["parent_user_id"] = parent.user
        if send_event and self.bot_events_url:
            self.send_event(event)
        return msg.ts, file_id

    # faults ------------------------------------------------------------------------
    def inject(self, method: str, kind: str, times: int = 1, **params: Any) -> None:
        """Queue a fault for a Web API method (or ``"*"``): kinds ``error`` (``error=...``,
        optional ``channel=...``), ``429`` (``retry_after``), ``500``, ``503``, ``slow``
        (``delay`` seconds, then normal), ``drop`` (close without answering), ``malformed``."""
        self.faults.add(method, kind, times, **params)

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

    # queries for tests ------------------------------------------------------------------
    def messages(self, channel: str, *, include_replies: bool = False) -> list[dict[str, Any]]:
        """Messages in a channel, oldest first; thread replies only with ``include_replies``."""
        with self._lock:
            return [
                self._message_json(m)
                for m in self._messages.get(channel, [])
                if include_replies or not m.is_reply or m.reply_broadcast
            ]

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        with self._lock:
            msg = self._find_message(channel, ts)
            return None if msg is None else self._message_json(msg)

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """The parent then its replies, oldest first."""
        with self._lock:
            return [
                self._message_json(m)
                for m in self._messages.get(channel, [])
                if m.ts == ts or m.thread_ts == ts
            ]

    def reactions(self, channel: str, ts: str) -> dict[str, list[str]]:
        with self._lock:
            msg = self._find_message(channel, ts)
            return {} if msg is None else {k: list(v) for k, v in msg.reactions.items()}

    def ephemerals(self, user: str | None = None, channel: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                dict(e)
                for e in self._ephemerals
                if (user is None or e["user"] == user) and (channel is None or e["channel"] == channel)
            ]

    def open_views(self, user_id: str) -> list[dict[str, Any]]:
        """The user's open modals, bottom of the stack first."""
        with self._lock:
            return [
                self._view_json(v)
                for v in self._views.values()
                if v.user == user_id and v.type == "modal" and not v.closed
            ]

    def view(self, view_id: str) -> dict[str, Any] | None:
        with self._lock:
            stored = self._views.get(view_id)
            return None if stored is None else self._view_json(stored)

    def home_view(self, user_id: str) -> dict[str, Any] | None:
        with self._lock:
            view_id = self._home_views.get(user_id)
            return None if view_id is None else self._view_json(self._views[view_id])

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def post_times(self, channel: str) -> list[float]:
        """``time.time()`` of each accepted ``chat.postMessage`` in the channel."""
        with self._lock:
            return list(self._post_times.get(channel, []))

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()
            self.deliveries.clear()
            self.response_url_posts.clear()

    def state(self) -> dict[str, Any]:
        """Everything visible, as served on ``GET /emulator/state``."""
        with self._lock:
            return {
                "team": {"id": self.team_id, "domain": self.team_domain, "name": self.team_name},
                "bot": {"user_id": self.bot_user_id, "bot_id": self.bot_id, "app_id": self.app_id},
                "users": [u.to_json(self.team_id) for u in self.users.values()],
                "usergroups": [self._usergroup_json(g, True) for g in self.usergroups.values()],
                "channels": [
                    {**self._channel_json(c), "messages": self.messages(c.id, include_replies=True)}
                    for c in self.channels.values()
                ],
                "ephemerals": self.ephemerals(),
                "views": [self._view_json(v) | {"user": v.user, "closed": v.closed}
                          for v in self._views.values()],
            }

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

        def answer(data: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
            with self._lock:
                self.calls.append(Call(method, params, time.time(), status, data))
            return json_response(data, status, headers)

        if not token:
            return answer({"ok": False, "error": "not_authed"})
        if token != self.bot_token:
            return answer({"ok": False, "error": "invalid_auth"})
        handler = self._methods.get(method)
        if handler is None:
            return answer({"ok": False, "error": "unknown_method", "req_method": method})

        target = params.get("channel") or params.get("channel_id")
        fault = self.faults.take(
            method, lambda f: f.params.get("channel") in (None, target)
        )
        if fault is not None:
            apply_delay(fault)
            transport = transport_fault_response(fault)
            if transport is not None:
                with self._lock:
                    self.calls.append(Call(method, params, time.time(), None if transport.drop else 200))
                return transport
            if fault.kind == "error":
                return answer({"ok": False, "error": fault.params.get("error", "fatal_error")})
            if fault.kind == "429":
                retry_after = str(int(fault.params.get("retry_after", 1)))
                return answer({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": retry_after})
            if fault.kind in {"500", "502", "503", "504"}:
                error = "service_unavailable" if fault.kind == "503" else "fatal_error"
                return answer({"ok": False, "error": error}, int(fault.kind))
        try:
            data = handler(params)
        except SlackError as exc:
            return answer({"ok": False, "error": exc.error})
        except _RateLimited as exc:
            return answer(
                {"ok": False, "error": "ratelimited"}, 429, {"Retry-After": str(exc.retry_after)}
            )
        return answer({"ok": True, **data})

    # helpers -------------------------------------------------------------------------------
    def _next_ts(self) -> str:
        with self._lock:
            now_us = max(int(time.time() * 1_000_000), self._last_ts_us + 1)
            self._last_ts_us = now_us
            return f"{now_us // 1_000_000}.{now_us % 1_000_000:06d}"

    def _next_id(self, prefix: str) -> str:
        with self._lock:
            self._counter += 1
            return f"{prefix}{self._counter:08X}"

    def _channel(self, value: Any) -> SlackChannel:
        if not value or not isinstance(value, str):
            raise SlackError("channel_not_found")
        if value in self.channels:
            return self.channels[value]
        if value in self.users:  # a user id: their DM with the bot
            return self._im_with(value)
        name = value.lstrip("#")
        for channel in self.channels.values():
            if channel.name == name and not channel.is_im:
                return channel
        raise SlackError("channel_not_found")

    def _im_with(self, user_id: str) -> SlackChannel:
        channel_id = "D" + user_id[1:]
        if channel_id not in self.channels:
            self.channels[channel_id] = SlackChannel(
                channel_id, user_id, True, [user_id], is_im=True, is_private=True
            )
            self._messages[channel_id] = []
        return self.channels[channel_id]

    def _members(self, channel: SlackChannel) -> list[str]:
        if channel.members is None:
            members = [u.id for u in self.users.values() if not u.is_bot]
        else:
            members = list(channel.members)
        if channel.bot_is_member and self.bot_user_id not in members:
            members.append(self.bot_user_id)
        return members

    def _find_message(self, channel: str, ts: Any) -> StoredMessage | None:
        for msg in self._messages.get(channel, []):
            if msg.ts == ts:
                return msg
        return None

    def _message_or_error(self, params: dict[str, Any], ts_key: str) -> StoredMessage:
        channel = self._channel(params.get("channel"))
        msg = self._find_message(channel.id, params.get(ts_key))
        if msg is None:
            raise SlackError("message_not_found")
        return msg

    def _store(self, msg: StoredMessage) -> None:
        if msg.thread_ts:
            parent = self._find_message(msg.channel, msg.thread_ts)
            if parent is not None and parent.is_reply:
                msg.thread_ts = parent.thread_ts
        for block in msg.blocks:
            block.setdefault("block_id", _block_id())
        self._messages.setdefault(msg.channel, []).append(msg)

    def _message_json(self, msg: StoredMessage) -> dict[str, Any]:
        data: dict[str, Any] = {"type": "message", "text": msg.text, "ts": msg.ts}
        if msg.bot_id:
            data.update(
                bot_id=msg.bot_id,
                app_id=self.app_id,
                user=msg.user,
                # Slack's Bot Profile Object (objs_bot_profile): all seven fields
                bot_profile={"id": msg.bot_id, "app_id": self.app_id, "deleted": False,
                             "name": self.users[self.bot_user_id].name, "team_id": self.team_id,
                             "updated": 1700000000, "icons": {
                                 f"image_{n}": f"https://a.slack-edge.com/80588/img/plugins/app/bot_{n}.png"
                                 for n in (36, 48, 72)}},
            )
        else:
            data["user"] = msg.user
        data["team"] = self.team_id
        if msg.blocks:
            data["blocks"] = msg.blocks
        if msg.attachments:
            data["attachments"] = msg.attachments
        if msg.files:
            data["files"] = msg.files
            data["upload"] = False
        if msg.edited:
            data["edited"] = dict(msg.edited)
        if msg.is_reply:
            data["thread_ts"] = msg.thread_ts
            parent = self._find_message(msg.channel, msg.thread_ts)
            if parent is not None:
                data["parent_user_id"] = parent.user
            if msg.reply_broadcast:
                data["subtype"] = "thread_broadcast"
        else:
            replies = [m for m in self._messages.get(msg.channel, []) if m.thread_ts == msg.ts
                       and m.ts != msg.ts]
            if replies:
                users = list(dict.fromkeys(m.user for m in replies if m.user))
                data.update(
                    thread_ts=msg.ts,
                    reply_count=len(replies),
                    reply_users_count=len(users),
                    reply_users=users,
                    latest_reply=replies[-1].ts,
                )
        if msg.reactions:
            data["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in msg.reactions.items()
            ]
        return data

    def _channel_json(self, channel: SlackChannel) -> dict[str, Any]:
        if channel.is_im:
            return {"id": channel.id, "is_im": True, "user": channel.name, "is_open": True,
                    "created": 0, "is_org_shared": False}
        return {
            "id": channel.id,
            "name": channel.name,
            "is_channel": not channel.is_private,
            "is_group": channel.is_private,
            "is_im": False,
            "is_private": channel.is_private,
            "is_archived": False,
            "is_general": False,
            "is_member": channel.bot_is_member,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "created": 0,
            "name_normalized": channel.name,
            "num_members": len(self._members(channel)),
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }

    def _usergroup_json(self, group: SlackUsergroup, include_users: bool) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": group.id,
            "team_id": self.team_id,
            "is_usergroup": True,
            "is_subteam": True,
            "name": group.name,
            "description": "",
            "handle": group.handle,
            "is_external": False,
            "date_create": 0,
            "date_update": 0,
            "date_delete": 0,
            "auto_type": None,
            "prefs": {"channels": [], "groups": []},
            "user_count": len(group.users),
        }
        if include_users:
            data["users"] = list(group.users)
        return data

    def _view_json(self, view: StoredView) -> dict[str, Any]:
        content = view.content
        data: dict[str, Any] = {
            "id": view.id,
            "team_id": self.team_id,
            "type": view.type,
            "blocks": content.get("blocks", []),
            "private_metadata": content.get("private_metadata", ""),
            "callback_id": content.get("callback_id", ""),
            "state": {"values": {}},
            "hash": view.hash,
            "title": content.get("title"),
            "clear_on_close": bool(content.get("clear_on_close", False)),
            "notify_on_close": bool(content.get("notify_on_close", False)),
            "close": content.get("close"),
            "submit": content.get("submit"),
            "previous_view_id": view.previous_view_id,
            "root_view_id": view.root_view_id,
            "app_id": self.app_id,
            "external_id": content.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        return data

    def _new_view_hash(self) -> str:
        return f"{int(time.time())}.{_random_id('', 8)}"

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

    # Web API methods -------------------------------------------------------------------------
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

    def _add_ephemeral(
        self, channel: str, user: str, text: str, blocks: list[dict[str, Any]],
        thread_ts: str | None, source: str,
    ) -> str:
        for block in blocks:
            block.setdefault("block_id", _block_id())
        ts = self._next_ts()
        self._ephemerals.append({
            "type": "message", "channel": channel, "user": user, "text": text,
            "blocks": blocks, "ts": ts, "thread_ts": thread_ts or None, "source": source,
        })
        return ts

    def _chat_get_permalink(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            msg = self._message_or_error(params, "message_ts")
            return {"channel": msg.channel, "permalink": self.permalink(msg.channel, msg.ts)}

    def permalink(self, channel: str, ts: str) -> str:
        url = f"https://{self.team_domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        with self._lock:
            msg = self._find_message(channel, ts)
        if msg is not None and msg.is_reply:
            url += f"?thread_ts={msg.thread_ts}&cid={channel}"
        return url

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
            self._in_background(lambda: self.send_event(event))
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
            self._in_background(lambda: self.send_event(event))
        return {}

    def _reactions_get(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            msg = self._message_or_error(params, "timestamp")
            return {"type": "message", "channel": msg.channel, "message": self._message_json(msg)}

    def _use_trigger(self, trigger_id: Any) -> str | None:
        trigger = self._triggers.get(trigger_id) if isinstance(trigger_id, str) else None
        if not self.check_triggers:
            return trigger.user if trigger else None
        if trigger is None:
            raise SlackError("invalid_trigger_id")
        if trigger.used:
            raise SlackError("exchanged_trigger_id")
        if time.time() - trigger.issued > self.trigger_ttl:
            raise SlackError("expired_trigger_id")
        trigger.used = True
        return trigger.user

    def _new_trigger(self, user_id: str) -> str:
        trigger_id = f"{random.randint(10**10, 10**11)}.{random.randint(10**8, 10**9)}.{uuid.uuid4().hex[:32]}"
        with self._lock:
            self._triggers[trigger_id] = _Trigger(user_id, time.time())
        return trigger_id

    def _create_view(
        self, content: dict[str, Any], user: str, previous: StoredView | None = None
    ) -> StoredView:
        view_id = self._next_id("V")
        root = previous.root_view_id if previous else view_id
        stored = StoredView(view_id, content["type"], user, content, self._new_view_hash(), root,
                            previous.id if previous else None)
        self._views[view_id] = stored
        return stored

    def _top_modal(self, user: str) -> StoredView | None:
        open_modals = [v for v in self._views.values()
                       if v.user == user and v.type == "modal" and not v.closed]
        return open_modals[-1] if open_modals else None

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

    def _file_json(self, record: dict[str, Any]) -> dict[str, Any]:
        data = {k: v for k, v in record.items() if k not in {"content", "complete"}}
        private = f"{self.root_url}/files-pri/{self.team_id}-{record['id']}/{record['name']}"
        data.update(
            timestamp=record["created"],
            url_private=private,
            url_private_download=(f"{self.root_url}/files-pri/{self.team_id}-{record['id']}"
                                  f"/download/{record['name']}"),
            permalink=f"https://{self.team_domain}.slack.com/files/{record['user']}/{record['id']}",
        )
        return data

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

    def file_content(self, file_id: str) -> bytes | None:
        with self._lock:
            record = self.files.get(file_id)
            return None if record is None else record["content"]

    # response_url ----------------------------------------------------------------------------
    def _new_response_url(self, context: _ResponseURL) -> str:
        key = uuid.uuid4().hex
        with self._lock:
            self._response_urls[key] = context
        return f"{self.root_url}/response_url/{key}"

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

    # the Slack side: what Slack sends to the bot ------------------------------------------------
    def sign(self, body: str, timestamp: int | None = None) -> dict[str, str]:
        """Slack's signature headers for ``body``."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        base = f"v0:{ts}:{body}".encode()
        digest = hmac.new(self.signing_secret.encode(), base, hashlib.sha256).hexdigest()
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}

    def _client(self) -> httpx.Client:
        with self._lock:
            if self._http is None:
                self._http = httpx.Client(timeout=self.client_timeout)
            return self._http

    def send_raw(
        self,
        body: str,
        content_type: str,
        *,
        kind: str = "raw",
        payload: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """POST ``body`` to ``bot_events_url``, signed (``timestamp``/``signature`` override it,
        for stale or forged requests). Raises httpx errors; the attempt is in ``deliveries``."""
        if not self.bot_events_url:
            raise RuntimeError("set bot_events_url first")
        all_headers = {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            **self.sign(body, timestamp),
            **(headers or {}),
        }
        if signature is not None:
            all_headers["X-Slack-Signature"] = signature
        delivery = Delivery(kind, payload or {}, all_headers)
        with self._lock:
            self.deliveries.append(delivery)
        try:
            response = self._client().post(self.bot_events_url, content=body.encode(),
                                           headers=all_headers)
        except httpx.HTTPError as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"
            raise
        delivery.status, delivery.body = response.status_code, response.text
        return response

    def _send_json(self, kind: str, payload: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return self.send_raw(json.dumps(payload), "application/json", kind=kind, payload=payload,
                             **kwargs)

    def _send_form(self, kind: str, fields: dict[str, str], payload: dict[str, Any]) -> httpx.Response:
        return self.send_raw(urlencode(fields), "application/x-www-form-urlencoded", kind=kind,
                             payload=payload)

    def _in_background(self, work: Callable[[], object]) -> None:
        def run() -> None:
            try:
                work()
            except Exception:
                log.warning("background delivery failed", exc_info=True)

        thread = threading.Thread(target=run, daemon=True, name="slack-emulator-delivery")
        with self._lock:
            self._background = [t for t in self._background if t.is_alive()]
            self._background.append(thread)
        thread.start()

    def _user_obj(self, user_id: str) -> dict[str, str]:
        user = self.users.get(user_id)
        name = user.name if user else user_id
        return {"id": user_id, "username": name, "name": name, "team_id": self.team_id}

    def _team_obj(self) -> dict[str, str]:
        return {"id": self.team_id, "domain": self.team_domain}

    def send_event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """Deliver an ``event_callback``; a retry carries ``X-Slack-Retry-Num``/``-Reason``."""
        event = dict(event)
        event.setdefault("event_ts", self._next_ts())
        event_id = event_id or _random_id("Ev", 10)
        self.last_event_id = event_id
        envelope = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "context_team_id": self.team_id,
            "context_enterprise_id": None,
            "api_app_id": self.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(float(event["event_ts"])),
            "authorizations": [{
                "enterprise_id": None,
                "team_id": self.team_id,
                "user_id": self.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }],
            "is_ext_shared_channel": False,
            "event_context": f"4-{uuid.uuid4().hex}",
        }
        headers = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
        return self._send_json("event", envelope, headers=headers, timestamp=timestamp,
                               signature=signature)

    def send_url_verification(self, challenge: str | None = None) -> httpx.Response:
        payload = {"token": self.verification_token, "type": "url_verification",
                   "challenge": challenge or uuid.uuid4().hex}
        return self._send_json("url_verification", payload)

    def send_command(
        self,
        user_id: str,
        channel_id: str,
        text: str,
        command: str = "/social",
        *,
        escape: bool = True,
    ) -> httpx.Response:
        """A slash command as Slack posts it (form-encoded; ``&<>`` in ``text`` escaped)."""
        with self._lock:
            channel = self.channels.get(channel_id)
            channel_name = "directmessage" if channel and channel.is_im else (
                channel.name if channel else "unknown")
            user = self.users.get(user_id)
        fields = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user.name if user else user_id,
            "command": command,
            "text": slack_escape(text) if escape else text,
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": self._new_response_url(_ResponseURL(channel_id, user_id)),
            "trigger_id": self._new_trigger(user_id),
        }
        return self._send_form("command", fields, dict(fields))

    def _send_interaction(self, kind: str, payload: dict[str, Any]) -> httpx.Response:
        return self._send_form(kind, {"payload": json.dumps(payload)}, payload)

    @staticmethod
    def _find_element(
        blocks: list[dict[str, Any]], action_id: str, block_id: str | None
    ) -> tuple[dict[str, Any], str] | None:
        for block in blocks:
            if block_id is not None and block.get("block_id") != block_id:
                continue
            elements = list(block.get("elements") or [])
            for key in ("accessory", "element"):
                if isinstance(block.get(key), dict):
                    elements.append(block[key])
            for element in elements:
                if isinstance(element, dict) and element.get("action_id") == action_id:
                    return element, block.get("block_id", "")
        return None

    def _action(self, element: dict[str, Any], block_id: str, value: str | None) -> dict[str, Any]:
        action: dict[str, Any] = {
            "action_id": element["action_id"],
            "block_id": block_id,
            "type": element.get("type", "button"),
            "action_ts": self._next_ts(),
        }
        if "text" in element:
            action["text"] = element["text"]
        chosen = value if value is not None else element.get("value")
        if chosen is not None:
            action["value"] = chosen
        if "style" in element:
            action["style"] = element["style"]
        return action

    def click_button(
        self,
        user_id: str,
        channel_id: str,
        message_ts: str,
        action_id: str,
        value: str | None = None,
        block_id: str | None = None,
    ) -> httpx.Response:
        """Click a button on a message (or ephemeral message); sends ``block_actions``.

        Raises LookupError if there is no such message or button."""
        with self._lock:
            msg = self._find_message(channel_id, message_ts)
            ephemeral = None
            if msg is None:
                ephemeral = next((e for e in self._ephemerals
                                  if e["channel"] == channel_id and e["ts"] == message_ts), None)
                if ephemeral is None:
                    raise LookupError(f"no message {message_ts} in {channel_id}")
            blocks = msg.blocks if msg is not None else ephemeral["blocks"]  # type: ignore[index]
            found = self._find_element(blocks, action_id, block_id)
            if found is None:
                raise LookupError(f"no element with action_id {action_id!r} on message {message_ts}")
            element, real_block_id = found
            channel = self.channels.get(channel_id)
            payload: dict[str, Any] = {
                "type": "block_actions",
                "user": self._user_obj(user_id),
                "api_app_id": self.app_id,
                "token": self.verification_token,
                "container": {
                    "type": "message",
                    "message_ts": message_ts,
                    "channel_id": channel_id,
                    "is_ephemeral": msg is None,
                },
                "trigger_id": "",
                "team": self._team_obj(),
                "enterprise": None,
                "is_enterprise_install": False,
                "channel": {"id": channel_id, "name": channel.name if channel else channel_id},
                "state": {"values": {}},
                "response_url": "",
                "actions": [self._action(element, real_block_id, value)],
            }
            if msg is not None:
                payload["message"] = self._message_json(msg)
            if msg is not None and msg.is_reply:
                payload["container"]["thread_ts"] = msg.thread_ts
        payload["trigger_id"] = self._new_trigger(user_id)
        payload["response_url"] = self._new_response_url(
            _ResponseURL(channel_id, user_id, message_ts, is_ephemeral=msg is None))
        return self._send_interaction("block_actions", payload)

    def click_view_button(
        self,
        user_id: str,
        view_id: str,
        action_id: str,
        value: str | None = None,
        block_id: str | None = None,
    ) -> httpx.Response:
        """Click a button in a modal or on App Home; sends ``block_actions`` with the view."""
        with self._lock:
            stored = self._views.get(view_id)
            if stored is None:
                raise LookupError(f"no view {view_id}")
            found = self._find_element(stored.content.get("blocks", []), action_id, block_id)
            if found is None:
                raise LookupError(f"no element with action_id {action_id!r} in view {view_id}")
            element, real_block_id = found
            payload: dict[str, Any] = {
                "type": "block_actions",
                "user": self._user_obj(user_id),
                "api_app_id": self.app_id,
                "token": self.verification_token,
                "container": {"type": "view", "view_id": view_id},
                "trigger_id": "",
                "team": self._team_obj(),
                "enterprise": None,
                "is_enterprise_install": False,
                "view": self._view_json(stored),
                "actions": [self._action(element, real_block_id, value)],
            }
        payload["trigger_id"] = self._new_trigger(user_id)
        return self._send_interaction("block_actions", payload)

    @staticmethod
    def _state_value(element: dict[str, Any], value: Any) -> dict[str, Any]:
        kind = element.get("type", "plain_text_input")
        if isinstance(value, dict) and "type" in value:
            return value
        state: dict[str, Any] = {"type": kind}
        options = [o for group in element.get("option_groups", []) for o in group.get("options", [])]
        options += element.get("options", [])

        def option(v: Any) -> dict[str, Any] | None:
            if v is None:
                return None
            return next((o for o in options if o.get("value") == v),
                        {"text": {"type": "plain_text", "text": str(v)}, "value": str(v)})

        if kind in {"static_select", "radio_buttons", "external_select"}:
            state["selected_option"] = option(value)
        elif kind in {"multi_static_select", "checkboxes", "multi_external_select"}:
            state["selected_options"] = [option(v) for v in (value or [])]
        elif kind == "users_select":
            state["selected_user"] = value
        elif kind == "multi_users_select":
            state["selected_users"] = list(value or [])
        elif kind == "conversations_select":
            state["selected_conversation"] = value
        elif kind == "channels_select":
            state["selected_channel"] = value
        elif kind == "datepicker":
            state["selected_date"] = value
        elif kind == "timepicker":
            state["selected_time"] = value
        elif kind == "datetimepicker":
            state["selected_date_time"] = value
        else:
            state["value"] = value
        return state

    def submit_view(
        self, user_id: str, view_id: str, values: dict[str, Any] | None = None
    ) -> httpx.Response:
        """Submit a modal. ``values`` maps an input's action_id (or block_id) to what the user
        entered: a string, an option value for selects, a list for multi-selects, or a ready
        Slack state dict. The bot's ``response_action`` (errors/update/push/clear) is honoured;
        otherwise a 200 closes the view."""
        values = values or {}
        with self._lock:
            stored = self._views.get(view_id)
            if stored is None or stored.closed:
                raise LookupError(f"no open view {view_id}")
            state: dict[str, dict[str, Any]] = {}
            for block in stored.content.get("blocks", []):
                element = block.get("element")
                if block.get("type") != "input" or not isinstance(element, dict):
                    continue
                block_id, action_id = block["block_id"], element.get("action_id", "")
                value = values.get(action_id, values.get(block_id))
                if isinstance(value, dict) and action_id in value:
                    value = value[action_id]
                state.setdefault(block_id, {})[action_id] = self._state_value(element, value)
            view = self._view_json(stored)
            view["state"] = {"values": state}
            payload = {
                "type": "view_submission",
                "team": self._team_obj(),
                "user": self._user_obj(user_id),
                "api_app_id": self.app_id,
                "token": self.verification_token,
                "trigger_id": "",
                "view": view,
                "response_urls": [],
                "is_enterprise_install": False,
                "enterprise": None,
            }
        payload["trigger_id"] = self._new_trigger(user_id)
        response = self._send_interaction("view_submission", payload)
        self._apply_view_response(stored, response)
        return response

    def _apply_view_response(self, stored: StoredView, response: httpx.Response) -> None:
        if response.status_code != 200:
            return
        try:
            body = response.json() if response.content.strip() else {}
        except json.JSONDecodeError:
            body = {}
        action = body.get("response_action") if isinstance(body, dict) else None
        with self._lock:
            if action == "errors":
                return
            if action == "update" and isinstance(body.get("view"), dict):
                stored.content, stored.hash = body["view"], self._new_view_hash()
            elif action == "push" and isinstance(body.get("view"), dict):
                self._create_view(body["view"], stored.user, stored)
            elif action == "clear":
                for view in self._views.values():
                    if view.user == stored.user and view.type == "modal":
                        view.closed = True
            else:
                stored.closed = True

    def close_view(self, user_id: str, view_id: str) -> httpx.Response | None:
        """The user closes a modal; ``view_closed`` is sent only if it asked (notify_on_close)."""
        with self._lock:
            stored = self._views.get(view_id)
            if stored is None:
                raise LookupError(f"no view {view_id}")
            stored.closed = True
            if not stored.content.get("notify_on_close"):
                return None
            payload = {
                "type": "view_closed", "team": self._team_obj(), "user": self._user_obj(user_id),
                "api_app_id": self.app_id, "token": self.verification_token,
                "view": self._view_json(stored), "is_cleared": False,
                "is_enterprise_install": False, "enterprise": None,
            }
        return self._send_interaction("view_closed", payload)

    def _reaction_event(
        self, kind: str, user_id: str, msg: StoredMessage, name: str
    ) -> dict[str, Any]:
        return {
            "type": kind,
            "user": user_id,
            "reaction": name,
            "item": {"type": "message", "channel": msg.channel, "ts": msg.ts},
            "item_user": msg.user,
            "event_ts": self._next_ts(),
        }

    def add_reaction(self, user_id: str, channel_id: str, ts: str, name: str) -> httpx.Response:
        """A person adds an emoji; recorded, and ``reaction_added`` is sent to the bot.

        Raises LookupError for an unknown message, ValueError if they already reacted so."""
        name = name.strip(":")
        with self._lock:
            msg = self._find_message(channel_id, ts)
            if msg is None:
                raise LookupError(f"no message {ts} in {channel_id}")
            users = msg.reactions.setdefault(name, [])
            if user_id in users:
                raise ValueError(f"{user_id} already reacted with :{name}:")
            users.append(user_id)
            event = self._reaction_event("reaction_added", user_id, msg, name)
        return self.send_event(event)

    def remove_reaction(self, user_id: str, channel_id: str, ts: str, name: str) -> httpx.Response:
        name = name.strip(":")
        with self._lock:
            msg = self._find_message(channel_id, ts)
            if msg is None:
                raise LookupError(f"no message {ts} in {channel_id}")
            users = msg.reactions.get(name, [])
            if user_id not in users:
                raise ValueError(f"{user_id} has no :{name}: reaction there")
            users.remove(user_id)
            if not users:
                del msg.reactions[name]
            event = self._reaction_event("reaction_removed", user_id, msg, name)
        return self.send_event(event)

    def open_app_home(self, user_id: str) -> httpx.Response:
        """The user opens the app's Home tab: ``app_home_opened``."""
        with self._lock:
            channel = self._im_with(user_id) if user_id in self.users else None
            event: dict[str, Any] = {
                "type": "app_home_opened",
                "user": user_id,
                "channel": channel.id if channel else "D" + user_id[1:],
                "tab": "home",
                "event_ts": self._next_ts(),
            }
            view_id = self._home_views.get(user_id)
            if view_id is not None:
                event["view"] = self._view_json(self._views[view_id])
        return self.send_event(event)
