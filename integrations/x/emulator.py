"""An offline X API v2: the endpoints commsdesk uses, answering as api.twitter.com does.

Shapes follow recorded traffic (tweepy's cassettes): only ``id``, ``text`` and
``edit_history_tweet_ids`` unless ``tweet.fields``/``expansions`` ask for more,
text HTML-escaped for ``& < >``, an empty page is ``{"meta": {"result_count": 0}}``,
unknown ids come back as 200 with an ``errors`` array, and every answer carries
``x-rate-limit-*`` headers. Point tweepy at it with
:func:`integrations.x.transport.point_session_at`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlencode

from oauthlib.oauth1.rfc5849 import signature as oauth_sig

from bot.emulators.base import Emulator, FixedWindows, RateHeaders, Route
from bot.emulators.http import Fault, Request, Response, json_response
from bot.emulators.search import matches

TWEPOCH_MS = 1288834974657
WINDOW_15_MIN = 900
# (limit, window seconds) per endpoint key; the defaults are those seen in recorded traffic.
DEFAULT_LIMITS: dict[str, tuple[int, int]] = {
    "me": (75, WINDOW_15_MIN),
    "user": (300, WINDOW_15_MIN),
    "mentions": (450, WINDOW_15_MIN),
    "timeline": (1500, WINDOW_15_MIN),
    "tweets": (300, WINDOW_15_MIN),
    "create_tweet": (200, WINDOW_15_MIN),
    "delete_tweet": (50, WINDOW_15_MIN),
    "media_upload": (500, WINDOW_15_MIN),
    "media_metadata": (500, WINDOW_15_MIN),
    "search": (180, WINDOW_15_MIN),  # recent search, user context
}
IMAGE_MAX_BYTES = 5 * 1024 * 1024  # X's limit for tweet_image
ALT_TEXT_MAX = 1000
IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
ENDPOINTS = tuple(DEFAULT_LIMITS)
PROBLEMS = "https://api.twitter.com/2/problems"
MENTION_RE = re.compile(r"(?<![A-Za-z0-9_@])@([A-Za-z0-9_]{1,15})")
PAGE_TOKEN_PREFIX = "7140d"
LINK_RE = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")


def tco_wrap(text: str, seed: str) -> tuple[str, list[dict[str, Any]]]:
    """Every link in a post rewritten as X does, as a ``https://t.co/...`` link, and the
    ``entities.urls`` that keep the original (``expanded_url``), with offsets into the
    rewritten text."""
    out, urls, last = "", [], 0
    for n, match in enumerate(LINK_RE.finditer(text)):
        out += text[last:match.start()]
        code = hashlib.sha256(f"{seed}:{n}:{match.group(0)}".encode()).hexdigest()[:10]
        short = f"https://t.co/{code}"
        expanded = match.group(0)
        display = expanded.split("://", 1)[1]
        urls.append({"start": len(out), "end": len(out) + len(short), "url": short,
                     "expanded_url": expanded,
                     "display_url": display if len(display) <= 26 else display[:25] + "…"})
        out += short
        last = match.end()
    return out + text[last:], urls


def x_escape(text: str) -> str:
    """X's escaping of post text on output: ``&``, ``<``, ``>`` only."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def iso_ms(moment: datetime) -> str:
    """``2026-11-25T06:30:00.000Z``."""
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def _problem(status: int, title: str, detail: str, kind: str = "about:blank") -> Response:
    return json_response({"detail": detail, "type": kind, "title": title, "status": status}, status)


def _invalid_request(parameter: str, value: str, message: str) -> Response:
    return json_response(
        {
            "errors": [{"parameters": {parameter: [value]}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": f"{PROBLEMS}/invalid-request",
        },
        400,
    )


def _not_found(resource: str, parameter: str, value: str) -> dict[str, Any]:
    return {
        "value": value,
        "detail": f"Could not find {resource} with {parameter}: [{value}].",
        "title": "Not Found Error",
        "resource_type": resource,
        "parameter": parameter,
        "resource_id": value,
        "type": f"{PROBLEMS}/resource-not-found",
    }


def _b36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rem = divmod(number, 36)
        out = digits[rem] + out
        if number == 0:
            return out


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    status: int | None = None  # None: the connection was dropped
    endpoint: str | None = None


@dataclass
class XUser:
    id: str
    username: str
    name: str
    followers_count: int = 0
    following_count: int = 0
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class Tweet:
    id: str
    text: str  # raw, unescaped
    author_id: str
    created_at: datetime
    conversation_id: str
    in_reply_to_user_id: str | None = None
    referenced_tweets: list[dict[str, str]] = field(default_factory=list)
    mentions: list[dict[str, Any]] = field(default_factory=list)
    via_api: bool = False
    deleted: bool = False
    media_keys: list[str] = field(default_factory=list)
    urls: list[dict[str, Any]] = field(default_factory=list)  # entities.urls (t.co links)
    sent_text: str | None = None  # what POST /2/tweets was given, before the t.co rewrite

    def to_dict(self) -> dict[str, Any]:
        """Everything, raw text (not escaped): for tests, not the wire."""
        data: dict[str, Any] = {
            "id": self.id,
            "text": self.text,
            "author_id": self.author_id,
            "created_at": iso_ms(self.created_at),
            "conversation_id": self.conversation_id,
            "edit_history_tweet_ids": [self.id],
        }
        if self.in_reply_to_user_id:
            data["in_reply_to_user_id"] = self.in_reply_to_user_id
        if self.referenced_tweets:
            data["referenced_tweets"] = [dict(r) for r in self.referenced_tweets]
        if self.mentions or self.urls:
            data["entities"] = self.entities()
        if self.media_keys:
            data["attachments"] = {"media_keys": list(self.media_keys)}
        data["sent_text"] = self.sent_text if self.sent_text is not None else self.text
        return data

    def entities(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.mentions:
            out["mentions"] = [dict(m) for m in self.mentions]
        if self.urls:
            out["urls"] = [dict(u) for u in self.urls]
        return out


@dataclass
class Media:
    """An uploaded image (``POST /2/media/upload``), usable in one post by its owner."""

    id: str
    owner_id: str
    data: bytes
    mime_type: str
    category: str
    alt_text: str | None = None

    @property
    def media_key(self) -> str:
        return f"3_{self.id}"


@dataclass
class ChunkedUpload:
    """A chunked upload (initialize, append segments, finalize, then STATUS until done)."""

    owner_id: str
    total_bytes: int
    media_type: str
    category: str
    segments: dict[int, bytes] = field(default_factory=dict)
    finalized: bool = False
    polls_left: int = 0


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


@dataclass
class _Auth:
    user_id: str | None  # None for app-only (bearer) auth

    @property
    def is_user(self) -> bool:
        return self.user_id is not None


class XEmulator(Emulator):
    """X API v2 on 127.0.0.1; ``start()`` returns ``http://127.0.0.1:PORT``."""

    rate_headers = RateHeaders("x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset")
    fault_keys = ENDPOINTS

    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self.users: dict[str, XUser] = {}
        self.tweets: dict[str, Tweet] = {}
        self._bearers: set[str] = set()
        self._user_tokens: dict[str, str] = {}  # access token / OAuth 2.0 user token -> user id
        # access token -> (consumer key, consumer secret, token secret): signatures checked
        self._oauth_secrets: dict[str, tuple[str, str, str]] = {}
        self.accept_any_bearer = True
        self.limits: dict[str, tuple[int, int]] = dict(DEFAULT_LIMITS)
        self._windows = FixedWindows()
        self.duplicate_window_s: float = 24 * 3600
        self.requests: list[RecordedRequest] = []  # (not the base's (key, asked) pairs)
        self.media: dict[str, Media] = {}
        self.uploads: dict[str, ChunkedUpload] = {}  # chunked uploads by media id
        self.processing_polls = 1  # STATUS answers "in_progress" this many times first
        self._last_id = 0

    # seeding ------------------------------------------------------------------
    def _next_id(self) -> str:
        with self._lock:
            candidate = (int(time.time() * 1000) - TWEPOCH_MS) << 22
            self._last_id = max(candidate, self._last_id + 1)
            return str(self._last_id)

    def register_credentials(
        self,
        user_id: str,
        *,
        bearer: str | None = None,
        access_token: str | None = None,
        oauth2_user_token: str | None = None,
        consumer_key: str | None = None,
        consumer_secret: str | None = None,
        access_token_secret: str | None = None,
    ) -> None:
        """Tie credentials to an account: ``access_token`` is OAuth 1.0a's ``oauth_token``;
        ``oauth2_user_token`` a user-context Bearer; ``bearer`` an app-only Bearer (reads only;
        once any is registered, with ``accept_any_bearer`` False only registered ones work).
        With the consumer key and secret and the token secret, every OAuth 1.0a request with
        that token must carry a valid HMAC-SHA1 signature (401 otherwise), as X checks."""
        with self._lock:
            if bearer:
                self._bearers.add(bearer)
            if access_token:
                self._user_tokens[access_token] = user_id
                if consumer_key and consumer_secret and access_token_secret is not None:
                    self._oauth_secrets[access_token] = (consumer_key, consumer_secret,
                                                         access_token_secret)
            if oauth2_user_token:
                self._user_tokens[oauth2_user_token] = user_id

    def add_user(
        self, id: str, username: str, name: str | None = None, *, followers_count: int = 0
    ) -> dict[str, Any]:
        with self._lock:
            user = XUser(id, username, name or username, followers_count)
            self.users[id] = user
            return self._user_json(user, {"public_metrics", "created_at"})

    def _user_by_username(self, username: str) -> XUser | None:
        wanted = username.lower()
        return next((u for u in self.users.values() if u.username.lower() == wanted), None)

    def add_tweet(
        self,
        author_id: str,
        text: str,
        *,
        in_reply_to: str | None = None,
        quote_of: str | None = None,
        created_at: datetime | None = None,
        via_api: bool = False,
    ) -> dict[str, Any]:
        """Store a post by a known user; returns :meth:`Tweet.to_dict`."""
        with self._lock:
            if author_id not in self.users:
                raise KeyError(f"unknown author {author_id}")
            tweet_id = self._next_id()
            tweet = Tweet(tweet_id, text, author_id, created_at or datetime.now(UTC), tweet_id,
                          via_api=via_api)
            if in_reply_to is not None:
                parent = self.tweets[in_reply_to]
                tweet.conversation_id = parent.conversation_id
                tweet.in_reply_to_user_id = parent.author_id
                tweet.referenced_tweets.append({"type": "replied_to", "id": parent.id})
            if quote_of is not None:
                tweet.referenced_tweets.append({"type": "quoted", "id": self.tweets[quote_of].id})
            for match in MENTION_RE.finditer(text):
                mention: dict[str, Any] = {"start": match.start(), "end": match.end(),
                                           "username": match.group(1)}
                known = self._user_by_username(match.group(1))
                if known is not None:
                    mention["id"] = known.id
                tweet.mentions.append(mention)
            self.tweets[tweet_id] = tweet
            return tweet.to_dict()

    def add_mention(
        self, to_user_id: str, author_username: str, text: str, *, in_reply_to: str | None = None
    ) -> dict[str, Any]:
        """A resident mentions ``to_user_id``; ``@username`` is prepended if the text lacks it."""
        with self._lock:
            target = self.users[to_user_id]
            if not re.search(rf"(?<![A-Za-z0-9_])@{re.escape(target.username)}\b", text, re.I):
                text = f"@{target.username} {text}"
            author = self._user_by_username(author_username)
            if author is None:
                new_id = self._next_id()
                self.add_user(new_id, author_username, author_username)
                author = self.users[new_id]
            return self.add_tweet(author.id, text, in_reply_to=in_reply_to)

    # queries for tests --------------------------------------------------------------
    def tweet(self, tweet_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self.tweets.get(tweet_id)
            return None if found is None or found.deleted else found.to_dict()

    def tweets_by(self, user_id: str) -> list[dict[str, Any]]:
        """The user's posts, oldest first (raw text)."""
        with self._lock:
            return [t.to_dict() for t in self.tweets.values()
                    if t.author_id == user_id and not t.deleted]

    def posts_created(self) -> list[dict[str, Any]]:
        """Posts created through ``POST /2/tweets``, oldest first (deleted ones included)."""
        with self._lock:
            return [t.to_dict() | {"deleted": t.deleted} for t in self.tweets.values() if t.via_api]

    def media_of(self, tweet_id: str) -> list[Media]:
        """The images attached to a post, in order."""
        with self._lock:
            tweet = self.tweets[tweet_id]
            by_key = {m.media_key: m for m in self.media.values()}
            return [by_key[k] for k in tweet.media_keys]

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.endpoint == endpoint]

    def reset_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # faults -------------------------------------------------------------------------
    def inject(self, endpoint: str, kind: str, times: int = 1, **params: Any) -> None:
        """Queue a fault for an endpoint key (``mentions``, ``create_tweet``, ``me``, ``tweets``,
        ``timeline``, ``user``, ``delete_tweet`` or ``"*"``): the shared kinds of
        :mod:`bot.emulators.base`; a 5xx takes ``detail``: the problem's text (what a
        misbehaving gateway might echo)."""
        super().inject(endpoint, kind, times, **params)

    def error_response(self, status: int, fault: Fault | None) -> Response:
        if status == 429:
            body = {"title": "Too Many Requests", "detail": "Too Many Requests",
                    "type": "about:blank", "status": 429}
            return json_response(body, 429)
        title = {500: "Internal Server Error", 502: "Bad Gateway",
                 503: "Service Unavailable", 504: "Gateway Timeout"}[status]
        return _problem(status, title, str((fault.params if fault else {}).get("detail", title)))

    # HTTP ------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        one = "([^/]+)"
        return [
            Route("GET", r"/2/users/me", "me", self._get_me),
            Route("GET", rf"/2/users/by/username/{one}", "user", self._get_user_by_username),
            Route("GET", rf"/2/users/{one}/mentions", "mentions", self._get_mentions),
            Route("GET", rf"/2/users/{one}/tweets", "timeline", self._get_timeline),
            Route("GET", rf"/2/users/{one}", "user", self._get_user),
            Route("GET", r"/2/tweets/search/recent", "search", self._search_recent),
            Route("GET", r"/2/tweets", "tweets", self._get_tweets),
            Route("GET", rf"/2/tweets/{one}", "tweets", self._get_tweet),
            Route("POST", r"/2/tweets", "create_tweet", self._create_tweet),
            Route("DELETE", rf"/2/tweets/{one}", "delete_tweet", self._delete_tweet),
            Route("POST", r"/2/media/upload", "media_upload", self._media_upload),
            Route("GET", r"/2/media/upload", "media_upload", self._media_status),
            Route("POST", r"/2/media/upload/initialize", "media_upload", self._media_init),
            Route("POST", rf"/2/media/upload/{one}/append", "media_upload", self._media_append),
            Route("POST", rf"/2/media/upload/{one}/finalize", "media_upload",
                  self._media_finalize),
            Route("POST", r"/2/media/metadata", "media_metadata", self._media_metadata),
        ]

    def _authenticate(self, request: Request) -> _Auth | None:
        header = request.headers.get("authorization", "")
        if header.startswith("Bearer "):
            token = header[len("Bearer "):].strip()
            with self._lock:
                if token in self._user_tokens:
                    return _Auth(self._user_tokens[token])
                if token and (token in self._bearers or self.accept_any_bearer):
                    return _Auth(None)
            return None
        if header.startswith("OAuth "):
            match = re.search(r'oauth_token="([^"]*)"', header)
            token = unquote(match.group(1)) if match else ""
            with self._lock:
                user_id = self._user_tokens.get(token)
                secrets = self._oauth_secrets.get(token)
            if secrets is not None and not self._signed(request, header, secrets):
                return None
            return _Auth(user_id) if user_id else None
        return None

    def _signed(self, request: Request, header: str, secrets: tuple[str, str, str]) -> bool:
        """OAuth 1.0a HMAC-SHA1 over the method, the URL (as the client addressed it: X's
        hosts or this emulator) and the query, form-body and oauth_* parameters (a JSON or
        multipart body is not signed)."""
        oauth = {k: oauth_sig.utils.unescape(v)
                 for k, v in re.findall(r'(oauth_[a-z_]+)="([^"]*)"', header)}
        consumer_key, consumer_secret, token_secret = secrets
        if oauth.get("oauth_consumer_key") != consumer_key \
                or oauth.get("oauth_signature_method") != "HMAC-SHA1":
            return False
        body = request.form() if request.content_type == "application/x-www-form-urlencoded" \
            else {}
        params = oauth_sig.normalize_parameters(oauth_sig.collect_parameters(
            uri_query=urlencode(request.query), body=body, headers={"Authorization": header},
            exclude_oauth_signature=True))
        key = f"{oauth_sig.utils.escape(consumer_secret)}&{oauth_sig.utils.escape(token_secret)}"
        given = oauth.get("oauth_signature", "")
        for root in ("https://api.twitter.com", "https://api.x.com", self.root_url):
            base = oauth_sig.signature_base_string(
                request.method, oauth_sig.base_string_uri(root + request.path), params)
            expected = base64.b64encode(hmac.new(key.encode(), base.encode(),
                                                 hashlib.sha1).digest()).decode()
            if oauth_sig.safe_string_equals(expected, given):
                return True
        return False

    def handle(self, request: Request) -> Response:
        body: Any = None
        if request.body and request.content_type == "application/json":
            try:
                body = request.json()
            except ValueError:
                body = None
        record = RecordedRequest(request.method, request.path, dict(request.query), body,
                                 dict(request.headers))
        with self._lock:
            self.requests.append(record)
        response = self._respond(request, body, record)
        record.status = None if response.drop else response.status
        return response

    def _respond(self, request: Request, body: Any, record: RecordedRequest) -> Response:
        found = self.route(self._normalised(request))
        if found is None:
            return _problem(404, "Not Found Error", "The requested resource could not be found.")
        record.endpoint = found.key
        auth = self._authenticate(request)
        if auth is None:
            return _problem(401, "Unauthorized", "Unauthorized")
        limit, window = self.limits.get(found.key, (300, WINDOW_15_MIN))
        used, reset_at = self._windows.hit(found.key, window)
        headers = self.rate_headers.report(limit, used, reset_at, window)
        if used > limit:
            return self.over_limit(headers)
        return self.answer(found.key, lambda: found.handler(request, auth, body, *found.args),
                           headers)

    @staticmethod
    def _normalised(request: Request) -> Request:
        """The path without empty segments (``//2/tweets/`` is ``/2/tweets``), as X reads it."""
        path = "/" + "/".join(p for p in request.path.split("/") if p)
        return request if path == request.path else Request(
            request.method, path, request.query, request.headers, request.body)

    # serialisation -----------------------------------------------------------------------
    @staticmethod
    def _fields(query: dict[str, str], name: str) -> set[str]:
        return {f.strip() for f in query.get(name, "").split(",") if f.strip()}

    def _user_json(self, user: XUser, fields: set[str]) -> dict[str, Any]:
        data: dict[str, Any] = {"id": user.id, "name": user.name, "username": user.username}
        optional: dict[str, Any] = {
            "created_at": iso_ms(user.created_at),
            "description": "",
            "protected": False,
            "verified": False,
            "profile_image_url": "https://pbs.twimg.com/profile_images/default_normal.png",
            "public_metrics": {
                "followers_count": user.followers_count,
                "following_count": user.following_count,
                "tweet_count": sum(1 for t in self.tweets.values()
                                   if t.author_id == user.id and not t.deleted),
                "listed_count": 0,
                "like_count": 0,
            },
        }
        data.update({k: v for k, v in optional.items() if k in fields})
        return dict(sorted(data.items()))

    def _tweet_json(self, tweet: Tweet, fields: set[str]) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": tweet.id,
            "text": x_escape(tweet.text),
            "edit_history_tweet_ids": [tweet.id],
        }
        optional: dict[str, Any] = {
            "author_id": tweet.author_id,
            "created_at": iso_ms(tweet.created_at),
            "conversation_id": tweet.conversation_id,
            "lang": "en",
            "possibly_sensitive": False,
            "reply_settings": "everyone",
            "public_metrics": {"retweet_count": 0, "reply_count": 0, "like_count": 0,
                               "quote_count": 0, "bookmark_count": 0, "impression_count": 0},
        }
        if tweet.in_reply_to_user_id:
            optional["in_reply_to_user_id"] = tweet.in_reply_to_user_id
        if tweet.referenced_tweets:
            optional["referenced_tweets"] = [dict(r) for r in tweet.referenced_tweets]
        if tweet.mentions or tweet.urls:
            optional["entities"] = tweet.entities()
        if tweet.media_keys:
            optional["attachments"] = {"media_keys": list(tweet.media_keys)}
        data.update({k: v for k, v in optional.items() if k in fields})
        return dict(sorted(data.items()))

    def _includes(self, tweets: list[Tweet], query: dict[str, str]) -> dict[str, Any]:
        expansions = self._fields(query, "expansions")
        tweet_fields = self._fields(query, "tweet.fields")
        user_fields = self._fields(query, "user.fields")
        user_ids: list[str] = []
        referenced: list[Tweet] = []
        for tweet in tweets:
            refs = [self.tweets[r["id"]] for r in tweet.referenced_tweets
                    if r["id"] in self.tweets and not self.tweets[r["id"]].deleted]
            if "author_id" in expansions:
                user_ids.append(tweet.author_id)
            if "in_reply_to_user_id" in expansions and tweet.in_reply_to_user_id:
                user_ids.append(tweet.in_reply_to_user_id)
            if "entities.mentions.username" in expansions:
                user_ids += [m["id"] for m in tweet.mentions if "id" in m]
            if "referenced_tweets.id" in expansions:
                referenced += refs
            if "referenced_tweets.id.author_id" in expansions:
                user_ids += [r.author_id for r in refs]
        includes: dict[str, Any] = {}
        users = [self.users[u] for u in dict.fromkeys(user_ids) if u in self.users]
        if users:
            includes["users"] = [self._user_json(u, user_fields) for u in users]
        unique_refs = list({t.id: t for t in referenced}.values())
        if unique_refs:
            includes["tweets"] = [self._tweet_json(t, tweet_fields) for t in unique_refs]
        return includes

    def _tweets_payload(self, tweets: list[Tweet], query: dict[str, str]) -> dict[str, Any]:
        fields = self._fields(query, "tweet.fields")
        payload: dict[str, Any] = {"data": [self._tweet_json(t, fields) for t in tweets]}
        includes = self._includes(tweets, query)
        if includes:
            payload["includes"] = includes
        return payload

    # endpoints ------------------------------------------------------------------------------
    @staticmethod
    def _user_context_required(auth: _Auth) -> Response | None:
        if auth.is_user:
            return None
        return _problem(
            403,
            "Unsupported Authentication",
            "Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint.  "
            "Supported authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context].",
            f"{PROBLEMS}/unsupported-authentication",
        )

    def _user_response(self, user: XUser | None, parameter: str, value: str,
                       query: dict[str, str]) -> Response:
        with self._lock:
            if user is None:
                return json_response({"errors": [_not_found("user", parameter, value)]})
            return json_response({"data": self._user_json(user, self._fields(query, "user.fields"))})

    def _get_me(self, request: Request, auth: _Auth, body: Any) -> Response:
        refused = self._user_context_required(auth)
        if refused is not None:
            return refused
        return self._user_response(self.users.get(auth.user_id or ""), "id", auth.user_id or "",
                                   request.query)

    def _get_user(self, request: Request, auth: _Auth, body: Any, user_id: str) -> Response:
        if not user_id.isdigit():
            return _invalid_request("id", user_id, f"The `id` query parameter value [{user_id}] "
                                    "does not match ^[0-9]{1,19}$")
        return self._user_response(self.users.get(user_id), "id", user_id, request.query)

    def _get_user_by_username(self, request: Request, auth: _Auth, body: Any,
                              username: str) -> Response:
        with self._lock:
            user = self._user_by_username(username)
        return self._user_response(user, "username", username, request.query)

    def _list_page(
        self, request: Request, candidates: list[Tweet]
    ) -> Response:
        query = request.query
        max_results = query.get("max_results", "10")
        if not max_results.isdigit() or not 5 <= int(max_results) <= 100:
            return _invalid_request("max_results", max_results, f"The `max_results` query "
                                    f"parameter value [{max_results}] is not between 5 and 100")
        for name in ("since_id", "until_id"):
            value = query.get(name)
            if value is not None and not value.isdigit():
                return _invalid_request(name, value, f"The `{name}` query parameter value "
                                        f"[{value}] does not match ^[0-9]{{1,19}}$")
        ordered = sorted(candidates, key=lambda t: int(t.id), reverse=True)
        if "since_id" in query:
            ordered = [t for t in ordered if int(t.id) > int(query["since_id"])]
        if "until_id" in query:
            ordered = [t for t in ordered if int(t.id) < int(query["until_id"])]
        for name, keep in (("start_time", lambda t, m: t.created_at >= m),
                           ("end_time", lambda t, m: t.created_at < m)):
            if name in query:
                try:
                    moment = datetime.fromisoformat(query[name].replace("Z", "+00:00"))
                except ValueError:
                    return _invalid_request(name, query[name], f"Invalid `{name}` value")
                ordered = [t for t in ordered if keep(t, moment)]
        token = query.get("pagination_token")
        if token is not None:
            try:
                if not token.startswith(PAGE_TOKEN_PREFIX):
                    raise ValueError(token)
                cursor = int(token[len(PAGE_TOKEN_PREFIX):], 36)
            except ValueError:
                return _invalid_request("pagination_token", token, "The `pagination_token` "
                                        f"query parameter value [{token}] is not valid")
            ordered = [t for t in ordered if int(t.id) < cursor]
        page = ordered[: int(max_results)]
        if not page:
            return json_response({"meta": {"result_count": 0}})
        payload = self._tweets_payload(page, query)
        meta: dict[str, Any] = {"result_count": len(page), "newest_id": page[0].id,
                                "oldest_id": page[-1].id}
        if len(ordered) > len(page):
            meta["next_token"] = PAGE_TOKEN_PREFIX + _b36(int(page[-1].id))
        payload["meta"] = dict(sorted(meta.items(), key=lambda kv: kv[0] != "next_token"))
        return json_response(payload)

    def _get_mentions(self, request: Request, auth: _Auth, body: Any, user_id: str) -> Response:
        with self._lock:
            user = self.users.get(user_id)
            if user is None:
                return self._user_response(None, "id", user_id, request.query)
            name = user.username.lower()
            candidates = [
                t for t in self.tweets.values()
                if not t.deleted and t.author_id != user_id
                and any(m["username"].lower() == name for m in t.mentions)
            ]
            return self._list_page(request, candidates)

    def _get_timeline(self, request: Request, auth: _Auth, body: Any, user_id: str) -> Response:
        with self._lock:
            if user_id not in self.users:
                return self._user_response(None, "id", user_id, request.query)
            exclude = self._fields(request.query, "exclude")
            candidates = [
                t for t in self.tweets.values()
                if not t.deleted and t.author_id == user_id
                and not ("replies" in exclude and t.in_reply_to_user_id)
            ]
            return self._list_page(request, candidates)

    def _search_recent(self, request: Request, auth: _Auth, body: Any) -> Response:
        """GET /2/tweets/search/recent: the last 7 days' posts matching `query` (terms,
        "phrases", #hashtags, OR, -from:, -is:retweet), newest first; pages by
        `next_token` (or `pagination_token`), as the OpenAPI spec has it."""
        query = request.query.get("query", "")
        if not query or len(query) > 512:
            return _invalid_request("query", query[:50], "The `query` query parameter value "
                                    "must be 1 to 512 characters")
        if "next_token" in request.query and "pagination_token" not in request.query:
            request.query["pagination_token"] = request.query["next_token"]
        week_ago = datetime.now(UTC) - timedelta(days=7)
        with self._lock:
            candidates = [
                t for t in self.tweets.values()
                if not t.deleted and t.created_at >= week_ago
                and matches(query, t.text, self.users[t.author_id].username)
            ]
            return self._list_page(request, candidates)

    def _get_tweets(self, request: Request, auth: _Auth, body: Any) -> Response:
        ids = [i for i in request.query.get("ids", "").split(",") if i]
        if not ids or len(ids) > 100:
            return _invalid_request("ids", request.query.get("ids", ""),
                                    "The `ids` query parameter must have 1 to 100 ids")
        bad = next((i for i in ids if not i.isdigit()), None)
        if bad is not None:
            return _invalid_request("ids", bad, f"The `ids` query parameter value [{bad}] "
                                    "does not match ^[0-9]{1,19}$")
        with self._lock:
            found = [self.tweets[i] for i in ids if i in self.tweets and not self.tweets[i].deleted]
            missing = [i for i in ids if i not in {t.id for t in found}]
            payload: dict[str, Any] = self._tweets_payload(found, request.query) if found else {}
        if missing:
            payload["errors"] = [_not_found("tweet", "ids", i) for i in missing]
        return json_response(payload)

    def _get_tweet(self, request: Request, auth: _Auth, body: Any, tweet_id: str) -> Response:
        if not tweet_id.isdigit():
            return _invalid_request("id", tweet_id, f"The `id` query parameter value "
                                    f"[{tweet_id}] does not match ^[0-9]{{1,19}}$")
        with self._lock:
            tweet = self.tweets.get(tweet_id)
            if tweet is None or tweet.deleted:
                return json_response({"errors": [_not_found("tweet", "id", tweet_id)]})
            payload = self._tweets_payload([tweet], request.query)
            payload["data"] = payload["data"][0]
            return json_response(payload)

    def _create_tweet(self, request: Request, auth: _Auth, body: Any) -> Response:
        refused = self._user_context_required(auth)
        if refused is not None:
            return refused
        if not isinstance(body, dict):
            return _invalid_request("body", "", "Request body must be a JSON object")
        text = body.get("text")
        if not isinstance(text, str) or not text:
            return _invalid_request("text", str(text), "$.text: must be at least 1 characters")
        author_id = auth.user_id or ""
        reply_to = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        quote_of = body.get("quote_tweet_id")
        media_ids = (body.get("media") or {}).get("media_ids") or []
        with self._lock:
            if not isinstance(media_ids, list) or len(media_ids) > 4:
                return _invalid_request("media.media_ids", str(media_ids),
                                        "$.media.media_ids: must have at most 4 items")
            for media_id in media_ids:
                found = self.media.get(str(media_id))
                if found is None or found.owner_id != author_id:
                    return _problem(400, "Invalid Request",
                                    f"Your media IDs are invalid: {media_id}")
            for target in (reply_to, quote_of):
                if target is not None and (target not in self.tweets or self.tweets[target].deleted):
                    return _problem(403, "Forbidden", "You attempted to reply to a Tweet that is "
                                    "deleted or not visible to you.")
            since = datetime.now(UTC).timestamp() - self.duplicate_window_s
            if any(t.author_id == author_id and (t.sent_text or t.text) == text and not t.deleted
                   and t.created_at.timestamp() >= since for t in self.tweets.values()):
                return _problem(403, "Forbidden",
                                "You are not allowed to create a Tweet with duplicate content.")
            if author_id not in self.users:
                self.add_user(author_id, f"user{author_id}")
            wrapped, urls = tco_wrap(text, f"{author_id}:{len(self.tweets)}")
            created = self.add_tweet(author_id, wrapped, in_reply_to=reply_to, quote_of=quote_of,
                                     via_api=True)
            self.tweets[created["id"]].urls = urls
            self.tweets[created["id"]].sent_text = text
            created = self.tweets[created["id"]].to_dict()
            if media_ids:
                self.tweets[created["id"]].media_keys = [self.media[str(m)].media_key
                                                         for m in media_ids]
                created = self.tweets[created["id"]].to_dict()
        data = {"edit_history_tweet_ids": [created["id"]], "id": created["id"],
                "text": x_escape(created["text"])}
        return json_response({"data": data}, 201,
                             {"location": f"https://api.twitter.com/2/tweets/{created['id']}"})

    def _media_upload(self, request: Request, auth: _Auth, body: Any) -> Response:
        """Simple (one-request) upload: multipart ``media`` (raw bytes) + ``media_category``."""
        refused = self._user_context_required(auth)
        if refused is not None:
            return refused
        parts = request.multipart()
        media = parts.get("media")
        if media is None or not media.data:
            return _invalid_request("media", "", "$.media: is missing but it is required")
        category = parts["media_category"].text() if "media_category" in parts else "tweet_image"
        mime = (parts["media_type"].text() if "media_type" in parts else media.content_type)
        if mime == "image/gif" or _sniff(media.data) == "image/gif":
            # X: a GIF goes through the chunked upload with media_category=tweet_gif
            return _invalid_request("media_category", category, "GIFs must be uploaded with "
                                    "the chunked upload (initialize, append, finalize) and "
                                    "media_category tweet_gif")
        if category != "tweet_image" or mime not in IMAGE_TYPES:
            return _invalid_request("media_type", mime, "unsupported media type or category")
        if _sniff(media.data) not in (mime, None):
            return _invalid_request("media", mime, f"the media is not {mime}")
        if len(media.data) > IMAGE_MAX_BYTES:
            return _invalid_request("media", f"{len(media.data)} bytes",
                                    f"images must be at most {IMAGE_MAX_BYTES} bytes")
        with self._lock:
            media_id = self._next_id()
            self.media[media_id] = Media(media_id, auth.user_id or "", media.data, mime, category)
        return json_response({"data": {
            "id": media_id, "media_key": f"3_{media_id}", "size": len(media.data),
            "expires_after_secs": 86400, "image": {"image_type": mime}}})

    GIF_MAX_BYTES = 15 * 1024 * 1024  # X's limit for tweet_gif

    def _media_init(self, request: Request, auth: _Auth, body: Any) -> Response:
        """POST /2/media/upload/initialize (InitializeMediaUploadRequest, JSON)."""
        refused = self._user_context_required(auth)
        if refused is not None:
            return refused
        if not isinstance(body, dict):
            return _invalid_request("body", "", "Request body must be a JSON object")
        unknown = set(body) - {"additional_owners", "media_category", "media_type", "shared",
                               "total_bytes"}
        if unknown:
            return _invalid_request(sorted(unknown)[0], "", "additional properties are not allowed")
        mime, category, total = body.get("media_type"), body.get("media_category"), body.get("total_bytes")
        if not isinstance(total, int) or total <= 0:
            return _invalid_request("total_bytes", str(total), "$.total_bytes: is required")
        if mime not in IMAGE_TYPES or category not in ("tweet_image", "tweet_gif"):
            return _invalid_request("media_type", str(mime), "unsupported media type or category")
        if (mime == "image/gif") != (category == "tweet_gif"):
            return _invalid_request("media_category", str(category),
                                    "a GIF needs media_category tweet_gif (and only a GIF)")
        if total > (self.GIF_MAX_BYTES if category == "tweet_gif" else IMAGE_MAX_BYTES):
            return _invalid_request("total_bytes", str(total), "the media is too large")
        with self._lock:
            media_id = self._next_id()
            self.uploads[media_id] = ChunkedUpload(auth.user_id or "", total, mime, category)
        return json_response({"data": {"id": media_id, "media_key": f"16_{media_id}",
                                       "expires_after_secs": 86399}})

    def _upload_of(self, auth: _Auth, media_id: str) -> ChunkedUpload | Response:
        refused = self._user_context_required(auth)
        if refused is not None:
            return refused
        if not re.fullmatch(r"[0-9]{1,19}", media_id):
            return _invalid_request("id", media_id, "$.id: does not match ^[0-9]{1,19}$")
        upload = self.uploads.get(media_id)
        if upload is None or upload.owner_id != auth.user_id:
            return _invalid_request("id", media_id, "no upload with that id")
        return upload

    def _media_append(self, request: Request, auth: _Auth, body: Any, media_id: str) -> Response:
        """POST /2/media/upload/{id}/append (multipart: media, segment_index)."""
        upload = self._upload_of(auth, media_id)
        if isinstance(upload, Response):
            return upload
        parts = request.multipart()
        index = parts["segment_index"].text() if "segment_index" in parts else ""
        if "media" not in parts or not index.isdigit() or int(index) > 999:
            return _invalid_request("segment_index", index,
                                    "media and segment_index (0-999) are required")
        if upload.finalized:
            return _invalid_request("id", media_id, "the upload is already finalized")
        with self._lock:
            upload.segments[int(index)] = parts["media"].data
        return json_response({"data": {"expires_at": int(time.time()) + 86399}})

    def _media_finalize(self, request: Request, auth: _Auth, body: Any, media_id: str) -> Response:
        upload = self._upload_of(auth, media_id)
        if isinstance(upload, Response):
            return upload
        with self._lock:
            indexes = sorted(upload.segments)
            data = b"".join(upload.segments[i] for i in indexes)
            if indexes != list(range(len(indexes))) or len(data) != upload.total_bytes:
                return _invalid_request("id", media_id, "File size does not match the "
                                        "total_bytes of the upload (or a segment is missing)")
            if _sniff(data) != upload.media_type:
                return _invalid_request("media", upload.media_type,
                                        f"the media is not {upload.media_type}")
            upload.finalized = True
            upload.polls_left = self.processing_polls if upload.category == "tweet_gif" else 0
            if upload.polls_left == 0:
                self.media[media_id] = Media(media_id, upload.owner_id, data, upload.media_type,
                                             upload.category)
        return json_response({"data": self._upload_json(media_id, upload)})

    def _upload_json(self, media_id: str, upload: ChunkedUpload) -> dict[str, Any]:
        out: dict[str, Any] = {"id": media_id, "media_key": f"16_{media_id}",
                               "size": upload.total_bytes, "expires_after_secs": 86399}
        if upload.category == "tweet_gif":
            done = upload.polls_left == 0
            out["processing_info"] = {"state": "succeeded", "progress_percent": 100} if done \
                else {"state": "pending" if not upload.segments else "in_progress",
                      "check_after_secs": 1, "progress_percent": 50}
        return out

    def _media_status(self, request: Request, auth: _Auth, body: Any) -> Response:
        """GET /2/media/upload?command=STATUS&media_id=..."""
        media_id = request.query.get("media_id", "")
        if request.query.get("command", "STATUS") != "STATUS":
            return _invalid_request("command", request.query.get("command", ""), "must be STATUS")
        upload = self._upload_of(auth, media_id)
        if isinstance(upload, Response):
            return upload
        if not upload.finalized:
            return _invalid_request("media_id", media_id, "the upload is not finalized")
        with self._lock:
            if upload.polls_left > 0:
                upload.polls_left -= 1
                if upload.polls_left == 0:
                    data = b"".join(upload.segments[i] for i in sorted(upload.segments))
                    self.media[media_id] = Media(media_id, upload.owner_id, data,
                                                 upload.media_type, upload.category)
                    return json_response({"data": self._upload_json(media_id, upload)})
                return json_response({"data": {**self._upload_json(media_id, upload),
                                               "processing_info": {"state": "in_progress",
                                                                   "check_after_secs": 1,
                                                                   "progress_percent": 50}}})
        return json_response({"data": self._upload_json(media_id, upload)})

    def _media_metadata(self, request: Request, auth: _Auth, body: Any) -> Response:
        """``{"id": ..., "metadata": {"alt_text": {"text": ...}}}``."""
        refused = self._user_context_required(auth)
        if refused is not None:
            return refused
        if not isinstance(body, dict):
            return _invalid_request("body", "", "Request body must be a JSON object")
        media_id = str(body.get("id", ""))
        alt = ((body.get("metadata") or {}).get("alt_text") or {}).get("text")
        if not isinstance(alt, str) or not 0 < len(alt) <= ALT_TEXT_MAX:
            return _invalid_request("metadata.alt_text.text", str(alt),
                                    f"alt text must be 1 to {ALT_TEXT_MAX} characters")
        with self._lock:
            found = self.media.get(media_id)
            if found is None or found.owner_id != auth.user_id:
                return json_response({"errors": [_not_found("media", "id", media_id)]}, 404)
            found.alt_text = alt
        return json_response({"data": {"id": media_id,
                                       "associated_metadata": {"alt_text": {"text": alt}}}})

    def _delete_tweet(self, request: Request, auth: _Auth, body: Any, tweet_id: str) -> Response:
        refused = self._user_context_required(auth)
        if refused is not None:
            return refused
        with self._lock:
            tweet = self.tweets.get(tweet_id)
            if tweet is None or tweet.deleted:
                return json_response({"data": {"deleted": False}})
            if tweet.author_id != auth.user_id:
                return _problem(403, "Forbidden", "You are not allowed to delete this Tweet.")
            tweet.deleted = True
        return json_response({"data": {"deleted": True}})
