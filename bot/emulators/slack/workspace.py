"""The Slack workspace's state: users, channels (and DMs), user groups, messages with
their threads and reactions, ephemeral messages, views, files, trigger ids and
response URLs; and how Slack shows each of them (the JSON the Web API and the
events carry). The Web API (:mod:`.web_api`) and the signed driver (:mod:`.driver`)
both work on it.

Message dicts returned by the query helpers (``messages``, ``thread``, ...) are
shaped as ``conversations.history`` shows them (reactions as a list of
``{"name", "users", "count"}``); :meth:`Workspace.reactions` gives the
``{name: [user ids]}`` form.
"""

from __future__ import annotations

import json
import random
import string
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.emulators.base import Emulator

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



class Workspace(Emulator):
    """A Slack workspace's state (the base of :class:`bot.emulators.slack.SlackEmulator`)."""

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

        # what happened: Web API calls, requests sent to the bot, response_url posts
        self.calls: list[Call] = []
        self.deliveries: list[Delivery] = []
        self.response_url_posts: list[dict[str, Any]] = []
        self.last_event_id: str | None = None

        self.add_user(bot_user_id, bot_name, real_name=bot_name, is_bot=True)
        self._setup()

    def _setup(self) -> None:
        """What a part built on the workspace sets up once it exists (the driver's client)."""

    def _tell_bot_later(self, event: dict[str, Any]) -> None:
        """Send ``event`` to the bot from another thread (the driver does it)."""
        raise NotImplementedError

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

    def permalink(self, channel: str, ts: str) -> str:
        url = f"https://{self.team_domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        with self._lock:
            msg = self._find_message(channel, ts)
        if msg is not None and msg.is_reply:
            url += f"?thread_ts={msg.thread_ts}&cid={channel}"
        return url

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

    def file_content(self, file_id: str) -> bytes | None:
        with self._lock:
            record = self.files.get(file_id)
            return None if record is None else record["content"]

    def _new_response_url(self, context: _ResponseURL) -> str:
        key = uuid.uuid4().hex
        with self._lock:
            self._response_urls[key] = context
        return f"{self.root_url}/response_url/{key}"

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
