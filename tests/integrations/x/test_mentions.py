"""Mentions of the council's X accounts arrive in the right service channel."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from bot.bootstrap import build_runtime
from bot.models import Alert, AuditEvent, Mention
from tests.harness import Harness, block_texts, wait_for


@pytest.fixture
def h(database_url: str) -> Iterator[Harness]:
    with Harness(database_url) as harness:
        yield harness


def test_mentions_are_routed_by_keyword_account_and_author(h: Harness) -> None:
    h.x.add_mention("1111", "jane_res", "the bins weren't collected on Elm Road")
    h.x.add_mention("1111", "bob", "huge pothole on the A60 near Mansfield")
    h.x.add_mention("2222", "reader", "love the new opening hours")  # account route
    h.x.add_mention("1111", "councillorjo", "thanks all")  # author route
    h.x.add_mention("1111", "amy", "what time does the council open?")  # nobody: default
    h.x.add_mention("1111", "sam", "pothole outside the tip entrance")  # two services
    results = h.poll()
    assert {r.account: r.stored for r in results} == {"nottscc": 5, "nottslibraries": 1}
    h.settle()
    waste = [block_texts(m) for m in h.alerts_in("C0WASTE")]
    highways = [block_texts(m) for m in h.alerts_in("C0HIGHWAYS")]
    assert len(waste) == 2 and any("Elm Road" in t for t in waste)
    assert len(highways) == 2 and any("A60" in t for t in highways)
    assert any("pothole outside the tip" in t for t in waste)
    assert any("pothole outside the tip" in t for t in highways)
    assert ["opening hours" in block_texts(m) for m in h.alerts_in("C0LIBRARIES")] == [True]
    assert ["thanks all" in block_texts(m) for m in h.alerts_in("C0VIP")] == [True]
    assert ["council open" in block_texts(m) for m in h.alerts_in("C0COMMS")] == [True]
    first = block_texts(h.alerts_in("C0WASTE")[0])
    assert "@jane_res" in first and "Ref *M" in first and "x.com/jane_res/status/" in first
    actions = h.audit_actions()
    assert actions.count("mention.received") == 6
    with h.rt.sessions() as s:  # one record says what came in and where it was sent
        received = s.scalars(sa.select(AuditEvent.details)
                             .where(AuditEvent.action == "mention.received")).all()
    assert sorted(len(d["routes"]) for d in received) == [1, 1, 1, 1, 1, 2]


def test_polling_again_and_restart_alert_each_mention_once(database_url: str) -> None:
    from integrations.x.emulator import XEmulator

    with XEmulator() as x:
        x.add_user("1111", "NottsCC")
        x.add_user("2222", "NottsLibraries")
        for i in range(3):
            x.add_mention("1111", f"r{i}", f"bin {i} not emptied")
        with Harness(database_url, x=x) as h:
            h.poll()
            h.poll()  # nothing new
            h.settle()
            assert len(h.alerts_in("C0WASTE")) == 3
            ours = [r for r in h.x.requests_to("mentions") if "/1111/" in r.path]
            assert ours[-1].query.get("since_id")  # the second poll resumed from the cursor
        x.add_mention("1111", "late", "recycling bin missed")
        x.reset_requests()
        with Harness(database_url, x=x) as h2:  # a restarted bot on the same database
            h2.poll()
            h2.settle()
            waste = h2.alerts_in("C0WASTE")
            assert len(waste) == 1 and "recycling bin missed" in block_texts(waste[0])
            first = next(r for r in x.requests_to("mentions") if "/1111/" in r.path)
            assert first.query.get("since_id")  # the restart resumed from the stored cursor
            assert h2.count(Mention) == 4


def test_overlapping_pages_never_duplicate(h: Harness) -> None:
    for i in range(250):
        h.x.add_mention("1111", f"res{i}", f"bin number {i}")
    h.poll()
    with h.rt.sessions() as s:
        from bot.models import PollCursor

        for c in s.query(PollCursor):
            c.since_id = None  # as if the cursor had been lost: everything comes again
        s.commit()
    h.poll()
    assert h.count(Mention) == 250
    assert h.count(Alert) == 250
    assert len(h.x.requests_to("mentions")) >= 6  # 3 pages each time for nottscc
    assert h.count(AuditEvent, AuditEvent.action == "mention.received") == 250


def test_hostile_text_is_escaped_and_intact(h: Harness) -> None:
    hostile = "<!channel> hi <@U0COMMS1> see <https://evil.example|bank> *bold* & more \u202eevil"
    h.x.add_mention("1111", "troll", hostile)
    h.x.add_mention("1111", "spam", "bin " + "😀" * 3000)
    h.poll()
    h.settle()
    msgs = h.alerts_in("C0WASTE") + h.alerts_in("C0COMMS")
    assert len(msgs) == 2
    hostile_msg = next(m for m in msgs if "evil" in block_texts(m))
    text = block_texts(hostile_msg)
    assert "&lt;!channel&gt;" in text and "<!channel>" not in text
    assert "&lt;@U0COMMS1&gt;" in text and "&lt;https://evil.example|bank&gt;" in text
    assert "&amp; more" in text and "\u202eevil" in text
    for block in hostile_msg["blocks"]:
        if block["type"] == "section":
            assert block["text"]["type"] == "plain_text"  # never mrkdwn: *bold* stays literal
    emoji_msg = next(m for m in msgs if "😀" in block_texts(m))
    assert block_texts(emoji_msg).count("😀") == 3000


def test_buttons_update_the_alert_and_the_audit_trail(h: Harness) -> None:
    h.x.add_mention("1111", "jane", "bins not collected")
    h.poll()
    h.settle()
    alert = h.alerts_in("C0WASTE")[0]
    ts = alert["ts"]
    h.slack.click_button("U0WASTE", "C0WASTE", ts, "alert_claim", "1")
    wait_for(lambda: "is on it" in block_texts(h.slack.message("C0WASTE", ts) or {}))
    h.slack.click_button("U0HIGHWAYS", "C0WASTE", ts, "alert_no_reply", "1")
    wait_for(lambda: ":no_entry_sign: No reply needed" in block_texts(h.slack.message("C0WASTE", ts) or {}))
    h.slack.click_button("U0HIGHWAYS", "C0WASTE", ts, "alert_reopen", "1")
    wait_for(lambda: "Open: nobody" in block_texts(h.slack.message("C0WASTE", ts) or {}))
    h.slack.click_button("U0WASTE", "C0WASTE", ts, "alert_reroute", "1")
    view = wait_for(lambda: h.slack.open_views("U0WASTE"))[-1]
    h.slack.submit_view("U0WASTE", view["id"], {"service": {"service_select": "highways"}})
    wait_for(lambda: h.alerts_in("C0HIGHWAYS"), what="alert in highways")
    wait_for(lambda: "Moved to" in block_texts(h.slack.message("C0WASTE", ts) or {}))
    actions = h.audit_actions()
    for a in ("mention.claimed", "mention.closed", "mention.reopened", "mention.rerouted"):
        assert a in actions


def test_x_429_and_503_are_waited_out_and_nothing_is_lost(h: Harness) -> None:
    for i in range(120):
        h.x.add_mention("1111", f"res{i}", f"bin {i} missed")
    h.x.inject("mentions", "429", reset_in=1)
    h.x.inject("mentions", "503", times=2)
    h.x.inject("mentions", "drop")
    results = h.poll()
    assert all(r.error is None for r in results), results
    assert h.count(Mention) == 120
    statuses = [r.status for r in h.x.requests_to("mentions")]
    assert 429 in statuses and 503 in statuses


def test_x_failure_keeps_the_cursor_so_nothing_is_skipped(h: Harness) -> None:
    from bot.models import PollCursor

    h.x.add_mention("1111", "first", "bin one")
    h.poll()
    with h.rt.sessions() as s:
        cursor = s.get(PollCursor, 1)
        assert cursor is not None
        before = cursor.since_id
    for i in range(150):  # two pages
        h.x.add_mention("1111", f"r{i}", f"bin {i}")
    h.x.inject("mentions", "500", times=40)  # page one stored, then X keeps failing
    results = h.poll()
    assert results[0].error is not None
    with h.rt.sessions() as s:
        assert s.get_one(PollCursor, 1).since_id == before  # not moved past unstored posts
    h.x.faults.clear()
    h.poll()
    assert h.count(Mention) == 151
    assert h.count(Alert) == 151


def test_slack_429_is_honoured(h: Harness) -> None:
    h.slack.rate_limit_next("chat.postMessage", retry_after=1, times=1)
    h.x.add_mention("1111", "jane", "bins again")
    h.poll()
    h.settle()
    posted = [c for c in h.slack.calls_to("chat.postMessage") if c.params.get("channel") == "C0WASTE"]
    assert [c.status for c in posted] == [429, 200]
    assert posted[1].time - posted[0].time >= 0.9  # waited Retry-After
    assert len(h.alerts_in("C0WASTE")) == 1


def test_burst_is_paced_per_channel_and_backlog_announced(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.services import outbox as outbox_module

    monkeypatch.setattr(outbox_module, "BACKLOG_NOTICE_AT", 5)
    h.slack.enforce_rate_limits = True
    for i in range(8):
        h.x.add_mention("1111", f"res{i}", f"recycling {i}")
    h.poll()
    h.settle(timeout=60)
    msgs = h.slack.messages("C0WASTE")
    alerts = [m for m in msgs if m.get("blocks")]
    assert len(alerts) == 8
    assert any("queued for this channel" in (m.get("text") or "") for m in msgs)
    assert all(c.status == 200 for c in h.slack.calls_to("chat.postMessage"))
    times = h.slack.post_times("C0WASTE")
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(times))


def test_missing_channel_is_reported_and_delivered_after_a_fix(h: Harness) -> None:
    from bot.services import outbox as outbox_module

    h.slack.channels["C0WASTE"].bot_is_member = False
    h.x.add_mention("1111", "jane", "bin day?")
    h.poll()
    wait_for(lambda: any("can't post in <#C0WASTE>" in (m.get("text") or "")
                         for m in h.slack.messages("C0COMMS")), what="report in default channel")
    assert "slack.channel_unavailable" in h.audit_actions()
    assert h.alerts_in("C0WASTE") == []
    h.slack.channels["C0WASTE"].bot_is_member = True  # someone invites the bot
    with h.rt.sessions() as s:  # the retry interval passes
        s.query(outbox_module.OutboxMessage).filter_by(status="blocked").update(
            {"not_before": outbox_module.now()})
        s.commit()
    h.rt.kick_outbox()
    wait_for(lambda: h.alerts_in("C0WASTE"), what="delivery after the fix")


def test_two_replicas_share_a_channels_pace(database_url: str, monkeypatch) -> None:
    """Two outboxes (as two `serve` replicas: own engine, own lease owner) on one
    PostgreSQL never post to a channel faster than one of them would: each claim looks
    at the channel's last send under a per-channel lock."""
    if not database_url.startswith("postgresql"):
        pytest.skip("replicas need PostgreSQL; SQLite is single-process")
    import threading

    from bot import db
    from bot.services import outbox as outbox_module

    interval = 0.3
    monkeypatch.setattr(outbox_module, "CHANNEL_INTERVAL", interval)
    monkeypatch.setattr(outbox_module, "BACKLOG_NOTICE_AT", 5)  # its notice takes a slot too
    with Harness(database_url) as h:
        engine = db.make_engine(database_url)
        replica = outbox_module.Outbox(build_runtime(h.settings(), engine), "replica-b")
        stop = threading.Event()
        thread = threading.Thread(target=replica.run_forever, args=(stop,), daemon=True)
        thread.start()
        try:
            for i in range(12):
                h.x.add_mention("1111", f"res{i}", f"bin number {i} was missed")
            h.poll()
            h.rt.kick_outbox()
            wait_for(lambda: len(h.alerts_in("C0WASTE")) == 12, timeout=90, what="12 alerts")
        finally:
            stop.set()
            thread.join(timeout=10)
            engine.dispose()
        messages = h.slack.messages("C0WASTE")
        notices = sum("queued for this channel" in (m.get("text") or "") for m in messages)
        assert notices == 1, notices  # one notice, not one per replica
        stamps = [float(m["ts"]) for m in messages]
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        assert len(h.alerts_in("C0WASTE")) == 12 and min(gaps) >= interval * 0.9, gaps
