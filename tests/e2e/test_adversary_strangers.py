"""The stranger on the network: what someone who can reach the HTTP port, but holds no
secret, can do. Nothing: no unsigned door to Slack's endpoint (Socket Mode serves none,
HTTP mode will not start without a signing secret), no body big enough to cost memory,
no malformed header that crashes a webhook, no demo page reachable under another name,
no replay of a request stamped in the future once it has been seen. (SECURITY.md)

Over HTTP against the real ASGI app under uvicorn, on SQLite and PostgreSQL where a
database is involved.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.app import build_bolt_app
from bot.asgi import build_asgi
from bot.bodylimit import SLACK_MAX_BODY_BYTES
from bot.bootstrap import build_runtime
from bot.config import Settings
from bot.models import Approval, AuditEvent, Draft
from integrations.facebook.webhook import MAX_BODY_BYTES as FACEBOOK_MAX_BODY_BYTES
from tests.conftest import ThreadedServer, free_port
from tests.harness import COLIN, WENDY, Harness, wait_for
from tests.processes import bot_env

APP_TOKEN = "xapp-1-A0COMMSDESK-1-stranger-test"
FB_SECRET = "stranger-test-facebook-app-secret"
FB_VERIFY = "stranger-test-verify-token"
HOSTILE_MB = 64


class FacebookHarness(Harness):
    """The harness's bot with the Facebook webhook's secrets set."""

    def settings(self) -> Settings:
        s = super().settings()
        return dataclasses.replace(s, env=s.env.model_copy(update={
            "facebook_app_secret": FB_SECRET, "facebook_verify_token": FB_VERIFY}))


@pytest.fixture
def h(database_url: str) -> Iterator[Harness]:
    with FacebookHarness(database_url) as harness:
        yield harness


def command_body(text: str, user: str = WENDY) -> str:
    return urllib.parse.urlencode({
        "command": "/social", "text": text, "user_id": user, "user_name": "someone",
        "channel_id": "C0WASTE", "team_id": "T0COUNCIL", "trigger_id": "1.2",
        "response_url": "http://127.0.0.1:9/no"})


def approvals(h: Harness) -> list[dict[str, Any]]:
    return wait_for(lambda: h.alerts_in("C0APPROVALS"), what="the approval message")


def nothing_decided(h: Harness) -> None:
    assert h.count(Draft) == 1
    with h.rt.sessions() as s:
        assert s.get(Draft, 1).state == "pending"  # type: ignore[union-attr]
    assert h.count(Approval) == 0
    assert h.count(AuditEvent, AuditEvent.action == "draft.approved") == 0
    assert h.x.posts_created() == []


# ---------------------------------------------------------------- no unsigned door


def test_socket_mode_serves_no_slack_events(h: Harness) -> None:
    """With SLACK_APP_TOKEN set, the HTTP server `serve` runs has no /slack/events: an
    unsigned `/social post` and an unsigned Approve click (and even signed ones) get 404
    and change nothing; /healthz and the Facebook webhook (its own signature) remain."""
    # a pending draft to try to approve, made the ordinary way (HTTP mode, signed)
    assert h.slack.send_command(WENDY, "C0WASTE", "post nottscc Gritters out tonight"
                                ).status_code == 200
    card = approvals(h)[0]
    audited = h.count(AuditEvent)

    s = h.rt.settings
    socket_settings = dataclasses.replace(
        s, env=s.env.model_copy(update={"slack_app_token": APP_TOKEN}))
    assert socket_settings.env.socket_mode
    rt = build_runtime(socket_settings, h.engine)
    bolt = build_bolt_app(rt)  # what `serve` hands to SocketModeHandler and to build_asgi
    try:
        with ThreadedServer(build_asgi(rt, bolt)) as socket_http:
            events = f"{socket_http.url}/slack/events"
            post = command_body("post nottscc Council tax is abolished, tell everyone")
            r = httpx.post(events, content=post,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert r.status_code == 404, r.text

            # the Approve button on the card, as Slack would send the click, unsigned
            h.slack.bot_events_url = events
            signed = h.slack.click_button(COLIN, "C0APPROVALS", card["ts"], "draft_approve", "1")
            assert signed.status_code == 404  # even signed: the route is not there at all
            payload = h.slack.deliveries[-1].payload
            assert payload["type"] == "block_actions"
            assert payload["actions"][0]["action_id"] == "draft_approve"
            click = urllib.parse.urlencode({"payload": json.dumps(payload)})
            for content_type in ("application/x-www-form-urlencoded", "application/json"):
                r = httpx.post(events, content=click, headers={"Content-Type": content_type})
                assert r.status_code == 404, r.text
            # an approval reaction as an Events API callback, unsigned
            reaction = {"type": "event_callback", "team_id": "T0COUNCIL", "event_id": "Ev1",
                        "event": {"type": "reaction_added", "user": COLIN,
                                  "reaction": "white_check_mark",
                                  "item": {"type": "message", "channel": "C0APPROVALS",
                                           "ts": card["ts"]}}}
            r = httpx.post(events, json=reaction)
            assert r.status_code == 404

            # what stays: health, and the webhook behind its own signature
            assert httpx.get(f"{socket_http.url}/healthz").status_code == 200
            r = httpx.post(f"{socket_http.url}/webhooks/facebook",
                           content=b'{"object": "page", "entry": []}')
            assert r.status_code == 401
            # no other path answers Slack's requests either
            for path in ("/slack/events/", "/slack/commands", "/slack/actions", "/"):
                assert httpx.post(f"{socket_http.url}{path}", content=post).status_code in (
                    404, 405)
    finally:
        bolt.listener_runner.listener_executor.shutdown(wait=True)
    time.sleep(0.3)  # anything that slipped through would be working now
    nothing_decided(h)
    assert h.count(AuditEvent) == audited


def test_http_mode_without_a_signing_secret_cannot_be_built(h: Harness) -> None:
    """Nothing (serve, the tests' harness, the demo) can build the HTTP app with Slack's
    signature check off: without a secret in HTTP mode, build_asgi refuses."""
    s = h.rt.settings
    bare = dataclasses.replace(s, env=s.env.model_copy(update={"slack_signing_secret": None}))
    rt = build_runtime(bare, h.engine)
    with pytest.raises(ValueError, match="SLACK_SIGNING_SECRET"):
        build_asgi(rt, h.bolt)


def test_an_unsigned_request_in_http_mode_is_401(h: Harness) -> None:
    assert h.server is not None
    events = f"{h.server.url}/slack/events"
    r = httpx.post(events, content=command_body("post nottscc Unsigned"),
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 401
    assert h.count(Draft) == 0


def _cli(args: list[str], tmp_path: Path, env_update: dict[str, str | None],
         ) -> subprocess.CompletedProcess[str]:
    from tests.conftest import BASE_CONFIG

    env = bot_env(tmp_path, BASE_CONFIG, f"sqlite:///{tmp_path / 'commsdesk.db'}",
                  "http://127.0.0.1:9/api/", "http://127.0.0.1:9")
    for k, v in env_update.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("command", [["check-config"],
                                     ["serve", "--host", "127.0.0.1", "--port", "0"]])
def test_serve_refuses_http_mode_without_a_signing_secret(command: list[str],
                                                          tmp_path: Path) -> None:
    port = free_port()
    if command[0] == "serve":
        command = [*command[:-1], str(port)]
    done = _cli(command, tmp_path, {"SLACK_SIGNING_SECRET": None, "SLACK_APP_TOKEN": None})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "SLACK_SIGNING_SECRET is not set" in done.stderr
    assert "HTTP mode" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "commsdesk.db").exists()  # stopped before anything was touched
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)


def test_socket_mode_needs_no_signing_secret(tmp_path: Path) -> None:
    done = _cli(["check-config"], tmp_path,
                {"SLACK_SIGNING_SECRET": None, "SLACK_APP_TOKEN": APP_TOKEN})
    assert done.returncode == 0, done.stderr
    assert "config OK" in done.stdout


# ---------------------------------------------------------------- bodies capped while read


def hostile(total: int) -> Iterator[bytes]:
    chunk = b"{" * (64 * 1024)
    sent = 0
    while sent < total:
        sent += len(chunk)
        yield chunk


@pytest.mark.parametrize("path", ["/slack/events", "/webhooks/facebook"])
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_64_mb_body_is_refused_with_413(h: Harness, path: str, declared: bool) -> None:
    assert h.server is not None
    size = HOSTILE_MB << 20
    headers = {"Content-Type": "application/json"}
    if declared:
        headers["Content-Length"] = str(size)
    started = time.monotonic()
    r = httpx.post(f"{h.server.url}{path}", content=hostile(size), headers=headers, timeout=60)
    assert r.status_code == 413, r.text
    assert r.json() == {"error": "payload too large"}
    assert r.headers["connection"] == "close"  # it stops reading, not drains
    assert time.monotonic() - started < 30
    # still healthy, and still serving Slack
    assert httpx.get(f"{h.server.url}/healthz").status_code == 200
    assert h.slack.send_command(WENDY, "C0WASTE", "post nottscc Still here").status_code == 200
    assert h.count(Draft) == 1


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_the_limits_are_the_senders_maximum(h: Harness, declared: bool) -> None:
    """A body at the limit is read (then judged on its signature); one byte more is 413."""
    assert h.server is not None
    for path, limit in (("/slack/events", SLACK_MAX_BODY_BYTES),
                        ("/webhooks/facebook", FACEBOOK_MAX_BODY_BYTES)):
        for size, expected in ((limit, 401), (limit + 1, 413)):
            data = b"a" * size
            content: Any = data if declared else iter([data[: size // 2], data[size // 2:]])
            r = httpx.post(f"{h.server.url}{path}", content=content,
                           headers={"Content-Type": "application/json"})
            assert r.status_code == expected, (path, size, r.status_code, r.text)


def test_a_body_on_a_route_that_reads_none_costs_nothing(h: Harness) -> None:
    assert h.server is not None
    r = httpx.post(f"{h.server.url}/healthz", content=hostile(HOSTILE_MB << 20), timeout=60)
    assert r.status_code == 405 and r.headers["connection"] == "close"
    r = httpx.post(f"{h.server.url}/healthz", content=b"x" * (HOSTILE_MB << 20))
    assert r.status_code == 413
    assert httpx.get(f"{h.server.url}/healthz").status_code == 200


# ---------------------------------------------------------------- small doors


@pytest.mark.parametrize("signature", [
    "sha256=" + "é" * 64,
    "sha256=\u00ff" + "0" * 63,
    "sha256=" + "0" * 63,  # one short
    "sha1=" + "0" * 40,
    "garbage",
    "",
])
def test_facebook_webhook_malformed_or_non_ascii_signature_is_401(h: Harness,
                                                                   signature: str) -> None:
    assert h.server is not None
    payload = json.dumps({"object": "page", "entry": [{"id": "1", "changes": []}]}).encode()
    r = httpx.post(f"{h.server.url}/webhooks/facebook", content=payload,
                   headers={"X-Hub-Signature-256": signature.encode("utf-8"),
                            "Content-Type": "application/json"})
    assert r.status_code == 401, r.text


def test_facebook_webhook_correct_signature_still_accepted(h: Harness) -> None:
    from integrations.facebook.webhook import signature

    assert h.server is not None
    payload = json.dumps({"object": "page", "entry": []}).encode()
    r = httpx.post(f"{h.server.url}/webhooks/facebook", content=payload,
                   headers={"X-Hub-Signature-256": signature(FB_SECRET, payload)})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("token", ["é" * 8, "\u2603", FB_VERIFY + "é", "", FB_VERIFY[:-1]])
def test_facebook_verify_token_non_ascii_or_wrong_is_403(h: Harness, token: str) -> None:
    assert h.server is not None
    query = urllib.parse.urlencode({"hub.mode": "subscribe", "hub.verify_token": token,
                                    "hub.challenge": "c-123"})
    r = httpx.get(f"{h.server.url}/webhooks/facebook?{query}")
    assert r.status_code == 403, r.text
    ok = urllib.parse.urlencode({"hub.mode": "subscribe", "hub.verify_token": FB_VERIFY,
                                 "hub.challenge": "c-123"})
    r = httpx.get(f"{h.server.url}/webhooks/facebook?{ok}")
    assert r.status_code == 200 and r.text == "c-123"


def test_replay_of_a_request_stamped_in_the_future_is_refused_for_its_whole_window(
        h: Harness) -> None:
    """Slack's check accepts |now - timestamp| <= 300 s: a request stamped 4 minutes in the
    future is valid until 9 minutes after it arrives. Six minutes after first sight (past
    any window counted from arrival) its replay is still refused, by this process and by a
    restarted one."""
    from bot.replay import ReplayGuard

    offset = [0.0]

    def clock() -> float:
        return time.time() + offset[0]

    app = build_asgi(h.rt, h.bolt, clock=clock)
    with ThreadedServer(app) as server:
        events = f"{server.url}/slack/events"
        body = command_body("post nottscc Stamped in the future")
        headers = {**h.slack.sign(body, timestamp=int(time.time()) + 240),
                   "Content-Type": "application/x-www-form-urlencoded"}
        assert httpx.post(events, content=body, headers=headers).status_code == 200
        assert h.count(Draft) == 1
        offset[0] = 6 * 60 + 10  # six minutes (and a little) after first sight
        again = httpx.post(events, content=body, headers=headers)
        assert again.status_code == 401 and "replayed" in again.text, again.text
        assert h.count(Draft) == 1
        # another request with the same stamp is served then: only the replay is refused
        fresh = command_body("post nottscc Also stamped in the future")
        ok = httpx.post(events, content=fresh, headers={
            **h.slack.sign(fresh, timestamp=int(headers["X-Slack-Request-Timestamp"])),
            "Content-Type": "application/x-www-form-urlencoded"})
        assert ok.status_code == 200, ok.text
        assert h.count(Draft) == 2
    # the signature was stored with its timestamp: a restarted process refuses it too
    sig = headers["X-Slack-Signature"]

    def restarted_refuses() -> bool:
        return not ReplayGuard(h.rt.sessions, clock=clock).first_sight(
            sig, int(headers["X-Slack-Request-Timestamp"]))

    wait_for(restarted_refuses, timeout=5, what="the signature stored with its timestamp")
    # and once the timestamp is out of Slack's window the guard lets the memory go
    offset[0] = 240 + 300 + 61 + 1
    assert ReplayGuard(h.rt.sessions, clock=clock).first_sight(
        sig, int(headers["X-Slack-Request-Timestamp"])) is True


# ---------------------------------------------------------------- the demo stays local


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from bot.demo.runner import Demo

    d = Demo(port=free_port(), data_dir=tmp_path_factory.mktemp("demo")).start()
    try:
        yield d
    finally:
        d.stop()


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example",
                                  "127.0.0.1:{other}", "localhost:{other}", "0.0.0.0:{port}",
                                  "127.0.0.2:{port}", ""])
def test_demo_refuses_any_other_host(demo: Any, host: str) -> None:
    host = host.format(port=demo.port, other=demo.port + 1)
    base = f"http://127.0.0.1:{demo.port}"
    for method, path in (("GET", "/"), ("GET", "/state"), ("POST", "/api/compose")):
        r = httpx.request(method, base + path, headers={"Host": host},
                          json={"as": "U0X", "channel": "C0X", "text": "hi"})
        assert r.status_code in (400, 421), (host, path, r.status_code)
        assert "local demo" in r.text or r.status_code == 400


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}"])
def test_demo_answers_its_own_host_and_says_it_is_local(demo: Any, host: str) -> None:
    r = httpx.get(f"http://127.0.0.1:{demo.port}/",
                  headers={"Host": host.format(port=demo.port)})
    assert r.status_code == 200
    assert "A local demo: never expose it." in r.text


def test_demo_listens_on_loopback_only(demo: Any) -> None:
    """Belt and braces: the page is bound to 127.0.0.1, not every interface."""
    import socket

    addrs = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None)
             if a[0] == socket.AF_INET} - {"127.0.0.1"}
    for addr in list(addrs)[:1]:
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://{addr}:{demo.port}/", timeout=2)
