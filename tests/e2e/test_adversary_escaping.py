"""The stranger's and the insider's words in Slack, and secrets that never leave (issue 14).

Everything a person or a network supplies (residents' words, authors, URLs, pause reasons,
echoes of bad command input, file names, network error text) goes through one escaping
rule before it is shown: no live `<!channel>`, `<@U…>` or `<https://…|…>` can come out of
it, and long text still fits Slack's limits. Every Block Kit builder is walked with
hostile values (a new builder fails `test_every_builder_is_walked` until it is covered), and
every reply path runs over HTTP with signed requests against the Slack emulator, whose
every recorded call is read back.

Secrets: a run that forces network errors carrying tokens (a Graph API error with
`access_token=` in it, an X 5xx echoing credentials, uvicorn's and httpx's own log lines
with a token in a URL) leaves no secret value in any log line, database row or Slack call.
"""

from __future__ import annotations

import copy
import datetime as dt
import importlib
import inspect
import json
import logging
import os
import pkgutil
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa

from bot import logs
from bot.blockkit import escape as esc
from bot.config import Config, parse_config
from bot.db import transaction
from bot.domain.house_style import Finding
from bot.models import Account, Alert, Draft, Mention
from bot.services import outbox as outbox_module
from integrations.base import FetchedMention
from integrations.x.network import XCredentials
from tests.conftest import BOT_TOKEN, SIGNING_SECRET, free_port
from tests.harness import CARA, COLIN, E2E_CONFIG, ROGUE, WENDY, Harness, block_texts, wait_for
from tests.net_harness import NetHarness, config_with

# ---------------------------------------------------------------- hostile input

MARKERS = ("<!channel>", "<!here>", "<!subteam^S1>", "<@U1>", "<https://evil|x>", "*bold*",
           "&amp;")
SHORT = " ".join(MARKERS)
LINE = "A" * 4000  # a 4,000-character line
HOSTILE = f"{SHORT} {LINE}"
HOSTILE_URLS = (
    "https://evil.example/<!channel>|x>",
    "javascript:alert(1)",
    "http://x.com/jane/status/1",  # not https
    "https://x.com.evil.example/jane/status/1",
    "https://x.com@evil.example/jane/status/1",
    "https://evil|x",
    "https://" + "e" * 4000 + ".example/",
)

# the bot's own markup: people U0…, channels C0…, the config's user groups S0…, dates
BOT_MARKUP = re.compile(r"^(?:@U0[A-Z0-9]+|#C0[A-Z0-9]+|!subteam\^S0[A-Z0-9]+"
                        r"|!date\^\d+\^[^|<>]*\|[^<>]*)$")
OWN_HOSTS = ("x.com", "twitter.com", "bsky.app", "facebook.com", "flickr.com",
             "pinterest.com", "slack.com", "social.notts.example")


def _own_link(inner: str) -> bool:
    url = inner.split("|", 1)[0]
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    return (parts.scheme == "https" and "evil" not in url and parts.username is None
            and any(host == h or host.endswith("." + h) for h in OWN_HOSTS))


def live_markup(text: str) -> list[str]:
    """Every `<…>` in mrkdwn that the bot did not mean: a ping, a mention or a link to
    anywhere but the networks' own hosts and Slack."""
    bad = [m.group(0) for m in re.finditer(r"<([^<>]*)>", text)
           if not BOT_MARKUP.match(m.group(1)) and not _own_link(m.group(1))]
    bad += [marker for marker in MARKERS[:5] if marker in text]
    return bad


def test_the_checker_catches_what_it_must() -> None:
    """The helper itself can fail: hostile markup is found, the bot's own is not."""
    assert live_markup(SHORT) == ["<!channel>", "<!here>", "<!subteam^S1>", "<@U1>",
                                  "<https://evil|x>", *MARKERS[:5]]
    assert live_markup("<https://x.com.evil.example/a|b> <javascript:x|y>") != []
    assert live_markup(esc.escape(SHORT)) == []
    assert live_markup("by <@U0COMMS1> in <#C0WASTE> for <!subteam^S0COMMS> "
                       "<!date^1700000000^{date_short_pretty}|14 Nov> "
                       "<https://x.com/a/status/1|view post>") == []


# ---------------------------------------------------------------- what Slack was given


def walk_texts(node: Any, out: list[tuple[str, str]]) -> None:
    """(type, text) of every text object in blocks or a view."""
    if isinstance(node, dict):
        if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
            out.append((node["type"], node["text"]))
        for v in node.values():
            walk_texts(v, out)
    elif isinstance(node, list):
        for v in node:
            walk_texts(v, out)


def limit_problems(blocks: list[dict[str, Any]], *, max_blocks: int) -> list[str]:
    """What Slack would refuse or cut: too many blocks, text objects over their limits."""
    problems = [] if len(blocks) <= max_blocks else [f"{len(blocks)} blocks"]

    def walk(node: Any, parent: str) -> None:
        if isinstance(node, dict):
            kind = node.get("type")
            if kind in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
                limit = {"header": 150, "button": 75, "option": 75}.get(parent, 3000)
                size = len(node["text"].encode("utf-16-le")) // 2
                if size > limit:
                    problems.append(f"{parent} text of {size} characters")
            for key, v in node.items():
                walk(v, "option" if key in ("options", "initial_option") else
                     (kind if isinstance(kind, str) and kind in ("header", "button") else parent))
        elif isinstance(node, list):
            for v in node:
                walk(v, parent)

    walk(blocks, "block")
    return problems


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def slack_shown(h: Harness, answers: list[str]) -> list[tuple[str, str, str]]:
    """(where, type, text) of everything the bot gave Slack: every Web API call the
    emulator recorded, every response_url answer, and the slash commands' answers."""
    out: list[tuple[str, str, str]] = []
    posts = [(c.method, dict(c.params)) for c in h.slack.calls]
    posts += [("response_url", dict(p)) for p in h.slack.response_url_posts]
    for where, params in posts:
        for key in ("text", "initial_comment"):
            if isinstance(params.get(key), str):
                out.append((where, "mrkdwn", params[key]))
        for key in ("blocks", "view", "attachments"):
            texts: list[tuple[str, str]] = []
            walk_texts(_json(params.get(key)), texts)
            out += [(where, kind, text) for kind, text in texts]
    out += [("slash answer", "mrkdwn", a) for a in answers]
    return out


def assert_inert(h: Harness, answers: list[str]) -> list[tuple[str, str, str]]:
    shown = slack_shown(h, answers)
    bad = [(where, live_markup(text)[:3], text[:200]) for where, kind, text in shown
           if kind == "mrkdwn" and live_markup(text)]
    assert not bad, bad
    for where, params in ([(c.method, c.params) for c in h.slack.calls]
                          + [("response_url", p) for p in h.slack.response_url_posts]):
        blocks = _json(params.get("blocks"))
        view = _json(params.get("view"))
        if isinstance(blocks, list):
            assert not limit_problems(blocks, max_blocks=50), (where, limit_problems(blocks,
                                                                                  max_blocks=50))
        if isinstance(view, dict):
            assert not limit_problems(view.get("blocks") or [], max_blocks=100), where
        text = params.get("text")
        if isinstance(text, str):
            assert len(text) <= (4000 if where in ("chat.postEphemeral", "response_url")
                                 else 40000), (where, len(text))
    for a in answers:
        assert len(a) <= 4000, len(a)
    return shown


# ---------------------------------------------------------------- every builder

TZ = ZoneInfo("Europe/London")
NOW = dt.datetime(2026, 5, 1, 10, 0, tzinfo=dt.UTC)
CONFIG: Config = parse_config(copy.deepcopy(E2E_CONFIG))


def _account(network: str = "x") -> Account:
    return Account(id=1, name="nottscc", network=network, handle=SHORT)


def _mention(state: str = "open", **kw: Any) -> Mention:
    values: dict[str, Any] = dict(
        id=7, network="x", external_id="1", account_id=1, author_handle=HOSTILE,
        author_name=HOSTILE, text=HOSTILE, url=HOSTILE_URLS[0], posted_at=NOW, state=state,
        claimed_by="U0WASTE" if state == "claimed" else None,
        closed_by="U0WASTE" if state == "closed" else None, escalated=False, purged_at=None)
    values.update(kw)
    return Mention(**values)


def _alert(service: str | None = SHORT) -> Alert:
    return Alert(id=3, mention_id=7, service=service, channel="C0WASTE", reason=HOSTILE[:255],
                 active=True)


def _draft(state: str) -> Draft:
    return Draft(id=5, account_id=1, mention_id=7, kind="reply", text=HOSTILE, version=2,
                 author="U0WASTE", state=state, scheduled_for=NOW, approved_by="U0COMMS1",
                 decided_by="U0COMMS2", published_url=HOSTILE_URLS[0],
                 last_error=f"X answered 500: {HOSTILE}")


def _alerts() -> Iterator[Any]:
    from bot.blockkit.alerts import SAFEGUARDING, AlertView, alert_message

    hosts = esc.link_hosts("x")
    for state in ("open", "claimed", "closed", "replied"):
        for url in (*HOSTILE_URLS, "https://x.com/jane/status/1"):
            yield alert_message(AlertView(
                alert=_alert(), mention=_mention(state, url=url), account=_account(),
                pending_drafts=2, replied_url=url, replied_by="U0WASTE", approved_by="U0COMMS1",
                also_in=(SHORT,), link_hosts=hosts), TZ)
    yield alert_message(AlertView(alert=_alert(), mention=_mention(), account=_account(),
                                  moved_to="C0HIGHWAYS", link_hosts=hosts), TZ)
    yield alert_message(AlertView(alert=_alert(SAFEGUARDING), mention=_mention(escalated=True),
                                  account=_account(), also_in=(SHORT, LINE)), TZ)
    yield alert_message(AlertView(alert=_alert(), mention=_mention(escalated=True),
                                  account=_account(), hide_escalated_text=False), TZ)
    yield alert_message(AlertView(alert=_alert(), mention=_mention(purged_at=NOW),
                                  account=_account(), link_hosts=hosts), TZ)


def _triage() -> Iterator[Any]:
    from bot.blockkit.triage import badge_line, menu

    for prio in ("urgent", "normal", SHORT):
        for tone in (None, "negative", SHORT):
            m = _mention(priority=prio, priority_reason=SHORT, sentiment=tone)
            line = badge_line(m, corrected=tone is None)
            yield line, [{"type": "context", "elements": [{"type": "mrkdwn", "text": line}]}]
            yield "", [{"type": "actions", "elements": [menu(m, 3)]}]


def _approvals() -> Iterator[Any]:
    from bot.blockkit.approvals import STATE_LINE, ApprovalView, approval_message

    for state in STATE_LINE:
        for mention in (_mention(), None):
            yield approval_message(ApprovalView(
                draft=_draft(state), account=_account(), mention=mention, length=4200,
                max_length=280, approve_reaction="white_check_mark", reject_reaction="x",
                banners=[esc.escape(HOSTILE)], findings=[Finding("c", "block", HOSTILE),
                                                         Finding("d", "warn", SHORT)],
                approvals=["U0COMMS1"], required=2, hold=esc.escape(SHORT),
                images=[(HOSTILE, HOSTILE), (SHORT, None), (LINE, LINE), ("a.png", "ok")],
                link_hosts=esc.link_hosts("x")), TZ)


def _home() -> Iterator[Any]:
    from bot.blockkit.home import DraftLine, HomeData, ServiceQueue, WaitingMention, home_view

    waiting = [WaitingMention(ref="M1", service=SHORT, account_handle=SHORT,
                              author_handle=HOSTILE, text=HOSTILE, arrived_at=NOW, sla_due=NOW,
                              overdue=bool(i % 2), state="claimed", claimed_by="U0WASTE",
                              link="https://notts.slack.com/archives/C0WASTE/p1", channel="C0WASTE")
               for i in range(20)]
    line = DraftLine(ref="D1", kind="reply", account_handle=SHORT, text=HOSTILE, state="pending",
                     author="U0WASTE", created_at=NOW, scheduled_for=NOW, mention_ref="M1",
                     link=None, published_url=None)
    yield home_view(HomeData(
        user="U0COMMS1", tz=TZ, roles=[SHORT], services=[SHORT, LINE],
        banners=[esc.escape(HOSTILE)] * 6, waiting=waiting, waiting_total=40,
        drafts=[line] * 10, approvals=[line] * 15, approvals_total=30,
        queues=[ServiceQueue(SHORT, 3, 1, NOW)], system=[esc.escape(SHORT)]))


def _modals() -> Iterator[Any]:
    from bot.blockkit import modals
    from bot.blockkit.home import new_post_modal

    cfg = CONFIG.model_copy(update={"services": [
        svc.model_copy(update={"name": f"{SHORT} {i}"}) for i, svc in enumerate(CONFIG.services)]})
    yield modals.reroute_modal(3, cfg)
    view = modals.draft_modal(callback_id="c", title="Draft a reply", submit="Send",
                              metadata="{}", account_label=f"Replying as *@{esc.escape(SHORT)}*",
                              quoted=esc.outside_text_sections(HOSTILE, max_blocks=3),
                              initial_text=HOSTILE[:3000], length=4200, limit=280)
    yield view
    yield modals.with_count(view, 5000, 280)
    yield new_post_modal([(SHORT, f"@{SHORT}"), ("b", LINE)], schedule=True,
                         today=NOW.date(), tz_name="Europe/London")


def _plans() -> Iterator[Any]:
    """A batch's and a campaign's card (issue 21): hostile file, campaign and account
    names, texts, errors and links, with more rows than a message can hold."""
    from bot.blockkit.plans import GroupView, Row, group_message

    states = ("pending", "approved", "published", "failed", "expired", "rejected")
    for kind in ("batch", "campaign"):
        rows = [Row(draft_id=i, ref=f"D{i}", version=1, position=i + 1, account=SHORT,
                    network=SHORT, state=states[i % len(states)], text=HOSTILE, length=4000,
                    limit=280, scheduled_for=NOW if i % 2 else None, campaign=HOSTILE,
                    link=esc.safe_link(HOSTILE_URLS[i % len(HOSTILE_URLS)], "view",
                                       esc.link_hosts("x")),
                    error=HOSTILE, steps=LINE[:300], images=i % 2)
                for i in range(60 if kind == "batch" else 10)]
        for author in ("U0WASTE", HOSTILE[:200]):
            yield group_message(GroupView("B1" if kind == "batch" else "C1", kind, HOSTILE,
                                          author, rows), ZoneInfo("Europe/London"))


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def _escape_helpers() -> Iterator[Any]:
    for url in (*HOSTILE_URLS, None, ""):
        yield _mrkdwn(esc.safe_link(url, SHORT, esc.link_hosts("x")))
        yield _mrkdwn(esc.safe_link(url, SHORT, esc.link_hosts("mastodon", "https://evil|x")))
    yield _mrkdwn(esc.code(HOSTILE[:2000] + "`<!here>`\n<!channel>"))
    yield _mrkdwn(esc.fit(esc.escape(HOSTILE)))
    yield {"blocks": [{"type": "section", "text": esc.mrkdwn(esc.escape(HOSTILE))}]}
    yield {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": c}}
                      for c in esc.chunks(esc.escape(HOSTILE))]}
    yield {"blocks": esc.outside_text_sections(HOSTILE * 3)}


# every public function of bot/blockkit: how it is walked, or why it needs no walk
BUILDERS: dict[str, Callable[[], Iterator[Any]]] = {
    "alerts.alert_message": _alerts,
    "triage.badge_line": _triage,
    "triage.menu": _triage,
    "approvals.approval_message": _approvals,
    "plans.group_message": _plans,
    "home.home_view": _home,
    "home.new_post_modal": _modals,
    "modals.reroute_modal": _modals,
    "modals.draft_modal": _modals,
    "modals.with_count": _modals,
    "escape.escape": _escape_helpers,
    "escape.safe_link": _escape_helpers,
    "escape.code": _escape_helpers,
    "escape.fit": _escape_helpers,
    "escape.mrkdwn": _escape_helpers,
    "escape.chunks": _escape_helpers,
    "escape.outside_text_sections": _escape_helpers,
}
NOT_BUILDERS = {
    "alerts.slack_date": "the bot's own <!date^…> from a datetime; no outside text",
    "home.ago": "the bot's own <!date^…> from a datetime; no outside text",
    "escape.plain": "a plain_text object: never mrkdwn",
    "escape.truncate": "shortens; the caller escapes",
    "escape.link_hosts": "host allow-list, tested in test_links_only_to_the_networks_own_hosts",
    "escape.account_link_hosts": "link_hosts for a configured account (its base_url)",
    "escape.allowed_url": "URL check, tested in test_links_only_to_the_networks_own_hosts",
    "permissions.refusal": "the council's own config only (group ids, handles, service names)",
    "permissions.describe": "the council's own config only (/social whoami)",
    "labels.account_label": "plain text by contract; escaped by callers (walked in home_view)",
    "labels.network_label": "a label from NETWORK_LABEL; plain text",
}


def _public_functions() -> set[str]:
    import bot.blockkit as package

    found = set()
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"bot.blockkit.{info.name}")
        for name, obj in vars(module).items():
            if (inspect.isfunction(obj) and obj.__module__ == module.__name__
                    and not name.startswith("_")):
                found.add(f"{info.name}.{name}")
    return found


def test_every_builder_is_walked() -> None:
    """A public function added to bot/blockkit must be walked here (or say why not)."""
    missing = _public_functions() - set(BUILDERS) - set(NOT_BUILDERS)
    assert not missing, f"walk these with hostile input in BUILDERS: {sorted(missing)}"


@pytest.mark.parametrize("builder", sorted(set(BUILDERS.values()), key=lambda f: f.__name__))
def test_builders_with_hostile_values_show_nothing_live(builder: Callable[[], Iterator[Any]]
                                                        ) -> None:
    built = list(builder())
    assert built
    for item in built:
        fallback, blocks = item if isinstance(item, tuple) else (None, None)
        if blocks is None:
            blocks = item.get("blocks") or []
            max_blocks = 100 if item.get("type") in ("modal", "home") else 50
        else:
            max_blocks = 50
        texts: list[tuple[str, str]] = []
        walk_texts(item if fallback is None else blocks, texts)
        if fallback is not None:
            texts.append(("mrkdwn", fallback))
            assert len(fallback) <= 40000
        for kind, text in texts:
            if kind == "mrkdwn":
                assert not live_markup(text), (builder.__name__, live_markup(text), text[:300])
        assert not limit_problems(blocks, max_blocks=max_blocks), limit_problems(blocks,
                                                                                max_blocks=max_blocks)
    if builder is _alerts:  # the residents' words are all there, escaped, not cut
        joined = block_texts({"blocks": built[0][1]})
        assert esc.escape(SHORT) in joined and joined.count("A") >= 4000


def test_links_only_to_the_networks_own_hosts() -> None:
    x = esc.link_hosts("x")
    assert esc.safe_link("https://x.com/jane/status/1", "view", x) == \
        "<https://x.com/jane/status/1|view>"
    assert esc.safe_link("https://mobile.twitter.com/a/status/1?a=1&b=<2>", "v", x) == \
        "<https://mobile.twitter.com/a/status/1?a=1&amp;b=&lt;2&gt;|v>"
    for url in HOSTILE_URLS:
        shown = esc.safe_link(url, "view", x)
        assert not live_markup(shown) and not shown.startswith("<"), shown
    masto = esc.link_hosts("mastodon", "https://social.notts.example")
    assert masto == ("social.notts.example",)
    assert esc.safe_link("https://social.notts.example/@a/1", "v", masto).startswith("<https://")
    assert not esc.safe_link("https://other.social/@a/1", "v", masto).startswith("<")
    flickr = esc.link_hosts("flickr")
    assert esc.safe_link("https://www.flickr.com/photos/a/1/", "v", flickr).startswith("<")
    assert not esc.safe_link("https://flickr.com.evil.example/p", "v", flickr).startswith("<")
    assert esc.link_hosts("mastodon", None) == () and esc.link_hosts("unknown") == ()


# ---------------------------------------------------------------- every reply path

NETWORK_ACCOUNTS = [
    {"name": "masto", "network": "mastodon", "handle": "nottscc", "credentials": "M",
     "base_url": "https://social.notts.example"},
    {"name": "bsky", "network": "bluesky", "handle": "nottscc.bsky.social", "credentials": "B"},
    {"name": "fb", "network": "facebook", "handle": "nottinghamshirecc", "credentials": "F",
     "page_id": "1000001"},
    {"name": "flickr", "network": "flickr", "handle": "nottscc", "credentials": "FL"},
    {"name": "pins", "network": "pinterest", "handle": "nottscc", "credentials": "P",
     "board_id": "549755885175"},
]
OWN_URL = {"x": "https://x.com/jane/status/{n}", "mastodon": "https://social.notts.example/@j/{n}",
           "bluesky": "https://bsky.app/profile/j.bsky.social/post/{n}",
           "facebook": "https://www.facebook.com/1000001_{n}",
           "flickr": "https://www.flickr.com/photos/j/{n}/",
           "pinterest": "https://www.pinterest.com/pin/{n}/"}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


@pytest.fixture
def h(database_url: str) -> Iterator[Harness]:
    cfg = copy.deepcopy(E2E_CONFIG)
    cfg["accounts"] += copy.deepcopy(NETWORK_ACCOUNTS)
    creds = {("mastodon", "M"): {"access_token": "masto-token-123456"},
             ("bluesky", "B"): {"app_password": "abcd-efgh-ijkl-mnop"},
             ("facebook", "F"): {"page_access_token": "EAAB-page-token-123456"},
             ("flickr", "FL"): {"api_key": "flickr-key-123456", "api_secret": "flickr-secret-1",
                                "oauth_token": "flickr-token-123456",
                                "oauth_token_secret": "flickr-token-secret-1"},
             ("pinterest", "P"): {"access_token": "pina-token-123456"}}
    with NetHarness(database_url, cfg, credentials=creds) as harness:
        yield harness


def _command(h: Harness, user: str, text: str, answers: list[str], *, escape: bool = True
             ) -> str:
    r = h.slack.send_command(user, "C0WASTE", text, escape=escape)
    assert r.status_code == 200, r.text
    answer = str(r.json().get("text") or "") if r.content else ""
    answers.append(answer)
    return answer


def test_every_reply_path_shows_hostile_text_inert(h: Harness,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # what is shown is under test here, not Slack's 1 message/s per channel (that is
    # tests/integrations/x/test_mentions.py's): dozens of alerts drain in seconds, not a minute
    monkeypatch.setattr(outbox_module, "CHANNEL_INTERVAL", 0.05)
    answers: list[str] = []
    # slash command errors echo what was typed: as Slack sends typed text (escaped) and as
    # Slack's own markup (a real @channel arrives as <!channel>)
    for escape in (True, False):
        for text in (HOSTILE, f"reply {SHORT} hi", f"reply <https://evil|x> {HOSTILE}",
                     f"reply M999 {SHORT}", f"post {SHORT} hello", f"post nosuch {HOSTILE}",
                     f"post nottscc {HOSTILE}", f"schedule nottscc <!here> 10:00 {SHORT}",
                     f"schedule nottscc 2020-01-01 10:00 {SHORT}", f"stats {SHORT}",
                     "stats <!channel>", f"stats {LINE}", f"pause {SHORT}", f"resume {LINE}",
                     f"pause {LINE} {SHORT}", "whoami", f"help {HOSTILE}"):
            _command(h, WENDY, text, answers, escape=escape)
            _command(h, CARA, text, answers, escape=escape)
    # a draft with hostile words, then a comms member's pause with a hostile reason
    assert "Draft D1" in _command(h, WENDY, f"post nottscc {SHORT}", answers)
    first = wait_for(lambda: h.alerts_in("C0APPROVALS"), what="approval message")[0]
    paused = _command(h, CARA, f"pause all {HOSTILE}", answers)
    assert "Publishing paused" in paused and esc.escape("<!channel>") in paused
    assert "already paused" in _command(h, CARA, f"pause all {SHORT}", answers)
    wait_for(lambda: "Publishing paused" in block_texts(
        h.slack.message("C0APPROVALS", first["ts"]) or {}), what="pause banner")
    h.slack.open_app_home(CARA)
    wait_for(lambda: "Publishing paused" in block_texts(h.slack.home_view(CARA) or {}),
             what="home banner")
    # approved while paused: the approval line says why it waits (the reason, escaped)
    h.slack.add_reaction(COLIN, "C0APPROVALS", first["ts"], "white_check_mark")
    wait_for(lambda: "waiting: publishing is paused" in block_texts(
        h.slack.message("C0APPROVALS", first["ts"]) or {}), what="hold shown")
    assert "resumed" in _command(h, CARA, "resume all", answers)
    wait_for(lambda: "Published" in block_texts(
        h.slack.message("C0APPROVALS", first["ts"]) or {}), what="published")
    # a second draft: a hostile image name and alt text, a refused file, then rejected
    assert "Draft D2" in _command(h, WENDY, f"post nottscc {SHORT} again", answers)
    second = wait_for(lambda: len(h.alerts_in("C0APPROVALS")) >= 2
                      and h.alerts_in("C0APPROVALS")[1], what="second approval message")
    wait_for(lambda: h.count(Draft, Draft.approval_ts == second["ts"]) == 1, what="ts stored")
    h.slack.share_file(WENDY, "C0APPROVALS", PNG, f"{SHORT}.png", alt_txt=HOSTILE[:900],
                       thread_ts=second["ts"])
    h.slack.share_file(WENDY, "C0APPROVALS", b"not an image", f"{SHORT}.txt",
                       mimetype="text/plain", thread_ts=second["ts"])
    wait_for(lambda: "image attached" in block_texts(
        h.slack.message("C0APPROVALS", second["ts"]) or {}), what="image shown")
    wait_for(lambda: any("not an image" in (e.get("text") or "") for e in h.slack.ephemerals()),
             what="file refused")
    h.slack.click_button(WENDY, "C0APPROVALS", second["ts"], "draft_edit")  # the edit modal
    wait_for(lambda: h.slack.open_views(WENDY), what="edit modal")
    h.slack.click_button(COLIN, "C0APPROVALS", second["ts"], "draft_reject")
    wait_for(lambda: "Rejected" in block_texts(
        h.slack.message("C0APPROVALS", second["ts"]) or {}), what="rejected")
    # mentions with hostile words, authors and URLs from every network
    with transaction(h.rt.sessions) as s:
        from bot.services.accounts import account_ids
        from bot.services.ingest import store_mentions

        ids = account_ids(h.rt, s)
        for acc in h.rt.settings.config.accounts[:1] + h.rt.settings.config.accounts[2:]:
            account = s.get_one(Account, ids[acc.name])
            urls = [*HOSTILE_URLS, OWN_URL[acc.network].format(n=9)]
            store_mentions(s, account, [FetchedMention(
                external_id=f"{acc.name}-{n}", text=f"bin {HOSTILE}", author_handle=HOSTILE,
                author_name=HOSTILE, author_external_id="9", url=url, posted_at=NOW)
                for n, url in enumerate(urls)], h.rt.router)
    h.rt.kick_outbox()
    h.x.add_user("7777", "troll", SHORT)
    h.x.add_mention("1111", "troll", f"bin {HOSTILE[:250]}")
    h.poll()
    h.settle(timeout=60)
    alert = h.alerts_in("C0WASTE")[-1]
    h.slack.click_button(WENDY, "C0WASTE", alert["ts"], "alert_claim")
    h.slack.click_button(ROGUE, "C0WASTE", alert["ts"], "alert_claim")
    h.slack.click_button(WENDY, "C0WASTE", alert["ts"], "alert_draft_reply")
    h.slack.click_button(CARA, "C0WASTE", alert["ts"], "alert_reroute")
    view = wait_for(lambda: h.slack.open_views(CARA), what="reroute modal")[-1]
    h.slack.submit_view(CARA, view["id"], {"service": {"service_select": "highways"}})
    wait_for(lambda: h.alerts_in("C0HIGHWAYS"), what="rerouted alert")
    h.slack.open_app_home(WENDY)
    h.slack.open_app_home(CARA)
    h.settle(timeout=60)
    time.sleep(0.5)
    shown = assert_inert(h, answers)
    everything = "\n".join(t for _, _, t in shown)
    # the hostile words did arrive, escaped, in each surface (so the test can fail)
    assert everything.count(esc.escape("<!channel>")) > 20
    assert "&amp;amp;" in everything
    assert "<https://x.com/jane/status/9|View on X>" in everything  # own hosts still link
    assert "<https://social.notts.example/@j/9|View on Mastodon>" in everything
    assert "<https://www.flickr.com/photos/j/9/|View on Flickr>" in everything
    assert "unverified link, not opened" in everything


def test_mastodon_mentions_from_other_servers_link_nowhere(database_url: str) -> None:
    """The real Mastodon emulator: a remote account's status URL (its own server) is not
    on the account's instance, so it is shown as text, never a link."""
    from integrations.mastodon.emulator import MastodonEmulator

    with MastodonEmulator(domain="mastodon.example") as masto:
        masto.add_account("NottsCC", "Nottinghamshire County Council", token="masto-tok-123456")
        evil = masto.add_account("evil", SHORT, domain="evil.example")
        account = {"name": "nottscc-masto", "network": "mastodon", "handle": "NottsCC",
                   "credentials": "MASTO", "base_url": masto.root_url}
        with NetHarness(database_url, config_with(account),
                        credentials={("mastodon", "MASTO"): {"access_token": "masto-tok-123456"}}
                        ) as h:
            masto.add_mention(evil, f"@NottsCC@mastodon.example bin {HOSTILE[:400]}")
            h.poll()
            h.settle()
            alert = wait_for(lambda: h.alerts_in("C0WASTE") or h.alerts_in("C0COMMS"))[0]
            text = json.dumps(alert["blocks"])
            assert "unverified link, not opened" in text and "evil.example" in text
            assert_inert(h, [])


# ---------------------------------------------------------------- secrets never leave

FB_PAGE, FB_TOKEN, FB_SECRET = "1000001", "EAAB-page-token-nottscc-42", "fb-app-secret-123456"


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception as exc:  # a record that cannot be formatted is a failure too
            self.lines.append(f"UNFORMATTABLE {exc!r}")


def _last_error(h: Harness, draft_id: int) -> str:
    with h.rt.sessions() as s:
        d = s.get(Draft, draft_id)
        return (d.last_error or "") if d else ""


def _database_text(h: Harness) -> str:
    out = []
    with h.rt.engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                out.append(f"{table}: {tuple(row)!r}")
    return "\n".join(out)


def test_secrets_never_leave(database_url: str, capfd: pytest.CaptureFixture[str]) -> None:
    from integrations.facebook.emulator import FacebookEmulator

    captured = _Capture()
    watched = ["", "uvicorn", "uvicorn.access", "uvicorn.error", "httpx", "httpcore",
               "slack_sdk", "slack_bolt", "tweepy", "urllib3", "requests_oauthlib"]
    before = {n: logging.getLogger(n).level for n in watched}
    with FacebookEmulator(app_secret=FB_SECRET) as fb:
        fb.add_page(FB_PAGE, "Nottinghamshire County Council", FB_TOKEN, followers=3)
        account = {"name": "nottscc-fb", "network": "facebook", "handle": "nottinghamshirecc",
                   "credentials": "FB", "page_id": FB_PAGE}
        with NetHarness(database_url, config_with(account),
                        credentials={("facebook", "FB"): {"page_access_token": FB_TOKEN}},
                        env={"facebook_graph_base_url": fb.root_url,
                             "facebook_app_secret": FB_SECRET,
                             "facebook_verify_token": "verify-me-please"}) as h:
            secrets = [BOT_TOKEN, SIGNING_SECRET, FB_TOKEN, FB_SECRET,
                       *h.rt.settings.secrets()]
            x = XCredentials.of(h.rt.settings.credentials[("x", "NOTTSCC")])
            logs.configure("DEBUG", "json", h.rt.settings.secrets())
            for n in watched:
                logging.getLogger(n).setLevel(logging.DEBUG)
            for n in ("", "uvicorn", "uvicorn.access", "uvicorn.error"):
                logging.getLogger(n).addHandler(captured)
            server = None
            try:
                # uvicorn's own access log, with a token in the URL it logs
                import uvicorn

                from bot.asgi import build_asgi

                port = free_port()
                server = uvicorn.Server(uvicorn.Config(build_asgi(h.rt, h.bolt), port=port,
                                                       log_level="debug", access_log=True,
                                                       lifespan="off"))
                thread = threading.Thread(target=server.run, daemon=True)
                thread.start()
                wait_for(lambda: server.started, what="uvicorn")
                for n in ("uvicorn", "uvicorn.access", "uvicorn.error"):
                    logging.getLogger(n).addHandler(captured)
                httpx.get(f"http://127.0.0.1:{port}/healthz?access_token={FB_TOKEN}"
                          f"&secret={x.consumer_secret}", timeout=5)
                logging.getLogger("uvicorn.error").warning(
                    "proxy said %s", f"GET /x?access_token={FB_TOKEN} Authorization: Bearer "
                    f"{x.access_token}")
                # Facebook: a Graph error that quotes the token and the URL it was sent on
                fb.inject("feed", "500", times=20, message=(
                    f"upstream failed for {fb.root_url}/v21.0/{FB_PAGE}/feed?access_token="
                    f"{FB_TOKEN}&appsecret_proof=abc (token {FB_TOKEN})"))
                assert "Draft D1" in str(h.slack.send_command(
                    WENDY, "C0WASTE", "post nottscc-fb Bins out on Monday").json()["text"])
                h.approve(1)
                wait_for(lambda: "upstream failed" in _last_error(h, 1), timeout=60,
                         what="the Facebook error stored (failed or deferred)")
                # X: a 5xx that echoes the credentials (and an Authorization header)
                h.x.inject("create_tweet", "503", times=20, detail=(
                    f"gateway echo: Authorization: Bearer {x.access_token} "
                    f"oauth_consumer_key={x.consumer_key} {x.consumer_secret} "
                    f"{x.access_token_secret}"))
                assert "Draft D2" in str(h.slack.send_command(
                    WENDY, "C0WASTE", "post nottscc Libraries open late").json()["text"])
                h.approve(2)
                wait_for(lambda: "gateway echo" in _last_error(h, 2), timeout=60,
                         what="the X error stored (failed or deferred)")
                h.x.inject("mentions", "500", times=3, detail=f"echo {x.consumer_secret}")
                h.poll()
                h.settle(timeout=60)
            finally:
                if server is not None:
                    server.should_exit = True
                for n in ("", "uvicorn", "uvicorn.access", "uvicorn.error"):
                    logging.getLogger(n).removeHandler(captured)
                for n, level in before.items():
                    logging.getLogger(n).setLevel(level)
                logs.configure("INFO", "console", [])
            out, err = capfd.readouterr()
            log_text = "\n".join(captured.lines) + out + err
            db_text = _database_text(h)
            slack_text = json.dumps([(c.method, c.params, c.response) for c in h.slack.calls],
                                    default=str)
            with h.rt.sessions() as s:
                errors = [d.last_error or "" for d in s.query(Draft).order_by(Draft.id)]
    # the run did what it should: the errors were logged, stored and told, redacted
    assert "healthz" in log_text and "HTTP Request" in log_text, log_text[-2000:]
    assert all("[redacted]" in e for e in errors), errors
    assert "upstream failed" in errors[0] and "gateway echo" in errors[1], errors
    assert "D1: Facebook" in slack_text or "Publishing D1 failed" in slack_text
    assert "gateway echo" in slack_text and "upstream failed" in slack_text
    for secret in secrets:
        assert secret not in log_text, ("log", secret)
        assert secret not in db_text, ("database", secret)
        assert secret not in slack_text, ("slack", secret)
    assert "UNFORMATTABLE" not in log_text


def test_redact_knows_the_shapes_of_credentials() -> None:
    logs.add_secrets(["a-configured-secret-value"])
    cases = {
        "GET /feed?access_token=EAAB123&x=1": "access_token=[redacted]&x=1",
        "{'Authorization': 'Bearer abcdefghijkl', 'Accept': '*/*'}": "'Authorization': [redacted]",
        "Authorization: OAuth oauth_consumer_key=\"ck\", oauth_token=\"t\"": "Authorization: [redacted]",
        "bearer abcdefghijklmnop": "bearer [redacted]",
        "xoxb-1-2-abc and xapp-1-A-2": "[redacted] and [redacted]",
        '{"password": "hunter22"}': '{"password": "[redacted]"}',
        "app password abcd-efgh-ijkl-mnop": "app password [redacted]",
        "it was a-configured-secret-value": "it was [redacted]",
    }
    for raw, want in cases.items():
        assert want in logs.redact(raw), (raw, logs.redact(raw))
    event = logs._redact_processor(None, "info", {
        "event": "called", "password": "hunter22", "headers": {"Authorization": "x y"},
        "lease_token": "keep-me", "error": "GET /a?access_token=abc"})
    assert event == {"event": "called", "password": "[redacted]",
                     "headers": {"Authorization": "[redacted]"}, "lease_token": "keep-me",
                     "error": "GET /a?access_token=[redacted]"}
    for harmless in ("no audit key: set COMMSDESK_AUDIT_KEY", "Invalid OAuth access token",
                     "uuid 12345678-1234-1234-1234-123456789abc", "monkey: banana"):
        assert logs.redact(harmless) == harmless


def test_check_config_warns_when_dotenv_is_readable_by_others(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    from click.testing import CliRunner

    from bot.cli import main

    monkeypatch.chdir(tmp_path)
    env = tmp_path / ".env"
    env.write_text("COMMSDESK_ADVERSARY_MARKER=1\n")
    monkeypatch.setenv("COMMSDESK_ADVERSARY_MARKER", "0")  # .env loading leaves os.environ as it was
    for mode, warned in ((0o644, True), (0o640, True), (0o600, False)):
        os.chmod(env, mode)
        result = CliRunner().invoke(main, ["check-config", "--config",
                                           str(tmp_path / "missing.toml")])
        output = result.output
        assert ("chmod 600" in output) is warned, (oct(mode), output)
        if warned:
            assert f"{mode:04o}" in output
