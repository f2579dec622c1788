"""Who may approve: members of the configured Slack user group, cached briefly."""

from __future__ import annotations

import threading
import time

from slack_sdk.errors import SlackApiError, SlackClientError

from commsdesk import logs
from commsdesk.runtime import Runtime

log = logs.get("commsdesk.approvers")
CACHE_SECONDS = 60.0


class Approvers:
    def __init__(self, rt: Runtime, ttl: float = CACHE_SECONDS):
        self.rt = rt
        self.ttl = ttl
        self._members: frozenset[str] = frozenset()
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def members(self) -> frozenset[str]:
        with self._lock:
            if time.monotonic() - self._fetched_at < self.ttl:
                return self._members
            group = self.rt.settings.config.slack.approvers_usergroup
            try:
                resp = self.rt.slack.usergroups_users_list(usergroup=group)
                self._members = frozenset(resp.get("users") or [])
                self._fetched_at = time.monotonic()
            except (SlackApiError, SlackClientError, OSError) as exc:
                # fail closed: with no answer from Slack nobody is an approver
                log.warning("approvers list unavailable", usergroup=group, error=str(exc))
                if time.monotonic() - self._fetched_at > 10 * self.ttl:
                    self._members = frozenset()
            return self._members

    def is_approver(self, user: str) -> bool:
        return user in self.members()

    def forget(self) -> None:
        with self._lock:
            self._fetched_at = float("-inf")
