"""Flickr behind the `Network` interface: the REST API (`FLICKR_API_BASE_URL`) signed
with OAuth 1.0a (requests-oauthlib).

Comments are read from the account's 50 most recently uploaded photos
(flickr.people.getPhotos + flickr.photos.comments.getList). A comment's external id is
`<datecreate>:<photo id>:<comment id>`: the date first, so the polling cursor orders by
time and is the next poll's `min_comment_date`. A reply is a comment on the same photo
(Flickr comments are flat). A new post is a photo: `publish(text, images=[...])` uploads
it with the first line as title, the rest as description and #hashtags as tags.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import requests
from requests_oauthlib import OAuth1

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
from integrations.common import Retrier, Verdict, same_text
from integrations.flickr import budget as call_budget

log = logs.get("commsdesk.flickr")
DEFAULT_BASE = "https://api.flickr.com"
MAX_LENGTH = 5000  # keep comments and descriptions readable; Flickr has no hard small limit
AUTH_CODES = {96, 97, 98, 99, 100}
RETRY_CODES = {105, 106}  # service currently unavailable / write operation failed


class FlickrError(Exception):
    def __init__(self, status: int, code: int, message: str, retry_after: float | None = None):
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


def build(account: AccountConfig, settings: Settings) -> FlickrNetwork:
    return FlickrNetwork(account, settings.credentials_for(account), settings.env.flickr_api_base_url)


def comment_external_id(datecreate: str | int, photo_id: str, comment_id: str) -> str:
    return f"{int(datecreate):010d}:{photo_id}:{comment_id}"


class FlickrNetwork(NetworkBase):
    network = "flickr"
    capabilities = frozenset({Capability.READ_MENTIONS, Capability.REPLY, Capability.MEDIA})
    max_length = MAX_LENGTH

    def __init__(self, account: AccountConfig, creds: dict[str, str], base_url: str, *,
                 max_attempts: int = 4, max_wait_seconds: float = 900.0, timeout: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep,
                 budget: call_budget.CallBudget | None = None, photos_per_poll: int = 50):
        self.account = account
        self.base_url = base_url.rstrip("/")
        self.upload_url = ("https://up.flickr.com/services/upload/" if self.base_url == DEFAULT_BASE
                           else f"{self.base_url}/services/upload/")
        self.api_key = creds["api_key"]
        self._auth = OAuth1(creds["api_key"], creds["api_secret"], creds["oauth_token"],
                            creds["oauth_token_secret"], signature_type="AUTH_HEADER")
        self._session = requests.Session()
        self._timeout = timeout
        self._nsid = account.user_id
        self.max_attempts = max_attempts
        self.max_wait_seconds = max_wait_seconds
        self._sleep = sleep
        # 3,600 calls an hour for the key, whichever account makes them (budget.py)
        self.budget = budget or call_budget.for_key(self.base_url, creds["api_key"])
        self.budget.register(account.name)
        self.photos_per_poll = photos_per_poll
        self._calls_made = 0

    # ------------------------------------------------------------ plumbing

    def _classify(self, exc: BaseException) -> Verdict | None:
        if isinstance(exc, FlickrError):
            if exc.status == 429:
                return Verdict("rate_limited", "rate limited", wait=exc.retry_after)
            if exc.status >= 500 or exc.code in RETRY_CODES:
                return Verdict("transient", f"Flickr answered {exc.status} ({exc.message})")
            return Verdict("permanent", f"Flickr refused it (code {exc.code}): {exc.message}")
        if isinstance(exc, requests.RequestException):
            return Verdict("transient", f"cannot reach Flickr ({type(exc).__name__})")
        if isinstance(exc, ValueError | ET.ParseError):
            return Verdict("transient", "Flickr sent a malformed answer")
        return None

    def _retry(self, what: str, fn: Callable[[], Any], *, retry_lost_answers: bool = True) -> Any:
        return Retrier("Flickr", self._classify, max_attempts=self.max_attempts,
                       max_wait_seconds=self.max_wait_seconds, sleep=self._sleep
                       ).call(what, fn, retry_lost_answers=retry_lost_answers)

    def _spend(self) -> None:
        """Count one call against the key's hour, or refuse it (as rate limited, with the
        wait until the hour has room) rather than take the key over Flickr's limit."""
        if not self.budget.spend():
            raise FlickrError(429, 0, "the Flickr API key's 3,600 calls this hour are spent",
                              retry_after=self.budget.wait_for() + 1)
        self._calls_made += 1

    @staticmethod
    def _check_http(resp: requests.Response) -> None:
        if resp.status_code == 429 or resp.status_code >= 500:
            retry = resp.headers.get("Retry-After")
            raise FlickrError(resp.status_code, 0, resp.reason or "error",
                              float(retry) if retry and retry.isdigit() else None)

    def _rest(self, what: str, method: str, *, post: bool = False,
              retry_lost_answers: bool = True, **params: Any) -> dict[str, Any]:
        args = {"method": method, "format": "json", "nojsoncallback": "1", **params}

        def call() -> dict[str, Any]:
            url = f"{self.base_url}/services/rest/"
            self._spend()
            if post:
                resp = self._session.post(url, data=args, auth=self._auth, timeout=self._timeout)
            else:
                resp = self._session.get(url, params=args, auth=self._auth, timeout=self._timeout)
            self._check_http(resp)
            data = resp.json()
            if data.get("stat") != "ok":
                raise FlickrError(resp.status_code, int(data.get("code") or 0),
                                  str(data.get("message") or "failed"))
            return dict(data)

        return dict(self._retry(what, call, retry_lost_answers=retry_lost_answers))

    # ------------------------------------------------------------ Network

    def account_user_id(self) -> str:
        if self._nsid is None:
            self._nsid = str(self._rest("looking up the account", "flickr.test.login")["user"]["id"])
        return self._nsid

    def verify_credentials(self) -> str:
        return str(self._rest("checking the OAuth token", "flickr.test.login")["user"]["id"])

    def fetch_mentions(self, since_id: str | None) -> Iterator[MentionPage]:
        """Comments newer than the cursor on the account's recent photos. A pass costs up
        to 1 + `photos_per_poll` calls (+1 the first time, to learn the account's id);
        when the key's paced share for this account has not that many, the pass is
        skipped (nothing read, the cursor stays) and the next poll tries again."""
        pass_calls = 1 + self.photos_per_poll + (1 if self._nsid is None else 0)
        if not self.budget.reserve_poll(self.account.name, pass_calls):
            log.info("Flickr poll deferred: the API key's hourly calls are paced",
                     account=self.account.name, calls_last_hour=self.budget.used())
            return
        before = self._calls_made
        try:
            yield from self._fetch_comments(since_id)
        finally:
            self.budget.refund(self.account.name, pass_calls - (self._calls_made - before))

    def _fetch_comments(self, since_id: str | None) -> Iterator[MentionPage]:
        me = self.account_user_id()
        since_date = int(since_id.split(":", 1)[0]) if since_id else None
        photos = self._rest("listing the account's photos", "flickr.people.getPhotos",
                            user_id="me", per_page=str(self.photos_per_poll),
                            extras="date_upload,path_alias")
        for photo in ((photos.get("photos") or {}).get("photo") or [])[:self.photos_per_poll]:
            params: dict[str, Any] = {"photo_id": photo["id"]}
            if since_date is not None:
                params["min_comment_date"] = str(since_date)
            data = self._rest("reading comments", "flickr.photos.comments.getList", **params)
            mentions = []
            for c in (data.get("comments") or {}).get("comment") or []:
                if c.get("author") == me:
                    continue
                ext = comment_external_id(c.get("datecreate") or 0, str(photo["id"]), str(c["id"]))
                # only the date orders comments: one made in the cursor's second on another
                # photo may sort below the cursor's id yet be new, so the cursor's second is
                # read again (min_comment_date is inclusive), all but the cursor's own
                # comment; one stored before is de-duplicated by its id (services/ingest.py)
                if since_date is not None and (int(c.get("datecreate") or 0) < since_date
                                               or ext == since_id):
                    continue
                mentions.append(FetchedMention(
                    external_id=ext, text=str(c.get("_content") or ""),
                    author_external_id=c.get("author"),
                    author_handle=c.get("path_alias") or c.get("authorname"),
                    author_name=c.get("realname") or c.get("authorname"),
                    url=c.get("permalink"),
                    posted_at=datetime.fromtimestamp(int(c.get("datecreate") or 0), UTC),
                    conversation_id=str(photo["id"]),
                ))
            if mentions:
                yield MentionPage(mentions)

    def publish(self, text: str, *, in_reply_to: str | None = None,
                images: Sequence[Image] = (), key: str | None = None) -> Published:
        if in_reply_to is not None:
            photo_id = in_reply_to.split(":")[1]
            out = self._rest("commenting on the photo", "flickr.photos.comments.addComment",
                             post=True, retry_lost_answers=False, photo_id=photo_id,
                             comment_text=text)
            comment = out["comment"]
            return Published(str(comment["id"]), str(comment.get("permalink") or
                                                      self.post_url(photo_id)))
        if not images:
            raise PermanentError("a Flickr post is a photo: attach an image (with alt text)")
        return self._upload(text, images[0])

    @staticmethod
    def _photo_fields(text: str, alt_text: str) -> tuple[str, str]:
        """(title, description) of the photo a post becomes."""
        title, _, rest = text.partition("\n")
        # Flickr's API has no alt-text field: the description carries it, marked as such
        description = (rest.strip() + "\n\n" if rest.strip() else "") + f"Image: {alt_text}"
        return title.strip(), description

    def _upload(self, text: str, image: Image) -> Published:
        if not image.alt_text.strip():
            raise PermanentError("the image has no alt text")
        tags = " ".join(dict.fromkeys(re.findall(r"#(\w+)", text)))
        title, description = self._photo_fields(text, image.alt_text)
        fields = {"title": title, "description": description, "tags": tags,
                  "is_public": "1", "safety_level": "1", "content_type": "1"}

        def call() -> str:
            # Flickr signs every upload field but `photo` (specs/flickr/NOTES.md §3), which
            # a generic OAuth client does not do for a multipart body: sign the fields as a
            # form (as flickrapi's do_upload does), then send them multipart with the photo
            signed = requests.Request("POST", self.upload_url, data=fields,
                                      auth=self._auth).prepare()
            authorization = signed.headers["Authorization"]
            self._spend()
            resp = self._session.post(
                self.upload_url, data=fields,
                headers={"Authorization": authorization.decode() if isinstance(authorization, bytes)
                         else authorization},
                files={"photo": (image.filename, image.data, image.mime_type)},
                timeout=self._timeout)
            self._check_http(resp)
            root = ET.fromstring(resp.content)
            if root.get("stat") != "ok":
                err = root.find("err")
                raise FlickrError(resp.status_code, int(err.get("code", 0)) if err is not None else 0,
                                  err.get("msg", "upload failed") if err is not None else "upload failed")
            photo_id = root.findtext("photoid")
            if not photo_id:
                raise ValueError("no photoid")
            return photo_id

        photo_id = self._retry("uploading the photo", call, retry_lost_answers=False)
        return Published(photo_id, self.post_url(photo_id))

    def find_published(
        self, text: str, *, in_reply_to: str | None, not_before: datetime,
        key: str | None = None
    ) -> Published | None:
        """A comment by the account on the photo since `not_before`; an upload: a photo of
        the account's uploaded since `not_before` (its upload-time window) with the title
        and description the post makes (Flickr takes no client id)."""
        if in_reply_to is None:
            title, _ = self._photo_fields(text, "")
            data = self._rest("checking the account's photos", "flickr.people.getPhotos",
                              user_id="me", per_page="50", extras="description,date_upload",
                              min_upload_date=str(int(not_before.timestamp())))
            for photo in (data.get("photos") or {}).get("photo") or []:
                described = str((photo.get("description") or {}).get("_content") or "")
                _, _, rest = text.partition("\n")
                if same_text(str(photo.get("title") or ""), title) and (
                        not rest.strip() or same_text(described.rsplit("\n\nImage: ", 1)[0],
                                                      rest)):
                    return Published(str(photo["id"]), self.post_url(str(photo["id"])))
            return None
        me = self.account_user_id()
        photo_id = in_reply_to.split(":")[1]
        data = self._rest("checking the photo's comments", "flickr.photos.comments.getList",
                          photo_id=photo_id, min_comment_date=str(int(not_before.timestamp())))
        for c in (data.get("comments") or {}).get("comment") or []:
            if c.get("author") == me and same_text(str(c.get("_content") or ""), text):
                return Published(str(c["id"]), str(c.get("permalink") or self.post_url(photo_id)))
        return None

    def followers(self) -> int:
        raise PermanentError("Flickr's API does not give a follower count")

    def weighted_length(self, text: str) -> int:
        return len(text)

    def post_url(self, external_id: str, author_handle: str | None = None) -> str:
        photo_id = external_id.split(":")[1] if ":" in external_id else external_id
        return f"https://www.flickr.com/photos/{author_handle or self.account.handle}/{photo_id}/"
