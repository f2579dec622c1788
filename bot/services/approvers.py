"""Slack user group membership (who approves, who drafts), cached briefly."""

from __future__ import annotations

import threading
import time

from slack_sdk.errors import SlackApiError, SlackClientError

from commsdesk import logs
from commsdesk.runtime import Runtime

log = logs.get("commsdesk.approvers")
CACHE_SECONDS = 60.0


class Approvers:
    """`members_of(group)` for any user group; `is_approver` for the comms group."""

    def __init__(self, rt: Runtime, ttl: float = CACHE_SECONDS):
        self.rt = rt
        self.ttl = ttl
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def members_of(self, group: str | None) -> frozenset[str]:
        if not group:
            return frozenset()
        with self._lock:
            fetched_at, members = self._cache.get(group, (float("-inf"), frozenset()))
            if time.monotonic() - fetched_at < self.ttl:
                return members
            try:
                resp = self.rt.slack.usergroups_users_list(usergroup=group)
                members = frozenset(resp.get("users") or [])
                self._cache[group] = (time.monotonic(), members)
            except (SlackApiError, SlackClientError, OSError) as exc:
                # fail closed: with no answer from Slack for long, nobody is a member
                log.warning("user group unavailable", usergroup=group, error=str(exc))
                if time.monotonic() - fetched_at > 10 * self.ttl:
                    members = frozenset()
            return members

    def members(self) -> frozenset[str]:
        return self.members_of(self.rt.settings.config.slack.approvers_usergroup)

    def is_approver(self, user: str) -> bool:
        return user in self.members()

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()
