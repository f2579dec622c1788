"""Pinterest behind the `Network` interface: API v5 over httpx (`PINTEREST_API_BASE_URL`).

A post is a pin on the account's `board_id`: the draft's first line is the title
(100 characters at most), the rest the description (800), its first link the pin's
link, and the image (required, with alt text, 500) goes as base64. Pinterest's API
reads no comments or mentions, so there is nothing to poll and nothing to reply to.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import httpx

from bot.config import AccountConfig, Settings
from integrations.base import (
    Capability,
    Image,
    MentionPage,
    NetworkBase,
    PermanentError,
    Published,
)
from integrations.common import URL_RE, Retrier, Verdict, parse_time, reset_wait, same_text

TITLE_MAX = 100
DESCRIPTION_MAX = 800
ALT_TEXT_MAX = 500
IMAGE_TYPES = frozenset({"image/jpeg", "image/png"})


class PinterestError(Exception):
    def __init__(self, status: int, code: int, message: str, headers: httpx.Headers):
        super().__init__(f"{status} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def build(account: AccountConfig, settings: Settings) -> PinterestNetwork:
    return PinterestNetwork(account, settings.credentials_for(account)["access_token"],
                            settings.env.pinterest_api_base_url)



def split_pin(text: str) -> tuple[str, str, str | None]:
    """(title, description, link) from a draft's text."""
    title, _, rest = text.strip().partition("\n")
    link = URL_RE.search(text)
    return title.strip(), rest.strip(), link.group(0) if link else None


class PinterestNetwork(NetworkBase):
    network = "pinterest"
    capabilities = frozenset({Capability.POST, Capability.MEDIA, Capability.FOLLOWERS,
                              Capability.DELETE})
    max_length = TITLE_MAX + 1 + DESCRIPTION_MAX
    # the only image types Pinterest takes (ContentType in the v5 spec): others are
    # converted (or refused) when shared on a draft, by services/images.py
    image_types = IMAGE_TYPES

    def __init__(self, account: AccountConfig, access_token: str, base_url: str, *,
                 max_attempts: int = 4, max_wait_seconds: float = 900.0, timeout: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep):
        self.account = account
        self.board_id = account.board_id
        self._http = httpx.Client(base_url=f"{base_url.rstrip('/')}/v5", timeout=timeout,
                                  headers={"Authorization": f"Bearer {access_token}"})
        self._user_id = account.user_id
        self.max_attempts = max_attempts
        self.max_wait_seconds = max_wait_seconds
        self._sleep = sleep

    def _classify(self, exc: BaseException) -> Verdict | None:
        if isinstance(exc, PinterestError):
            if exc.status == 429:
                return Verdict("rate_limited", "rate limited",
                               wait=reset_wait(exc.headers.get("x-ratelimit-reset")))
            if exc.status >= 500:
                return Verdict("transient", f"Pinterest answered {exc.status}")
            return Verdict("permanent", f"Pinterest answered {exc.status}: {exc.message}")
        if isinstance(exc, httpx.TransportError):
            return Verdict("transient", f"cannot reach Pinterest ({type(exc).__name__})")
        if isinstance(exc, ValueError):
            return Verdict("transient", "Pinterest sent a malformed answer")
        return None

    def _api(self, what: str, method: str, path: str, *, body: Any = None,
             params: dict[str, Any] | None = None, retry_lost_answers: bool = True) -> Any:
        def call() -> Any:
            resp = self._http.request(method, path, json=body, params=params)
            if resp.status_code >= 400:
                try:
                    data = resp.json()
                except ValueError:
                    data = {}
                raise PinterestError(resp.status_code, int(data.get("code") or 0),
                                     str(data.get("message") or resp.reason_phrase), resp.headers)
            return resp.json()

        return Retrier("Pinterest", self._classify, max_attempts=self.max_attempts,
                       max_wait_seconds=self.max_wait_seconds, sleep=self._sleep
                       ).call(what, call, retry_lost_answers=retry_lost_answers)

    def account_user_id(self) -> str:
        if self._user_id is None:
            me = self._api("looking up the account", "GET", "/user_account")
            self._user_id = str(me.get("id") or me.get("username"))
        return self._user_id

    def verify_credentials(self) -> str:
        me = self._api("checking the access token", "GET", "/user_account")
        return str(me.get("id") or me.get("username"))

    def fetch_mentions(self, since_id: str | None) -> Iterator[MentionPage]:
        return iter(())  # the v5 API has no comments or mentions to read

    def publish(self, text: str, *, in_reply_to: str | None = None,
                images: Sequence[Image] = (), key: str | None = None) -> Published:
        if in_reply_to is not None:
            raise PermanentError("Pinterest's API cannot reply to comments")
        if not images:
            raise PermanentError("a pin needs an image (with alt text)")
        if not self.board_id:
            raise PermanentError(f"accounts '{self.account.name}': board_id is not set")
        image = images[0]
        title, description, link = split_pin(text)
        if len(title) > TITLE_MAX:
            raise PermanentError(f"the title (first line) is {len(title)} characters; "
                                 f"Pinterest allows {TITLE_MAX}")
        if len(description) > DESCRIPTION_MAX:
            raise PermanentError(f"the description is {len(description)} characters; "
                                 f"Pinterest allows {DESCRIPTION_MAX}")
        if not image.alt_text.strip() or len(image.alt_text) > ALT_TEXT_MAX:
            raise PermanentError(f"the image needs alt text of 1 to {ALT_TEXT_MAX} characters")
        if image.mime_type not in IMAGE_TYPES:
            raise PermanentError(f"Pinterest takes only JPEG and PNG images, not {image.mime_type}")
        body: dict[str, Any] = {
            "board_id": self.board_id, "title": title, "description": description,
            "alt_text": image.alt_text,
            "media_source": {"source_type": "image_base64", "content_type": image.mime_type,
                             "data": base64.b64encode(image.data).decode()},
        }
        if link:
            body["link"] = link
        pin = self._api("creating the pin", "POST", "/pins", body=body, retry_lost_answers=False)
        return Published(str(pin["id"]), self.post_url(str(pin["id"])))

    def find_published(
        self, text: str, *, in_reply_to: str | None, not_before: datetime,
        key: str | None = None
    ) -> Published | None:
        """The pin on the board with this title and description, created since `not_before`
        (the API takes no client id for a pin)."""
        if in_reply_to is not None or not self.board_id:
            return None
        title, description, _ = split_pin(text)
        data = self._api("checking the board", "GET", f"/boards/{self.board_id}/pins",
                         params={"page_size": 25})
        for pin in data.get("items") or []:
            created = parse_time(pin.get("created_at"))
            if created is not None and created < not_before:
                continue
            if same_text(str(pin.get("title") or ""), title) \
                    and same_text(str(pin.get("description") or ""), description):
                return Published(str(pin["id"]), self.post_url(str(pin["id"])))
        return None

    def followers(self) -> int:
        me = self._api("reading the follower count", "GET", "/user_account")
        return int(me.get("follower_count") or 0)

    def weighted_length(self, text: str) -> int:
        return len(text.strip())

    def post_url(self, external_id: str, author_handle: str | None = None) -> str:
        return f"https://www.pinterest.com/pin/{external_id}/"
