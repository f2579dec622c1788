"""Helpers every integration shares: bounded retries with the same rules as X's
(429: wait until the reset, bounded; 5xx / dropped connections: back off with jitter;
anything else: permanent), and turning HTML post bodies into plain text."""

from __future__ import annotations

import contextlib
import contextvars
import html
import random
import re
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any, Literal, TypeVar

from integrations.base import Image, PermanentError, TransientError

T = TypeVar("T")


@dataclass(frozen=True)
class Verdict:
    kind: Literal["rate_limited", "transient", "permanent"]
    detail: str
    wait: float | None = None  # rate_limited: seconds until the window resets


_WAIT_LIMIT: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "commsdesk_wait_limit", default=None)


@contextlib.contextmanager
def wait_limit(seconds: float) -> Iterator[None]:
    """Inside: no call waits longer than `seconds` for a rate limit to reset; a longer
    wait is raised at once (TransientError with `retry_after`) for the caller to schedule.
    The publisher uses it so that no thread sleeps minutes inside a publish lease."""
    token = _WAIT_LIMIT.set(seconds)
    try:
        yield
    finally:
        _WAIT_LIMIT.reset(token)


def allowed_wait(max_wait_seconds: float) -> float:
    """The longest rate-limit wait a call may sleep here and now."""
    limit = _WAIT_LIMIT.get()
    return max_wait_seconds if limit is None else min(max_wait_seconds, limit)


_SPACE = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Post text as networks may give it back, made comparable: HTML entities decoded
    (X's &amp;), Unicode NFC, any run of whitespace one space, ends trimmed."""
    return _SPACE.sub(" ", unicodedata.normalize("NFC", html.unescape(text))).strip()


def same_text(shown: str, sent: str) -> bool:
    return normalise_text(shown) == normalise_text(sent)


class Retrier:
    def __init__(self, network_label: str, classify: Callable[[BaseException], Verdict | None], *,
                 max_attempts: int = 4, max_wait_seconds: float = 900.0,
                 sleep: Callable[[float], None] = time.sleep):
        self.label = network_label
        self.classify = classify
        self.max_attempts = max_attempts
        self.max_wait_seconds = max_wait_seconds
        self._sleep = sleep

    def call(self, what: str, fn: Callable[[], T], *, retry_lost_answers: bool = True) -> T:
        """Run one API call. With `retry_lost_answers=False` (creating a post) a transient
        failure is raised at once: the post may exist, and only the caller can check."""
        failures = 0
        waits = 0
        while True:
            try:
                return fn()
            except Exception as exc:
                verdict = self.classify(exc)
                if verdict is None:
                    raise
                caught = exc
            if verdict.kind == "rate_limited":
                wait = max(1.0, verdict.wait if verdict.wait is not None else 60.0)
                waits += 1
                if waits > self.max_attempts or wait > allowed_wait(self.max_wait_seconds):
                    raise TransientError(f"{what}: rate limited by {self.label}",
                                         retry_after=wait) from None
                self._sleep(wait)
            elif verdict.kind == "transient":
                failures += 1
                if failures >= self.max_attempts or not retry_lost_answers:
                    error = TransientError(f"{what}: {verdict.detail}")
                    error.timed_out = timed_out(caught)  # type: ignore[attr-defined]
                    raise error from None
                self._sleep(min(30.0, 0.5 * 2 ** (failures - 1)) * (0.5 + random.random()))
            else:
                raise PermanentError(f"{what}: {verdict.detail}") from None


def timed_out(exc: BaseException) -> bool:
    """Whether a failure was us giving up waiting (a read timeout): the server may still be
    making the post, so a look on the timeline right now proves nothing."""
    # lazy import: the HTTP client libraries, only when a call failed (specs stay light)
    import httpx
    import requests

    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return False
        if isinstance(seen, (httpx.TimeoutException, requests.Timeout, TimeoutError)) \
                or "timed out" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def reset_wait(reset: str | float | None) -> float | None:
    """Seconds until a rate-limit reset given as epoch seconds or an ISO 8601 time."""
    if reset is None or reset == "":
        return None
    try:
        return float(reset) - time.time() + 1
    except (TypeError, ValueError):
        pass
    try:
        return datetime.fromisoformat(str(reset).replace("Z", "+00:00")).timestamp() - time.time() + 1
    except ValueError:
        return None


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag == "p" and self.parts:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Mastodon-style status HTML (<p>, <br>, links, h-card mentions) to plain text."""
    if "<" not in markup:
        return html.unescape(markup)
    parser = _Text()
    parser.feed(markup)
    parser.close()
    return "".join(parser.parts).strip()


URL_RE = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")


def check_images(images: Sequence[Image], *, network: str, max_images: int | None = None,
                 max_bytes: int | None = None, max_bytes_label: str | None = None,
                 max_alt: int | None = None) -> None:
    """A network's limits for the images of one post, checked before anything is uploaded
    (so a refusal costs no upload): how many, how large, and alt text on each."""
    if max_images is not None and len(images) > max_images:
        raise PermanentError(f"a {network} post can carry at most {max_images} images; "
                             f"this one has {len(images)}")
    for image in images:
        if max_bytes is not None and len(image.data) > max_bytes:
            raise PermanentError(
                f"image {image.filename} is {len(image.data):,} bytes; {network} takes images "
                f"of at most {max_bytes_label or f'{max_bytes:,} bytes'}: make it smaller and "
                "add it again")
        if not image.alt_text.strip():
            raise PermanentError(f"image {image.filename} has no alt text; every image needs "
                                 "alt text")
        if max_alt is not None and len(image.alt_text) > max_alt:
            raise PermanentError(f"the alt text of {image.filename} is {len(image.alt_text)} "
                                 f"characters; {network} allows {max_alt}")


_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"


def tid(micros: int, clock_id: int) -> str:
    """A timestamp identifier (the AT Protocol's record key format, also every draft's own
    key: services/publication.py): a moment (microseconds since the epoch) and a clock id
    (0-1023), 13 base32-sortable characters."""
    value = ((micros & ((1 << 53) - 1)) << 10) | (clock_id & 0x3FF)
    out = ""
    for _ in range(13):
        out = _TID_ALPHABET[value & 31] + out
        value >>= 5
    return out


def parse_time(value: Any) -> datetime | None:
    """A network's timestamp (ISO 8601 text, "Z" or an offset or none meaning UTC, or a
    datetime its client library already parsed) as an aware datetime; None if it is not one."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
