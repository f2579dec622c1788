"""Mastodon behind the `Network` interface (Mastodon.py, one client per account).

Mentions are the account's `mention` notifications; a mention's id is the status id
on the account's own instance (what `in_reply_to_id` needs). A reply keeps the
original's visibility (a reply to a followers-only or direct post never goes public)
and starts with the author's @handle, as Mastodon's own clients do, so they are told.
Posts carry an Idempotency-Key, so a retry after a lost answer cannot post twice.

Images (up to 4, each with its alt text as the attachment's description, 1500 characters
at most) are uploaded first with POST /api/v2/media; the instance answers 200 with the
attachment, or 202 with `url: null` while it is still processing (large files): then
GET /api/v1/media/:id is polled until it has a url, and the status is posted with
`media_ids`. An upload whose answer is lost leaves at most an unattached attachment,
which the instance deletes by itself, so uploads are retried.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from mastodon import (
    Mastodon,
    MastodonAPIError,
    MastodonNetworkError,
    MastodonRatelimitError,
    MastodonServerError,
)

from bot.config import AccountConfig, Settings
from integrations.base import (
    Capability,
    FetchedMention,
    Image,
    MentionPage,
    NetworkBase,
    Published,
    TransientError,
)
from integrations.common import (
    URL_RE,
    Retrier,
    Verdict,
    check_images,
    html_to_text,
    normalise_text,
    parse_time,
    same_text,
)

_VISIBILITY_ORDER = ("direct", "private", "unlisted", "public")
MAX_IMAGES = 4  # Mastodon's MAX_MEDIA_ATTACHMENTS
MAX_DESCRIPTION = 1500  # MediaAttachment::MAX_DESCRIPTION_LENGTH since Mastodon 4.0
MEDIA_WAIT_SECONDS = 60.0  # how long an upload may stay "processing" (202) before we give up
# The oldest Mastodon commsdesk supports. Telling Mastodon.py spares it looking the
# version up (GET /api/v1/instance) the first time it needs it, and makes media_post use
# /api/v2/media (asynchronous processing) rather than the deprecated /api/v1/media.
MIN_MASTODON_VERSION = "4.0.0"
NOTE_CURSOR = "n:"  # the polling cursor is a notification id, marked as one
_REMOTE_MENTION = re.compile(r"(?<![\w@])(@[A-Za-z0-9_]+)@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def mastodon_length(text: str) -> int:
    """Mastodon's count: every link is 23 characters, @user@domain counts as @user."""
    text = URL_RE.sub("x" * 23, text)
    text = _REMOTE_MENTION.sub(lambda m: m.group(1), text)
    return len(text)


def build(account: AccountConfig, settings: Settings) -> MastodonNetwork:
    return MastodonNetwork(account, settings.credentials_for(account)["access_token"])


class MastodonNetwork(NetworkBase):
    network = "mastodon"
    capabilities = frozenset(
        {Capability.READ_MENTIONS, Capability.REPLY, Capability.POST, Capability.MEDIA,
         Capability.REPLY_MEDIA, Capability.DELETE, Capability.FOLLOWERS}
    )

    def __init__(self, account: AccountConfig, access_token: str, *, max_length: int = 500,
                 max_attempts: int = 4, max_wait_seconds: float = 900.0, timeout: float = 15.0,
                 sleep: Callable[[float], None] = time.sleep):
        self.account = account
        self.base_url = (account.base_url or "").rstrip("/")
        self.api = Mastodon(access_token=access_token, api_base_url=self.base_url,
                            version_check_mode="created",
                            mastodon_version=MIN_MASTODON_VERSION, ratelimit_method="throw",
                            request_timeout=timeout)
        self._user_id = account.user_id
        self._max_length = max_length
        self.max_attempts = max_attempts
        self.max_wait_seconds = max_wait_seconds
        self._sleep = sleep

    @property
    def max_length(self) -> int:
        return self._max_length

    # ------------------------------------------------------------ plumbing

    def _classify(self, exc: BaseException) -> Verdict | None:
        if isinstance(exc, MastodonRatelimitError):
            reset = self.api.ratelimit_reset
            return Verdict("rate_limited", "rate limited",
                           wait=(reset - time.time() + 1) if reset else None)
        if isinstance(exc, MastodonServerError):
            return Verdict("transient", f"Mastodon answered {_status(exc)}")
        if isinstance(exc, MastodonNetworkError):
            return Verdict("transient", f"cannot reach {self.base_url} ({type(exc).__name__})")
        if isinstance(exc, MastodonAPIError) and "Could not parse response as JSON" in str(exc):
            # a 200 whose body is not JSON: an answer lost in transit, not a refusal
            return Verdict("transient", "Mastodon sent a malformed answer")
        if isinstance(exc, MastodonAPIError):
            return Verdict("permanent", f"Mastodon answered {_status(exc)}: {_message(exc)}")
        return None

    def _call(self, what: str, fn: Callable[[], Any], *, retry_lost_answers: bool = True) -> Any:
        return Retrier("Mastodon", self._classify, max_attempts=self.max_attempts,
                       max_wait_seconds=self.max_wait_seconds, sleep=self._sleep
                       ).call(what, fn, retry_lost_answers=retry_lost_answers)

    # ------------------------------------------------------------ Network

    def account_user_id(self) -> str:
        if self._user_id is None:
            me = self._call("looking up the account", self.api.account_verify_credentials)
            self._user_id = str(me["id"])
        return self._user_id

    def verify_credentials(self) -> str:
        me = self._call("checking the access token", self.api.account_verify_credentials)
        return str(me["id"])

    def fetch_mentions(self, since_id: str | None) -> Iterator[MentionPage]:
        """Mention notifications newer than the cursor, newest first, page by page.

        The cursor is a *notification* id (`n:<id>`, sent as `since_id` to
        /api/v1/notifications): a status id comes from the status's `created_at`, so a
        mention that federates late has a status id below ones already seen, while its
        notification is still newer than every notification seen. A cursor stored
        before (a bare status id) is read once without `since_id`: that first pass
        stops after the page that reaches it, storing whatever it read (mentions are
        de-duplicated by status id), and leaves a notification cursor."""
        since_note = since_id[len(NOTE_CURSOR):] if since_id and since_id.startswith(NOTE_CURSOR) \
            else None
        legacy = since_id if since_id and since_note is None else None
        kwargs: dict[str, Any] = {"types": ["mention"], "limit": 40}
        if since_note:
            kwargs["since_id"] = since_note
        page = self._call("fetching mentions", lambda: self.api.notifications(**kwargs))
        top = since_note
        while page:
            mentions: list[FetchedMention] = []
            reached = False
            for note in page:
                note_id = str(note.get("id"))
                if since_note and _id_le(note_id, since_note):
                    reached = True  # a next page from before the cursor
                    continue
                if top is None or not _id_le(note_id, top):
                    top = note_id
                status = note.get("status")
                if note.get("type") != "mention" or not status:
                    continue
                if legacy and _id_le(str(status["id"]), legacy):
                    reached = True
                mentions.append(self._mention(status))
            yield MentionPage(mentions, cursor=f"{NOTE_CURSOR}{top}" if top else None)
            if reached:
                return
            prev = page
            page = self._call("fetching mentions", lambda p=prev: self.api.fetch_next(p))

    def _mention(self, status: Any) -> FetchedMention:
        acct = status["account"]
        created = parse_time(status.get("created_at"))
        reply_to = status.get("in_reply_to_id")
        return FetchedMention(
            external_id=str(status["id"]),
            text=html_to_text(status.get("content") or ""),
            author_external_id=str(acct["id"]),
            author_handle=acct.get("acct"),
            author_name=acct.get("display_name") or acct.get("username"),
            url=status.get("url") or status.get("uri"),
            posted_at=created,
            conversation_id=str(reply_to) if reply_to else str(status["id"]),
            in_reply_to_external_id=str(reply_to) if reply_to else None,
            private=status.get("visibility") == "direct",  # answered as direct too
        )

    def _reply_text(self, text: str, original: Any) -> str:
        acct = original["account"]["acct"]
        own = original["account"].get("id") is not None and str(original["account"]["id"]) == self._user_id
        if own or re.search(rf"(?<![\w@])@{re.escape(acct)}(?![\w@.])", text, re.I):
            return text
        return f"@{acct} {text}"

    def publish(self, text: str, *, in_reply_to: str | None = None,
                images: Sequence[Image] = (), key: str | None = None) -> Published:
        check_images(images, network="Mastodon", max_images=MAX_IMAGES, max_alt=MAX_DESCRIPTION)
        visibility = "public"
        if in_reply_to is not None:
            self.account_user_id()
            original = self._call("reading the post replied to",
                                  lambda: self.api.status(in_reply_to))
            visibility = original.get("visibility") or "public"
            if visibility not in _VISIBILITY_ORDER:
                visibility = "public"
            text = self._reply_text(text, original)
        digest = hashlib.sha256(f"{self.account.name}\0{in_reply_to}\0{text}".encode())
        for image in images:
            digest.update(b"\0" + hashlib.sha256(image.data).digest() + image.alt_text.encode())
        media_ids = [self._upload(image, n, len(images)) for n, image in enumerate(images, 1)]
        status = self._call(
            "publishing",
            lambda: self.api.status_post(text, in_reply_to_id=in_reply_to, visibility=visibility,
                                         media_ids=media_ids or None,
                                         idempotency_key=(f"commsdesk-{key}" if key else
                                                          digest.hexdigest()[:32])),
            retry_lost_answers=False,
        )
        return Published(str(status["id"]), status.get("url") or self.post_url(str(status["id"])))

    def _upload(self, image: Image, n: int, of: int) -> str:
        """Upload one image with its description; its attachment id once it is processed."""
        what = f"uploading image {n} of {of}" if of > 1 else "uploading the image"
        media = self._call(what, lambda: self.api.media_post(
            image.data, mime_type=image.mime_type, description=image.alt_text,
            file_name=image.filename))
        waited, delay = 0.0, 0.5
        while not media.get("url"):  # 202: still processing
            if waited >= MEDIA_WAIT_SECONDS:
                raise TransientError(f"{self.base_url} was still processing {image.filename} "
                                     f"after {int(waited)} s")
            self._sleep(delay)
            waited += delay
            delay = min(delay * 2, 5.0)
            media = self._call("checking the uploaded image",
                               lambda m=media["id"]: self.api.media(m))
        return str(media["id"])

    def find_published(
        self, text: str, *, in_reply_to: str | None, not_before: datetime,
        key: str | None = None
    ) -> Published | None:
        user_id = self.account_user_id()
        statuses = self._call("checking the account's timeline",
                              lambda: self.api.account_statuses(user_id, limit=40))
        for status in statuses or []:
            created = status.get("created_at")
            if isinstance(created, datetime) and created.tzinfo is None:
                created = created.replace(tzinfo=UTC)
            if isinstance(created, datetime) and created < not_before:
                continue
            reply_to = status.get("in_reply_to_id")
            body = html_to_text(status.get("content") or "")
            same_thread = (str(reply_to) if reply_to else None) == in_reply_to
            # the HTML content as text; a reply may start with the @handle we added
            if same_thread and (same_text(body, text)
                                or normalise_text(body).endswith(" " + normalise_text(text))):
                sid = str(status["id"])
                return Published(sid, status.get("url") or self.post_url(sid))
        return None

    def followers(self) -> int:
        me = self._call("reading the follower count", self.api.account_verify_credentials)
        return int(me.get("followers_count") or 0)

    def weighted_length(self, text: str) -> int:
        return mastodon_length(text)

    def post_url(self, external_id: str, author_handle: str | None = None) -> str:
        handle = author_handle or self.account.handle
        return f"{self.base_url}/@{quote(handle, safe='@.')}/{quote(external_id, safe='')}"


def _id_le(a: str, b: str) -> bool:
    if a.isdigit() and b.isdigit():
        return int(a) <= int(b)
    return a <= b


def _status(exc: BaseException) -> str:
    args = getattr(exc, "args", ())
    return str(args[1]) if len(args) > 1 else "an error"


def _message(exc: BaseException) -> str:
    args = [a for a in getattr(exc, "args", ())[2:] if a]
    return str(args[-1]) if args else str(exc)
