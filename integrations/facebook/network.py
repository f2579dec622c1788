"""A Facebook Page behind the `Network` interface: the Graph API over httpx, with a pinned
version (`FACEBOOK_GRAPH_VERSION`) at `FACEBOOK_GRAPH_BASE_URL`, one page access token per
page. Comments and messages come in by webhook (see `webhook.py`), not by polling.

External ids: a comment is Graph's `<post>_<comment>` id; a Messenger message is
`m:<sender PSID>:<timestamp ms>`, which is all a reply needs (recipient + the window).

A new post may carry images, each with its alt text (`alt_text_custom`): one image is a
photo post (POST /{page-id}/photos, multipart `source`, the text as its `caption`);
several are uploaded unpublished (`published=false`) and then posted together with
POST /{page-id}/feed and `attached_media`. An unpublished photo whose answer was lost is
harmless, so those uploads are retried. Graph cannot give a photo in a comment or a
Messenger reply its alt text, so replies with images are refused (PermanentError).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from commsdesk.config import AccountConfig, Settings
from commsdesk.integrations.base import (
    Capability,
    Image,
    MentionPage,
    PermanentError,
    Published,
)
from commsdesk.integrations.common import Retrier, Verdict

MAX_LENGTH = 63_206
MESSAGING_WINDOW = timedelta(hours=24)
RATE_LIMIT_CODES = {4, 17, 32, 613, 80001}  # Graph's "request limit reached" family
TRANSIENT_CODES = {1, 2}  # unknown error / service temporarily unavailable


class GraphError(Exception):
    def __init__(self, status: int, error: dict[str, Any]):
        super().__init__(f"{status} {error.get('message')}")
        self.status = status
        self.code = int(error.get("code") or 0)
        self.message = str(error.get("message") or "")


def build(account: AccountConfig, settings: Settings) -> FacebookNetwork:
    from commsdesk.integrations.registry import credentials_for

    env = settings.env
    return FacebookNetwork(account, credentials_for(account, settings)["page_access_token"],
                           env.facebook_graph_base_url, env.facebook_graph_version,
                           app_secret=env.facebook_app_secret)


def message_id(psid: str, timestamp_ms: int) -> str:
    return f"m:{psid}:{timestamp_ms}"


class FacebookNetwork:
    network = "facebook"
    capabilities = frozenset(
        {Capability.WEBHOOKS, Capability.REPLY, Capability.POST, Capability.MEDIA,
         Capability.DELETE, Capability.FOLLOWERS}  # MEDIA: new posts only (see the module)
    )
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

    # ------------------------------------------------------------ plumbing

    def _classify(self, exc: BaseException) -> Verdict | None:
        if isinstance(exc, GraphError):
            if exc.code in RATE_LIMIT_CODES or exc.status == 429:
                return Verdict("rate_limited", exc.message, wait=60.0)
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
            if resp.status_code >= 400:
                try:
                    error = resp.json().get("error") or {}
                except ValueError:
                    error = {"message": resp.reason_phrase}
                raise GraphError(resp.status_code, error)
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
        """Comments and messages arrive by webhook (`/webhooks/facebook`): nothing to poll."""
        return iter(())

    def publish(self, text: str, *, in_reply_to: str | None = None,
                images: Sequence[Image] = ()) -> Published:
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
        for image in images:
            if not image.alt_text.strip():
                raise PermanentError(f"image {image.filename} has no alt text")
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
        self, text: str, *, in_reply_to: str | None, not_before: datetime
    ) -> Published | None:
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
            if item.get("message") == text and author in (None, self.page_id):
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
