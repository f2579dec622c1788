"""Slack membership (user groups, channels): who may decide, asked live.

Two kinds of answer, kept apart on purpose:

- **live** (`members_live`, `is_approver_live`, `channel_members_live`, `live()`): asked of
  Slack at the moment of a decision (approve, reject, retry, edit, pause/resume, alert
  buttons). When Slack cannot answer they raise `Unconfirmed`: the caller refuses the
  action. Nothing is ever granted from a remembered list, so removal from a group takes
  effect on the next decision.
- **cached** (`members_cached`, `members_of`, `is_approver_cached`): for what is shown
  (App Home, `/social whoami`) and for who may *propose* a draft (`drafters_usergroup`;
  every draft still needs a live-checked approval); a minute old at most, empty when
  Slack cannot answer.
"""

from __future__ import annotations

import threading
import time

from slack_sdk.errors import SlackApiError, SlackClientError

from bot import logs
from bot.runtime import Runtime

log = logs.get("commsdesk.approvers")
CACHE_SECONDS = 60.0
MAX_MEMBER_PAGES = 50  # conversations.members pages (1,000 each) read for one channel

UNCONFIRMED = "Couldn't confirm you are an approver, try again (Slack did not answer)."


class Unconfirmed(Exception):
    """Slack could not say whether this person is a member: the action is refused."""

    def __init__(self, what: str, error: str):
        super().__init__(f"{what}: {error}")
        self.what = what
        self.error = error


class LiveMembers:
    """A `permissions.Members` for one decision: each group asked of Slack once, live."""

    def __init__(self, approvers: Approvers):
        self._approvers = approvers
        self._seen: dict[str, frozenset[str]] = {}

    def __call__(self, group: str | None) -> frozenset[str]:
        if not group:
            return frozenset()
        if group not in self._seen:
            self._seen[group] = self._approvers.members_live(group)
        return self._seen[group]


class Approvers:
    """The comms approvers group and any other user group or channel, live or cached."""

    def __init__(self, rt: Runtime, ttl: float = CACHE_SECONDS):
        self.rt = rt
        self.ttl = ttl
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ live: decisions

    def members_live(self, group: str | None) -> frozenset[str]:
        """The group's members now, from Slack (`usergroups.users.list`); `Unconfirmed`
        when Slack cannot answer."""
        if not group:
            return frozenset()
        try:
            resp = self.rt.slack.usergroups_users_list(usergroup=group)
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning("user group unavailable", usergroup=group, error=str(exc))
            raise Unconfirmed(f"user group {group}", str(exc)) from exc
        members = frozenset(resp.get("users") or [])
        with self._lock:  # a fresh answer also refreshes what the displays show
            self._cache[group] = (time.monotonic(), members)
        return members

    def live(self) -> LiveMembers:
        """A members function for one decision (each group asked once)."""
        return LiveMembers(self)

    def is_approver_live(self, user: str) -> bool:
        """Is this person in the comms approvers group right now? `Unconfirmed` when
        Slack cannot say."""
        return user in self.members_live(self.rt.settings.config.slack.approvers_usergroup)

    def channel_members_live(self, channel: str) -> frozenset[str]:
        """Everyone in a channel now (`conversations.members`, every page); `Unconfirmed`
        when Slack cannot answer."""
        members: set[str] = set()
        cursor: str | None = None
        try:
            for _ in range(MAX_MEMBER_PAGES):
                resp = self.rt.slack.conversations_members(channel=channel, limit=1000,
                                                           cursor=cursor)
                members |= set(resp.get("members") or [])
                cursor = (resp.get("response_metadata") or {}).get("next_cursor") or None
                if not cursor:
                    return frozenset(members)
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning("channel members unavailable", channel=channel, error=str(exc))
            raise Unconfirmed(f"channel {channel}", str(exc)) from exc
        raise Unconfirmed(f"channel {channel}", "too many members to read")

    # ------------------------------------------------------------ cached: display only

    def members_cached(self, group: str | None) -> frozenset[str]:
        """For display only (App Home, whoami): at most `ttl` old; never used to grant."""
        if not group:
            return frozenset()
        with self._lock:
            fetched_at, members = self._cache.get(group, (float("-inf"), frozenset()))
            if time.monotonic() - fetched_at < self.ttl:
                return members
        try:
            return self.members_live(group)
        except Unconfirmed:
            return frozenset()  # shown as "not a member"; nothing is decided on it

    members_of = members_cached  # (display callers' old name)

    def is_approver_cached(self, user: str) -> bool:
        return user in self.members_cached(self.rt.settings.config.slack.approvers_usergroup)

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()
