"""The one interface every social network sits behind.

Routing, drafting, approval, publishing and audit only ever see `Network`.
Adding a network means adding `integrations/<network>/` with a class that
implements this protocol and registering it in `integrations/registry.py`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


class Capability(enum.StrEnum):
    READ_MENTIONS = "read_mentions"
    WEBHOOKS = "webhooks"  # mentions arrive pushed to an HTTP endpoint as well as polled
    REPLY = "reply"
    POST = "post"
    MEDIA = "media"  # a post can carry images with alt text
    REPLY_MEDIA = "reply_media"  # so can a reply
    DELETE = "delete"
    FOLLOWERS = "followers"


@dataclass(frozen=True)
class CredentialSpec:
    """The secrets one account of a network needs, read from the environment as
    ``<PREFIX>_<CRED>_<PART>`` (``<CRED>`` is the account's ``credentials`` key).

    Each integration declares one as ``CREDENTIALS`` in its package ``__init__``
    (which must not import ``bot.config``); ``config.load_settings`` reads them."""

    prefix: str  # e.g. "MASTODON"
    parts: tuple[str, ...]  # required, e.g. ("ACCESS_TOKEN",)
    optional: tuple[str, ...] = ()
    shared: tuple[str, ...] = ()  # variables needed once for the network (an app secret)
    purpose: str = "needed to read mentions and to post"

    def names(self, cred: str) -> list[str]:
        return [f"{self.prefix}_{cred}_{p}" for p in self.parts]


@dataclass(frozen=True)
class FetchedMention:
    external_id: str
    text: str  # plain text, HTML entities already decoded
    author_external_id: str | None = None
    author_handle: str | None = None
    author_name: str | None = None
    url: str | None = None
    posted_at: datetime | None = None
    conversation_id: str | None = None
    in_reply_to_external_id: str | None = None
    private: bool = False  # a private message (Messenger, a Mastodon direct mention)


@dataclass(frozen=True)
class Image:
    """An image to publish. Networks with Capability.MEDIA accept `images=[...]` in
    `publish`; alt text is required (house style blocks drafts without it)."""

    data: bytes
    alt_text: str
    filename: str = "image.jpg"
    mime_type: str = "image/jpeg"


@dataclass(frozen=True)
class Published:
    external_id: str
    url: str


@dataclass(frozen=True)
class MentionPage:
    """One page of mentions. `cursor`, when a network gives one, is where the next poll
    resumes once every page of this pass is stored (the last page's non-None cursor
    wins); without one the cursor is the highest `external_id` seen (networks whose
    ids are not a safe cursor, Mastodon and Bluesky, give one)."""

    mentions: list[FetchedMention] = field(default_factory=list)
    cursor: str | None = None


class NetworkError(Exception):
    """A call to a network failed; `transient` says whether trying again may help."""

    transient: bool = True

    def __init__(self, message: str, *, retry_after: float | None = None, detail: Any = None):
        from bot.logs import redact

        # the text is logged, stored (drafts.last_error, the audit trail) and shown in Slack:
        # a network echoing a token or a URL with `access_token=` in it must not carry it there
        super().__init__(redact(message))
        self.retry_after = retry_after
        self.detail = detail


class TransientError(NetworkError):
    transient = True


class PermanentError(NetworkError):
    transient = False


@runtime_checkable
class Network(Protocol):
    network: str  # "x", "bluesky", ...
    capabilities: frozenset[Capability]

    def account_user_id(self) -> str:
        """The account's own id on the network (looked up once when not configured)."""
        ...

    def fetch_mentions(self, since_id: str | None) -> Iterator[MentionPage]:
        """Every mention newer than `since_id`, page by page (any order within the run)."""
        ...

    def publish(self, text: str, *, in_reply_to: str | None = None,
                key: str | None = None) -> Published:
        """Publish once. Raise TransientError or PermanentError on failure. `key` is the
        draft's own identifier (a TID, stable across attempts): networks that take a
        client-chosen id use it (Mastodon's Idempotency-Key, Bluesky's record key), so a
        second attempt cannot make a second post."""
        ...

    def find_published(
        self, text: str, *, in_reply_to: str | None, not_before: datetime,
        key: str | None = None
    ) -> Published | None:
        """After an answer was lost or a crash: the post we may already have made, if the
        network shows it (by `key` where the network keeps it, else by its text as the
        network shows it, its thread and its time)."""
        ...

    def followers(self) -> int:
        """The account's follower count now (networks with Capability.FOLLOWERS)."""
        ...

    def weighted_length(self, text: str) -> int:
        ...

    @property
    def max_length(self) -> int:
        ...

    def post_url(self, external_id: str, author_handle: str | None = None) -> str:
        ...
