"""Pinterest API v5 on 127.0.0.1: `POST /v5/pins`, `GET /v5/boards/{id}/pins`,
`GET /v5/user_account`, with the documented Pin / UserAccount JSON, `{"code", "message"}`
errors, and `x-ratelimit-*` headers. An image_base64 media source must say `content_type`
`image/jpeg` or `image/png` (the spec's ContentType enum) and carry those bytes (20 MB at
most); anything else is refused with 400, as Pinterest does.

Faults per endpoint key (``pins``, ``board_pins``, ``user_account``): the shared kinds
of :mod:`bot.emulators.base`.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import time
from datetime import UTC, datetime
from typing import Any

from bot.emulators.base import Emulator, RateHeaders, Route
from bot.emulators.http import Fault, Request, Response, json_response

# the ContentType enum of Pinterest's v5 spec, with each type's leading bytes
CONTENT_TYPES = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG"}
MAX_IMAGE_BYTES = 20 * 1024 * 1024  # Pinterest's image upload limit
# the OAuth scopes each operation's `security` names in the v5 spec
SCOPES = {"pins": {"boards:read", "boards:write", "pins:read", "pins:write"},
          "board_pins": {"boards:read", "pins:read"}, "user_account": {"user_accounts:read"}}
ALL_SCOPES = set().union(*SCOPES.values())


def _err(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"code": code, "message": message}, status, headers)


class PinterestEmulator(Emulator):
    rate_headers = RateHeaders("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")

    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self.accounts: dict[str, dict[str, Any]] = {}  # token -> account
        self.boards: dict[str, str] = {}  # board id -> owner username
        self.pins: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(813_744_226_254_000_001)

    def add_account(self, username: str, token: str, *, followers: int = 0,
                    boards: tuple[str, ...] = (), scopes: str | None = None) -> None:
        """An account whose OAuth token grants `scopes` (default: all this API needs);
        each call needs those its operation's `security` names in the v5 spec (403
        otherwise)."""
        self.accounts[token] = {"username": username, "id": str(next(self._ids)),
                                "follower_count": followers,
                                "scopes": set(scopes.split()) if scopes is not None
                                else set(ALL_SCOPES)}
        for board in boards:
            self.boards[board] = username

    def routes(self) -> list[Route]:
        return [Route("POST", r"/v5/pins", "pins", self._create_pin),
                Route("GET", r"/v5/boards/([^/]+)/pins", "board_pins", self._board_pins),
                Route("GET", r"/v5/user_account", "user_account", self._user_account)]

    def error_response(self, status: int, fault: Fault | None) -> Response:
        if status == 429:
            return _err(429, 8, "Rate limit exceeded. Please try again later.")
        return _err(status, 0, "Internal error")

    def handle(self, request: Request) -> Response:
        found = self.route(request)
        if found is None:
            return _err(404, 404, "Not found")
        try:
            body = request.json() if request.body else None
        except ValueError:
            return _err(400, 1, "Invalid request body")
        self.record(found.key, body)
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        account = self.accounts.get(token)
        if account is None:
            return _err(401, 2, "Authentication failed.")
        missing = SCOPES[found.key] - account["scopes"]
        if missing:
            return _err(403, 3, f"Not authorized: the token lacks {', '.join(sorted(missing))}")
        # Pinterest's limit is generous: reported, never reached here
        headers = self.rate_headers.report(1000, 1, time.time() + 60, 60)
        return self.answer(found.key, lambda: found.handler(account, body or {}, *found.args),
                           headers)

    def _user_account(self, account: dict[str, Any], body: Any) -> Response:
        return json_response({"account_type": "BUSINESS", "id": account["id"],
                              "username": account["username"],
                              "business_name": account["username"],
                              "profile_image": "https://i.pinimg.com/600x/default.jpg",
                              "website_url": "https://www.nottinghamshire.gov.uk",
                              "board_count": 1, "pin_count": len(self.pins),
                              "follower_count": account["follower_count"],
                              "following_count": 0, "monthly_views": 0})

    def _create_pin(self, account: dict[str, Any], body: dict[str, Any]) -> Response:
        board = body.get("board_id")
        if self.boards.get(str(board)) != account["username"]:
            return _err(404, 2000, "Board not found.")
        for name, limit in (("title", 100), ("description", 800), ("alt_text", 500), ("link", 2048)):
            if len(str(body.get(name) or "")) > limit:
                return _err(400, 1, f"Invalid parameters: '{name}' is too long (max {limit})")
        src = body.get("media_source") or {}
        if src.get("source_type") == "image_base64":
            # PinMediaSourceImageBase64: content_type (ContentType: image/jpeg | image/png)
            # and data are required; the bytes must be what content_type says
            content_type = src.get("content_type")
            if content_type not in CONTENT_TYPES:
                return _err(400, 1, "Invalid parameters: media_source.content_type must be one "
                                    f"of {', '.join(CONTENT_TYPES)}")
            try:
                data = base64.b64decode(src.get("data") or "", validate=True)
            except (binascii.Error, ValueError):
                return _err(400, 1, "Invalid parameters: media_source.data is not base64")
            if not data:
                return _err(400, 1, "Invalid parameters: media_source.data is empty")
            if not data.startswith(CONTENT_TYPES[content_type]):
                return _err(400, 1, f"Invalid parameters: media_source.data is not {content_type}")
            if len(data) > MAX_IMAGE_BYTES:
                return _err(400, 1, "Invalid parameters: the image is larger than 20 MB")
        elif src.get("source_type") != "image_url":
            return _err(400, 1, "Invalid parameters: media_source is required")
        pin_id = str(next(self._ids))
        pin = {"id": pin_id, "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
               "link": body.get("link"), "title": body.get("title"),
               "description": body.get("description"), "dominant_color": "#6E7874",
               "alt_text": body.get("alt_text"), "creative_type": "REGULAR",
               "board_id": str(board), "board_section_id": None, "board_owner":
               {"username": account["username"]}, "is_owner": True,
               "media": {"media_type": "image", "images": {"600x": {
                   "width": 600, "height": 600, "url": f"https://i.pinimg.com/600x/{pin_id}.jpg"}}},
               "parent_pin_id": None, "is_standard": True, "has_been_promoted": False,
               "note": "", "pin_metrics": None, "_media_bytes": len(base64.b64decode(src.get("data") or ""))
               if src.get("source_type") == "image_base64" else 0,
               "_content_type": src.get("content_type")}
        self.pins[pin_id] = pin
        return json_response({k: v for k, v in pin.items() if not k.startswith("_")}, 201)

    def _board_pins(self, account: dict[str, Any], body: Any, board: str) -> Response:
        if self.boards.get(board) != account["username"]:
            return _err(404, 2000, "Board not found.")
        items = [{k: v for k, v in p.items() if not k.startswith("_")}
                 for p in reversed(list(self.pins.values())) if p["board_id"] == board]
        return json_response({"items": items[:25], "bookmark": None})
