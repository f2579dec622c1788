"""A Facebook Page behind the `Network` interface: the Graph API over httpx, with a pinned
version (`FACEBOOK_GRAPH_VERSION`) at `FACEBOOK_GRAPH_BASE_URL`, one page access token per
page. Comments and messages come in by webhook (see `webhook.py`); page comments are also
polled as a backstop for lost deliveries (`fetch_mentions`, below).

External ids: a comment is Graph's `<post>_<comment>` id; a Messenger message is
`m:<sender PSID>:<timestamp ms>`, which is all a reply needs (recipient + the window).

A new post may carry images, each with its alt text (`alt_text_custom`): one image is a
photo post (POST /{page-id}/photos, multipart `source`, the text as its `caption`);
several are uploaded unpublished (`published=false`) and then posted together with
POST /{page-id}/feed and `attached_media`. An unpublished photo whose answer was lost is
harmless, so those uploads are retried. Graph cannot give a photo in a comment or a
Messenger reply its alt text, so replies with images are refused (PermanentError).

Polling (the backstop): GET /{page-id}/feed?since=<now - POLL_DAYS> with each post's
comments nested (`comments.filter(stream).order(reverse_chronological)`, so replies to
comments too), paged with `paging.cursors.after` while `paging.next` is there, and a post's
further comments with GET /{post-id}/comments. Each comment becomes the very
`FetchedMention` the webhook builds (`comment_mention`), so a comment that arrives both
ways is stored once: the unique (network, external_id) decides.

The cursor. `services/polling` stores as the cursor the greatest external id a pass
yielded, and the external id must be Graph's comment id (`<post>_<comment>`, what the
webhook stores and what a reply is posted to), which does not sort by time. So here the
cursor and the external id are one thing that cannot be a time, and `since_id` is
deliberately not used as a filter (filtering on it would lose comments). Instead every
pass re-reads a bounded window (posts of the last POLL_DAYS days) and relies on the
database: storing is idempotent on (network, external_id), mentions are never deleted
(retention blanks them), so a comment seen again is never stored or alerted again. To
keep a pass cheap, the network remembers in memory the ids it yielded in pages that were
then stored (the generator resumes after a `yield` only once the poller has stored that
page) and does not yield them again; after a restart that memory is empty and one pass
re-yields the window, which the database absorbs. Comments on posts older than
POLL_DAYS are left to the webhook.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from bot import logs
from bot.config import AccountConfig, Settings
from integrations.base import (
    Capability,
    FetchedMention,
    Image,
    MentionPage,
    NetworkBase,
    PermanentError,
    Published,
)
from integrations.common import Retrier, Verdict, check_images, same_text

MAX_LENGTH = 63_206
MESSAGING_WINDOW = timedelta(hours=24)
RATE_LIMIT_CODES = {4, 17, 32, 613, 80001}  # Graph's "request limit reached" family
TRANSIENT_CODES = {1, 2}  # unknown error / service temporarily unavailable
POLL_DAYS = 14  # the backstop reads comments on posts from the last 14 days
FEED_PAGE_SIZE = 25  # posts per feed page
COMMENTS_PAGE_SIZE = 100  # comments per post per page
MAX_USAGE_PERCENT = 90  # X-App-Usage / X-Page-Usage / BUC above this: end the pass early
COMMENT_FIELDS = "id,from,message,created_time,parent"
USAGE_HEADERS = ("x-app-usage", "x-page-usage", "x-business-use-case-usage")

log = logs.get("commsdesk.facebook")


class GraphError(Exception):
    def __init__(self, status: int, error: dict[str, Any], *, wait: float | None = None):
        super().__init__(f"{status} {error.get('message')}")
        self.status = status
        self.code = int(error.get("code") or 0)
        self.message = str(error.get("message") or "")
        self.wait = wait  # seconds until access is regained, when the headers say


def _usage(headers: httpx.Headers) -> tuple[float, float | None]:
    """The highest usage percentage in Graph's rate-limit headers (X-App-Usage,
    X-Page-Usage, X-Business-Use-Case-Usage) and the seconds until access is regained
    (`estimated_time_to_regain_access`, minutes), when any header says."""
    highest, regain = 0.0, None

    def scan(stats: Any) -> None:
        nonlocal highest, regain
        if isinstance(stats, list):
            for item in stats:
                scan(item)
        elif isinstance(stats, dict):
            for key, value in stats.items():
                if isinstance(value, (dict, list)):
                    scan(value)
                elif key in ("call_count", "total_cputime", "total_time") \
                        and isinstance(value, (int, float)):
                    highest = max(highest, float(value))
                elif key == "estimated_time_to_regain_access" and isinstance(value, (int, float)) \
                        and value > 0:
                    regain = max(regain or 0.0, float(value) * 60)

    for name in USAGE_HEADERS:
        raw = headers.get(name)
        if raw:
            try:
                scan(json.loads(raw))
            except ValueError:
                continue
    return highest, regain


def next_page_params(paging: Any) -> dict[str, str] | None:
    """The query of the next page, from the `paging.next` URL Graph returns: cursor-based
    (`after=`) or time-based (`until=`/`since=` with `__paging_token`, what a `since`
    query on a feed may get, with no `cursors` at all). None when there is no next page.
    The access token in Graph's URL is dropped (ours is sent as a header)."""
    if not isinstance(paging, dict) or not paging.get("next"):
        return None
    query = {k: v[-1] for k, v in parse_qs(urlsplit(str(paging["next"])).query,
                                            keep_blank_values=True).items()}
    query.pop("access_token", None)
    query.pop("appsecret_proof", None)
    if not query.get("after") and not query.get("until") and not query.get("__paging_token"):
        after = (paging.get("cursors") or {}).get("after")
        if not after:
            return None
        query["after"] = after
    return query


def parse_time(value: Any) -> datetime | None:
    """Graph's `created_time` ("2024-05-01T10:00:00+0000")."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None


def comment_url(post_id: str, comment_id: str) -> str:
    return (f"https://www.facebook.com/{post_id}"
            f"?comment_id={comment_id.partition('_')[2] or comment_id}")


def comment_mention(page_id: str, *, post_id: str, comment_id: str, message: str | None,
                    author: dict[str, Any] | None, posted_at: datetime | None,
                    parent_id: str | None) -> FetchedMention | None:
    """One comment as a mention, the same whether it came by webhook or by a poll (the
    external id is Graph's comment id); None for the page's own comments."""
    author = author or {}
    if str(author.get("id")) == page_id:
        return None
    return FetchedMention(
        external_id=comment_id,
        text=str(message or ""),
        author_external_id=str(author.get("id")) if author.get("id") else None,
        author_handle=None,
        author_name=author.get("name"),
        url=comment_url(post_id, comment_id),
        posted_at=posted_at,
        conversation_id=post_id or None,
        in_reply_to_external_id=parent_id or post_id or None,
    )


def build(account: AccountConfig, settings: Settings) -> FacebookNetwork:
    env = settings.env
    return FacebookNetwork(account, settings.credentials_for(account)["page_access_token"],
                           env.facebook_graph_base_url, env.facebook_graph_version,
                           app_secret=env.facebook_app_secret)


def message_id(psid: str, timestamp_ms: int) -> str:
    return f"m:{psid}:{timestamp_ms}"


class FacebookNetwork(NetworkBase):
    network = "facebook"
    capabilities = frozenset(
        {Capability.WEBHOOKS, Capability.READ_MENTIONS, Capability.REPLY, Capability.POST,
         Capability.MEDIA, Capability.DELETE, Capability.FOLLOWERS}
    )  # MEDIA: new posts only; READ_MENTIONS: page comments, polled as a backstop
    max_length = MAX_LENGTH

    def __init__(self, account: AccountConfig, page_token: str, base_url: str, version: str, *,
                 app_secret: str | None = None, max_attempts: int = 4,
                 max_wait_seconds: float = 900.0, timeout: float = 15.0,
                 sleep: Callable[[float], None] = time.sleep):
        self.account = account
        self.page_id = account.page_id or ""
        self._token = page_token
        self._proof = (hmac.new(app_secret.encode(), page_token.encode(), hashlib.sha256).hexdigest()
                       if app_secret else None)
        self._http = httpx.Client(base_url=f"{base_url.rstrip('/')}/{version}", timeout=timeout)
        self.max_attempts = max_attempts
        self.max_wait_seconds = max_wait_seconds
        self._sleep = sleep
        self._stored: dict[str, datetime] = {}  # comment id -> its post's time (see the module)
        self._usage = 0.0  # the highest percentage in the last answer's usage headers

    # ------------------------------------------------------------ plumbing

    def _classify(self, exc: BaseException) -> Verdict | None:
        if isinstance(exc, GraphError):
            if exc.code in RATE_LIMIT_CODES or exc.status == 429:
                return Verdict("rate_limited", exc.message,
                               wait=exc.wait if exc.wait is not None else 60.0)
            if exc.status >= 500 or exc.code in TRANSIENT_CODES:
                return Verdict("transient", f"Facebook answered {exc.status}: {exc.message}")
            return Verdict("permanent", f"Facebook answered {exc.status} (code {exc.code}): "
                                        f"{exc.message}")
        if isinstance(exc, httpx.TransportError):
            return Verdict("transient", f"cannot reach Facebook ({type(exc).__name__})")
        if isinstance(exc, ValueError):
            return Verdict("transient", "Facebook sent a malformed answer")
        return None

    def _graph(self, what: str, method: str, path: str, *, params: dict[str, Any] | None = None,
               data: dict[str, Any] | None = None, body: Any = None,
               files: dict[str, tuple[str, bytes, str]] | None = None,
               retry_lost_answers: bool = True) -> Any:
        auth = {"access_token": self._token, **({"appsecret_proof": self._proof} if self._proof else {})}

        def call() -> Any:
            resp = self._http.request(method, path, params={**(params or {}), **auth},
                                      data=data, json=body, files=files)
            self._usage, regain = _usage(resp.headers)
            if resp.status_code >= 400:
                try:
                    error = resp.json().get("error") or {}
                except ValueError:
                    error = {"message": resp.reason_phrase}
                raise GraphError(resp.status_code, error, wait=regain)
            return resp.json()

        return Retrier("Facebook", self._classify, max_attempts=self.max_attempts,
                       max_wait_seconds=self.max_wait_seconds, sleep=self._sleep
                       ).call(what, call, retry_lost_answers=retry_lost_answers)

    # ------------------------------------------------------------ Network

    def account_user_id(self) -> str:
        return self.page_id

    def verify_credentials(self) -> str:
        page = self._graph("checking the page access token", "GET", f"/{self.page_id}",
                           params={"fields": "id,name"})
        return str(page["id"])

    def fetch_mentions(self, since_id: str | None) -> Iterator[MentionPage]:
        """Comments by others on the page's posts of the last POLL_DAYS days, one page per
        post with any not yet stored. `since_id` is not a time here and is not used as a
        filter: see "The cursor" in the module docstring. (Messenger messages have no
        polling endpoint a page token may read; they stay webhook-only.)"""
        cutoff = datetime.now(UTC) - timedelta(days=POLL_DAYS)
        for key, posted in list(self._stored.items()):
            if posted < cutoff:
                del self._stored[key]
        nested = (f"comments.filter(stream).order(reverse_chronological)"
                  f".limit({COMMENTS_PAGE_SIZE}){{{COMMENT_FIELDS}}}")
        base: dict[str, Any] = {"fields": f"id,created_time,{nested}",
                                "since": int(cutoff.timestamp()), "limit": FEED_PAGE_SIZE}
        params = dict(base)
        while True:
            feed = self._graph("reading the page's recent posts", "GET",
                               f"/{self.page_id}/feed", params=params)
            posts = feed.get("data") or []
            old = 0
            for post in posts:
                post_time = parse_time(post.get("created_time"))
                if post_time is not None and post_time < cutoff:
                    old += 1  # `since` should have left it out (a pinned post?)
                    continue
                mentions = [m for m in self._post_comments(post)
                            if m.external_id not in self._stored]
                if mentions:
                    yield MentionPage(mentions)
                    # resumed: the poller has stored that page
                    for m in mentions:
                        self._stored[m.external_id] = post_time or datetime.now(UTC)
            if old == len(posts) or self._paused("the page's posts"):
                return
            following = next_page_params(feed.get("paging"))
            if following is None:
                return
            params = {**base, **following}

    def _post_comments(self, post: dict[str, Any]) -> Iterator[FetchedMention]:
        post_id = str(post["id"])
        edge = post.get("comments") or {}
        while True:
            for c in edge.get("data") or []:
                mention = comment_mention(
                    self.page_id, post_id=post_id, comment_id=str(c["id"]),
                    message=c.get("message"), author=c.get("from"),
                    posted_at=parse_time(c.get("created_time")),
                    parent_id=str((c.get("parent") or {}).get("id") or "") or None)
                if mention is not None:
                    yield mention
            paging = edge.get("paging") or {}
            after = (paging.get("cursors") or {}).get("after")
            if not edge.get("data") or not paging.get("next") or not after \
                    or self._paused("a post's comments"):
                return
            edge = self._graph("reading a post's comments", "GET", f"/{post_id}/comments",
                               params={"fields": COMMENT_FIELDS, "filter": "stream",
                                       "order": "reverse_chronological",
                                       "limit": COMMENTS_PAGE_SIZE, "after": after})

    def _paused(self, what: str) -> bool:
        """Graph's usage headers near the limit: stop this pass early (the next one reads
        the window again, so nothing is skipped)."""
        if self._usage < MAX_USAGE_PERCENT:
            return False
        log.warning("facebook usage near the rate limit: polling stops early", reading=what,
                    usage_percent=self._usage)
        return True

    def publish(self, text: str, *, in_reply_to: str | None = None,
                images: Sequence[Image] = (), key: str | None = None) -> Published:
        if images:
            if in_reply_to is not None:
                raise PermanentError(
                    "Facebook cannot give an image in a comment or message reply its alt text, "
                    "so commsdesk publishes images only in new page posts: remove the image "
                    "from this reply (or post it as a new post)")
            return self._photo_post(text, images)
        if in_reply_to is not None and in_reply_to.startswith("m:"):
            _, psid, ts = in_reply_to.split(":", 2)
            sent = datetime.fromtimestamp(int(ts) / 1000, UTC)
            if datetime.now(UTC) - sent > MESSAGING_WINDOW:
                raise PermanentError("the message is older than 24 hours: Messenger's standard "
                                     "messaging window has closed, so the page cannot reply")
            out = self._graph("replying to the message", "POST", f"/{self.page_id}/messages",
                              body={"recipient": {"id": psid}, "messaging_type": "RESPONSE",
                                    "message": {"text": text}}, retry_lost_answers=False)
            mid = str(out["message_id"])
            return Published(mid[:64], f"https://www.facebook.com/{self.page_id}/inbox")
        if in_reply_to is not None:
            out = self._graph("replying to the comment", "POST", f"/{in_reply_to}/comments",
                              data={"message": text}, retry_lost_answers=False)
        else:
            out = self._graph("posting to the page", "POST", f"/{self.page_id}/feed",
                              data={"message": text}, retry_lost_answers=False)
        external_id = str(out["id"])
        return Published(external_id, self.post_url(external_id))

    def _photo_post(self, text: str, images: Sequence[Image]) -> Published:
        check_images(images, network="Facebook")
        if len(text) > MAX_LENGTH:
            raise PermanentError(f"the text is {len(text)} characters; Facebook allows "
                                 f"{MAX_LENGTH}")
        if len(images) == 1:
            image = images[0]
            out = self._graph("posting the photo to the page", "POST", f"/{self.page_id}/photos",
                              data={"caption": text, "alt_text_custom": image.alt_text},
                              files={"source": (image.filename, image.data, image.mime_type)},
                              retry_lost_answers=False)
            external_id = str(out.get("post_id") or f"{self.page_id}_{out['id']}")
            return Published(external_id, self.post_url(external_id))
        media: list[str] = []
        for n, image in enumerate(images, 1):
            out = self._graph(f"uploading image {n} of {len(images)}", "POST",
                              f"/{self.page_id}/photos",
                              data={"published": "false", "alt_text_custom": image.alt_text},
                              files={"source": (image.filename, image.data, image.mime_type)})
            media.append(str(out["id"]))
        data = {"message": text} | {f"attached_media[{i}]": json.dumps({"media_fbid": fbid})
                                    for i, fbid in enumerate(media)}
        out = self._graph("posting to the page", "POST", f"/{self.page_id}/feed", data=data,
                          retry_lost_answers=False)
        external_id = str(out["id"])
        return Published(external_id, self.post_url(external_id))

    def find_published(
        self, text: str, *, in_reply_to: str | None, not_before: datetime,
        key: str | None = None
    ) -> Published | None:
        """The page's post (or its comment under `in_reply_to`) with this message, made by
        the page since `not_before` (Graph's `created_time` window): Graph takes no client id."""
        if in_reply_to is not None and in_reply_to.startswith("m:"):
            return None  # the Send API has no timeline to check
        path = f"/{in_reply_to}/comments" if in_reply_to else f"/{self.page_id}/feed"
        data = self._graph("checking the page", "GET", path, params={
            "fields": "id,message,from,created_time", "order": "reverse_chronological",
            "limit": 50})
        for item in data.get("data") or []:
            created = item.get("created_time")
            moment = None
            if isinstance(created, str):
                moment = datetime.strptime(created, "%Y-%m-%dT%H:%M:%S%z")
            if moment is not None and moment < not_before:
                continue
            author = (item.get("from") or {}).get("id")
            if author in (None, self.page_id) and same_text(str(item.get("message") or ""), text):
                return Published(str(item["id"]), self.post_url(str(item["id"])))
        return None

    def followers(self) -> int:
        data = self._graph("reading the follower count", "GET", f"/{self.page_id}",
                           params={"fields": "followers_count"})
        return int(data.get("followers_count") or 0)

    def weighted_length(self, text: str) -> int:
        return len(text)

    def post_url(self, external_id: str, author_handle: str | None = None) -> str:
        post, _, comment = external_id.partition("_")
        if post == self.page_id or not comment:
            return f"https://www.facebook.com/{external_id}"
        return f"https://www.facebook.com/{post}?comment_id={comment}"
