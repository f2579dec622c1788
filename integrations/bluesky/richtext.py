"""Bluesky rich text: ids, TIDs, post links and facets (links, @mentions, #hashtags)
with UTF-8 byte offsets, as https://docs.bsky.app/docs/advanced-guides/post-richtext does."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

import grapheme

from integrations.common import tid as tid  # the record key format (publication keys too)

POST_COLLECTION = "app.bsky.feed.post"
MAX_GRAPHEMES = 300

_MENTION = re.compile(
    rb"(?:^|[$|\W])(@(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+"
    rb"[a-zA-Z](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)")
_URL = re.compile(
    rb"(?:^|[$|\W])(https?://(?:www\.)?[-a-zA-Z0-9@:%._+~#=]{1,256}\.[a-zA-Z0-9()]{1,6}\b"
    rb"(?:[-a-zA-Z0-9()@:%_+.~#?&/=]*[-a-zA-Z0-9@%_+~#/=])?)")
_TAG = re.compile(r"(?:^|\s)(#[^\d\s]\S*)")


def length(text: str) -> int:
    return int(grapheme.length(text))


# ------------------------------------------------------------ ids


def at_uri(did: str, rkey: str, collection: str = POST_COLLECTION) -> str:
    return f"at://{did}/{collection}/{rkey}"


def compact_id(uri: str) -> str:
    """`at://did/app.bsky.feed.post/rkey` -> `rkey/did`: short enough for a 64-character
    column, and ordered by the rkey (a TID: time-sortable), so the polling cursor works."""
    m = re.fullmatch(r"at://([^/]+)/([^/]+)/([^/]+)", uri)
    if m is None or m.group(2) != POST_COLLECTION:
        raise ValueError(f"not a post URI: {uri!r}")
    return f"{m.group(3)}/{m.group(1)}"


def uri_from_compact(external_id: str) -> str:
    rkey, _, did = external_id.partition("/")
    if not rkey or not did.startswith("did:"):
        raise ValueError(f"not a Bluesky post id: {external_id!r}")
    return at_uri(did, rkey)


def web_url(external_id: str, handle: str | None = None) -> str:
    rkey, _, did = external_id.partition("/")
    return f"https://bsky.app/profile/{handle or did}/post/{rkey}"


_tid_lock = threading.Lock()
_last_tid = 0


def new_tid(clock_id: int = 0) -> str:
    """A timestamp identifier: microseconds since the epoch and a clock id, base32-sortable."""
    global _last_tid
    with _tid_lock:
        micros = max(int(time.time() * 1_000_000), _last_tid + 1)
        _last_tid = micros
    return tid(micros, clock_id)


TID_RE = re.compile(r"[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}")


# ------------------------------------------------------------ facets


def facets(text: str, resolve_handle: Callable[[str], str | None]) -> list[dict[str, Any]]:
    """Facets for every link, resolvable @mention and #hashtag in `text` (byte offsets)."""
    data = text.encode("utf-8")
    out: list[dict[str, Any]] = []
    taken: list[tuple[int, int]] = []

    def add(start: int, end: int, feature: dict[str, Any]) -> None:
        if any(start < e and s < end for s, e in taken):
            return
        taken.append((start, end))
        out.append({"index": {"byteStart": start, "byteEnd": end}, "features": [feature]})

    for m in _URL.finditer(data):
        add(m.start(1), m.end(1), {"$type": "app.bsky.richtext.facet#link",
                                   "uri": m.group(1).decode("utf-8")})
    for m in _MENTION.finditer(data):
        handle = m.group(1)[1:].decode("utf-8")
        did = resolve_handle(handle)
        if did:
            add(m.start(1), m.end(1), {"$type": "app.bsky.richtext.facet#mention", "did": did})
    for m in _TAG.finditer(text):
        tag = re.sub(r"[.,;:!?'\")\]]+$", "", m.group(1))  # trailing punctuation is not the tag
        if len(tag) <= 1 or len(tag) > 65:
            continue
        start = len(text[: m.start(1)].encode("utf-8"))
        add(start, start + len(tag.encode("utf-8")),
            {"$type": "app.bsky.richtext.facet#tag", "tag": tag[1:]})
    out.sort(key=lambda f: f["index"]["byteStart"])
    return out
