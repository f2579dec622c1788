"""The spec checks of tests/spec_check.py can fail: each rejects a wrong request and a
wrong answer, and passes the right ones (so the contract suite's judge is a real one)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.emulators.http import Request, Response
from tests import spec_check

pytestmark = pytest.mark.skipif(not spec_check.specs_available(),
                                reason="../shared/specs is not there")


def _req(method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None,
         ctype: str = "application/json", headers: dict[str, str] | None = None) -> Request:
    raw = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None
                                                else b"")
    return Request(method, path, query or {}, {"content-type": ctype, **(headers or {})}, raw)


def _resp(body: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(body).encode(), {"Content-Type": "application/json"})


def _one(network: str, request: Request, response: Response) -> list[str]:
    class Seen:
        exchanges = [(request, response)]

    return spec_check.check_exchanges(network, Seen())


TWEET = {"data": {"id": "1460323737035677698", "text": "Hello", "edit_history_tweet_ids": [
    "1460323737035677698"]}}


def test_x_openapi_rejects_a_wrong_request_and_a_wrong_answer() -> None:
    good = _req("POST", "/2/tweets", body={"text": "Hello", "reply": {
        "in_reply_to_tweet_id": "1460323737035677697"}})
    assert _one("x", good, _resp(TWEET, 201)) == []
    # a reply field X does not have, and a post id that is not a number
    bad = _req("POST", "/2/tweets", body={"text": "Hello", "reply": {"in_reply_to": "x"}})
    assert _one("x", bad, _resp(TWEET, 201))
    # an answer without the post's id
    assert _one("x", good, _resp({"data": {"text": "Hello"}}, 201))
    # an endpoint that does not exist, and a query parameter X does not take
    assert _one("x", _req("GET", "/2/tweets/mentions"), _resp({}))
    assert _one("x", _req("GET", "/2/users/1111/mentions", query={"max_results": "500"}),
                _resp({"meta": {"result_count": 0}}))
    assert _one("x", _req("GET", "/2/users/1111/mentions", query={"since": "1"}),
                _resp({"meta": {"result_count": 0}}))


def test_x_chunked_upload_is_judged_by_its_operations() -> None:
    init = _req("POST", "/2/media/upload/initialize",
                body={"media_type": "image/gif", "total_bytes": 10, "media_category": "tweet_gif"})
    assert _one("x", init, _resp({"data": {"id": "1880028106020515840"}})) == []
    wrong = _req("POST", "/2/media/upload/initialize",
                 body={"media_type": "image/gif", "total_bytes": 10, "media_category": "gif"})
    assert _one("x", wrong, _resp({"data": {"id": "1"}}))


def test_pinterest_openapi_rejects_a_wrong_request_and_a_wrong_answer() -> None:
    pin = {"board_id": "549755885175", "title": "Walks", "alt_text": "A path",
           "media_source": {"source_type": "image_base64", "content_type": "image/png",
                            "data": "iVBORw0KGgo="}}
    answer = {"id": "813744226254000001", "board_id": "549755885175", "title": "Walks"}
    assert _one("pinterest", _req("POST", "/v5/pins", body=pin), _resp(answer, 201)) == []
    gif = {**pin, "media_source": {**pin["media_source"], "content_type": "image/gif"}}
    assert _one("pinterest", _req("POST", "/v5/pins", body=gif), _resp(answer, 201))
    assert _one("pinterest", _req("POST", "/v5/pins", body={**pin, "board_id": 5}),
                _resp(answer, 201))
    assert _one("pinterest", _req("POST", "/v5/pins", body=pin),
                _resp({**answer, "title": 12}, 201))


def test_bluesky_lexicons_reject_a_wrong_request_and_a_wrong_answer() -> None:
    ok = {"notifications": [], "cursor": "2"}
    assert _one("bluesky", _req("GET", "/xrpc/app.bsky.notification.listNotifications",
                                query={"limit": "50"}), _resp(ok)) == []
    assert _one("bluesky", _req("GET", "/xrpc/app.bsky.notification.listNotifications",
                                query={"limit": "500"}), _resp(ok))
    assert _one("bluesky", _req("GET", "/xrpc/app.bsky.notification.listNotifications"),
                _resp({"cursor": "2"}))  # notifications is required
    post = {"repo": "did:plc:abc", "collection": "app.bsky.feed.post", "record": {
        "$type": "app.bsky.feed.post", "text": "Hi", "createdAt": "2026-01-01T10:00:00.000Z"}}
    created = {"uri": "at://did:plc:abc/app.bsky.feed.post/3k2a", "cid": "bafyrei"}
    assert _one("bluesky", _req("POST", "/xrpc/com.atproto.repo.createRecord", body=post),
                _resp(created)) == []
    long = {**post, "record": {**post["record"], "text": "x" * 301}}
    assert _one("bluesky", _req("POST", "/xrpc/com.atproto.repo.createRecord", body=long),
                _resp(created))  # 300 graphemes at most (app.bsky.feed.post)
    assert _one("bluesky", _req("GET", "/xrpc/com.atproto.repo.createRecord"), _resp(created))


def test_notes_rules_reject_a_wrong_request_and_a_wrong_answer() -> None:
    bearer = {"authorization": "Bearer t"}
    note = [{"id": "7", "type": "mention", "status": {"id": "110"}}]
    ok = _req("GET", "/api/v1/notifications", query={"since_id": "5"}, headers=bearer)
    assert _one("mastodon", ok, _resp(note)) == []
    assert _one("mastodon", _req("GET", "/api/v1/notifications", query={"since": "5"},
                                 headers=bearer), _resp(note))
    assert _one("mastodon", ok, _resp([{"id": 7, "type": "mention"}]))  # ids are strings
    assert _one("mastodon", _req("POST", "/api/v1/statuses", body={"status": "hi"},
                                 headers=bearer), _resp({"id": "1"}))  # no Idempotency-Key
    signed = {"authorization": 'OAuth oauth_signature_method="HMAC-SHA1", oauth_signature="x"'}
    rest = _req("GET", "/services/rest/", query={"method": "flickr.test.login", "format": "json",
                                                 "nojsoncallback": "1"}, headers=signed)
    assert _one("flickr", rest, _resp({"stat": "ok", "user": {"id": "1"}})) == []
    assert _one("flickr", rest, _resp({"stat": "fail"}))  # a failure names code and message
    add = _req("GET", "/services/rest/", query={"method": "flickr.photos.comments.addComment",
                                                "format": "json", "nojsoncallback": "1"},
               headers=signed)
    assert _one("flickr", add, _resp({"stat": "ok"}))  # writes need POST
    feed = _req("GET", "/v21.0/1000001/feed", query={"access_token": "EAAB"})
    assert _one("facebook", feed, _resp({"data": []})) == []
    assert _one("facebook", feed, _resp({"items": []}))
    assert _one("facebook", _req("GET", "/v21.0/1000001/feed"), _resp({"data": []}))
    assert _one("facebook", feed, _resp({"error": "limit"}, 400))


def test_slack_web_api_rejects_a_wrong_request_and_a_wrong_answer() -> None:
    bearer = {"authorization": "Bearer xoxb-1"}
    post = _req("POST", "/api/chat.postMessage", body={"channel": "C012AB3CD", "text": "Hi"},
                headers=bearer)
    sent = {"ok": True, "channel": "C012AB3CD", "ts": "1503435956.000247",
            "message": {"type": "message", "text": "Hi", "ts": "1503435956.000247",
                        "user": "U012AB3CD"}}
    assert _one("slack", post, _resp(sent)) == []
    assert _one("slack", _req("POST", "/api/chat.postMessage", body={"text": "Hi"},
                              headers=bearer), _resp(sent))  # no channel
    assert _one("slack", _req("POST", "/api/chat.postMessage", body={"channel": "C012AB3CD"}),
                _resp(sent))  # no token
    assert _one("slack", post, _resp({"ok": True, "channel": "C012AB3CD"}))  # no ts, message
    assert _one("slack", post, _resp({"ok": False}))  # an error names itself
    assert _one("slack", _req("POST", "/api/chat.postMessages", headers=bearer), _resp(sent))
    upload = _req("POST", "/api/files.getUploadURLExternal", body={"filename": "a.png"},
                  headers=bearer)
    assert _one("slack", upload, _resp({"ok": True}))  # length is required (method docs)
