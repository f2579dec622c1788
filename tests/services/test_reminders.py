"""SLA reminders fire once at 75% and once at 100% of a mention's SLA in working hours
(clock controlled, across the August bank holiday weekend), and the daily digest tells
comms about breaches once a day."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.models import AuditEvent, Mention, SlaReminder
from bot.services import reminders
from tests.harness import Harness, block_texts, set_clock, wait_for
from tests.insight_data import INSIGHT_CONFIG, local


@pytest.fixture
def h(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    set_clock(monkeypatch, local(2026, 8, 28, 13, 59))  # Friday before the bank holiday
    with Harness(database_url, config=INSIGHT_CONFIG) as harness:
        yield harness


def thread_texts(h: Harness, channel: str, ts: str) -> list[str]:
    return [m.get("text") or "" for m in h.slack.thread(channel, ts)[1:]]


def test_reminders_fire_once_at_75_and_100_percent(h: Harness,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    h.x.add_mention("1111", "jane", "my bins were not collected again")  # waste: SLA 4 h
    h.x.add_mention("1111", "bob", "pothole on Station Road")  # highways: SLA 8 h
    h.x.add_mention("1111", "amy", "is the tip open on Monday?")  # waste, answered below
    h.poll()
    h.settle()
    waste = h.alerts_in("C0WASTE")
    jane, amy = waste[0], waste[1]
    bob = h.alerts_in("C0HIGHWAYS")[0]
    h.slack.click_button("U0WASTE", "C0WASTE", amy["ts"], "alert_no_reply", None)
    wait_for(lambda: h.count(Mention, Mention.state == "closed") == 1, what="amy closed")

    set_clock(monkeypatch, local(2026, 8, 28, 16, 58))  # 2 h 59 of 4 h: nothing yet
    assert reminders.check_reminders(h.rt) == 0
    set_clock(monkeypatch, local(2026, 8, 28, 17, 0))  # 3 h: 75%
    assert reminders.check_reminders(h.rt) == 1
    assert reminders.check_reminders(h.rt) == 0  # once only
    h.settle()
    texts = thread_texts(h, "C0WASTE", jane["ts"])
    assert len(texts) == 1 and "75%" in texts[0] and "M1" in texts[0]
    assert "Nobody has claimed it yet" in texts[0]

    # the weekend and the bank holiday Monday do not count
    for day, hour in ((29, 12), (30, 12), (31, 12), (31, 16)):
        set_clock(monkeypatch, local(2026, 8, day, hour))
        assert reminders.check_reminders(h.rt) == 0
    set_clock(monkeypatch, local(2026, 9, 1, 9, 58))
    assert reminders.check_reminders(h.rt) == 0
    h.slack.click_button("U0WASTE", "C0WASTE", jane["ts"], "alert_claim", None)  # claimed only
    wait_for(lambda: h.count(Mention, Mention.state == "claimed") == 1, what="jane claimed")
    set_clock(monkeypatch, local(2026, 9, 1, 10, 0))  # 4 h: 100%
    assert reminders.check_reminders(h.rt) == 1
    assert reminders.check_reminders(h.rt) == 0
    h.settle()
    texts = thread_texts(h, "C0WASTE", jane["ts"])
    assert len(texts) == 2 and "passed its 4-working-hour response target" in texts[1]
    assert "<@U0WASTE> is on it" in texts[1]
    # highways (8 h): 75% = 6 h, reached Tue 1 Sep 11:59 (3 h 01 Fri + 2 h 59 Tue)
    assert thread_texts(h, "C0HIGHWAYS", bob["ts"]) == []
    assert thread_texts(h, "C0WASTE", amy["ts"]) == []  # answered: never reminded
    set_clock(monkeypatch, local(2026, 9, 1, 12, 1))
    assert reminders.check_reminders(h.rt) == 1
    h.settle()
    assert "75%" in thread_texts(h, "C0HIGHWAYS", bob["ts"])[0]
    assert h.count(SlaReminder) == 3
    assert h.count(AuditEvent, AuditEvent.action == "mention.sla_reminder") == 3
    # the alert itself is untouched by reminders (its buttons still work)
    assert "I'm on it" not in block_texts(h.slack.message("C0WASTE", jane["ts"]) or {})

    # the daily digest: once, on the next working morning, naming the breach
    set_clock(monkeypatch, local(2026, 9, 2, 8, 59))
    assert reminders.run_digest(h.rt) is False  # before digest_time
    set_clock(monkeypatch, local(2026, 9, 2, 9, 1))
    assert reminders.run_digest(h.rt) is True
    assert reminders.run_digest(h.rt) is False  # once a day
    h.settle()
    digest = [m["text"] for m in h.slack.messages("C0COMMS") if "targets missed" in m["text"]]
    assert len(digest) == 1
    assert "*M1* · waste · target 4 working h · still unanswered" in digest[0]
    assert "Unanswered past their target right now: *1*" in digest[0]


def test_a_mention_first_seen_past_its_sla_gets_one_reminder(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    h.x.add_mention("1111", "jane", "recycling bin missed")
    h.poll()
    h.settle()
    jane = h.alerts_in("C0WASTE")[0]
    set_clock(monkeypatch, local(2026, 9, 2, 12))  # long past both 75% and 100%
    assert reminders.check_reminders(h.rt) == 1
    assert reminders.check_reminders(h.rt) == 0
    h.settle()
    texts = thread_texts(h, "C0WASTE", jane["ts"])
    assert len(texts) == 1 and "passed its 4-working-hour" in texts[0]
    assert h.count(SlaReminder) == 2  # both levels recorded, one message
