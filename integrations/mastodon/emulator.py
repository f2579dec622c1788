"""A Mastodon instance on 127.0.0.1 speaking the REST API's JSON (docs.joinmastodon.org:
Account, Status, Notification entities; Link pagination; X-RateLimit-* headers;
Idempotency-Key on POST /api/v1/statuses; 422 over the character limit).

Faults per endpoint key (``verify_credentials``, ``notifications``, ``status``,
``post_status``, ``account_statuses``): ``"429"``, ``"500"``/``"502"``/``"503"``/``"504"``,
``"drop"``, ``"malformed"``, ``"slow"``, ``"drop_after_commit"`` (post, then hang up).
"""

from __future__ import annotations

import html
import itertools
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from commsdesk.emulators.http import (
    EmulatorServer,
    FaultQueue,
    Request,
    Response,
    apply_delay,
    json_response,
    transport_fault_response,
)

RATE_LIMIT = 300  # requests per 5 minutes, as mastodon.social


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


@dataclass
class MastoNotification:
    id: str
    type: str
    account_id: str  # who caused it
    owner_id: str  # whose notification it is
    status_id: str | None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class MastodonEmulator(EmulatorServer):
    def __init__(self, port: int = 0, *, domain: str = "mastodon.example", max_characters: int = 500):
        super().__init__(port)
        self.domain = domain
        self.max_characters = max_characters
        self.accounts: dict[str, MastoAccount] = {}
        self.statuses: dict[str, MastoStatus] = {}
        self.notifications: list[MastoNotification] = []
        self.tokens: dict[str, str] = {}
        self.idempotency: dict[tuple[str, str], str] = {}
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.faults = FaultQueue()
        self._lock = threading.RLock()
        self._ids = itertools.count(110_000_000_000_000_000)
        self._calls: list[float] = []

    # ------------------------------------------------------------ state helpers

    def _next_id(self) -> str:
        return str(next(self._ids))

    def add_account(self, username: str, display_name: str = "", *, domain: str | None = None,
                    token: str | None = None, followers: int = 0, account_id: str | None = None
                    ) -> MastoAccount:
        with self._lock:
            acc = MastoAccount(account_id or self._next_id(), username, display_name or username,
                               domain, followers)
            self.accounts[acc.id] = acc
            if token:
                self.tokens[token] = acc.id
            return acc

    def _by_acct(self, acct: str) -> MastoAccount | None:
        acct = acct.lstrip("@").lower()
        return next((a for a in self.accounts.values()
                     if a.acct.lower() == acct or (a.domain is None and
                                                   f"{a.username}@{self.domain}".lower() == acct)),
                    None)

    def add_status(self, author: MastoAccount, text: str, *, visibility: str = "public",
                   in_reply_to_id: str | None = None) -> MastoStatus:
        with self._lock:
            mentioned = [a.id for a in (self._by_acct(m) for m in
                                        re.findall(r"(?<![\w@])@([\w.]+(?:@[\w.-]+)?)", text)) if a]
            parent = self.statuses.get(in_reply_to_id or "")
            st = MastoStatus(self._next_id(), author.id, text, visibility, in_reply_to_id,
                             parent.account_id if parent else None, mentions=mentioned)
            self.statuses[st.id] = st
            for acc_id in dict.fromkeys(mentioned):
                if acc_id != author.id:
                    self.notifications.append(MastoNotification(
                        self._next_id(), "mention", author.id, acc_id, st.id))
            return st

    def add_mention(self, author: MastoAccount, text: str, **kw: Any) -> MastoStatus:
        """A resident's post that @mentions one of the council's accounts."""
        return self.add_status(author, text, **kw)

    def add_follow(self, follower: MastoAccount, owner: MastoAccount) -> None:
        with self._lock:
            owner.followers_count += 1
            self.notifications.append(MastoNotification(self._next_id(), "follow", follower.id,
                                                        owner.id, None))

    def posts_by(self, account_id: str) -> list[MastoStatus]:
        with self._lock:
            return [s for s in self.statuses.values() if s.account_id == account_id]

    def inject(self, endpoint: str, kind: str, times: int = 1, **params: Any) -> None:
        self.faults.add(endpoint, str(kind), times, **params)

    def requests_to(self, endpoint: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r[2] for r in self.requests if r[0] == endpoint]

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
            "account": self._account_json(acc), "media_attachments": [],
            "mentions": [{"id": a.id, "username": a.username, "acct": a.acct,
                          "url": f"https://{a.domain or self.domain}/@{a.username}"}
                         for a in (self.accounts[i] for i in st.mentions)],
            "tags": [], "emojis": [], "card": None, "poll": None,
        }

    def _notification_json(self, n: MastoNotification) -> dict[str, Any]:
        return {
            "id": n.id, "type": n.type, "group_key": f"ungrouped-{n.id}",
            "created_at": iso(n.created_at), "account": self._account_json(self.accounts[n.account_id]),
            **({"status": self._status_json(self.statuses[n.status_id])} if n.status_id else {}),
        }

    # ------------------------------------------------------------ HTTP

    def _rate_headers(self) -> tuple[dict[str, str], bool]:
        now = time.time()
        with self._lock:
            self._calls = [t for t in self._calls if t > now - 300] + [now]
            used = len(self._calls)
            reset = datetime.fromtimestamp((self._calls[0] + 300), UTC)
        return ({"X-RateLimit-Limit": str(RATE_LIMIT),
                 "X-RateLimit-Remaining": str(max(0, RATE_LIMIT - used)),
                 "X-RateLimit-Reset": iso(reset)}, used > RATE_LIMIT)

    def _route(self, method: str, path: str) -> tuple[str, Any, list[str]] | None:
        table: list[tuple[str, str, str, Any]] = [
            ("GET", r"/api/v1/accounts/verify_credentials", "verify_credentials", self._me),
            ("GET", r"/api/v1/notifications", "notifications", self._notifications),
            ("POST", r"/api/v1/statuses", "post_status", self._post_status),
            ("GET", r"/api/v1/statuses/(\d+)", "status", self._get_status),
            ("DELETE", r"/api/v1/statuses/(\d+)", "delete_status", self._delete_status),
            ("GET", r"/api/v1/accounts/(\d+)/statuses", "account_statuses", self._account_statuses),
        ]
        for m, pattern, key, handler in table:
            match = re.fullmatch(pattern, path)
            if m == method and match:
                return key, handler, list(match.groups())
        return None

    def handle(self, request: Request) -> Response:
        route = self._route(request.method, request.path)
        if route is None:
            return json_response({"error": "Not Found"}, 404)
        key, handler, args = route
        body: dict[str, Any] = {}
        if request.body:
            if request.content_type == "application/json":
                try:
                    body = request.json() or {}
                except ValueError:
                    return json_response({"error": "Invalid JSON"}, 400)
            else:
                body = request.form()
        with self._lock:
            self.requests.append((key, request.method, {**request.query, **body,
                                                        "_headers": request.headers}))
        auth = request.headers.get("authorization", "")
        account_id = self.tokens.get(auth.removeprefix("Bearer ").strip())
        if account_id is None:
            return json_response({"error": "The access token is invalid"}, 401)
        headers, over = self._rate_headers()
        if over:
            return json_response({"error": "Too many requests"}, 429, headers)
        fault = self.faults.take(key)
        drop_after = False
        if fault is not None:
            apply_delay(fault)
            transport = transport_fault_response(fault)
            if transport is not None:
                return transport
            if fault.kind == "429":
                reset = datetime.now(UTC) + timedelta(seconds=float(fault.params.get("reset_in", 1)))
                return json_response({"error": "Too many requests"}, 429,
                                     headers | {"X-RateLimit-Remaining": "0",
                                                "X-RateLimit-Reset": iso(reset)})
            if fault.kind in {"500", "502", "503", "504"}:
                return json_response({"error": "We're sorry, but something went wrong on our end."},
                                     int(fault.kind), headers)
            drop_after = fault.kind == "drop_after_commit"
        with self._lock:
            response = handler(request, self.accounts[account_id], body, *args)
        if drop_after:
            return Response(drop=True)
        response.headers.update(headers)
        return response

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
        if q.get("max_id"):
            items = [n for n in items if int(n.id) < int(q["max_id"])]
        if q.get("since_id"):
            items = [n for n in items if int(n.id) > int(q["since_id"])]
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
        if not text.strip():
            return json_response({"error": "Validation failed: Text can't be blank"}, 422)
        from commsdesk.integrations.mastodon.network import mastodon_length

        if mastodon_length(text) > self.max_characters:
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
        if key:
            self.idempotency[(me.id, key)] = st.id
        return json_response(self._status_json(st))

    def _account_statuses(self, request: Request, me: MastoAccount, body: Any, aid: str) -> Response:
        limit = min(int(request.query.get("limit", 20)), 40)
        items = sorted((s for s in self.statuses.values() if s.account_id == aid),
                       key=lambda s: int(s.id), reverse=True)
        return json_response([self._status_json(s) for s in items[:limit]])
