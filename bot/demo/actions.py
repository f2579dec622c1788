"""What a person does on the page, sent to the bot the way Slack (or the stage's network)
would."""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import func, select

from bot import logs
from bot.demo import data
from bot.demo.model import Names
from bot.demo.mrkdwn import EMOJI
from bot.demo.stage import Stage, handle_ok
from bot.emulators.slack import SlackEmulator
from bot.models import AuditEvent, Draft, Mention
from bot.runtime import Runtime
from bot.services.polling import poll_account
from integrations import registry

log = logs.get("commsdesk.demo")
DRAFT_CREATED = re.compile(r"\bDraft (D\d+) created\b")
DECISIONS = ("draft.approved", "draft.rejected", "draft.decision_refused")
DECISION_WAIT_S = 6.0


class ActionError(Exception):
    """Something the person asked for cannot be done; the message says why."""


@dataclass
class World:
    """Everything the page works with."""

    slack: SlackEmulator
    stage: Stage
    rt: Runtime
    view_errors: dict[str, dict[str, str]] = field(default_factory=dict)
    _threads: list[threading.Thread] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)

    # ------------------------------------------------------------------ Slack side

    def _ephemeral(self, user: str, channel: str, text: str,
                   blocks: list[dict[str, Any]] | None = None) -> None:
        # Slack shows a slash command's answer (the ack body) to the person only.
        with self.slack._lock:
            self.slack._add_ephemeral(channel, user, text, blocks or [], None, "command_ack")

    def compose(self, user: str, channel: str, text: str) -> str:
        text = text.strip()
        if not text:
            raise ActionError("Type something first.")
        if not text.startswith("/"):
            self.slack.post_user_message(user, channel, text, send_event=False)
            return "Message posted."
        command, _, rest = text.partition(" ")
        if command != "/social":
            self._ephemeral(user, channel, f"{command} is not a valid command. In Slack, "
                            "this workspace only has /social from commsdesk.")
            return f"{command} is not a command here."
        try:
            resp = self.slack.send_command(user, channel, rest.strip())
        except httpx.HTTPError as exc:
            self._ephemeral(user, channel, f'/social failed with the error "{exc}"')
            return "The bot did not answer."
        if resp.status_code != 200:
            self._ephemeral(user, channel,
                            f'/social failed with the error "http_{resp.status_code}"')
            return f"The bot answered {resp.status_code}."
        body = _json_or_text(resp)
        answer = ""
        if isinstance(body, dict) and (body.get("text") or body.get("blocks")):
            answer = str(body.get("text") or "")
            self._ephemeral(user, channel, answer, body.get("blocks"))
        elif isinstance(body, str) and body.strip():
            answer = body
            self._ephemeral(user, channel, body)
        return self._command_status(answer)

    def _plain(self, text: str) -> str:
        """Slack text as the status line shows it: names for ids, emoji, no markup."""
        return Names(self.slack.state()).md(text).striptags()

    def _command_status(self, answer: str) -> str:
        """What the status line says after /social: what the bot's answer says."""
        created = DRAFT_CREATED.search(answer)
        if created:
            return f"Submitted as draft {created.group(1)}: it waits for a comms officer's ✅."
        if answer.startswith(":no_entry:"):
            return "Refused: " + self._plain(answer.removeprefix(":no_entry:").strip())
        if not answer.strip():
            return "Sent /social; the bot answered nothing."
        first = self._plain(answer.strip().splitlines()[0])
        return "The bot answered: " + (first[:157] + "…" if len(first) > 160 else first)

    def click(self, user: str, channel: str, ts: str, action_id: str,
              block_id: str | None, value: str | None) -> str:
        try:
            resp = self.slack.click_button(user, channel, ts, action_id, value=value,
                                           block_id=block_id)
        except LookupError as exc:
            raise ActionError(f"That button is gone ({exc}).") from None
        return _outcome(resp, "Button pressed.")

    def view_click(self, user: str, view_id: str, action_id: str, block_id: str | None,
                   value: str | None) -> str:
        try:
            resp = self.slack.click_view_button(user, view_id, action_id, value=value,
                                                block_id=block_id)
        except LookupError as exc:
            raise ActionError(str(exc)) from None
        return _outcome(resp, "Sent.")

    def submit(self, user: str, view_id: str, values: dict[str, Any]) -> str:
        with self.rt.sessions() as s:
            last_draft = s.scalar(select(func.max(Draft.id))) or 0
        try:
            resp = self.slack.submit_view(user, view_id, values)
        except LookupError:
            raise ActionError("That form was already closed.") from None
        if resp.status_code != 200:
            self.view_errors[view_id] = {"_": "We had some trouble connecting. Try again?"}
            raise ActionError("The bot did not accept the form.")
        body = _json_or_text(resp)
        if isinstance(body, dict) and body.get("response_action") == "errors":
            self.view_errors[view_id] = {str(k): str(v) for k, v in
                                         (body.get("errors") or {}).items()}
            raise ActionError("The form has errors: see the messages in it.")
        self.view_errors.pop(view_id, None)
        with self.rt.sessions() as s:
            mine = s.scalar(select(func.min(Draft.id)).where(Draft.id > last_draft,
                                                             Draft.author == user))
        if mine is not None:
            return f"Submitted as draft D{mine}: it waits for a comms officer's ✅."
        return "Form submitted."

    def close_view(self, user: str, view_id: str) -> str:
        with contextlib.suppress(LookupError):  # already closed
            self.slack.close_view(user, view_id)
        self.view_errors.pop(view_id, None)
        return "Closed."

    def react(self, user: str, channel: str, ts: str, name: str) -> str:
        """Add (or take back) a reaction; on a draft, wait for what the bot made of it."""
        shown = EMOJI.get(name, f":{name}:")
        with self.rt.sessions() as s:
            draft_id = s.scalar(select(Draft.id).where(Draft.approval_channel == channel,
                                                       Draft.approval_ts == ts))
            last_event = s.scalar(select(func.max(AuditEvent.id))) or 0
        try:
            try:
                resp = self.slack.add_reaction(user, channel, ts, name)
                verb = "added"
            except ValueError:
                resp = self.slack.remove_reaction(user, channel, ts, name)
                verb = "removed"
        except LookupError:
            raise ActionError("That message is gone.") from None
        if resp.status_code != 200 or verb == "removed" or draft_id is None:
            return _outcome(resp, f"Reaction {shown} {verb}.")
        return self._decision(user, draft_id, last_event, shown)

    def _decision(self, user: str, draft_id: int, after: int, shown: str) -> str:
        """The bot's answer to a reaction on draft `draft_id`, read from the audit trail."""
        deadline = time.monotonic() + DECISION_WAIT_S
        while True:
            with self.rt.sessions() as s:
                event = s.scalars(select(AuditEvent).where(
                    AuditEvent.id > after, AuditEvent.actor == user,
                    AuditEvent.subject_kind == "draft", AuditEvent.subject_id == str(draft_id),
                    AuditEvent.action.in_(DECISIONS)).order_by(AuditEvent.id).limit(1)).first()
                if event is not None:
                    action = event.action
                    reason = str((event.details or {}).get("reason") or "")
                    break
            if time.monotonic() > deadline:
                return f"Reaction {shown} added; commsdesk has not answered yet."
            time.sleep(0.1)
        if action == "draft.decision_refused":
            return f"Your {shown} on D{draft_id} was refused: {self._plain(reason)}"
        verb = "approved" if action == "draft.approved" else "rejected"
        return f"Reaction {shown} added: D{draft_id} {verb}."

    def open_home(self, user: str) -> str:
        return _outcome(self.slack.open_app_home(user), "Home opened.")

    # ------------------------------------------------------------------ the public side

    def add_mention(self, account_user_id: str, handle: str, text: str) -> str:
        account = next((a for a in data.ACCOUNTS if a.user_id == account_user_id), None)
        handle = handle.strip().lstrip("@")
        text = text.strip()
        if account is None:
            raise ActionError("Choose one of the council's accounts.")
        if not handle_ok(self.stage, handle):
            raise ActionError(f"A handle on {registry.label(self.stage.network)} is "
                              f"{self.stage.handle_rule}.")
        if account.handle.lower() == handle.lower() or handle in {a.handle for a in data.ACCOUNTS}:
            raise ActionError("Post as a resident, not as a council account.")
        if not text or len(text) > self.stage.max_length:
            raise ActionError(f"Write a post of 1 to {self.stage.max_length} characters.")
        self.poll_soon(account.name, self.stage.add_mention(account, handle, text))
        return f"Posted. The bot polls @{account.handle} now."

    def poll_soon(self, account_name: str, external_id: str) -> None:
        """Poll the account at once (not waiting for the scheduler) until the post is stored."""

        def run() -> None:
            for _ in range(40):
                if self._stopping.is_set():
                    return
                try:
                    poll_account(self.rt, account_name, owner="demo-page")
                    with self.rt.sessions() as s:
                        if s.scalar(select(Mention.id).where(
                                Mention.external_id == external_id)) is not None:
                            return
                except Exception as exc:  # the scheduler's next poll will still find it
                    log.warning("demo poll failed", error=str(exc))
                time.sleep(0.5)

        thread = threading.Thread(target=run, name="demo-poll", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=10)


def _json_or_text(resp: httpx.Response) -> Any:
    if not resp.content.strip():
        return None
    try:
        return resp.json()
    except json.JSONDecodeError:
        return resp.text


def _outcome(resp: httpx.Response, ok: str) -> str:
    if resp.status_code == 200:
        return ok
    return f"The bot answered {resp.status_code}."
