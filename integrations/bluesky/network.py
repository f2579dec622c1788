"""Bluesky behind the `Network` interface: XRPC over httpx against the account's PDS
(`BLUESKY_API_BASE_URL`, default https://bsky.social), signed in with an app password.

A mention's external id is `rkey/did` (see `richtext.compact_id`). A reply looks its
parent up (app.bsky.feed.getPosts) and sets both reply refs: `parent` is the post
answered, `root` the parent's own root (or the parent when it starts the thread).
Links, @handles and #hashtags in the text get facets, so they are live on Bluesky.

Images (at most 4, each at most 1,000,000 bytes, as app.bsky.embed.images allows) are
uploaded first with com.atproto.repo.uploadBlob (the raw bytes, Content-Type their mime
type); the post's `embed` lists the returned blob refs with their alt text and, when the
image's header gives it, the aspect ratio. A blob no record refers to is dropped by the
PDS, so an upload whose answer is lost is simply uploaded again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

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
from integrations.bluesky import richtext
from integrations.common import Retrier, Verdict, check_images, parse_time, reset_wait, same_text

MENTION_REASONS = ("mention", "reply", "quote")
TIME_CURSOR = "t:"  # the polling cursor: the newest notification's indexedAt
EMBED_IMAGES = "app.bsky.embed.images"
MAX_IMAGES = 4
MAX_IMAGE_BYTES = 1_000_000  # app.bsky.embed.images#image: maxSize


class XrpcError(Exception):
    def __init__(self, status: int, error: str, message: str, headers: httpx.Headers):
        super().__init__(f"{status} {error}: {message}")
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers


def build(account: AccountConfig, settings: Settings) -> BlueskyNetwork:
    return BlueskyNetwork(account, settings.credentials_for(account)["app_password"],
                          settings.env.bluesky_api_base_url)



class BlueskyNetwork(NetworkBase):
    network = "bluesky"
    capabilities = frozenset(
        {Capability.READ_MENTIONS, Capability.REPLY, Capability.POST, Capability.MEDIA,
         Capability.REPLY_MEDIA, Capability.DELETE, Capability.FOLLOWERS}
    )
    max_length = richtext.MAX_GRAPHEMES

    def __init__(self, account: AccountConfig, app_password: str, base_url: str, *,
                 max_attempts: int = 4, max_wait_seconds: float = 900.0, timeout: float = 15.0,
                 sleep: Callable[[float], None] = time.sleep):
        self.account = account
        self.base_url = base_url.rstrip("/")
        self._password = app_password
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)
        self._session: dict[str, Any] | None = None
        self._did = account.user_id
        self.max_attempts = max_attempts
        self.max_wait_seconds = max_wait_seconds
        self._sleep = sleep

    # ------------------------------------------------------------ plumbing

    def _classify(self, exc: BaseException) -> Verdict | None:
        if isinstance(exc, XrpcError):
            if exc.status == 429:
                return Verdict("rate_limited", "rate limited",
                               wait=reset_wait(exc.headers.get("ratelimit-reset")))
            if exc.status >= 500:
                return Verdict("transient", f"Bluesky answered {exc.status} {exc.error}")
            return Verdict("permanent", f"Bluesky answered {exc.status} {exc.error}: {exc.message}")
        if isinstance(exc, httpx.TransportError):
            return Verdict("transient", f"cannot reach {self.base_url} ({type(exc).__name__})")
        if isinstance(exc, ValueError):  # a body that is not JSON
            return Verdict("transient", "Bluesky sent a malformed answer")
        return None

    def _call(self, what: str, fn: Callable[[], Any], *, retry_lost_answers: bool = True) -> Any:
        return Retrier("Bluesky", self._classify, max_attempts=self.max_attempts,
                       max_wait_seconds=self.max_wait_seconds, sleep=self._sleep
                       ).call(what, fn, retry_lost_answers=retry_lost_answers)

    def _raw(self, method: str, nsid: str, *, params: dict[str, Any] | None = None,
             body: Any = None, token: str | None = None, content: bytes | None = None,
             content_type: str | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if content is not None:
            headers["Content-Type"] = content_type or "application/octet-stream"
            resp = self._http.request(method, f"/xrpc/{nsid}", params=params, content=content,
                                      headers=headers)
        else:
            resp = self._http.request(method, f"/xrpc/{nsid}", params=params, json=body,
                                      headers=headers)
        if resp.status_code >= 400:
            try:
                data = resp.json()
            except ValueError:
                data = {}
            raise XrpcError(resp.status_code, str(data.get("error") or resp.reason_phrase),
                            str(data.get("message") or ""), resp.headers)
        return resp.json() if resp.content else {}

    def _login(self) -> dict[str, Any]:
        session = self._raw("POST", "com.atproto.server.createSession",
                            body={"identifier": self._did or self.account.handle,
                                  "password": self._password})
        self._session = session
        self._did = session["did"]
        return session

    def _xrpc(self, method: str, nsid: str, *, params: dict[str, Any] | None = None,
              body: Any = None, content: bytes | None = None,
              content_type: str | None = None) -> dict[str, Any]:
        """One authenticated call; an expired or revoked session is renewed once."""
        session = self._session or self._login()
        extra: dict[str, Any] = {"content": content, "content_type": content_type}
        try:
            return self._raw(method, nsid, params=params, body=body, token=session["accessJwt"],
                             **extra)
        except XrpcError as exc:
            if exc.error not in ("ExpiredToken", "InvalidToken", "AuthenticationRequired"):
                raise
        try:
            session = self._raw("POST", "com.atproto.server.refreshSession",
                                token=session["refreshJwt"])
            self._session = session
        except XrpcError:
            session = self._login()
        return self._raw(method, nsid, params=params, body=body, token=session["accessJwt"],
                         **extra)

    # ------------------------------------------------------------ Network

    def account_user_id(self) -> str:
        if self._did is None:
            self._call("signing in", self._login)
        assert self._did is not None
        return self._did

    def verify_credentials(self) -> str:
        return str(self._call("signing in", self._login)["did"])

    def fetch_mentions(self, since_id: str | None) -> Iterator[MentionPage]:
        """Mention, reply and quote notifications, newest first, paged with the API's own
        `cursor`, until the notifications indexed before the stored cursor.

        Record keys are chosen by the client (a post from a client with a slow clock has
        an older TID), so they are no cursor: the stored cursor is the newest `indexedAt`
        seen (`t:<indexedAt>`, the AppView's own order, which its `cursor` pages by), and
        notifications indexed at that same moment are read again and de-duplicated by
        URI (here and by the mention's unique external id). A cursor stored before (a
        bare `rkey/did`) is read once: pages until one reaches it, then a `t:` cursor."""
        since_at = parse_time(since_id[len(TIME_CURSOR):]) \
            if since_id and since_id.startswith(TIME_CURSOR) else None
        legacy = since_id if since_id and since_at is None else None
        newest: tuple[datetime, str] | None = None
        seen: set[str] = set()
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 50}
            if cursor:
                params["cursor"] = cursor
            data = self._call("fetching notifications",
                              lambda p=params: self._xrpc("GET", "app.bsky.notification.listNotifications",  # type: ignore[misc]
                                                          params=p))
            mentions: list[FetchedMention] = []
            reached = False
            for note in data.get("notifications") or []:
                indexed = parse_time(note.get("indexedAt"))
                if since_at is not None and indexed is not None and indexed < since_at:
                    reached = True
                    continue
                if indexed is not None and (newest is None or indexed > newest[0]):
                    newest = (indexed, str(note["indexedAt"]))
                if note.get("reason") not in MENTION_REASONS or note.get("uri") in seen:
                    continue
                try:
                    external_id = richtext.compact_id(note["uri"])
                except (KeyError, ValueError):
                    continue
                seen.add(note["uri"])
                if legacy and external_id <= legacy:
                    reached = True
                mentions.append(self._mention(note, external_id))
            yield MentionPage(mentions, cursor=f"{TIME_CURSOR}{newest[1]}" if newest else None)
            cursor = data.get("cursor")
            if reached or not cursor or not data.get("notifications"):
                return

    def _mention(self, note: dict[str, Any], external_id: str) -> FetchedMention:
        record = note.get("record") or {}
        author = note.get("author") or {}
        reply = record.get("reply") or {}

        def ref(key: str) -> str | None:
            try:
                return richtext.compact_id(reply[key]["uri"])
            except (KeyError, TypeError, ValueError):
                return None

        return FetchedMention(
            external_id=external_id,
            text=str(record.get("text") or ""),
            author_external_id=author.get("did"),
            author_handle=author.get("handle"),
            author_name=author.get("displayName") or author.get("handle"),
            url=richtext.web_url(external_id, author.get("handle")),
            posted_at=parse_time(record.get("createdAt")) or parse_time(note.get("indexedAt")),
            conversation_id=ref("root") or external_id,
            in_reply_to_external_id=ref("parent"),
        )

    def _resolve(self, handle: str) -> str | None:
        try:
            return str(self._xrpc("GET", "com.atproto.identity.resolveHandle",
                                  params={"handle": handle})["did"])
        except (XrpcError, KeyError):
            return None

    def reply_refs(self, in_reply_to: str) -> dict[str, Any]:
        """`{"root": ..., "parent": ...}` strong refs (uri + cid) for a reply to a post."""
        try:
            uri = richtext.uri_from_compact(in_reply_to)
        except ValueError as exc:
            raise PermanentError(str(exc)) from None
        data = self._call("reading the post replied to",
                          lambda: self._xrpc("GET", "app.bsky.feed.getPosts", params={"uris": uri}))
        posts = data.get("posts") or []
        if not posts:
            raise PermanentError("the post replied to no longer exists on Bluesky")
        parent = {"uri": posts[0]["uri"], "cid": posts[0]["cid"]}
        root = ((posts[0].get("record") or {}).get("reply") or {}).get("root") or parent
        return {"root": {"uri": root["uri"], "cid": root["cid"]}, "parent": parent}

    def publish(self, text: str, *, in_reply_to: str | None = None,
                images: Sequence[Image] = (), key: str | None = None) -> Published:
        check_images(images, network="Bluesky", max_images=MAX_IMAGES,
                     max_bytes=MAX_IMAGE_BYTES, max_bytes_label="1,000,000 bytes (1 MB)")
        did = self.account_user_id()
        record: dict[str, Any] = {
            "$type": richtext.POST_COLLECTION,
            "text": text,
            "createdAt": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "langs": ["en"],
        }
        found = self._call("finding links, mentions and hashtags",
                           lambda: richtext.facets(text, self._resolve))
        if found:
            record["facets"] = found
        if in_reply_to is not None:
            record["reply"] = self.reply_refs(in_reply_to)
        if images:
            record["embed"] = {"$type": EMBED_IMAGES, "images": [
                self._upload(image, n, len(images)) for n, image in enumerate(images, 1)]}
        body: dict[str, Any] = {"repo": did, "collection": richtext.POST_COLLECTION,
                                "record": record}
        rkey = key if key and richtext.TID_RE.fullmatch(key) else None
        if rkey:
            body["rkey"] = rkey  # ours: the PDS refuses a second record with it

        def create() -> dict[str, Any]:
            try:
                return self._xrpc("POST", "com.atproto.repo.createRecord", body=body)
            except XrpcError as exc:
                # a record key already taken: the PDS answers 500 (or, newer, an error
                # naming it); if the record there is ours, that is the post
                if rkey and (exc.status >= 500 or "Exist" in exc.error):
                    mine = self._own_record(did, rkey)
                    if mine is not None and mine.get("value", {}).get("text") == text:
                        return mine
                raise

        created = self._call("publishing", create, retry_lost_answers=False)
        external_id = richtext.compact_id(created["uri"])
        return Published(external_id, self.post_url(external_id))

    def _own_record(self, did: str, rkey: str) -> dict[str, Any] | None:
        """The account's post at record key `rkey` (com.atproto.repo.getRecord), if any."""
        try:
            return self._xrpc("GET", "com.atproto.repo.getRecord", params={
                "repo": did, "collection": richtext.POST_COLLECTION, "rkey": rkey})
        except XrpcError as exc:
            if exc.status == 400 and exc.error in ("RecordNotFound", "InvalidRequest"):
                return None
            raise

    def _upload(self, image: Image, n: int, of: int) -> dict[str, Any]:
        """Upload one image's bytes; its entry in an app.bsky.embed.images embed."""
        what = f"uploading image {n} of {of}" if of > 1 else "uploading the image"
        out = self._call(what, lambda: self._xrpc("POST", "com.atproto.repo.uploadBlob",
                                                  content=image.data,
                                                  content_type=image.mime_type))
        entry: dict[str, Any] = {"alt": image.alt_text, "image": out["blob"]}
        size = image_size(image.data)
        if size and size[0] > 0 and size[1] > 0:
            entry["aspectRatio"] = {"width": size[0], "height": size[1]}
        return entry

    def find_published(
        self, text: str, *, in_reply_to: str | None, not_before: datetime,
        key: str | None = None
    ) -> Published | None:
        did = self.account_user_id()
        if key and richtext.TID_RE.fullmatch(key):  # exact: the record key we chose
            mine = self._call("checking for the post", lambda: self._own_record(did, key))
            if mine is not None:
                external_id = richtext.compact_id(mine["uri"])
                return Published(external_id, self.post_url(external_id))
        data = self._call("checking the account's posts", lambda: self._xrpc(
            "GET", "com.atproto.repo.listRecords",
            params={"repo": did, "collection": richtext.POST_COLLECTION, "limit": 50}))
        parent_uri = richtext.uri_from_compact(in_reply_to) if in_reply_to else None
        for item in data.get("records") or []:
            value = item.get("value") or {}
            created = parse_time(value.get("createdAt"))
            if created is not None and created < not_before:
                continue
            replied = ((value.get("reply") or {}).get("parent") or {}).get("uri")
            if replied == parent_uri and same_text(str(value.get("text") or ""), text):
                external_id = richtext.compact_id(item["uri"])
                return Published(external_id, self.post_url(external_id))
        return None

    def followers(self) -> int:
        did = self.account_user_id()
        data = self._call("reading the follower count", lambda: self._xrpc(
            "GET", "app.bsky.actor.getProfile", params={"actor": did}))
        return int(data.get("followersCount") or 0)

    def weighted_length(self, text: str) -> int:
        return richtext.length(text)

    def post_url(self, external_id: str, author_handle: str | None = None) -> str:
        return richtext.web_url(external_id, author_handle or self.account.handle)


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, GIF or JPEG header; None when it cannot be read."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 <= len(data) and data[i] == 0xFF:
            marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD,
                          0xCE, 0xCF):
                return (int.from_bytes(data[i + 7:i + 9], "big"),
                        int.from_bytes(data[i + 5:i + 7], "big"))
            i += 2 + length
    return None
