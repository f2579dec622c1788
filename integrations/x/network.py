"""X (Twitter) behind the `Network` interface: tweepy's API v2 Client, one per account."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import requests
import tweepy
from twitter_text import parse_tweet

from integrations.base import (
    Capability,
    FetchedMention,
    Image,
    MentionPage,
    NetworkBase,
    PermanentError,
    Published,
    TransientError,
)
from integrations.common import URL_RE, Retrier, Verdict, check_images, same_text
from integrations.x.transport import X_HOSTS, point_session_at

if TYPE_CHECKING:
    from bot.config import AccountConfig, Settings

T = TypeVar("T")
_HANDLE = re.compile(r"^[A-Za-z0-9_]{1,50}$")

TWEET_FIELDS = ["author_id", "created_at", "conversation_id", "referenced_tweets",
                "in_reply_to_user_id", "entities"]
USER_FIELDS = ["username", "name"]
EXPANSIONS = ["author_id", "referenced_tweets.id"]


def _api_message(exc: tweepy.HTTPException) -> str:
    parts = list(getattr(exc, "api_messages", []) or [])
    if not parts:
        parts = [str(exc)]
    return f"X answered {exc.response.status_code}: " + "; ".join(parts)


MAX_IMAGES = 4
IMAGE_MAX_BYTES = 5 * 1024 * 1024
ALT_TEXT_MAX = 1000
CHUNK_BYTES = 1024 * 1024  # one APPEND segment
MEDIA_WAIT_SECONDS = 120.0  # how long a GIF may stay "processing" before we give up


def _answer(resp: requests.Response) -> Any:
    """The JSON of a media endpoint's answer, errors raised as tweepy raises them."""
    if resp.status_code == 429:
        raise tweepy.TooManyRequests(resp)
    if resp.status_code >= 500:
        raise tweepy.TwitterServerError(resp)
    if resp.status_code >= 400:
        kind = {400: tweepy.BadRequest, 401: tweepy.Unauthorized, 403: tweepy.Forbidden,
                404: tweepy.NotFound}.get(resp.status_code, tweepy.HTTPException)
        raise kind(resp)
    return resp.json()


def rate_limit_reset(resp: requests.Response | None) -> float | None:
    """When X's window resets: its `x-rate-limit-reset` header (epoch seconds), else None.
    (tweepy's TooManyRequests carries only the response; it has no reset attribute.)"""
    value = (resp.headers.get("x-rate-limit-reset") if resp is not None else None) or ""
    try:
        return float(value.strip())
    except ValueError:
        return None


def shown_as_sent(shown: str, entities: Any, sent: str) -> bool:
    """Whether a post's text as X returns it is `sent`: each t.co link put back as its
    `expanded_url`; failing that (X may add a scheme or a slash to a link), the two texts
    equal with every link left out."""
    urls = [u for u in ((entities or {}).get("urls") or [])
            if isinstance(u, dict) and u.get("url")]
    expanded = html.unescape(shown)
    for u in urls:
        expanded = expanded.replace(u["url"], u.get("expanded_url") or u["url"])
    if same_text(expanded, sent):
        return True
    return bool(urls or URL_RE.search(sent)) and \
        same_text(URL_RE.sub("<link>", expanded), URL_RE.sub("<link>", sent))


@dataclass(frozen=True)
class XCredentials:
    """User-context credentials (OAuth 1.0a), with an optional app bearer token."""

    consumer_key: str
    consumer_secret: str
    access_token: str
    access_token_secret: str
    bearer_token: str | None = None

    @classmethod
    def of(cls, parts: dict[str, str]) -> XCredentials:
        """From `Settings.credentials_for` (the spec's parts, lower-cased)."""
        return cls(consumer_key=parts["consumer_key"], consumer_secret=parts["consumer_secret"],
                   access_token=parts["access_token"],
                   access_token_secret=parts["access_token_secret"],
                   bearer_token=parts.get("bearer_token") or None)


def build(account: AccountConfig, settings: Settings) -> XNetwork:
    return XNetwork(account, XCredentials.of(settings.credentials_for(account)),
                    settings.setting("x_api_base_url"))


def _classify(exc: BaseException) -> Verdict | None:
    """429: wait until X's reset; 5xx, timeouts, dropped connections and malformed
    (non-JSON) bodies: transient; any other answer (400/401/403/404): permanent."""
    if isinstance(exc, tweepy.TooManyRequests):
        reset = rate_limit_reset(exc.response)
        return Verdict("rate_limited", "rate limited",
                       wait=(reset - time.time() + 1) if reset else None)
    if isinstance(exc, (tweepy.TwitterServerError, requests.ConnectionError, requests.Timeout,
                        requests.exceptions.ChunkedEncodingError, ValueError)):
        detail = (_api_message(exc) if isinstance(exc, tweepy.HTTPException)
                  else f"{type(exc).__name__}")
        return Verdict("transient", detail)
    if isinstance(exc, tweepy.HTTPException):
        return Verdict("permanent", _api_message(exc))
    return None


class XNetwork(NetworkBase):
    network = "x"
    capabilities = frozenset(
        {Capability.READ_MENTIONS, Capability.REPLY, Capability.POST, Capability.MEDIA,
         Capability.REPLY_MEDIA, Capability.DELETE, Capability.FOLLOWERS}
    )
    max_length = 280

    def __init__(
        self,
        account: AccountConfig,
        credentials: XCredentials,
        base_url: str,
        *,
        max_attempts: int = 4,
        max_wait_seconds: float = 900.0,
        timeout: float = 15.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.account = account
        self.client = tweepy.Client(
            bearer_token=credentials.bearer_token,
            consumer_key=credentials.consumer_key,
            consumer_secret=credentials.consumer_secret,
            access_token=credentials.access_token,
            access_token_secret=credentials.access_token_secret,
            wait_on_rate_limit=False,  # we wait ourselves, bounded, and say so
        )
        point_session_at(self.client.session, base_url, timeout=timeout)
        self._user_id = account.user_id
        self.max_attempts = max_attempts
        self.max_wait_seconds = max_wait_seconds
        self._sleep = sleep

    # ------------------------------------------------------------ plumbing

    def _call(self, what: str, fn: Callable[[], T], *, retry_lost_answers: bool = True) -> T:
        """Run one API call: wait out 429 until reset, back off on 5xx and timeouts.

        With `retry_lost_answers=False` (creating a post) a 5xx, timeout or dropped
        connection is raised at once: the post may exist, and only the caller can
        check before trying again.
        """
        return Retrier("X", _classify, max_attempts=self.max_attempts,
                       max_wait_seconds=self.max_wait_seconds, sleep=self._sleep
                       ).call(what, fn, retry_lost_answers=retry_lost_answers)

    # ------------------------------------------------------------ Network

    def account_user_id(self) -> str:
        if self._user_id is None:
            resp: Any = self._call("looking up the account", lambda: self.client.get_me(user_auth=True))
            self._user_id = str(resp.data.id)
        return self._user_id

    def verify_credentials(self) -> str:
        """GET /2/users/me with these credentials (check-config --online)."""
        resp: Any = self._call("checking the credentials",
                               lambda: self.client.get_me(user_auth=True))
        return str(resp.data.id)

    def fetch_mentions(self, since_id: str | None) -> Iterator[MentionPage]:
        user_id = self.account_user_id()
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "max_results": 100,
                "tweet_fields": TWEET_FIELDS,
                "user_fields": USER_FIELDS,
                "expansions": EXPANSIONS,
                "user_auth": True,
            }
            if since_id:
                kwargs["since_id"] = since_id
            if token:
                kwargs["pagination_token"] = token
            resp: Any = self._call(
                "fetching mentions",
                lambda kw=kwargs: self.client.get_users_mentions(user_id, **kw),  # type: ignore[misc]
            )
            users = {str(u.id): u for u in (resp.includes or {}).get("users", [])}
            yield MentionPage([self._mention(t, users) for t in (resp.data or [])])
            token = (resp.meta or {}).get("next_token")
            if not token:
                return

    def _mention(self, tweet: Any, users: dict[str, Any]) -> FetchedMention:
        author = users.get(str(tweet.author_id)) if tweet.author_id else None
        replied_to = next(
            (str(r.id) for r in (tweet.referenced_tweets or []) if r.type == "replied_to"), None
        )
        handle = author.username if author else None
        return FetchedMention(
            external_id=str(tweet.id),
            text=html.unescape(tweet.text),  # X sends &amp; &lt; &gt;
            author_external_id=str(tweet.author_id) if tweet.author_id else None,
            author_handle=handle,
            author_name=author.name if author else None,
            url=self.post_url(str(tweet.id), handle),
            posted_at=tweet.created_at,
            conversation_id=str(tweet.conversation_id) if tweet.conversation_id else None,
            in_reply_to_external_id=replied_to,
        )

    def publish(self, text: str, *, in_reply_to: str | None = None,
                images: Sequence[Image] = (), key: str | None = None) -> Published:
        check_images(images, network="X", max_images=MAX_IMAGES, max_bytes=IMAGE_MAX_BYTES,
                     max_bytes_label="5 MB", max_alt=ALT_TEXT_MAX)
        media_ids = [self._upload(image) for image in images] or None
        resp: Any = self._call(
            "publishing",
            lambda: self.client.create_tweet(
                text=text, in_reply_to_tweet_id=in_reply_to, media_ids=media_ids,
                user_auth=True,
            ),
            retry_lost_answers=False,
        )
        tweet_id = str(resp.data["id"])
        return Published(tweet_id, self.post_url(tweet_id, self.account.handle))

    def _upload(self, image: Image) -> str:
        """POST /2/media/upload (multipart, user context), then its alt text through
        POST /2/media/metadata. An upload is safe to repeat: an unused one just expires.
        A GIF goes through the chunked upload with media_category tweet_gif (X does not
        take one in a single request)."""
        auth = tweepy.OAuth1UserHandler(
            self.client.consumer_key, self.client.consumer_secret,
            self.client.access_token, self.client.access_token_secret).apply_auth()
        if image.mime_type == "image/gif":
            media_id = self._upload_chunked(image, auth, "tweet_gif")
        else:
            uploaded = self._call("uploading an image", lambda: _answer(self.client.session.post(
                f"{X_HOSTS[0]}/2/media/upload", auth=auth,
                files={"media": (image.filename, image.data, image.mime_type)},
                data={"media_category": "tweet_image", "media_type": image.mime_type})))
            media_id = str(uploaded["data"]["id"])
        self._call("setting the image's alt text", lambda: _answer(self.client.session.post(
            f"{X_HOSTS[0]}/2/media/metadata", auth=auth,
            json={"id": media_id, "metadata": {"alt_text": {"text": image.alt_text}}})))
        return media_id

    def _upload_chunked(self, image: Image, auth: Any, category: str) -> str:
        """X's chunked upload (the spec's initializeMediaUpload, appendMediaUpload,
        finalizeMediaUpload, getMediaUploadStatus): INIT with the size, type and
        category, APPEND each segment (at most 1 MB), FINALIZE, then STATUS while the
        processing_info says pending/in_progress (waiting check_after_secs)."""
        base = f"{X_HOSTS[0]}/2/media/upload"
        init = self._call("starting the GIF upload", lambda: _answer(self.client.session.post(
            f"{base}/initialize", auth=auth,
            json={"media_type": image.mime_type, "total_bytes": len(image.data),
                  "media_category": category})))
        media_id = str(init["data"]["id"])
        for index, start in enumerate(range(0, len(image.data), CHUNK_BYTES)):
            chunk = image.data[start:start + CHUNK_BYTES]
            self._call("uploading the GIF", lambda c=chunk, i=index: _answer(  # type: ignore[misc]
                self.client.session.post(f"{base}/{media_id}/append", auth=auth,
                                         files={"media": (image.filename, c, "application/octet-stream")},
                                         data={"segment_index": str(i)})))
        state = self._call("finishing the GIF upload", lambda: _answer(self.client.session.post(
            f"{base}/{media_id}/finalize", auth=auth)))
        waited = 0.0
        while True:
            info = (state.get("data") or {}).get("processing_info") or {}
            if info.get("state") in (None, "succeeded"):
                return media_id
            if info.get("state") == "failed":
                error = (info.get("error") or {}).get("message") or "X could not process it"
                raise PermanentError(f"uploading the GIF: {error}")
            wait = float(info.get("check_after_secs") or 1)
            waited += wait
            if waited > MEDIA_WAIT_SECONDS:
                raise TransientError("uploading the GIF: X is still processing it")
            self._sleep(wait)
            state = self._call("checking the GIF upload", lambda: _answer(self.client.session.get(
                base, auth=auth, params={"command": "STATUS", "media_id": media_id})))

    def find_published(
        self, text: str, *, in_reply_to: str | None, not_before: datetime,
        key: str | None = None
    ) -> Published | None:
        """The post on the account's timeline since `not_before`, matched as X shows it:
        links come back as t.co links (the original is in `entities.urls[].expanded_url`),
        `&<>` escaped. X takes no client id for a post, so the text, thread and time it is."""
        user_id = self.account_user_id()
        resp: Any = self._call(
            "checking the account's timeline",
            lambda: self.client.get_users_tweets(
                user_id, max_results=100, start_time=not_before,
                tweet_fields=["referenced_tweets", "created_at", "entities"], user_auth=True,
            ),
        )
        for tweet in resp.data or []:
            replied_to = next(
                (str(r.id) for r in (tweet.referenced_tweets or []) if r.type == "replied_to"),
                None,
            )
            if replied_to == in_reply_to and shown_as_sent(tweet.text, tweet.entities, text):
                return Published(str(tweet.id), self.post_url(str(tweet.id), self.account.handle))
        return None

    def followers(self) -> int:
        """The account's follower count (GET /2/users/:id, public_metrics)."""
        user_id = self.account_user_id()
        resp: Any = self._call(
            "reading the follower count",
            lambda: self.client.get_user(id=user_id, user_fields=["public_metrics"],
                                         user_auth=True),
        )
        metrics = (resp.data.public_metrics if resp.data is not None else None) or {}
        return int(metrics.get("followers_count", 0))

    def weighted_length(self, text: str) -> int:
        """X's own counting: URLs are 23, CJK and emoji count 2 (twitter-text rules)."""
        return int(parse_tweet(text).weightedLength)

    def post_url(self, external_id: str, author_handle: str | None = None) -> str:
        handle = author_handle if author_handle and _HANDLE.match(author_handle) else "i"
        return f"https://x.com/{handle}/status/{quote(external_id, safe='')}"
