"""A Bluesky PDS + AppView on 127.0.0.1 speaking XRPC JSON: com.atproto.server.createSession
/ refreshSession, com.atproto.repo.createRecord / listRecords, com.atproto.identity.resolveHandle,
app.bsky.notification.listNotifications, app.bsky.feed.getPosts, app.bsky.actor.getProfile,
com.atproto.repo.uploadBlob (raw bytes; answers `{"blob": {"$type": "blob", "ref": {"$link":
cid}, "mimeType", "size"}}`). A post's `app.bsky.embed.images` embed (at most 4 images, each
a blob this account uploaded, image/*, at most 1,000,000 bytes, with `alt`) is checked as
the PDS's lexicon validation does, stored with the record and shown as an
`app.bsky.embed.images#view` in post views.
Errors are `{"error": ..., "message": ...}`; every answer carries `ratelimit-*` headers.

Faults per NSID (e.g. ``com.atproto.repo.createRecord``): the shared kinds of
:mod:`bot.emulators.base`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.emulators.base import Emulator, RateHeaders, SlidingWindow
from bot.emulators.http import Fault, Request, Response, json_response
from bot.emulators.search import matches
from integrations.bluesky import richtext
from integrations.bluesky.richtext import TID_RE as _TID

RATE_LIMIT = 3000  # per 5 minutes, per IP, as the PDS docs say
MAX_BLOB_BYTES = 50 * 1024 * 1024  # the PDS's upload limit; the lexicon's are smaller
MAX_EMBED_IMAGE_BYTES = 1_000_000  # app.bsky.embed.images#image maxSize


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _cid(data: Any) -> str:
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).digest()
    return "bafyrei" + base64.b32encode(digest).decode().lower().rstrip("=")[:52]


def _blob_cid(data: bytes) -> str:
    """A CIDv1 (raw codec, sha-256) in base32, as the PDS gives blobs."""
    digest = b"\x01\x55\x12\x20" + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(digest).decode().lower().rstrip("=")


def _jwt(did: str, scope: str, lifetime: int) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    now = int(time.time())
    return ".".join([part({"typ": "at+jwt", "alg": "ES256K"}),
                     part({"scope": scope, "sub": did, "iat": now, "exp": now + lifetime,
                           "jti": hashlib.sha256(f"{did}{time.time_ns()}".encode()).hexdigest()[:16]}),
                     "c2lnbmF0dXJl"])


def _err(status: int, error: str, message: str) -> Response:
    return json_response({"error": error, "message": message}, status)


@dataclass
class BskyAccount:
    did: str
    handle: str
    display_name: str
    app_password: str | None = None
    followers: int = 0


@dataclass
class BskyRecord:
    uri: str
    cid: str
    author: str  # did
    value: dict[str, Any]
    indexed_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class BskyBlob:
    cid: str
    owner: str  # did of the account that uploaded it
    data: bytes
    mime_type: str


@dataclass
class BskyNotification:
    owner: str  # did
    reason: str
    record: BskyRecord
    reason_subject: str | None = None
    indexed_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class BlueskyEmulator(Emulator):
    rate_headers = RateHeaders("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset",
                               policy="ratelimit-policy")
    search_limit: tuple[int, int] = (100, 300)  # searchPosts calls per window (seconds)

    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self.accounts: dict[str, BskyAccount] = {}
        self.records: dict[str, BskyRecord] = {}
        self.notifications: list[BskyNotification] = []
        self.sessions: dict[str, str] = {}  # access or refresh jwt -> did
        self.blobs: dict[str, BskyBlob] = {}
        self._window = SlidingWindow()
        self._search_window = SlidingWindow()
        self.search_refused = 0

    # ------------------------------------------------------------ state helpers

    def add_account(self, handle: str, display_name: str = "", *, app_password: str | None = None,
                    followers: int = 0) -> BskyAccount:
        with self._lock:
            did = "did:plc:" + hashlib.sha256(handle.encode()).hexdigest()[:24]
            acc = BskyAccount(did, handle, display_name or handle, app_password, followers)
            self.accounts[did] = acc
            return acc

    def _by_handle(self, handle: str) -> BskyAccount | None:
        return next((a for a in self.accounts.values() if a.handle.lower() == handle.lower()), None)

    def _create(self, author: BskyAccount, record: dict[str, Any],
                rkey: str | None = None) -> BskyRecord:
        rkey = rkey or richtext.new_tid()
        uri = richtext.at_uri(author.did, rkey)
        rec = BskyRecord(uri, _cid(record | {"uri": uri}), author.did, record)
        self.records[uri] = rec
        told: set[str] = set()
        parent = self.records.get(((record.get("reply") or {}).get("parent") or {}).get("uri", ""))
        if parent is not None and parent.author != author.did:
            self.notifications.append(BskyNotification(parent.author, "reply", rec, parent.uri))
            told.add(parent.author)
        for facet in record.get("facets") or []:
            for feature in facet.get("features") or []:
                did = feature.get("did")
                if (feature.get("$type") == "app.bsky.richtext.facet#mention" and did in self.accounts
                        and did not in told and did != author.did):
                    self.notifications.append(BskyNotification(did, "mention", rec))
                    told.add(did)
        return rec

    def add_post(self, author: BskyAccount, text: str, *, reply_to: BskyRecord | None = None,
                 rkey: str | None = None, created_at: datetime | None = None) -> BskyRecord:
        """A post as the official app makes it (facets for @handles it can resolve).
        `rkey` and `created_at` are the client's to choose (a client with a slow clock
        writes an older TID): the notification is still indexed now."""
        with self._lock:
            record: dict[str, Any] = {"$type": richtext.POST_COLLECTION, "text": text,
                                      "createdAt": _iso(created_at or datetime.now(UTC)),
                                      "langs": ["en"]}
            found = richtext.facets(text, lambda h: a.did if (a := self._by_handle(h)) else None)
            if found:
                record["facets"] = found
            if reply_to is not None:
                parent = {"uri": reply_to.uri, "cid": reply_to.cid}
                root = (reply_to.value.get("reply") or {}).get("root") or parent
                record["reply"] = {"root": root, "parent": parent}
            return self._create(author, record, rkey)

    def add_like(self, liker: BskyAccount, post: BskyRecord) -> None:
        with self._lock:
            like = BskyRecord(f"at://{liker.did}/app.bsky.feed.like/{richtext.new_tid()}",
                              _cid(post.uri), liker.did,
                              {"$type": "app.bsky.feed.like", "createdAt": _iso(datetime.now(UTC)),
                               "subject": {"uri": post.uri, "cid": post.cid}})
            self.notifications.append(BskyNotification(post.author, "like", like, post.uri))

    def posts_by(self, did: str) -> list[BskyRecord]:
        with self._lock:
            return [r for r in self.records.values() if r.author == did]

    def images_of(self, rec: BskyRecord) -> list[tuple[BskyBlob, str]]:
        """The (blob, alt text) of each image a post embeds."""
        with self._lock:
            embed = rec.value.get("embed") or {}
            return [(self.blobs[i["image"]["ref"]["$link"]], i.get("alt", ""))
                    for i in embed.get("images") or []]

    def expire_sessions(self) -> None:
        """Every access token now answers 400 ExpiredToken (refresh tokens still work)."""
        with self._lock:
            for token in [t for t in self.sessions if not t.startswith("R:")]:
                del self.sessions[token]

    # ------------------------------------------------------------ views

    def _profile_basic(self, acc: BskyAccount) -> dict[str, Any]:
        return {"did": acc.did, "handle": acc.handle, "displayName": acc.display_name,
                "avatar": f"https://cdn.bsky.app/img/avatar/plain/{acc.did}/bafkrei@jpeg",
                "labels": [], "viewer": {"muted": False, "blockedBy": False},
                "createdAt": "2024-02-06T12:00:00.000Z"}

    def _post_view(self, rec: BskyRecord) -> dict[str, Any]:
        view: dict[str, Any] = {}
        embed = rec.value.get("embed") or {}
        if embed.get("$type") == "app.bsky.embed.images":
            cdn = "https://cdn.bsky.app/img"
            view["embed"] = {"$type": "app.bsky.embed.images#view", "images": [{
                "thumb": f"{cdn}/feed_thumbnail/plain/{rec.author}/{i['image']['ref']['$link']}@jpeg",
                "fullsize": f"{cdn}/feed_fullsize/plain/{rec.author}/{i['image']['ref']['$link']}@jpeg",
                "alt": i.get("alt", ""),
                **({"aspectRatio": i["aspectRatio"]} if "aspectRatio" in i else {}),
            } for i in embed.get("images") or []]}
        return {"uri": rec.uri, "cid": rec.cid, "author": self._profile_basic(self.accounts[rec.author]),
                "record": rec.value, **view,
                "replyCount": sum(1 for r in self.records.values()
                                  if ((r.value.get("reply") or {}).get("parent") or {}).get("uri") == rec.uri),
                "repostCount": 0, "likeCount": 0, "quoteCount": 0,
                "indexedAt": _iso(rec.indexed_at), "viewer": {}, "labels": []}

    # ------------------------------------------------------------ HTTP

    ROUTES = {
        ("POST", "com.atproto.server.createSession"): "_create_session",
        ("POST", "com.atproto.server.refreshSession"): "_refresh_session",
        ("POST", "com.atproto.repo.createRecord"): "_create_record",
        ("POST", "com.atproto.repo.uploadBlob"): "_upload_blob",
        ("GET", "com.atproto.repo.listRecords"): "_list_records",
        ("GET", "com.atproto.repo.getRecord"): "_get_record",
        ("GET", "com.atproto.identity.resolveHandle"): "_resolve_handle",
        ("GET", "app.bsky.notification.listNotifications"): "_list_notifications",
        ("GET", "app.bsky.feed.getPosts"): "_get_posts",
        ("GET", "app.bsky.feed.searchPosts"): "_search_posts",
        ("GET", "app.bsky.actor.getProfile"): "_get_profile",
    }

    def error_response(self, status: int, fault: Fault | None) -> Response:
        if status == 429:
            return _err(429, "RateLimitExceeded", "Rate Limit Exceeded")
        return _err(status, "InternalServerError", "Internal Server Error")

    def handle(self, request: Request) -> Response:
        nsid = request.path.removeprefix("/xrpc/")
        name = self.ROUTES.get((request.method, nsid))
        if name is None:
            return _err(404 if not request.path.startswith("/xrpc/") else 501,
                        "MethodNotImplemented", f"Method Not Implemented: {nsid}")
        body: dict[str, Any] = {}
        if nsid == "com.atproto.repo.uploadBlob":
            body = {"_content_type": request.content_type, "_size": len(request.body)}
        elif request.body:
            try:
                body = request.json() or {}
            except ValueError:
                return _err(400, "InvalidRequest", "Request body is not valid JSON")
        self.record(nsid, {**request.query, **body})
        used, reset_at = self._window.hit(300)
        headers = self.rate_headers.report(RATE_LIMIT, used, reset_at, 300)
        if used > RATE_LIMIT:
            return self.over_limit(headers)
        return self.answer(nsid, lambda: self._authenticated(request, nsid, name, body), headers)

    def _authenticated(self, request: Request, nsid: str, name: str, body: dict[str, Any]
                       ) -> Response:
        """The XRPC method, for a caller with a live session (the PDS looks after faults)."""
        did: str | None = None
        if nsid not in ("com.atproto.server.createSession", "com.atproto.identity.resolveHandle"):
            token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            want_refresh = nsid == "com.atproto.server.refreshSession"
            did = self.sessions.get(("R:" if want_refresh else "") + token)
            if did is None:
                if not token:
                    return _err(401, "AuthMissing", "Authentication Required")
                return _err(400, "ExpiredToken", "Token has expired")
        response: Response = getattr(self, name)(request, body, did)
        return response

    def _new_session(self, acc: BskyAccount) -> dict[str, Any]:
        access = _jwt(acc.did, "com.atproto.appPass", 7200)
        refresh = _jwt(acc.did, "com.atproto.refresh", 90 * 86400)
        self.sessions[access] = acc.did
        self.sessions["R:" + refresh] = acc.did
        return {"did": acc.did, "handle": acc.handle, "accessJwt": access, "refreshJwt": refresh,
                "active": True, "didDoc": {"id": acc.did, "alsoKnownAs": [f"at://{acc.handle}"]}}

    def _create_session(self, request: Request, body: dict[str, Any], did: Any) -> Response:
        ident = str(body.get("identifier") or "")
        acc = self.accounts.get(ident) or self._by_handle(ident)
        if acc is None or not acc.app_password or body.get("password") != acc.app_password:
            return _err(401, "AuthenticationRequired", "Invalid identifier or password")
        return json_response(self._new_session(acc))

    def _refresh_session(self, request: Request, body: Any, did: str) -> Response:
        return json_response(self._new_session(self.accounts[did]))

    def _create_record(self, request: Request, body: dict[str, Any], did: str) -> Response:
        if body.get("repo") not in (did, self.accounts[did].handle):
            return _err(400, "InvalidRequest", "Invalid repo")
        if body.get("collection") != richtext.POST_COLLECTION:
            return _err(400, "InvalidRequest", "Unsupported collection")
        record = body.get("record") or {}
        text = record.get("text")
        if not isinstance(text, str) or not isinstance(record.get("createdAt"), str):
            return _err(400, "InvalidRequest",
                        "Invalid app.bsky.feed.post record: Record must have the properties "
                        '"text" and "createdAt"')
        if richtext.length(text) > richtext.MAX_GRAPHEMES or len(text) > 3000:
            return _err(400, "InvalidRequest", "Invalid app.bsky.feed.post record: "
                        "Record/text must not be longer than 300 graphemes")
        size = len(text.encode("utf-8"))
        for facet in record.get("facets") or []:
            idx = facet.get("index") or {}
            if not (0 <= idx.get("byteStart", -1) < idx.get("byteEnd", -1) <= size):
                return _err(400, "InvalidRequest", "Invalid app.bsky.feed.post record: "
                            "Record/facets/index is out of range")
        reply = record.get("reply")
        if reply is not None:
            for key in ("root", "parent"):
                ref = reply.get(key) or {}
                target = self.records.get(ref.get("uri", ""))
                if target is None or target.cid != ref.get("cid"):
                    return _err(400, "InvalidRequest", "Invalid app.bsky.feed.post record: "
                                f"Record/reply/{key} must be a strong ref to an existing post")
        embed = record.get("embed")
        if embed is not None:
            problem = self._embed_problem(embed, did)
            if problem:
                return _err(400, "InvalidRequest", "Invalid app.bsky.feed.post record: " + problem)
        rkey = body.get("rkey")
        if rkey is not None:
            if not isinstance(rkey, str) or not _TID.fullmatch(rkey):
                return _err(400, "InvalidRequest", "Invalid app.bsky.feed.post record key: "
                            "must be a TID")
            if richtext.at_uri(did, rkey) in self.records:
                # what the PDS does with a record key already taken: it refuses the write with
                # a 500 (bluesky-social/indigo#873; atproto#4728 names the error), nothing new
                return _err(500, "InternalServerError", "Internal Server Error")
        rec = self._create(self.accounts[did], record, rkey)
        return json_response({"uri": rec.uri, "cid": rec.cid,
                              "commit": {"cid": _cid(rec.uri + "commit"), "rev": richtext.new_tid()},
                              "validationStatus": "valid"})

    def _embed_problem(self, embed: Any, did: str) -> str | None:
        if not isinstance(embed, dict) or embed.get("$type") != "app.bsky.embed.images":
            return "Record/embed has an unsupported $type"
        images = embed.get("images")
        if not isinstance(images, list) or not images:
            return 'Record/embed must have the property "images"'
        if len(images) > 4:
            return "Record/embed/images must not have more than 4 elements"
        for n, item in enumerate(images):
            where = f"Record/embed/images/{n}"
            if not isinstance(item, dict) or not isinstance(item.get("alt"), str):
                return f'{where} must have the property "alt"'
            blob = item.get("image") or {}
            link = (blob.get("ref") or {}).get("$link") if isinstance(blob, dict) else None
            if not isinstance(blob, dict) or blob.get("$type") != "blob" or not link:
                return f"{where}/image should be a blob ref"
            stored = self.blobs.get(link)
            if stored is None or stored.owner != did:
                return f"{where}/image: Could not find blob: {link}"
            if not str(blob.get("mimeType", "")).startswith("image/") \
                    or blob.get("mimeType") != stored.mime_type:
                return f"{where}/image mime type not accepted: {blob.get('mimeType')}"
            if len(stored.data) > MAX_EMBED_IMAGE_BYTES:
                return (f"{where}/image file too large ({len(stored.data)} bytes). "
                        f"Max size: {MAX_EMBED_IMAGE_BYTES}")
            ratio = item.get("aspectRatio")
            if ratio is not None and not (isinstance(ratio, dict)
                                          and int(ratio.get("width") or 0) >= 1
                                          and int(ratio.get("height") or 0) >= 1):
                return f"{where}/aspectRatio must have a width and height of at least 1"
        return None

    def _upload_blob(self, request: Request, body: Any, did: str) -> Response:
        if not request.body:
            return _err(400, "InvalidRequest", "Request body is empty")
        if len(request.body) > MAX_BLOB_BYTES:
            return _err(413, "PayloadTooLarge", "request entity too large")
        mime = request.content_type or "application/octet-stream"
        blob = BskyBlob(_blob_cid(request.body), did, request.body, mime)
        self.blobs[blob.cid] = blob
        return json_response({"blob": {"$type": "blob", "ref": {"$link": blob.cid},
                                       "mimeType": mime, "size": len(request.body)}})

    def _list_records(self, request: Request, body: Any, did: str) -> Response:
        repo = request.query.get("repo", "")
        acc = self.accounts.get(repo) or self._by_handle(repo)
        if acc is None:
            return _err(400, "InvalidRequest", f"Could not find repo: {repo}")
        limit = min(int(request.query.get("limit", 50)), 100)
        items = sorted((r for r in self.records.values() if r.author == acc.did
                        and f"/{request.query.get('collection')}/" in r.uri),
                       key=lambda r: r.uri, reverse=True)[:limit]
        return json_response({"records": [{"uri": r.uri, "cid": r.cid, "value": r.value} for r in items]})

    def _get_record(self, request: Request, body: Any, did: str) -> Response:
        repo = request.query.get("repo", "")
        acc = self.accounts.get(repo) or self._by_handle(repo)
        if acc is None:
            return _err(400, "InvalidRequest", f"Could not find repo: {repo}")
        uri = f"at://{acc.did}/{request.query.get('collection', '')}/{request.query.get('rkey', '')}"
        rec = self.records.get(uri)
        if rec is None:
            return _err(400, "RecordNotFound", f"Could not locate record: {uri}")
        return json_response({"uri": rec.uri, "cid": rec.cid, "value": rec.value})

    def _resolve_handle(self, request: Request, body: Any, did: Any) -> Response:
        acc = self._by_handle(request.query.get("handle", ""))
        if acc is None:
            return _err(400, "InvalidRequest", "Unable to resolve handle")
        return json_response({"did": acc.did})

    def _list_notifications(self, request: Request, body: Any, did: str) -> Response:
        limit = min(int(request.query.get("limit", 50)), 100)
        mine = sorted((n for n in self.notifications if n.owner == did),
                      key=lambda n: (n.indexed_at, n.record.uri), reverse=True)
        start = int(request.query.get("cursor") or 0)
        page = mine[start:start + limit]
        data: dict[str, Any] = {"notifications": [{
            "uri": n.record.uri, "cid": n.record.cid,
            "author": self._profile_basic(self.accounts[n.record.author]),
            "reason": n.reason, **({"reasonSubject": n.reason_subject} if n.reason_subject else {}),
            "record": n.record.value, "isRead": False, "indexedAt": _iso(n.indexed_at), "labels": [],
        } for n in page], "priority": False}
        if start + limit < len(mine):
            data["cursor"] = str(start + limit)
        return json_response(data)

    def _get_posts(self, request: Request, body: Any, did: str) -> Response:
        uris = [u for k, u in request.query.items() if k in ("uris", "uris[]")]
        return json_response({"posts": [self._post_view(self.records[u]) for u in uris
                                        if u in self.records]})

    def _search_posts(self, request: Request, body: Any, did: str) -> Response:
        """app.bsky.feed.searchPosts: `q` (terms, "phrases", #tags), `sort` latest,
        `since` (indexed at or after), `limit` 1-100 (25), `cursor`; {posts, cursor?,
        hitsTotal}. Its own rate budget (`search_limit`), with ratelimit-* headers."""
        limit_n, window = self.search_limit
        used, reset_at = self._search_window.hit(window)
        headers = self.rate_headers.report(limit_n, used, reset_at, window)
        if used > limit_n:
            self.search_refused += 1
            return self.over_limit(headers)
        q = request.query.get("q", "")
        if not q:
            return _err(400, "InvalidRequest", 'Input must have the property "q"')
        try:
            limit = int(request.query.get("limit", 25))
        except ValueError:
            return _err(400, "InvalidRequest", "limit must be an integer")
        if not 1 <= limit <= 100:
            return _err(400, "InvalidRequest", "limit can not be greater than 100")
        since = None
        if request.query.get("since"):
            try:
                since = datetime.fromisoformat(request.query["since"].replace("Z", "+00:00"))
            except ValueError:
                return _err(400, "InvalidRequest", "since must be a valid datetime")
        hits = sorted((r for r in self.records.values()
                       if r.value.get("$type") == richtext.POST_COLLECTION
                       and (since is None or r.indexed_at >= since)
                       and matches(q, str(r.value.get("text") or ""),
                                   self.accounts[r.author].handle)),
                      key=lambda r: (r.indexed_at, r.uri), reverse=True)
        start = int(request.query.get("cursor") or 0)
        page = hits[start:start + limit]
        data: dict[str, Any] = {"posts": [self._post_view(r) for r in page],
                                "hitsTotal": len(hits)}
        if start + limit < len(hits):
            data["cursor"] = str(start + limit)
        response = json_response(data)
        response.headers.update(headers)
        return response

    def _get_profile(self, request: Request, body: Any, did: str) -> Response:
        actor = request.query.get("actor", "")
        acc = self.accounts.get(actor) or self._by_handle(actor)
        if acc is None:
            return _err(400, "InvalidRequest", "Profile not found")
        return json_response(self._profile_basic(acc) | {
            "followersCount": acc.followers, "followsCount": 0,
            "postsCount": len(self.posts_by(acc.did)), "description": ""})
