"""The Slack side: what Slack sends to the bot, signed with the signing secret exactly as
Slack signs it, to ``bot_events_url``: events (a person posts, shares a file, reacts,
opens App Home), slash commands, block actions (buttons on messages, in modals and on
App Home), view submissions and closures; what the bot answers (a modal's
``response_action``) is applied to the workspace. Every attempt is in ``deliveries``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import httpx

from bot.emulators.slack.workspace import (
    Delivery,
    StoredMessage,
    StoredView,
    Workspace,
    _random_id,
    _ResponseURL,
    slack_escape,
)

log = logging.getLogger(__name__)


class SlackDriver(Workspace):
    """Sends the bot what Slack sends it, signed."""

    _http: httpx.Client | None = None
    _background: list[threading.Thread]

    def _setup(self) -> None:
        super()._setup()
        self._http = None
        self._background = []

    def _stop_driver(self) -> None:
        for thread in list(self._background):
            thread.join(timeout=self.client_timeout)
        if self._http is not None:
            self._http.close()
            self._http = None

    def _tell_bot_later(self, event: dict[str, Any]) -> None:
        self._in_background(lambda: self.send_event(event))

    # a person does something in Slack ------------------------------------------------------
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

    # signed requests to the bot ------------------------------------------------
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
