"""Flickr's call budget: 3,600 calls an hour per API key, counted across every account
that uses the key (specs/flickr/NOTES.md §5; a key that goes over may be switched off,
and Flickr sends no rate-limit headers to warn first).

One `CallBudget` per key (and base URL) in the process, shared by every Flickr account
built with it. Every call is counted in a sliding one-hour window and none is made that
would take the window over `limit`; polling may use at most `limit - reserve` of it
(the rest is kept for replies, uploads and the checks after a lost answer), and each
account's polling is paced by a token bucket refilled at its share of that polling
budget (split evenly between the accounts on the key), so polls are spread over the
hour rather than spending the budget in the first minutes. `/healthz` shows the use.

The count is per process: replicas lease each account's polling, but two replicas
polling different accounts of one key each count only their own calls.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

HOURLY_LIMIT = 3600
WINDOW_SECONDS = 3600.0
WRITE_RESERVE = 360  # of the hour's calls, never spent on polling
BURST_SHARE = 0.05  # an account's bucket holds at most this much of its hourly share


class CallBudget:
    def __init__(self, limit: int = HOURLY_LIMIT, *, window: float = WINDOW_SECONDS,
                 reserve: int = WRITE_RESERVE, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.window = window
        self.reserve = reserve
        self._clock = clock
        self._calls: deque[float] = deque()
        self._lock = threading.Lock()
        self._accounts: dict[str, list[float]] = {}  # name -> [tokens, last refill]

    # ------------------------------------------------------------ accounts

    def register(self, account: str) -> None:
        with self._lock:
            if account not in self._accounts:
                self._accounts[account] = [self._capacity(len(self._accounts) + 1),
                                           self._clock()]

    @property
    def accounts(self) -> list[str]:
        with self._lock:
            return sorted(self._accounts)

    def _hourly_share(self, n_accounts: int) -> float:
        return (self.limit - self.reserve) / max(1, n_accounts)

    def _capacity(self, n_accounts: int) -> float:
        return max(1.0, self._hourly_share(n_accounts) * BURST_SHARE)

    def _rate(self, n_accounts: int) -> float:
        return self._hourly_share(n_accounts) / self.window

    def _refill(self, account: str, at: float) -> list[float]:
        bucket = self._accounts.setdefault(account, [0.0, at])
        n = len(self._accounts)
        bucket[0] = min(self._capacity(n), bucket[0] + (at - bucket[1]) * self._rate(n))
        bucket[1] = at
        return bucket

    # ------------------------------------------------------------ the window

    def _expire(self, at: float) -> None:
        while self._calls and self._calls[0] <= at - self.window:
            self._calls.popleft()

    def used(self) -> int:
        """Calls made in the last hour."""
        with self._lock:
            self._expire(self._clock())
            return len(self._calls)

    def wait_for(self, n: int = 1) -> float:
        """Seconds until `n` more calls fit the hour (0: now)."""
        with self._lock:
            at = self._clock()
            self._expire(at)
            over = len(self._calls) + n - self.limit
            if over <= 0:
                return 0.0
            return max(0.0, self._calls[over - 1] + self.window - at)

    def spend(self) -> bool:
        """Count one call about to be made; False (and nothing counted) if it would take
        the hour over the limit."""
        with self._lock:
            at = self._clock()
            self._expire(at)
            if len(self._calls) >= self.limit:
                return False
            self._calls.append(at)
            return True

    def reserve_poll(self, account: str, calls: int) -> bool:
        """Whether `account` may now make a polling pass of up to `calls` calls: its paced
        share has that many tokens and the hour's polling allowance has room. Takes the
        tokens when it may; `refund` gives back what the pass did not use."""
        calls = max(1, calls)
        with self._lock:
            at = self._clock()
            self._expire(at)
            bucket = self._refill(account, at)
            # a pass bigger than the bucket may start from a full one (and leave it in
            # debt): over time an account still gets no more than its share
            if bucket[0] < min(calls, self._capacity(len(self._accounts))) \
                    or len(self._calls) + calls > self.limit - self.reserve:
                return False
            bucket[0] -= calls
            return True

    def refund(self, account: str, calls: int) -> None:
        with self._lock:
            bucket = self._refill(account, self._clock())
            bucket[0] = min(self._capacity(len(self._accounts)), bucket[0] + max(0, calls))

    def usage(self) -> dict[str, Any]:
        return {"accounts": self.accounts, "calls_last_hour": self.used(), "limit": self.limit,
                "polling_limit": self.limit - self.reserve}


_BUDGETS: dict[tuple[str, str], CallBudget] = {}
_REGISTRY_LOCK = threading.Lock()


def for_key(base_url: str, api_key: str) -> CallBudget:
    """The budget of one API key (at one API base URL) in this process."""
    with _REGISTRY_LOCK:
        budget = _BUDGETS.get((base_url, api_key))
        if budget is None:
            budget = _BUDGETS[(base_url, api_key)] = CallBudget()
        return budget


def runtime_usage(rt: Any) -> list[dict[str, Any]]:
    """For `/healthz`: the use of each key the running bot's Flickr accounts use, named
    by its accounts (never by the key)."""
    budgets: dict[int, CallBudget] = {}
    for account in rt.settings.config.accounts:
        if account.network != "flickr":
            continue
        try:
            budget = getattr(rt.network(account.name), "budget", None)
        except Exception:  # an account that cannot be built has made no calls
            continue
        if isinstance(budget, CallBudget):
            budgets[id(budget)] = budget
    return [b.usage() for b in budgets.values()]
