"""The one interface every social network sits behind, and how a network describes itself.

Routing, drafting, approval, publishing and audit only ever see `Network`. Adding a
network means adding a folder `integrations/<network>/` whose `__init__.py` exports one
`SPEC = NetworkSpec(...)` (label, credentials, account fields, settings, length rule,
post-URL patterns, link hosts, webhook routes, builder, emulator, demo seed) and a class
implementing `Network` (`NetworkBase` gives the optional members their defaults);
`integrations/registry.py` discovers the folder. A spec names code as "module:attr"
strings, so reading every spec (config does, at import) imports no network's library.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from bot.logs import redact


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

    Each integration declares one in its `NetworkSpec` (its package ``__init__``, which
    must not import ``bot.config``); ``config.load_settings`` reads them into
    ``Settings.credentials[(network, CRED)]`` as ``{part.lower(): value}``."""

    prefix: str  # e.g. "MASTODON"
    parts: tuple[str, ...]  # required, e.g. ("ACCESS_TOKEN",)
    optional: tuple[str, ...] = ()
    shared: tuple[str, ...] = ()  # variables needed once for the network (an app secret)
    purpose: str = "needed to read mentions and to post"

    def names(self, cred: str) -> list[str]:
        return [f"{self.prefix}_{cred}_{p}" for p in self.parts]

    def pattern(self) -> str:
        """How the variables are named, e.g. ``MASTODON_<CRED>_*``."""
        return f"{self.prefix}_<CRED>_*"


@dataclass(frozen=True)
class AccountField:
    """A key an account of this network takes in `commsdesk.toml` ([[accounts]])."""

    name: str  # e.g. "base_url"
    help: str = ""  # e.g. "the instance, e.g. https://mastodon.social"
    required: bool = True
    url: bool = False  # an http(s) URL (its trailing "/" dropped)
    example: str = ""  # shown in the config `commsdesk init` writes, e.g. a page id


@dataclass(frozen=True)
class EnvSetting:
    """A setting of the network read from the environment (`Environment.<name>`, the
    variable `<NAME>`), e.g. its API's base URL, pointed at an emulator in tests."""

    name: str  # lower case, e.g. "x_api_base_url" (variable X_API_BASE_URL)
    default: str | None = None
    secret: bool = False  # scrubbed from logs (Settings.secrets)


@dataclass(frozen=True)
class PostUrl:
    """A link to a post on the network, as `/social reply <link>` takes it. With a named
    group `id` the link gives the post's id (matched as typed); without, the link (query
    and fragment dropped) is looked up as the stored mention's URL."""

    pattern: str  # a regular expression, anchored
    example: str | None = None  # shown in the error for a link nobody recognises


@dataclass(frozen=True)
class NetworkSpec:
    """Everything the core needs to know about one network. Code is named as
    "module:attr" strings (see `registry.load`) so that reading a spec stays light."""

    name: str  # the `network` key in the config, e.g. "mastodon"
    label: str  # shown to people, e.g. "Mastodon"
    credentials: CredentialSpec
    build: str  # "module:attr": build(account, settings) -> Network
    account_fields: tuple[AccountField, ...] = ()
    example_handle: str = "NottsCC"  # the account's handle in `commsdesk init`'s example
    settings: tuple[EnvSetting, ...] = ()
    base_url_setting: str | None = None  # which of `settings` is the API's base URL
    numeric_user_id: bool = False  # a configured `user_id` must be digits
    length_rule: str = ""  # how its length is counted, e.g. " (links count 23)"
    post_urls: tuple[PostUrl, ...] = ()
    link_hosts: tuple[str, ...] = ()  # its web hosts: where links from it may point
    links_on_account_host: bool = False  # also (only) the host of the account's base_url
    routes: str | None = None  # "module:attr": routes(rt) -> list of Starlette routes
    body_limits: tuple[tuple[str, int], ...] = ()  # (path, max request bytes) of its routes
    health: tuple[str, str] | None = None  # (key, "module:attr" fn(rt)) added to /healthz
    search: str | None = None  # module with `queries(terms, handle)`, `search(net, q, since)`
    reply_window: str | None = None  # "module:attr": fn(external_id) -> closes (UTC) or None
    reply_window_name: str = ""  # what people call it, e.g. "Messenger"
    private_replies_stay_private: bool = False  # a reply to a private mention is private too
    log_libraries: tuple[str, ...] = ()  # its client library's loggers (redacted too)
    emulator: str | None = None  # "module:attr": the emulator class
    demo: str | None = None  # "module:attr": the demo seed class (see bot/demo/networks.py)
    demo_stage: str | None = None  # "module:attr": the demo page's public pane (bot/demo/stage.py)

    def account_keys(self) -> tuple[str, ...]:
        """The account keys this network requires."""
        return tuple(f.name for f in self.account_fields if f.required)


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
    """Exactly what the core calls (`NetworkBase` gives the optional members defaults)."""

    network: str  # its spec's name
    capabilities: frozenset[Capability]
    max_attempts: int  # tries per call (check-config --online sets 1)
    image_types: frozenset[str] | None  # MIME types it takes; None: any image

    def verify_credentials(self) -> str:
        """Ask the network who these credentials are (check-config --online); its id."""
        ...

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


class NetworkBase:
    """Defaults for the optional `Network` members; each network class derives from it."""

    network: str = ""
    capabilities: frozenset[Capability] = frozenset()
    max_attempts: int = 4
    image_types: frozenset[str] | None = None

    def account_user_id(self) -> str:
        raise NotImplementedError

    def verify_credentials(self) -> str:
        return str(self.account_user_id())
