"""The Flickr API on 127.0.0.1: `/services/rest/` (format=json, nojsoncallback=1; errors
are HTTP 200 with `{"stat": "fail", "code", "message"}`) and `/services/upload/` (XML
`<rsp stat="ok"><photoid>...</photoid></rsp>`). Every call must carry a valid OAuth 1.0a
HMAC-SHA1 signature (checked with oauthlib). An upload is checked by Flickr's own rule
(specs/flickr/NOTES.md §3): the signature covers the OAuth parameters and every multipart
field except `photo`; a wrong one gets error 96 "Invalid signature", an unknown key 100,
an unknown token 98, a read-only token 99 on writes, an empty photo 4, a file that is
not an image 5.

Faults per method name (``flickr.photos.comments.addComment``, ``upload``, ...): the shared
kinds of :mod:`bot.emulators.base` (a ``"429"`` carries ``Retry-After``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from oauthlib.oauth1.rfc5849 import signature as oauth_sig

from bot.emulators.base import Emulator, RateHeaders
from bot.emulators.http import Fault, Part, Request, Response, json_response


@dataclass
class FlickrUser:
    nsid: str
    username: str
    realname: str


@dataclass
class FlickrPhoto:
    id: str
    owner: str
    title: str
    description: str = ""
    tags: str = ""
    filename: str = ""
    size: int = 0
    dateupload: int = field(default_factory=lambda: int(time.time()))


@dataclass
class FlickrComment:
    id: str
    photo_id: str
    author: str
    text: str
    datecreate: int = field(default_factory=lambda: int(time.time()))


AUTH_ERRORS = {96: "Invalid signature", 97: "Missing signature", 98: "Invalid auth token",
               100: "Invalid API Key (Key not found)"}


def _fail(code: int, message: str) -> Response:
    return json_response({"stat": "fail", "code": code, "message": message})


def _xml_fail(code: int, message: str) -> Response:
    return Response(200, (f'<?xml version="1.0" encoding="utf-8" ?>\n<rsp stat="fail">\n'
                          f'\t<err code="{code}" msg="{message}" />\n</rsp>\n').encode(),
                    {"Content-Type": "text/xml; charset=utf-8"})


def _looks_like_image(data: bytes) -> bool:
    """JPEG, PNG, GIF, WebP, TIFF, HEIC: what Flickr takes as a photo (by its bytes)."""
    return (data[:3] == b"\xff\xd8\xff" or data[:8] == b"\x89PNG\r\n\x1a\n"
            or data[:6] in (b"GIF87a", b"GIF89a") or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
            or data[:4] in (b"II*\x00", b"MM\x00*") or data[4:12] in (b"ftypheic", b"ftypmif1"))


class FlickrEmulator(Emulator):
    rate_headers = RateHeaders(retry_after=True)  # Flickr sends no rate-limit headers

    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self.users: dict[str, FlickrUser] = {}
        self.photos: dict[str, FlickrPhoto] = {}
        self.comments: list[FlickrComment] = []
        self.apps: dict[str, str] = {}  # api key -> secret
        self.tokens: dict[str, tuple[str, str]] = {}  # oauth token -> (secret, nsid)
        self.read_only: set[str] = set()  # tokens granted perms=read
        self.calls_by_key: dict[str, list[float]] = {}  # api key -> when each call came
        self._ids = itertools.count(53_000_000_001)

    def _next(self) -> str:
        return str(next(self._ids))

    # ------------------------------------------------------------ state helpers

    def add_app(self, key: str, secret: str) -> None:
        self.apps[key] = secret

    def add_user(self, nsid: str, username: str, realname: str = "", *,
                 token: tuple[str, str] | None = None, perms: str = "write") -> FlickrUser:
        with self._lock:
            user = FlickrUser(nsid, username, realname or username)
            self.users[nsid] = user
            if token:
                self.tokens[token[0]] = (token[1], nsid)
                if perms == "read":
                    self.read_only.add(token[0])
            return user

    def add_photo(self, owner: FlickrUser, title: str) -> FlickrPhoto:
        with self._lock:
            photo = FlickrPhoto(self._next(), owner.nsid, title)
            self.photos[photo.id] = photo
            return photo

    def add_comment(self, photo: FlickrPhoto, author: FlickrUser, text: str,
                    when: int | None = None) -> FlickrComment:
        with self._lock:
            cid = f"{author.nsid.split('@')[0]}-{photo.id}-7215{self._next()}"
            comment = FlickrComment(cid, photo.id, author.nsid, text, when or int(time.time()))
            self.comments.append(comment)
            return comment

    def comments_on(self, photo_id: str) -> list[FlickrComment]:
        with self._lock:
            return [c for c in self.comments if c.photo_id == photo_id]

    # ------------------------------------------------------------ HTTP

    def _oauth_user(self, request: Request, signed_body: dict[str, str]) -> str | int:
        """The caller's nsid, or Flickr's error code: 97 missing signature, 100 invalid API
        key, 98 invalid auth token, 96 invalid signature."""
        header = request.headers.get("authorization", "")
        if not header.startswith("OAuth "):
            return 97
        oauth = {k: oauth_sig.utils.unescape(v)
                 for k, v in re.findall(r'(oauth_[a-z_]+)="([^"]*)"', header)}
        secret = self.apps.get(oauth.get("oauth_consumer_key", ""))
        token = self.tokens.get(oauth.get("oauth_token", ""))
        if secret is None:
            return 100
        if token is None:
            return 98
        if oauth.get("oauth_signature_method") != "HMAC-SHA1" or not oauth.get("oauth_signature"):
            return 96
        params = oauth_sig.collect_parameters(
            uri_query=urlencode(request.query), body=signed_body,
            headers={"Authorization": header}, exclude_oauth_signature=True)
        base = oauth_sig.signature_base_string(
            request.method, oauth_sig.base_string_uri(self.root_url + request.path),
            oauth_sig.normalize_parameters(params))
        key = f"{oauth_sig.utils.escape(secret)}&{oauth_sig.utils.escape(token[0])}"
        expected = base64.b64encode(hmac.new(key.encode(), base.encode(), hashlib.sha1).digest()
                                    ).decode()
        return token[1] if oauth_sig.safe_string_equals(expected, oauth.get("oauth_signature", "")) else 96

    def _writer(self, request: Request) -> bool:
        token = re.search(r'oauth_token="([^"]*)"', request.headers.get("authorization", ""))
        return token is None or oauth_sig.utils.unescape(token.group(1)) not in self.read_only

    def calls_in_last_hour(self, api_key: str) -> int:
        """Calls made with `api_key` in the last hour: Flickr allows 3,600, whichever of
        the key's users makes them (it says so, and sends no header: nothing is refused
        here, tests compare this count with the limit)."""
        with self._lock:
            return sum(1 for t in self.calls_by_key.get(api_key, []) if t > time.time() - 3600)

    def _count_call(self, request: Request) -> None:
        key = re.search(r'oauth_consumer_key="([^"]*)"', request.headers.get("authorization", ""))
        with self._lock:
            self.calls_by_key.setdefault(oauth_sig.utils.unescape(key.group(1)) if key else
                                         request.query.get("api_key", ""), []).append(time.time())

    def handle(self, request: Request) -> Response:
        self._count_call(request)
        if request.path == "/services/upload/" and request.method == "POST":
            return self._upload(request)
        if request.path != "/services/rest/":
            return Response(404, b"Not Found")
        form = request.form() if request.method == "POST" else {}
        params = {**request.query, **form}
        method = params.get("method", "")
        self.record(method, params)
        nsid = self._oauth_user(request, form)
        if isinstance(nsid, int):
            return _fail(nsid, AUTH_ERRORS[nsid])
        if method == "flickr.photos.comments.addComment" and (
                request.method != "POST" or not self._writer(request)):
            return _fail(99, "Insufficient permissions. Method requires write privileges; "
                             "read granted.") if request.method == "POST" else \
                _fail(3, "This method requires an HTTP POST request")
        handler = {
            "flickr.test.login": self._login,
            "flickr.people.getPhotos": self._get_photos,
            "flickr.photos.comments.getList": self._get_comments,
            "flickr.photos.comments.addComment": self._add_comment,
        }.get(method)
        if handler is None:
            return self.answer(method, lambda: _fail(112, f'Method "{method}" not found'))
        return self.answer(method, lambda: handler(nsid, params))

    def error_response(self, status: int, fault: Fault | None) -> Response:
        if status == 429:
            return Response(429, b"Too Many Requests")
        return Response(status, b"<html>Service Unavailable</html>", {"Content-Type": "text/html"})

    def _login(self, nsid: str, params: dict[str, str]) -> Response:
        user = self.users[nsid]
        return json_response({"user": {"id": nsid, "username": {"_content": user.username},
                                       "path_alias": user.username}, "stat": "ok"})

    def _get_photos(self, nsid: str, params: dict[str, str]) -> Response:
        owner = nsid if params.get("user_id") in (None, "", "me") else params["user_id"]
        per = int(params.get("per_page", 100))
        since = int(params.get("min_upload_date") or 0)
        extras = {e.strip() for e in params.get("extras", "").split(",")}
        mine = sorted((p for p in self.photos.values() if p.owner == owner
                       and p.dateupload >= since),
                      key=lambda p: int(p.id), reverse=True)

        def one(p: Any) -> dict[str, Any]:
            out = {"id": p.id, "owner": p.owner, "secret": "a1b2c3", "server": "65535",
                   "farm": 66, "title": p.title, "ispublic": 1, "isfriend": 0, "isfamily": 0,
                   "dateupload": str(p.dateupload)}
            if "description" in extras:  # as Flickr: only when asked for
                out["description"] = {"_content": p.description}
            return out

        return json_response({"photos": {"page": 1, "pages": 1, "perpage": per, "total": len(mine),
                                         "photo": [one(p) for p in mine[:per]]}, "stat": "ok"})

    def _comment_json(self, c: FlickrComment) -> dict[str, Any]:
        author = self.users[c.author]
        owner = self.users[self.photos[c.photo_id].owner]
        return {"id": c.id, "author": c.author, "author_is_deleted": 0,
                "authorname": author.username, "iconserver": "65535", "iconfarm": 66,
                "datecreate": str(c.datecreate), "path_alias": author.username,
                "realname": author.realname, "_content": c.text,
                "permalink": f"https://www.flickr.com/photos/{owner.username}/{c.photo_id}/"
                             f"#comment{c.id.rsplit('-', 1)[1]}"}

    def _get_comments(self, nsid: str, params: dict[str, str]) -> Response:
        photo_id = params.get("photo_id", "")
        if photo_id not in self.photos:
            return _fail(1, "Photo not found")
        since = int(params.get("min_comment_date") or 0)
        items = [self._comment_json(c) for c in self.comments_on(photo_id) if c.datecreate >= since]
        return json_response({"comments": {"photo_id": photo_id, "comment": items}, "stat": "ok"})

    def _add_comment(self, nsid: str, params: dict[str, str]) -> Response:
        photo = self.photos.get(params.get("photo_id", ""))
        if photo is None:
            return _fail(1, "Photo not found")
        if not params.get("comment_text", "").strip():
            return _fail(2, "Blank comment")
        c = self.add_comment(photo, self.users[nsid], params["comment_text"])
        data = self._comment_json(c)
        return json_response({"comment": {"id": c.id, "author": nsid,
                                          "authorname": data["authorname"],
                                          "permalink": data["permalink"]}, "stat": "ok"})

    def _upload(self, request: Request) -> Response:
        parts = request.multipart()
        # Flickr's rule: every field but `photo` is signed, with the OAuth parameters
        signed = {name: part.text() for name, part in parts.items() if name != "photo"}
        self.record("upload", dict(signed))
        nsid = self._oauth_user(request, signed)
        if isinstance(nsid, int):
            return _xml_fail(nsid, AUTH_ERRORS[nsid])
        if not self._writer(request):
            return _xml_fail(99, "Insufficient permissions")
        return self.answer("upload", lambda: self._store_upload(nsid, signed, parts.get("photo")))

    def _store_upload(self, nsid: str, fields: dict[str, str], photo_part: Part | None
                      ) -> Response:
        if photo_part is None:
            return _xml_fail(2, "No photo specified")
        if not photo_part.data:
            return _xml_fail(4, "Filesize was zero")
        if not _looks_like_image(photo_part.data):
            return _xml_fail(5, "Filetype was not recognised")
        photo = FlickrPhoto(self._next(), nsid, str(fields.get("title", "")),
                            str(fields.get("description", "")), str(fields.get("tags", "")),
                            photo_part.filename or "", len(photo_part.data))
        self.photos[photo.id] = photo
        return Response(200, (f'<?xml version="1.0" encoding="utf-8" ?>\n<rsp stat="ok">\n'
                              f"<photoid>{photo.id}</photoid>\n</rsp>").encode(),
                        {"Content-Type": "text/xml; charset=utf-8"})
