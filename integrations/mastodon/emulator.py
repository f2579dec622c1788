"""A Mastodon instance on 127.0.0.1 speaking the REST API's JSON (docs.joinmastodon.org:
Account, Status, Notification entities; Link pagination; X-RateLimit-* headers;
Idempotency-Key on POST /api/v1/statuses; 422 over the character limit).

Media as Mastodon 4 does it: POST /api/v2/media (multipart ``file`` + ``description`` +
``focus``) answers 200 with a MediaAttachment, or 202 with ``url: null`` for files over
``async_media_over`` bytes, which stay processing (GET /api/v1/media/:id answers 206)
for ``processing_polls`` polls; a status takes up to 4 processed, unattached
attachments of its author in ``media_ids[]`` (422 otherwise) and shows them in
``media_attachments``.

Faults per endpoint key (``verify_credentials``, ``notifications``, ``status``,
``post_status``, ``account_statuses``, ``media``, ``get_media``): the shared kinds of
:mod:`bot.emulators.base`.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

from bot.emulators.base import Emulator, RateHeaders, Route, SlidingWindow, iso_millis
from bot.emulators.http import Fault, Request, Response, json_response
from bot.emulators.search import hashtags, matches
from integrations.common import URL_RE

RATE_LIMIT = 300  # requests per 5 minutes, as mastodon.social
MAX_MEDIA_ATTACHMENTS = 4
MAX_DESCRIPTION_LENGTH = 1500
MAX_IMAGE_SIZE = 16 * 1024 * 1024
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp", "image/heic", "image/avif")


_REMOTE_MENTION = re.compile(r"(?<![\w@])(@[A-Za-z0-9_]+)@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def status_length(text: str) -> int:
    """The instance's count for its character limit: every link is 23 characters and
    ``@user@domain`` counts as ``@user``."""
    return len(_REMOTE_MENTION.sub(lambda m: m.group(1), URL_RE.sub("x" * 23, text)))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class MastoAccount:
    id: str
    username: str
    display_name: str
    domain: str | None = None  # None: local to this instance
    followers_count: int = 0
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def acct(self) -> str:
        return f"{self.username}@{self.domain}" if self.domain else self.username


@dataclass
class MastoStatus:
    id: str
    account_id: str
    text: str
    visibility: str = "public"
    in_reply_to_id: str | None = None
    in_reply_to_account_id: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    mentions: list[str] = field(default_factory=list)  # account ids
    media_ids: list[str] = field(default_factory=list)


@dataclass
class MastoMedia:
    id: str
    account_id: str
    data: bytes
    mime_type: str
    filename: str
    description: str | None
    focus: tuple[float, float] = (0.0, 0.0)
    polls_left: int = 0  # GET /api/v1/media/:id answers 206 this many more times
    status_id: str | None = None

    @property
    def processed(self) -> bool:
        return self.polls_left <= 0


def _image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG or GIF, from its header; None for anything else."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    return None


# the OAuth scope each call needs (Mastodon's API docs; `read`/`write` cover their parts)
_SCOPES = {("GET", "notifications"): "read:notifications", ("GET", "status"): "read:statuses",
           ("POST", "post_status"): "write:statuses", ("DELETE", "delete_status"): "write:statuses",
           ("POST", "media"): "write:media", ("GET", "get_media"): "write:media",
           ("GET", "verify_credentials"): "read:accounts",
           ("GET", "account_statuses"): "read:statuses", ("GET", "tag_timeline"): "read:statuses",
           ("GET", "search"): "read:search"}


@dataclass
class MastoNotification:
    id: str
    type: str
    account_id: str  # who caused it
    owner_id: str  # whose notification it is
    status_id: str | None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class MastodonEmulator(Emulator):
    rate_headers = RateHeaders("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
                               iso_millis)
    search_limit: tuple[int, int] = (300, 300)  # tag timeline + search calls per window (s)

    def __init__(self, port: int = 0, *, domain: str = "mastodon.example", max_characters: int = 500):
        super().__init__(port)
        self.domain = domain
        self.max_characters = max_characters
        self.accounts: dict[str, MastoAccount] = {}
        self.statuses: dict[str, MastoStatus] = {}
        self.notifications: list[MastoNotification] = []
        self.tokens: dict[str, str] = {}
        self.token_scopes: dict[str, set[str]] = {}
        self.idempotency: dict[tuple[str, str], str] = {}
        self.media: dict[str, MastoMedia] = {}
        self.async_media_over = 1024 * 1024  # bytes; bigger uploads answer 202 (processing)
        self.processing_polls = 1
        self._ids = itertools.count(110_000_000_000_000_000)
        # notifications have their own sequence (a plain bigserial), as on a real instance
        self._note_ids = itertools.count(1)
        self._window = SlidingWindow()
        self._search_window = SlidingWindow()
        self.search_refused = 0

    # ------------------------------------------------------------ state helpers

    def _next_id(self) -> str:
        return str(next(self._ids))

    def _next_note_id(self) -> str:
        return str(next(self._note_ids))

    def add_account(self, username: str, display_name: str = "", *, domain: str | None = None,
                    token: str | None = None, followers: int = 0, account_id: str | None = None,
                    scopes: str = "read write") -> MastoAccount:
        """An account; `token` its access token, granted `scopes` (OAuth scopes: `read`,
        `write`, or granular ones such as `write:statuses`)."""
        with self._lock:
            acc = MastoAccount(account_id or self._next_id(), username, display_name or username,
                               domain, followers)
            self.accounts[acc.id] = acc
            if token:
                self.tokens[token] = acc.id
                self.token_scopes[token] = set(scopes.split())
            return acc

    def _by_acct(self, acct: str) -> MastoAccount | None:
        acct = acct.lstrip("@").lower()
        return next((a for a in self.accounts.values()
                     if a.acct.lower() == acct or (a.domain is None and
                                                   f"{a.username}@{self.domain}".lower() == acct)),
                    None)

    def add_status(self, author: MastoAccount, text: str, *, visibility: str = "public",
                   in_reply_to_id: str | None = None, status_id: str | None = None
                   ) -> MastoStatus:
        """A status; `status_id` gives it an id of one's choosing (a remote status's id
        comes from its `created_at`: one that federates late has an id below statuses
        already seen, while its notification still gets the next notification id)."""
        with self._lock:
            mentioned = [a.id for a in (self._by_acct(m) for m in
                                        re.findall(r"(?<![\w@])@([\w.]+(?:@[\w.-]+)?)", text)) if a]
            parent = self.statuses.get(in_reply_to_id or "")
            st = MastoStatus(status_id or self._next_id(), author.id, text, visibility, in_reply_to_id,
                             parent.account_id if parent else None, mentions=mentioned)
            self.statuses[st.id] = st
            for acc_id in dict.fromkeys(mentioned):
                if acc_id != author.id:
                    self.notifications.append(MastoNotification(
                        self._next_note_id(), "mention", author.id, acc_id, st.id))
            return st

    def add_mention(self, author: MastoAccount, text: str, **kw: Any) -> MastoStatus:
        """A resident's post that @mentions one of the council's accounts."""
        return self.add_status(author, text, **kw)

    def add_follow(self, follower: MastoAccount, owner: MastoAccount) -> None:
        with self._lock:
            owner.followers_count += 1
            self.notifications.append(MastoNotification(self._next_note_id(), "follow", follower.id,
                                                        owner.id, None))

    def posts_by(self, account_id: str) -> list[MastoStatus]:
        with self._lock:
            return [s for s in self.statuses.values() if s.account_id == account_id]

    def media_of(self, status: MastoStatus) -> list[MastoMedia]:
        with self._lock:
            return [self.media[i] for i in status.media_ids]

    # ------------------------------------------------------------ serialisation

    def _account_json(self, acc: MastoAccount) -> dict[str, Any]:
        host = acc.domain or self.domain
        return {
            "id": acc.id, "username": acc.username, "acct": acc.acct,
            "display_name": acc.display_name, "locked": False, "bot": False,
            "discoverable": True, "group": False, "created_at": iso(acc.created_at),
            "note": "", "url": f"https://{host}/@{acc.username}",
            "uri": f"https://{host}/users/{acc.username}",
            "avatar": f"https://{self.domain}/avatars/original/missing.png",
            "avatar_static": f"https://{self.domain}/avatars/original/missing.png",
            "header": f"https://{self.domain}/headers/original/missing.png",
            "header_static": f"https://{self.domain}/headers/original/missing.png",
            "followers_count": acc.followers_count, "following_count": 0,
            "statuses_count": len([s for s in self.statuses.values() if s.account_id == acc.id]),
            "last_status_at": None, "emojis": [], "fields": [],
        }

    def _content(self, text: str) -> str:
        def mention(m: re.Match[str]) -> str:
            acc = self._by_acct(m.group(1))
            if acc is None:
                return html.escape(m.group(0))
            host = acc.domain or self.domain
            return (f'<span class="h-card" translate="no"><a href="https://{host}/@{acc.username}"'
                    f' class="u-url mention">@<span>{html.escape(acc.username)}</span></a></span>')

        paras = []
        for para in text.split("\n\n"):
            pieces = re.split(r"(@[\w.]+(?:@[\w.-]+)?)", para)
            out = "".join(mention(re.match(r"@(.+)", p)) if p.startswith("@") and re.match(r"@(.+)", p)  # type: ignore[arg-type]
                          else html.escape(p).replace("\n", "<br />") for p in pieces)
            paras.append(f"<p>{out}</p>")
        return "".join(paras)

    def _status_json(self, st: MastoStatus) -> dict[str, Any]:
        acc = self.accounts[st.account_id]
        host = acc.domain or self.domain
        return {
            "id": st.id, "created_at": iso(st.created_at), "in_reply_to_id": st.in_reply_to_id,
            "in_reply_to_account_id": st.in_reply_to_account_id, "sensitive": False,
            "spoiler_text": "", "visibility": st.visibility, "language": "en",
            "uri": f"https://{host}/users/{acc.username}/statuses/{st.id}",
            "url": f"https://{host}/@{acc.username}/{st.id}",
            "replies_count": sum(1 for s in self.statuses.values() if s.in_reply_to_id == st.id),
            "reblogs_count": 0, "favourites_count": 0, "edited_at": None,
            "favourited": False, "reblogged": False, "muted": False, "bookmarked": False,
            "content": self._content(st.text), "filtered": [], "reblog": None,
            "application": {"name": "Web", "website": None},
            "account": self._account_json(acc),
            "media_attachments": [self._media_json(self.media[i]) for i in st.media_ids],
            "mentions": [{"id": a.id, "username": a.username, "acct": a.acct,
                          "url": f"https://{a.domain or self.domain}/@{a.username}"}
                         for a in (self.accounts[i] for i in st.mentions)],
            "tags": [], "emojis": [], "card": None, "poll": None,
        }

    def _media_json(self, m: MastoMedia) -> dict[str, Any]:
        files = f"https://files.{self.domain}/media_attachments/files/{m.id}"
        ext = m.mime_type.rpartition("/")[2].replace("jpeg", "jpg")
        meta: dict[str, Any] = {"focus": {"x": m.focus[0], "y": m.focus[1]}}
        size = _image_size(m.data)
        if size and m.processed:
            w, h = size
            meta["original"] = {"width": w, "height": h, "size": f"{w}x{h}",
                                "aspect": w / h if h else 1.0}
            sw, sh = (min(w, 640), round(h * min(w, 640) / w)) if w else (w, h)
            meta["small"] = {"width": sw, "height": sh, "size": f"{sw}x{sh}",
                             "aspect": sw / sh if sh else 1.0}
        return {
            "id": m.id, "type": "image" if m.mime_type.startswith("image/") else "unknown",
            "url": f"{files}/original/{m.id}.{ext}" if m.processed else None,
            "preview_url": f"{files}/small/{m.id}.{ext}", "remote_url": None,
            "preview_remote_url": None, "text_url": None, "meta": meta,
            "description": m.description,
            "blurhash": "U" + hashlib.sha256(m.data).hexdigest()[:27] if m.processed else None,
        }

    def _notification_json(self, n: MastoNotification) -> dict[str, Any]:
        return {
            "id": n.id, "type": n.type, "group_key": f"ungrouped-{n.id}",
            "created_at": iso(n.created_at), "account": self._account_json(self.accounts[n.account_id]),
            **({"status": self._status_json(self.statuses[n.status_id])} if n.status_id else {}),
        }

    # ------------------------------------------------------------ HTTP

    def routes(self) -> list[Route]:
        return [
            Route("GET", r"/api/v1/accounts/verify_credentials", "verify_credentials", self._me),
            Route("GET", r"/api/v1/notifications", "notifications", self._notifications),
            Route("POST", r"/api/v1/statuses", "post_status", self._post_status),
            Route("GET", r"/api/v1/statuses/(\d+)", "status", self._get_status),
            Route("DELETE", r"/api/v1/statuses/(\d+)", "delete_status", self._delete_status),
            Route("GET", r"/api/v1/accounts/(\d+)/statuses", "account_statuses",
                  self._account_statuses),
            Route("POST", r"/api/v2/media", "media", self._post_media),
            Route("GET", r"/api/v1/media/(\d+)", "get_media", self._get_media),
            Route("GET", r"/api/v1/timelines/tag/([^/]+)", "tag_timeline", self._tag_timeline),
            Route("GET", r"/api/v2/search", "search", self._search),
        ]

    def error_response(self, status: int, fault: Fault | None) -> Response:
        if status == 429:
            return json_response({"error": "Too many requests"}, 429)
        return json_response({"error": "We're sorry, but something went wrong on our end."},
                             status)

    def handle(self, request: Request) -> Response:
        found = self.route(request)
        if found is None:
            return json_response({"error": "Not Found"}, 404)
        body: dict[str, Any] = {}
        if request.body:
            if request.content_type == "application/json":
                try:
                    body = request.json() or {}
                except ValueError:
                    return json_response({"error": "Invalid JSON"}, 400)
            elif request.content_type == "multipart/form-data":
                body = {name: (part.filename, part.data, part.content_type)
                        if part.filename is not None else part.text()
                        for name, part in request.multipart().items()}
            else:
                body = request.form()
                lists = parse_qs(request.body.decode("utf-8"))
                body.update({k: v for k, v in lists.items() if k.endswith("[]")})
        self.record(found.key, {**request.query, **body, "_headers": request.headers})
        auth = request.headers.get("authorization", "")
        account_id = self.tokens.get(auth.removeprefix("Bearer ").strip())
        if account_id is None:
            return json_response({"error": "The access token is invalid"}, 401)
        granted = self.token_scopes.get(auth.removeprefix("Bearer ").strip(), {"read", "write"})
        needed = _SCOPES.get((request.method, found.key), "read:accounts"
                             if request.method == "GET" else "write:statuses")
        if needed not in granted and needed.split(":")[0] not in granted:
            return json_response({"error": "This action is outside the authorized scopes"}, 403)
        used, reset_at = self._window.hit(300)
        headers = self.rate_headers.report(RATE_LIMIT, used, reset_at, 300)
        if used > RATE_LIMIT:
            return self.over_limit(headers)
        me = self.accounts[account_id]
        return self.answer(found.key, lambda: found.handler(request, me, body, *found.args),
                           headers)

    def _me(self, request: Request, me: MastoAccount, body: Any) -> Response:
        data = self._account_json(me)
        data["source"] = {"privacy": "public", "sensitive": False, "language": "en", "note": "",
                          "fields": []}
        return json_response(data)

    def _notifications(self, request: Request, me: MastoAccount, body: Any) -> Response:
        q = request.query
        types = [v for k, v in q.items() if k in ("types[]", "types")]
        limit = min(int(q.get("limit", 40)), 80)
        items = [n for n in reversed(self.notifications) if n.owner_id == me.id
                 and (not types or n.type in types)]
        for name in ("max_id", "since_id", "min_id"):
            if q.get(name) and not q[name].isdigit():
                return json_response({"error": f"Invalid {name}"}, 422)
        if q.get("max_id"):
            items = [n for n in items if int(n.id) < int(q["max_id"])]
        if q.get("since_id"):
            items = [n for n in items if int(n.id) > int(q["since_id"])]
        if q.get("min_id"):  # the page just above min_id (oldest first), shown newest first
            items = [n for n in items if int(n.id) > int(q["min_id"])]
            items = sorted(items, key=lambda n: int(n.id))[:limit][::-1]
        page = items[:limit]
        headers: dict[str, str] = {}
        if page and len(items) > limit:
            url = f"{self.root_url}/api/v1/notifications?" + urlencode(
                {"max_id": page[-1].id, "limit": limit, **({"types[]": types[0]} if types else {})})
            headers["Link"] = f'<{url}>; rel="next"'
        return json_response([self._notification_json(n) for n in page], headers=headers)

    def _get_status(self, request: Request, me: MastoAccount, body: Any, sid: str) -> Response:
        st = self.statuses.get(sid)
        if st is None:
            return json_response({"error": "Record not found"}, 404)
        return json_response(self._status_json(st))

    def _delete_status(self, request: Request, me: MastoAccount, body: Any, sid: str) -> Response:
        st = self.statuses.get(sid)
        if st is None or st.account_id != me.id:
            return json_response({"error": "Record not found"}, 404)
        data = self._status_json(st)
        del self.statuses[sid]
        return json_response(data)

    def _post_status(self, request: Request, me: MastoAccount, body: dict[str, Any]) -> Response:
        key = request.headers.get("idempotency-key")
        if key and (me.id, key) in self.idempotency:
            return json_response(self._status_json(self.statuses[self.idempotency[(me.id, key)]]))
        text = str(body.get("status") or "")
        media_ids = body.get("media_ids[]") or []
        if isinstance(media_ids, str):
            media_ids = [media_ids]
        if not text.strip() and not media_ids:
            return json_response({"error": "Validation failed: Text can't be blank"}, 422)
        if len(media_ids) > MAX_MEDIA_ATTACHMENTS:
            return json_response({"error": "Validation failed: Media attachments Cannot attach "
                                  f"more than {MAX_MEDIA_ATTACHMENTS} files"}, 422)
        attached = [self.media.get(str(i)) for i in media_ids]
        if any(m is None or m.account_id != me.id or m.status_id is not None for m in attached):
            return json_response({"error": "Validation failed: Media attachments "
                                  "are invalid"}, 422)
        if not all(m.processed for m in attached if m is not None):
            return json_response({"error": "Cannot attach files that have not finished "
                                  "processing. Try again in a moment!"}, 422)
        if status_length(text) > self.max_characters:
            return json_response({"error": "Validation failed: Text character limit of "
                                  f"{self.max_characters} exceeded"}, 422)
        reply_to = body.get("in_reply_to_id") or None
        if reply_to and reply_to not in self.statuses:
            return json_response({"error": "Record not found"}, 404)
        visibility = body.get("visibility") or "public"
        if visibility not in ("public", "unlisted", "private", "direct"):
            return json_response({"error": "Validation failed: Visibility is not included in the list"},
                                 422)
        st = self.add_status(me, text, visibility=visibility, in_reply_to_id=reply_to)
        for m in attached:
            assert m is not None
            m.status_id = st.id
            st.media_ids.append(m.id)
        if key:
            self.idempotency[(me.id, key)] = st.id
        return json_response(self._status_json(st))

    def _search_budget(self) -> Response | None:
        """Listening's own budget (tag timelines and search), as a 429 with the headers."""
        limit_n, window = self.search_limit
        used, reset_at = self._search_window.hit(window)
        if used <= limit_n:
            return None
        self.search_refused += 1
        return self.over_limit(self.rate_headers.report(limit_n, used, reset_at, window))

    def _listened(self, items: list[MastoStatus], request: Request) -> Response:
        q = request.query
        limit = min(int(q.get("limit", 20)), 40)
        ordered = sorted(items, key=lambda st: int(st.id), reverse=True)
        for name in ("max_id", "since_id", "min_id"):
            if q.get(name) and not q[name].isdigit():
                return json_response({"error": f"Invalid {name}"}, 422)
        if q.get("max_id"):
            ordered = [st for st in ordered if int(st.id) < int(q["max_id"])]
        for name in ("since_id", "min_id"):
            if q.get(name):
                ordered = [st for st in ordered if int(st.id) > int(q[name])]
        return json_response([self._status_json(st) for st in ordered[:limit]])

    def _tag_timeline(self, request: Request, me: MastoAccount, body: Any, tag: str) -> Response:
        """GET /api/v1/timelines/tag/:hashtag: public statuses with the tag, newest first."""
        refused = self._search_budget()
        if refused is not None:
            return refused
        wanted = tag.lower()
        return self._listened([st for st in self.statuses.values() if st.visibility == "public"
                               and wanted in hashtags(st.text)], request)

    def _search(self, request: Request, me: MastoAccount, body: Any) -> Response:
        """GET /api/v2/search with type=statuses: public statuses matching `q` (the full
        text search an instance with search enabled offers), as {accounts, statuses,
        hashtags}."""
        refused = self._search_budget()
        if refused is not None:
            return refused
        q = request.query.get("q", "")
        if not q:
            return json_response({"error": "Validation failed: q is missing"}, 400)
        kind = request.query.get("type")
        found = [st for st in self.statuses.values()
                 if st.visibility in ("public", "unlisted") and kind in (None, "statuses")
                 and matches(q, st.text, self.accounts[st.account_id].acct)]
        page = self._listened(found, request)
        if page.status != 200:
            return page
        statuses = json.loads(page.body)
        return json_response({"accounts": [], "statuses": statuses, "hashtags": []})

    def _account_statuses(self, request: Request, me: MastoAccount, body: Any, aid: str) -> Response:
        limit = min(int(request.query.get("limit", 20)), 40)
        items = sorted((s for s in self.statuses.values() if s.account_id == aid),
                       key=lambda s: int(s.id), reverse=True)
        return json_response([self._status_json(s) for s in items[:limit]])

    def _post_media(self, request: Request, me: MastoAccount, body: dict[str, Any]) -> Response:
        upload = body.get("file")
        if not isinstance(upload, tuple):
            return json_response({"error": "Validation failed: File can't be blank"}, 422)
        filename, data, mime_type = upload
        if mime_type not in IMAGE_TYPES:
            return json_response({"error": "Validation failed: File content type is invalid, "
                                  "File is invalid"}, 422)
        if len(data) > MAX_IMAGE_SIZE:
            return json_response({"error": "Validation failed: File file size must be less "
                                  "than 16 MB"}, 422)
        description = body.get("description") or None
        if description is not None and len(description) > MAX_DESCRIPTION_LENGTH:
            return json_response({"error": "Validation failed: Description is too long "
                                  f"(maximum is {MAX_DESCRIPTION_LENGTH} characters)"}, 422)
        focus = (0.0, 0.0)
        if body.get("focus"):
            x, _, y = str(body["focus"]).partition(",")
            focus = (float(x), float(y or 0))
        slow = len(data) > self.async_media_over
        m = MastoMedia(self._next_id(), me.id, data, mime_type, filename or "", description,
                       focus, polls_left=self.processing_polls if slow else 0)
        self.media[m.id] = m
        return json_response(self._media_json(m), 202 if slow else 200)

    def _get_media(self, request: Request, me: MastoAccount, body: Any, mid: str) -> Response:
        m = self.media.get(mid)
        if m is None or m.account_id != me.id:
            return json_response({"error": "Record not found"}, 404)
        if m.polls_left > 0:
            data = self._media_json(m)
            m.polls_left -= 1
            return json_response(data, 206)
        return json_response(self._media_json(m))
