"""Names for the Slack ids in an audit export (people and user groups), asked of Slack.

The trail itself keeps ids (`U0PRIYA`, `<!subteam^S0COMMS>`): they are what was recorded
and what the hash chain covers. An export can add, beside each record, the names those
ids have in Slack now (users.info, usergroups.list), so an FOI reader need not look them
up. An id Slack cannot name (deleted, no token, Slack unreachable) is left out: the
record's id stands.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient

from bot import logs

log = logs.get("commsdesk.slack_names")
SLACK_IDS = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^<>]*)?>|<!subteam\^([A-Z0-9]+)(?:\|[^<>]*)?>")
PERSON = re.compile(r"^[UW][A-Z0-9]{2,}$")


class SlackNames:
    """id -> name, each id asked once; after Slack fails to answer, it is not asked again."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._users: dict[str, str | None] = {}
        self._groups: dict[str, str] | None = None
        self._down = False

    def _ask(self, call: Callable[[], Any]) -> Any:
        if self._down:
            return None
        try:
            return call()
        except Exception as exc:  # not ok, or unreachable: the ids stand
            error = getattr(getattr(exc, "response", None), "get", lambda _k: None)("error")
            if error in ("user_not_found", "users_not_found"):
                return None
            log.warning("names not read from Slack; the export keeps ids",
                        error=str(error or exc))
            self._down = True
            return None

    def user(self, uid: str) -> str | None:
        if uid not in self._users:
            resp = self._ask(lambda: self.client.users_info(user=uid))
            user = (resp.get("user") if resp is not None else None) or {}
            profile = user.get("profile") or {}
            self._users[uid] = (user.get("real_name") or profile.get("real_name")
                                or user.get("name") or None)
        return self._users[uid]

    def group(self, gid: str) -> str | None:
        if self._groups is None:
            resp = self._ask(lambda: self.client.usergroups_list())
            self._groups = {g["id"]: "@" + (g.get("handle") or g.get("name") or g["id"])
                            for g in ((resp.get("usergroups") if resp is not None else None)
                                      or [])}
        return self._groups.get(gid)

    def of_row(self, row: dict[str, Any]) -> dict[str, str]:
        """{id: name} for the actor and every person or group the record's details name."""
        found: dict[str, str | None] = {}
        actor = str(row.get("actor") or "")
        if PERSON.match(actor):
            found[actor] = self.user(actor)
        for user, group in SLACK_IDS.findall(_text(row.get("details"))):
            if user:
                found[user] = self.user(user)
            else:
                found[group] = self.group(group)
        return {k: v for k, v in found.items() if v}


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(_text(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(_text(v) for v in value)
    return value if isinstance(value, str) else ""


def for_export(token: str | None, api_url: str) -> SlackNames | None:
    """Names from the Slack workspace the bot's token opens; None without a token."""
    if not token:
        return None
    return SlackNames(WebClient(token=token, base_url=api_url, timeout=10))
