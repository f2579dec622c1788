"""The publishing calendar (issue 21): a week's scheduled and published posts by day and
account, what waits for approval, purdah periods; `/social calendar` (ephemeral), App
Home's week view, `commsdesk calendar [--week] [--ics]` and the authenticated ICS feed."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from click.testing import CliRunner
from icalendar import Calendar as ICal

from bot.blockkit.approvals import ACTION_APPROVE
from bot.cli import main
from bot.clock import now
from bot.models import Draft
from tests.harness import CARA, E2E_CONFIG, WENDY, Harness, block_texts, wait_for

TZ = ZoneInfo("Europe/London")
TOKEN = "calendar-feed-secret-0123456789abcdef"


def next_monday() -> date:
    today = now().astimezone(TZ).date()
    return today + timedelta(days=7 - today.weekday())


def iso_week(day: date) -> str:
    y, w, _ = day.isocalendar()
    return f"{y}-W{w:02d}"


@pytest.fixture
def h(database_url: str) -> Iterator[Harness]:
    monday = next_monday()
    config: dict[str, Any] = copy.deepcopy(E2E_CONFIG)
    config["purdah"] = [{"name": "County council elections",
                         "start": (monday + timedelta(days=1)).isoformat(),
                         "end": (monday + timedelta(days=3)).isoformat(),
                         "accounts": ["nottslibraries"], "rule": "block"}]
    with Harness(database_url, config=config) as harness:
        yield harness


def command(h: Harness, user: str, text: str) -> dict[str, Any]:
    r = h.slack.send_command(user, "C0WASTE", text)
    assert r.status_code == 200, r.text
    return dict(r.json())


def approve(h: Harness, draft_id: int) -> None:
    msg = wait_for(lambda: next((m for m in h.alerts_in("C0APPROVALS")
                                 if f"D{draft_id}" in block_texts(m)), None), timeout=60,
                   what="card")
    h.slack.click_button(CARA, "C0APPROVALS", msg["ts"], ACTION_APPROVE)


def state(h: Harness, draft_id: int) -> str:
    with h.rt.sessions() as s:
        return s.get_one(Draft, draft_id).state


def make_week(h: Harness) -> date:
    monday = next_monday()
    assert "Draft D1" in command(h, WENDY, f"schedule nottscc {monday:%Y-%m-%d} 09:30 "
                                           "Bin collections move a day <later>")["text"]
    assert "Draft D2" in command(h, WENDY, f"schedule nottslibraries "
                                           f"{monday + timedelta(days=2):%Y-%m-%d} 14:00 "
                                           "Libraries open late on Wednesday")["text"]
    assert "Draft D3" in command(h, WENDY, "post nottscc Gritters are out tonight")["text"]
    approve(h, 1)
    approve(h, 3)
    wait_for(lambda: state(h, 1) == "approved" and state(h, 3) == "published",
             timeout=90, what="approved and published")
    return monday


def test_social_calendar_shows_the_week_to_the_person_asking(h: Harness) -> None:
    monday = make_week(h)
    answer = command(h, CARA, f"calendar {iso_week(monday)}")
    assert answer.get("response_type") == "ephemeral"
    text = block_texts(answer)
    assert f"Calendar · week {iso_week(monday)}" in text
    assert "2 post(s) · 1 waiting for approval" in text
    day1 = f"*{monday:%a %d %b}*"
    day3 = f"*{monday + timedelta(days=2):%a %d %b}*"
    assert day1 in text and day3 in text
    assert "*nottscc*\n:calendar: 09:30 D1 scheduled: Bin collections move a day &lt;later&gt;" \
        in text
    assert ("*nottslibraries*\n:hourglass: 14:00 D2 waiting for approval: Libraries open late"
            in text)
    assert "*Purdah*: County council elections" in text
    assert f"{monday + timedelta(days=1):%a %d %b}* · :ballot_box_with_ballot: County" in text
    assert "Gritters" not in text  # published this week, not next
    this_week = block_texts(command(h, WENDY, "calendar"))
    assert "D3 published: Gritters are out tonight" in this_week
    bad = command(h, WENDY, "calendar next-week")
    assert "is not an ISO week" in bad["text"] and "blocks" not in bad
    # nobody else saw any of it: no message in any channel
    assert not [m for m in h.slack.messages("C0WASTE") if "Calendar" in str(m)]


def test_app_home_has_this_weeks_calendar(h: Harness) -> None:
    command(h, WENDY, "post nottscc Gritters are out tonight")
    approve(h, 1)
    wait_for(lambda: state(h, 1) == "published", timeout=90, what="published")
    h.slack.open_app_home(CARA)
    view = wait_for(lambda: (v := h.slack.home_view(CARA)) and "Calendar · week" in
                    block_texts(v) and v, what="home with calendar")
    text = block_texts(view)
    assert "D1 published: Gritters are out tonight" in text
    assert len(view["blocks"]) <= 100


def test_cli_calendar_and_ics_validate(h: Harness, tmp_path: Path) -> None:
    monday = make_week(h)
    config = tmp_path / "commsdesk.toml"
    config.write_text(
        '[slack]\napprovals_channel = "C0APPROVALS"\ndefault_channel = "C0COMMS"\n'
        'approvers_usergroup = "S0COMMS"\n'
        '[[accounts]]\nname = "nottscc"\nnetwork = "x"\nhandle = "NottsCC"\ncredentials = "N"\n'
        '[[accounts]]\nname = "nottslibraries"\nnetwork = "x"\nhandle = "NottsLibraries"\n'
        'credentials = "L"\n'
        '[[services]]\nname = "waste"\nchannel = "C0WASTE"\nkeywords = ["bin"]\n'
        '[[purdah]]\nname = "County council elections"\n'
        f'start = {monday + timedelta(days=1)}\nend = {monday + timedelta(days=3)}\n'
        'accounts = ["nottslibraries"]\n', encoding="utf-8")
    out = tmp_path / "week.ics"
    env = {"DATABASE_URL": h.database_url, "COMMSDESK_CONFIG": str(config)}
    r = CliRunner().invoke(main, ["calendar", "--week", iso_week(monday), "--ics", str(out)],
                           env=env)
    assert r.exit_code == 0, r.output
    assert f"Week {iso_week(monday)}" in r.stdout
    assert "2 post(s); 1 waiting for approval" in r.stdout
    assert "  nottscc\n    09:30 D1 scheduled: Bin collections move a day <later>" in r.stdout
    assert "  nottslibraries\n    14:00 D2 waiting for approval" in r.stdout
    assert f"{monday + timedelta(days=1):%a %d %b}  [purdah: County council elections]" \
        in r.stdout
    feed = ICal.from_ical(out.read_bytes())
    events = {str(e["uid"]): e for e in feed.walk("VEVENT")}
    assert set(events) == {"draft-1@commsdesk", "draft-2@commsdesk",
                           f"purdah-{monday + timedelta(days=1)}-0@commsdesk"}
    assert events["draft-2@commsdesk"]["status"] == "TENTATIVE"
    assert events["draft-1@commsdesk"].decoded("dtstart").astimezone(TZ).hour == 9
    purdah = events[f"purdah-{monday + timedelta(days=1)}-0@commsdesk"]
    assert purdah.decoded("dtstart") == monday + timedelta(days=1)
    assert purdah.decoded("dtend") == monday + timedelta(days=4)
    assert feed.to_ical() == ICal.from_ical(feed.to_ical()).to_ical()  # round-trips
    r = CliRunner().invoke(main, ["calendar", "--week", "2026-W60"], env=env)
    assert r.exit_code == 1 and "has no week 60" in r.output


def test_ics_url_needs_the_secret(h: Harness) -> None:
    monday = make_week(h)
    assert h.server is not None
    url = f"{h.server.url}/calendar/{TOKEN}/calendar.ics"
    assert httpx.get(url).status_code == 404  # no token configured: no feed
    h.rt.settings.env.commsdesk_calendar_token = TOKEN
    r = httpx.get(url)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/calendar")
    uids = {str(e["uid"]) for e in ICal.from_ical(r.content).walk("VEVENT")}
    assert {"draft-1@commsdesk", "draft-2@commsdesk", "draft-3@commsdesk",
            f"purdah-{monday + timedelta(days=1)}-0@commsdesk"} <= uids
    for wrong in (TOKEN[:-1] + "x", TOKEN[:-1], "", "%C3%A9" * 20):
        assert httpx.get(f"{h.server.url}/calendar/{wrong}/calendar.ics").status_code == 404
