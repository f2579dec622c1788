"""What every offline service emulator shares (Slack and the six networks).

:class:`Emulator` adds to the HTTP server (:mod:`bot.emulators.http`):

- **route dispatch**: a table of :class:`Route` (method, path pattern, fault key, handler);
- **fault injection** per fault key, FIFO: ``"slow"`` (``delay`` seconds, then normal),
  ``"drop"`` (hang up, nothing done), ``"malformed"`` (200 with a body that is not JSON),
  ``"429"`` (``reset_in``/``retry_after`` seconds, with the network's rate-limit or
  ``Retry-After`` headers), ``"500"``/``"502"``/``"503"``/``"504"`` (the network's error
  body) and ``"drop_after_commit"``, a **lost answer**: the request is applied, then the
  connection is closed without an answer;
- **rate-limit headers**: counted in a :class:`FixedWindows` or :class:`SlidingWindow`,
  named and formatted by a :class:`RateHeaders` style;
- **recorded requests**: ``requests`` as ``(fault key, what was asked)`` and
  :meth:`Emulator.requests_to`, besides the server's ``exchanges``.

A network's emulator keeps only its routes, its state and its wire format (the
:meth:`Emulator.error_response` hook gives its error body).
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.emulators.http import (
    JSON_CONTENT_TYPE,
    EmulatorServer,
    Fault,
    Request,
    Response,
    apply_delay,
)

SERVER_ERRORS = frozenset({"500", "502", "503", "504"})
LOST_ANSWER = "drop_after_commit"
FAULT_KINDS = frozenset({"429", "slow", "drop", "malformed", LOST_ANSWER, *SERVER_ERRORS})
MALFORMED_BODY = b'{"data": [{"id": '


def epoch_seconds(moment: float) -> str:
    """A reset time as whole unix seconds, rounded up."""
    return str(math.ceil(moment))


def iso_millis(moment: float) -> str:
    """A reset time as ``2026-11-25T06:30:00.000Z``."""
    when = datetime.fromtimestamp(moment, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class RateHeaders:
    """How a network names and writes its rate-limit headers (None: it sends none)."""

    limit: str | None = None
    remaining: str | None = None
    reset: str | None = None
    reset_format: Callable[[float], str] = epoch_seconds
    policy: str | None = None  # e.g. Bluesky's ``ratelimit-policy: 3000;w=300``
    retry_after: bool = False  # a 429 carries ``Retry-After`` (seconds)

    def report(self, limit: int, used: int, reset_at: float, window: float) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.limit:
            out[self.limit] = str(limit)
        if self.remaining:
            out[self.remaining] = str(max(0, limit - used))
        if self.reset:
            out[self.reset] = self.reset_format(reset_at)
        if self.policy:
            out[self.policy] = f"{limit};w={int(window)}"
        return out

    def exhausted(self, headers: dict[str, str], wait: float) -> dict[str, str]:
        """``headers`` as a 429 shows them: nothing left until ``wait`` seconds from now."""
        out = dict(headers)
        if self.remaining:
            out[self.remaining] = "0"
        if self.reset:
            out[self.reset] = self.reset_format(time.time() + wait)
        if self.retry_after:
            out["Retry-After"] = str(int(wait))
        return out


class SlidingWindow:
    """Calls in the last ``window`` seconds (the reset: when the oldest leaves it)."""

    def __init__(self) -> None:
        self._calls: list[float] = []
        self._lock = threading.Lock()

    def hit(self, window: float) -> tuple[int, float]:
        """Count a call; returns (calls in the window, when the window resets)."""
        now = time.time()
        with self._lock:
            self._calls = [t for t in self._calls if t > now - window] + [now]
            return len(self._calls), self._calls[0] + window


class FixedWindows:
    """Per-key fixed windows (X's): a window starts at its first call and lasts ``window`` s."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, window: float) -> tuple[int, float]:
        """Count a call; returns (calls in the key's window, when the window resets)."""
        now = time.time()
        with self._lock:
            start, used = self._windows.get(key, (now, 0))
            if now >= start + window:
                start, used = now, 0
            used += 1
            self._windows[key] = (start, used)
            return used, start + window


@dataclass
class Route:
    """``method`` + ``pattern`` (a regex the whole path must match) -> ``handler`` with the
    groups as arguments; ``key`` names the route for faults, limits and recorded requests."""

    method: str
    pattern: str
    key: str
    handler: Callable[..., Response]
    _regex: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._regex = re.compile(self.pattern)

    def match(self, method: str, path: str) -> list[str] | None:
        found = self._regex.fullmatch(path) if method == self.method else None
        return None if found is None else list(found.groups())


@dataclass
class Routed:
    """The route a request matched, and the path's groups."""

    key: str
    handler: Callable[..., Response]
    args: list[str]


class Emulator(EmulatorServer):
    """Routes, faults, rate-limit headers and recorded requests around a network's handlers."""

    rate_headers = RateHeaders()
    fault_keys: tuple[str, ...] = ()  # when set, :meth:`inject` refuses other keys

    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self._lock = threading.RLock()
        self.requests: list[Any] = []

    # dispatch ------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        """The network's routes, first match wins."""
        return []

    def route(self, request: Request) -> Routed | None:
        for candidate in self.routes():
            args = candidate.match(request.method, request.path)
            if args is not None:
                return Routed(candidate.key, candidate.handler, args)
        return None

    # recorded requests -----------------------------------------------------------------
    def record(self, key: str, asked: Any) -> None:
        with self._lock:
            self.requests.append((key, asked))

    def requests_to(self, key: str) -> list[Any]:
        """What was asked of ``key`` (its fault key), oldest first."""
        with self._lock:
            return [asked for k, asked in self.requests if k == key]

    # faults ----------------------------------------------------------------------------
    def inject(self, key: str, kind: str, times: int = 1, **params: Any) -> None:
        """Queue ``times`` faults of ``kind`` for the fault key (``"*"``: any)."""
        if self.fault_keys and key not in (*self.fault_keys, "*"):
            raise ValueError(f"unknown endpoint key {key!r}")
        if str(kind) not in self.fault_kinds():
            raise ValueError(f"unknown fault kind {kind!r}")
        self.faults.add(key, str(kind), times, **params)

    def fault_kinds(self) -> frozenset[str]:
        return FAULT_KINDS

    def error_response(self, status: int, fault: Fault | None) -> Response:
        """The network's answer for a 429 (``fault`` None: its own limit) or a 5xx."""
        raise NotImplementedError

    def rate_limited(self, headers: dict[str, str], wait: float) -> Response:
        """A 429 in the network's format, its headers saying: wait ``wait`` seconds."""
        response = self.error_response(429, None)
        response.headers.update(self.rate_headers.exhausted(headers, wait))
        return response

    def over_limit(self, headers: dict[str, str]) -> Response:
        """A 429 for going over the emulated limit itself (``headers`` already say so)."""
        response = self.error_response(429, None)
        response.headers.update(headers)
        return response

    def other_fault(self, fault: Fault, headers: dict[str, str]) -> Response | None:
        """A network's own fault kinds (Slack's ``error``); None: go on normally."""
        return None

    def fault_response(self, fault: Fault, headers: dict[str, str],
                       rate_limited: Callable[[dict[str, str], float], Response] | None = None
                       ) -> Response | None:
        """What a fault answers before the request is applied; None: apply it (``slow``
        has then waited; a lost answer drops the answer afterwards)."""
        apply_delay(fault)
        if fault.kind == "drop":
            return Response(drop=True)
        if fault.kind == "malformed":
            return Response(200, MALFORMED_BODY, {"Content-Type": JSON_CONTENT_TYPE, **headers})
        if fault.kind == "429":
            wait = float(fault.params.get("reset_in", fault.params.get("retry_after", 1)))
            return (rate_limited or self.rate_limited)(headers, wait)
        if fault.kind in SERVER_ERRORS:
            response = self.error_response(int(fault.kind), fault)
            response.headers = {**headers, **response.headers}
            return response
        if fault.kind in ("slow", LOST_ANSWER):
            return None
        return self.other_fault(fault, headers)

    def answer(self, key: str, work: Callable[[], Response], headers: dict[str, str] | None = None,
               *, accept: Callable[[Fault], bool] | None = None,
               rate_limited: Callable[[dict[str, str], float], Response] | None = None
               ) -> Response:
        """Apply the next fault queued for ``key`` (that ``accept``s), else do ``work``
        (under the emulator's lock) and answer with ``headers`` added."""
        headers = dict(headers or {})
        fault = self.faults.take(key, accept)
        if fault is not None:
            early = self.fault_response(fault, headers, rate_limited)
            if early is not None:
                return early
        with self._lock:
            response = work()
        if fault is not None and fault.kind == LOST_ANSWER:
            return Response(drop=True)  # applied, but the answer never reaches the client
        response.headers.update(headers)
        return response
