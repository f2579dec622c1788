"""The offline Slack and X emulators, exercised with the real client libraries."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import requests
import tweepy
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier

from bot.emulators.http import EmulatorServer, Request, Response, json_response
from bot.emulators.slack import SlackEmulator
from integrations.x.emulator import XEmulator
from integrations.x.transport import BaseURLAdapter, point_session_at

SECRET = "test-signing-secret"
TOKEN = "xoxb-test-token"


class Receiver(EmulatorServer):
    """Stands in for the bot's /slack/events endpoint: records what it gets."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[Request] = []
        self.reply: dict[str, Any] | None = None

    def handle(self, request: Request) -> Response:
        self.received.append(request)
        return json_response(self.reply) if self.reply is not None else Response(200)

    def payloads(self) -> list[dict[str, Any]]:
        out = []
        for req in self.received:
            if req.content_type == "application/json":
                out.append(req.json())
            else:
                form = req.form()
                out.append(json.loads(form["payload"]) if "payload" in form else form)
        return out


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator() as emulator:
        emulator.add_user("U0ALICE", "alice", real_name="Alice Drafter")
        emulator.add_user("U0BOB", "bob", real_name="Bob Approver")
        emulator.add_channel("C0WASTE", "waste")
        emulator.add_channel("C0SECRET", "secret", bot_is_member=False)
        emulator.add_usergroup("S0COMMS", "comms", ["U0BOB"])
        yield emulator


@pytest.fixture
def web(slack: SlackEmulator) -> WebClient:
    return WebClient(token=TOKEN, base_url=slack.api_url)


@pytest.fixture
def receiver(slack: SlackEmulator) -> Iterator[Receiver]:
    with Receiver() as bot:
        slack.bot_events_url = f"{bot.root_url}/slack/events"
        yield bot


def assert_signed(request: Request) -> None:
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid_request(request.body.decode(), request.headers)


# --- Slack Web API ------------------------------------------------------------------------


def test_slack_start_returns_api_base_url(slack: SlackEmulator, web: WebClient) -> None:
    assert slack.start().endswith("/api/")
    auth = web.auth_test()
    assert auth["user_id"] == "U0BOT" and auth["team_id"] == "T0COUNCIL"
    headers = {k.lower(): v for k, v in auth.headers.items()}
    assert headers["content-type"] == "application/json; charset=utf-8"


def test_post_update_thread_permalink_history(slack: SlackEmulator, web: WebClient) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]
    first = web.chat_postMessage(channel="C0WASTE", text="hello", blocks=blocks)
    assert first["channel"] == "C0WASTE" and first["message"]["bot_id"] == "B0BOT"
    reply = web.chat_postMessage(channel="C0WASTE", text="in thread", thread_ts=first["ts"])
    assert float(reply["ts"]) > float(first["ts"])
    web.chat_update(channel="C0WASTE", ts=first["ts"], text="edited")

    [parent] = slack.messages("C0WASTE")
    assert parent["text"] == "edited" and parent["edited"]["user"] == "U0BOT"
    assert parent["reply_count"] == 1 and parent["blocks"][0]["block_id"]
    assert [m["text"] for m in slack.thread("C0WASTE", first["ts"])] == ["edited", "in thread"]
    link = web.chat_getPermalink(channel="C0WASTE", message_ts=first["ts"])["permalink"]
    assert link == f"https://council.slack.com/archives/C0WASTE/p{first['ts'].replace('.', '')}"
    history = web.conversations_history(channel="C0WASTE")
    assert [m["ts"] for m in history["messages"]] == [first["ts"]]
    replies = web.conversations_replies(channel="C0WASTE", ts=first["ts"])
    assert len(replies["messages"]) == 2
    web.chat_delete(channel="C0WASTE", ts=reply["ts"])
    assert len(slack.thread("C0WASTE", first["ts"])) == 1
    assert [c.method for c in slack.calls][:2] == ["chat.postMessage", "chat.postMessage"]
    assert slack.calls[0].params["channel"] == "C0WASTE"


def test_ephemeral_usergroups_users_and_channels(slack: SlackEmulator, web: WebClient) -> None:
    resp = web.chat_postEphemeral(channel="C0WASTE", user="U0ALICE", text="only you")
    assert resp["message_ts"]
    [eph] = slack.ephemerals(user="U0ALICE")
    assert eph["text"] == "only you" and eph["channel"] == "C0WASTE"
    assert web.usergroups_users_list(usergroup="S0COMMS")["users"] == ["U0BOB"]
    slack.set_usergroup_users("S0COMMS", ["U0BOB", "U0ALICE"])
    assert web.usergroups_users_list(usergroup="S0COMMS")["users"] == ["U0BOB", "U0ALICE"]
    assert web.usergroups_list(include_users=True)["usergroups"][0]["handle"] == "comms"
    with pytest.raises(SlackApiError) as err:
        web.usergroups_users_list(usergroup="S0NOPE")
    assert err.value.response["error"] == "no_such_subteam"
    assert web.users_info(user="U0ALICE")["user"]["real_name"] == "Alice Drafter"
    info = web.conversations_info(channel="C0SECRET")["channel"]
    assert info["name"] == "secret" and info["is_member"] is False
    assert "U0BOT" in web.conversations_members(channel="C0WASTE")["members"]


def test_errors_channel_not_found_not_in_channel_and_auth(
    slack: SlackEmulator, web: WebClient
) -> None:
    for channel, error in (("C0NOPE", "channel_not_found"), ("C0SECRET", "not_in_channel")):
        with pytest.raises(SlackApiError) as err:
            web.chat_postMessage(channel=channel, text="x")
        assert err.value.response.status_code == 200
        assert err.value.response["error"] == error
    with pytest.raises(SlackApiError) as err:
        WebClient(token="xoxb-wrong", base_url=slack.api_url).auth_test()
    assert err.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as err:
        web.api_call("nope.nothing")
    assert err.value.response["error"] == "unknown_method"


def test_programmed_faults(slack: SlackEmulator, web: WebClient) -> None:
    slack.rate_limit_next("chat.postMessage", retry_after=2)
    with pytest.raises(SlackApiError) as err:
        web.chat_postMessage(channel="C0WASTE", text="x")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "2"
    assert err.value.response["error"] == "ratelimited"

    slack.fail_next("chat.postMessage", "channel_not_found", channel="C0OTHER")
    web.chat_postMessage(channel="C0WASTE", text="not the targeted channel")
    slack.add_channel("C0OTHER", "other")
    with pytest.raises(SlackApiError) as err:
        web.chat_postMessage(channel="C0OTHER", text="x")
    assert err.value.response["error"] == "channel_not_found"

    slack.server_error_next("chat.update", status=503)
    with pytest.raises(SlackApiError) as err:
        web.chat_update(channel="C0WASTE", ts="1.0", text="x")
    assert err.value.response.status_code == 503
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 200, 200]


def test_per_channel_rate_limit(slack: SlackEmulator, web: WebClient) -> None:
    slack.enforce_rate_limits = True
    for i in range(3):
        web.chat_postMessage(channel="C0WASTE", text=f"burst {i}")
    with pytest.raises(SlackApiError) as err:
        web.chat_postMessage(channel="C0WASTE", text="one too many")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "1"
    web.chat_postMessage(channel=slack.add_channel("C0ROADS", "roads").id, text="other channel ok")
    times = slack.post_times("C0WASTE")
    assert len(times) == 3 and times == sorted(times)


def test_file_upload_v2(slack: SlackEmulator, web: WebClient) -> None:
    result = web.files_upload_v2(channel="C0WASTE", content="a,b\n1,2\n", filename="export.csv",
                                 title="Export", initial_comment="here you are")
    file_id = result["file"]["id"]
    assert slack.file_content(file_id) == b"a,b\n1,2\n"
    [msg] = slack.messages("C0WASTE")
    assert msg["text"] == "here you are" and msg["files"][0]["title"] == "Export"


# --- the Slack side ---------------------------------------------------------------------------


def test_events_are_signed_and_retries_marked(slack: SlackEmulator, receiver: Receiver) -> None:
    resp = slack.send_event({"type": "app_mention", "user": "U0ALICE", "text": "hi"})
    assert resp.status_code == 200
    slack.send_event({"type": "app_mention", "user": "U0ALICE", "text": "hi"},
                     event_id=slack.last_event_id, retry_num=1)
    first, retry = receiver.received
    for request in (first, retry):
        assert_signed(request)
    envelope = first.json()
    assert envelope["type"] == "event_callback" and envelope["event_id"].startswith("Ev")
    assert envelope["authorizations"][0]["user_id"] == "U0BOT"
    assert retry.json()["event_id"] == envelope["event_id"]
    assert retry.headers["x-slack-retry-num"] == "1"
    assert retry.headers["x-slack-retry-reason"] == "http_timeout"
    assert "x-slack-retry-num" not in first.headers

    stale = int(time.time()) - 600
    slack.send_event({"type": "app_mention"}, timestamp=stale)
    assert not SignatureVerifier(SECRET).is_valid_request(
        receiver.received[-1].body.decode(), receiver.received[-1].headers)


def test_slash_command_form_is_escaped(slack: SlackEmulator, receiver: Receiver) -> None:
    slack.send_command("U0ALICE", "C0WASTE", "post nottscc Bins & <b>recycling</b>")
    [request] = receiver.received
    assert_signed(request)
    assert request.content_type == "application/x-www-form-urlencoded"
    form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
    assert form["text"] == "post nottscc Bins &amp; &lt;b&gt;recycling&lt;/b&gt;"
    assert form["command"] == "/social" and form["user_name"] == "alice"
    assert form["channel_name"] == "waste" and form["team_id"] == "T0COUNCIL"
    assert form["trigger_id"] and form["response_url"].startswith(slack.root_url)

    posted = httpx.post(form["response_url"], json={"text": "Draft saved"})
    assert posted.status_code == 200
    assert slack.ephemerals(user="U0ALICE")[0]["text"] == "Draft saved"
    httpx.post(form["response_url"], json={"text": "For all", "response_type": "in_channel"})
    assert slack.messages("C0WASTE")[-1]["text"] == "For all"


def test_button_click_and_view_submission(
    slack: SlackEmulator, web: WebClient, receiver: Receiver
) -> None:
    button = {"type": "button", "action_id": "claim", "value": "m-1",
              "text": {"type": "plain_text", "text": "I'm on it"}}
    posted = web.chat_postMessage(channel="C0WASTE", text="mention",
                                  blocks=[{"type": "actions", "elements": [button]}])
    slack.click_button("U0ALICE", "C0WASTE", posted["ts"], "claim")
    payload = receiver.payloads()[-1]
    assert payload["type"] == "block_actions"
    assert payload["actions"][0]["value"] == "m-1" and payload["actions"][0]["block_id"]
    assert payload["container"] == {"type": "message", "message_ts": posted["ts"],
                                    "channel_id": "C0WASTE", "is_ephemeral": False}
    assert payload["message"]["ts"] == posted["ts"] and payload["user"]["id"] == "U0ALICE"
    with pytest.raises(LookupError):
        slack.click_button("U0ALICE", "C0WASTE", posted["ts"], "no-such-button")

    modal = {
        "type": "modal", "callback_id": "draft", "private_metadata": "m-1",
        "title": {"type": "plain_text", "text": "Draft"},
        "blocks": [
            {"type": "input", "block_id": "text", "label": {"type": "plain_text", "text": "T"},
             "element": {"type": "plain_text_input", "action_id": "body"}},
            {"type": "input", "block_id": "acct", "label": {"type": "plain_text", "text": "A"},
             "element": {"type": "static_select", "action_id": "account", "options": [
                 {"text": {"type": "plain_text", "text": "NottsCC"}, "value": "nottscc"}]}},
        ],
    }
    view = web.views_open(trigger_id=payload["trigger_id"], view=modal)["view"]
    with pytest.raises(SlackApiError) as err:
        web.views_open(trigger_id=payload["trigger_id"], view=modal)
    assert err.value.response["error"] == "exchanged_trigger_id"
    assert [v["id"] for v in slack.open_views("U0ALICE")] == [view["id"]]

    receiver.reply = {"response_action": "errors", "errors": {"text": "Too long"}}
    slack.submit_view("U0ALICE", view["id"], {"body": "We'll fix it", "account": "nottscc"})
    submitted = receiver.payloads()[-1]
    assert submitted["type"] == "view_submission"
    assert submitted["view"]["callback_id"] == "draft"
    assert submitted["view"]["private_metadata"] == "m-1"
    values = submitted["view"]["state"]["values"]
    assert values["text"]["body"] == {"type": "plain_text_input", "value": "We'll fix it"}
    assert values["acct"]["account"]["selected_option"]["value"] == "nottscc"
    assert slack.open_views("U0ALICE")  # errors keep the modal open
    receiver.reply = None
    slack.submit_view("U0ALICE", view["id"], {"body": "ok", "account": "nottscc"})
    assert slack.open_views("U0ALICE") == []


def test_reactions_from_people_and_from_the_bot(
    slack: SlackEmulator, web: WebClient, receiver: Receiver
) -> None:
    ts = web.chat_postMessage(channel="C0WASTE", text="draft")["ts"]
    slack.add_reaction("U0BOB", "C0WASTE", ts, "white_check_mark")
    event = receiver.payloads()[-1]["event"]
    assert event["type"] == "reaction_added" and event["user"] == "U0BOB"
    assert event["item"] == {"type": "message", "channel": "C0WASTE", "ts": ts}
    assert event["item_user"] == "U0BOT" and event["reaction"] == "white_check_mark"
    with pytest.raises(ValueError):
        slack.add_reaction("U0BOB", "C0WASTE", ts, "white_check_mark")

    web.reactions_add(channel="C0WASTE", timestamp=ts, name="eyes")
    slack.wait_for(lambda: len(receiver.received) == 2)
    own = receiver.payloads()[-1]["event"]
    assert own["user"] == "U0BOT" and own["reaction"] == "eyes"
    assert slack.reactions("C0WASTE", ts) == {"white_check_mark": ["U0BOB"], "eyes": ["U0BOT"]}
    got = web.reactions_get(channel="C0WASTE", timestamp=ts)["message"]["reactions"]
    assert {r["name"]: r["count"] for r in got} == {"white_check_mark": 1, "eyes": 1}

    slack.remove_reaction("U0BOB", "C0WASTE", ts, "white_check_mark")
    assert receiver.payloads()[-1]["event"]["type"] == "reaction_removed"


def test_app_home_and_state_endpoint(
    slack: SlackEmulator, web: WebClient, receiver: Receiver
) -> None:
    home = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}]}
    web.views_publish(user_id="U0ALICE", view=home)
    slack.open_app_home("U0ALICE")
    event = receiver.payloads()[-1]["event"]
    assert event["type"] == "app_home_opened" and event["tab"] == "home"
    assert event["view"]["type"] == "home"
    state = httpx.get(f"{slack.root_url}/emulator/state").json()
    assert {c["id"] for c in state["channels"]} >= {"C0WASTE", "C0SECRET"}
    assert any(v["type"] == "home" for v in state["views"])


# --- X ----------------------------------------------------------------------------------------

COUNCIL = "1111"


@pytest.fixture
def x() -> Iterator[XEmulator]:
    with XEmulator() as emulator:
        emulator.add_user(COUNCIL, "NottsCC", "Nottinghamshire County Council")
        emulator.register_credentials(COUNCIL, access_token="council-access")
        yield emulator


def tweepy_client(x: XEmulator, *, bearer: str | None = "app-bearer",
                  user: bool = True) -> tweepy.Client:
    creds: dict[str, str] = {}
    if user:
        creds = {"consumer_key": "ck", "consumer_secret": "cs",
                 "access_token": "council-access", "access_token_secret": "as"}
    client = tweepy.Client(bearer_token=bearer, **creds)
    point_session_at(client.session, x.root_url)
    return client


def test_transport_adapter_rewrites_host() -> None:
    adapter = BaseURLAdapter("http://127.0.0.1:9/prefix")
    assert adapter.rewrite("https://api.twitter.com/2/users/me?x=1") == \
        "http://127.0.0.1:9/prefix/2/users/me?x=1"
    session = requests.Session()
    point_session_at(session, "http://127.0.0.1:9")
    assert isinstance(session.get_adapter("https://api.twitter.com/2/tweets"), BaseURLAdapter)


def test_get_me_and_headers(x: XEmulator) -> None:
    me = tweepy_client(x).get_me(user_fields=["public_metrics"])
    assert me.data.id == int(COUNCIL) and me.data.username == "NottsCC"
    assert me.data.public_metrics["followers_count"] == 0
    with pytest.raises(tweepy.Forbidden):  # app-only bearer cannot identify a user
        tweepy_client(x, user=False).get_me(user_auth=False)
    raw = requests.get(f"{x.root_url}/2/users/me",
                       headers={"Authorization": 'OAuth oauth_token="council-access"'})
    assert raw.headers["content-type"] == "application/json; charset=utf-8"
    assert int(raw.headers["x-rate-limit-limit"]) == 75
    assert int(raw.headers["x-rate-limit-remaining"]) == 72  # third call in this window
    assert int(raw.headers["x-rate-limit-reset"]) > time.time()


def test_mentions_paging_since_id_and_expansions(x: XEmulator) -> None:
    ids = [x.add_mention(COUNCIL, f"resident{i}", f"bin {i} missed & late")["id"]
           for i in range(12)]
    client = tweepy_client(x)
    page = client.get_users_mentions(COUNCIL, max_results=5)
    assert [t.id for t in page.data] == [int(i) for i in reversed(ids[-5:])]
    assert set(page.data[0].data) == {"id", "text", "edit_history_tweet_ids"}
    assert page.data[0].text == "@NottsCC bin 11 missed &amp; late"
    assert page.meta["result_count"] == 5 and page.meta["newest_id"] == ids[-1]
    assert "includes" not in page or not page.includes

    seen: list[str] = []
    token = None
    while True:
        resp = client.get_users_mentions(COUNCIL, max_results=5, pagination_token=token)
        seen += [str(t.id) for t in resp.data]
        token = resp.meta.get("next_token")
        if token is None:
            break
    assert seen == list(reversed(ids))

    reply_to = x.add_tweet(COUNCIL, "Collections are running late today")
    x.add_mention(COUNCIL, "resident0", "why?", in_reply_to=reply_to["id"])
    newer = client.get_users_mentions(
        COUNCIL, since_id=ids[-1],
        expansions=["author_id", "referenced_tweets.id"],
        tweet_fields=["created_at", "author_id", "conversation_id", "referenced_tweets"],
        user_fields=["username"],
    )
    [tweet] = newer.data
    assert tweet.conversation_id == int(reply_to["id"])
    assert tweet.referenced_tweets[0].type == "replied_to"
    assert tweet.data["created_at"].endswith("Z") and len(tweet.data["created_at"]) == 24
    assert newer.includes["users"][0].username == "resident0"
    assert newer.includes["tweets"][0].id == int(reply_to["id"])


def test_empty_mentions_and_unknown_tweets(x: XEmulator) -> None:
    client = tweepy_client(x)
    empty = client.get_users_mentions(COUNCIL)
    assert empty.data is None and empty.meta == {"result_count": 0}
    lookup = client.get_tweets(["123", "456"])
    assert lookup.data is None
    assert lookup.errors[0]["title"] == "Not Found Error"
    single = client.get_tweet("999")
    assert single.data is None and single.errors[0]["resource_id"] == "999"
    with pytest.raises(tweepy.BadRequest):
        client.get_users_mentions(COUNCIL, max_results=3)


def test_create_reply_delete_and_refusals(x: XEmulator) -> None:
    mention = x.add_mention(COUNCIL, "resident", "my bin was missed")
    client = tweepy_client(x)
    created = client.create_tweet(text="Sorry <3 we'll be back", in_reply_to_tweet_id=mention["id"])
    assert created.data["text"] == "Sorry &lt;3 we'll be back"
    [post] = x.posts_created()
    assert post["id"] == created.data["id"] and post["author_id"] == COUNCIL
    assert post["referenced_tweets"] == [{"type": "replied_to", "id": mention["id"]}]
    assert post["in_reply_to_user_id"] == mention["author_id"]
    assert x.requests_to("create_tweet")[0].json["reply"]["in_reply_to_tweet_id"] == mention["id"]
    assert x.requests_to("create_tweet")[0].status == 201

    with pytest.raises(tweepy.Forbidden) as dup:
        client.create_tweet(text="Sorry <3 we'll be back")
    assert "duplicate content" in str(dup.value)
    with pytest.raises(tweepy.Forbidden) as app_only:
        tweepy_client(x, user=False).create_tweet(text="hello", user_auth=False)
    assert "Application-Only is forbidden" in str(app_only.value)

    timeline = client.get_users_tweets(COUNCIL)
    assert [t.id for t in timeline.data] == [int(created.data["id"])]
    assert client.delete_tweet(created.data["id"]).data == {"deleted": True}
    assert x.tweets_by(COUNCIL) == []


def test_faults_and_rate_limits(x: XEmulator) -> None:
    client = tweepy_client(x)
    x.inject("mentions", "429", reset_in=5)
    with pytest.raises(tweepy.TooManyRequests) as limited:
        client.get_users_mentions(COUNCIL)
    assert limited.value.reset_time is not None
    assert 0 < limited.value.reset_time - time.time() <= 6
    assert limited.value.response.json()["title"] == "Too Many Requests"

    x.inject("*", "503")
    with pytest.raises(tweepy.TwitterServerError):
        client.get_me()
    x.inject("mentions", "drop")
    with pytest.raises(requests.ConnectionError):
        client.get_users_mentions(COUNCIL)
    x.inject("mentions", "malformed")
    with pytest.raises(requests.JSONDecodeError):
        client.get_users_mentions(COUNCIL)
    x.inject("mentions", "slow", delay=0.3)
    started = time.monotonic()
    client.get_users_mentions(COUNCIL)
    assert time.monotonic() - started >= 0.3

    timed = tweepy_client(x)
    point_session_at(timed.session, x.root_url, timeout=0.1)
    x.inject("mentions", "slow", delay=0.4)
    with pytest.raises(requests.Timeout):
        timed.get_users_mentions(COUNCIL)

    x.inject("create_tweet", "drop_after_commit")
    with pytest.raises(requests.ConnectionError):
        client.create_tweet(text="did this go out?")
    assert [p["text"] for p in x.posts_created()] == ["did this go out?"]
    assert x.requests_to("create_tweet")[-1].status is None

    x.limits["timeline"] = (2, 60)
    client.get_users_tweets(COUNCIL)
    client.get_users_tweets(COUNCIL)
    with pytest.raises(tweepy.TooManyRequests):
        client.get_users_tweets(COUNCIL)
