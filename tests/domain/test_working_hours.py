"""Working time: office hours, weekends, UK bank holidays, closures, clock changes."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from bot.config import ConfigError, parse_config
from bot.domain.working_hours import WorkingHours, bank_holiday
from tests.conftest import BASE_CONFIG

LONDON = ZoneInfo("Europe/London")
H = WorkingHours(LONDON)


def at(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    """A council-time moment, as the aware datetime the bot stores."""
    return datetime(y, mo, d, h, mi, tzinfo=LONDON).astimezone(UTC)


@pytest.mark.parametrize(("start", "end", "hours"), [
    (at(2026, 3, 2, 10), at(2026, 3, 2, 11, 30), 1.5),  # within a Monday
    (at(2026, 3, 2, 20), at(2026, 3, 3, 9, 30), 0.5),  # evening: counts from 09:00
    (at(2026, 3, 6, 16), at(2026, 3, 9, 10), 2.0),  # Friday to Monday: the weekend is free
    (at(2026, 3, 7, 11), at(2026, 3, 8, 15), 0.0),  # all within a weekend
    # Friday before the August bank holiday (Mon 31 Aug 2026) to the Tuesday
    (at(2026, 8, 28, 16), at(2026, 9, 1, 10), 2.0),
    # Christmas 2026: Fri 25, weekend, Mon 28 (Boxing Day observed) all closed
    (at(2026, 12, 24, 16), at(2026, 12, 29, 10), 2.0),
    # clocks go back on Sun 25 Oct 2026: still 1 h on Friday + 1 h on Monday
    (at(2026, 10, 23, 16), at(2026, 10, 26, 10), 2.0),
    (at(2026, 3, 3, 12), at(2026, 3, 2, 12), 0.0),  # backwards: nothing
])
def test_hours_between(start: datetime, end: datetime, hours: float) -> None:
    assert H.hours_between(start, end) == pytest.approx(hours)


@pytest.mark.parametrize(("start", "hours", "due"), [
    (at(2026, 3, 2, 10), 4, at(2026, 3, 2, 14)),
    (at(2026, 3, 6, 16), 4, at(2026, 3, 9, 12)),  # over the weekend
    (at(2026, 8, 28, 14), 3, at(2026, 8, 28, 17)),  # exactly at closing time
    (at(2026, 8, 28, 14), 4, at(2026, 9, 1, 10)),  # over the bank holiday weekend
    (at(2026, 3, 7, 11), 0, at(2026, 3, 9, 9)),  # "now" on a Saturday: Monday's opening
])
def test_add_working_time(start: datetime, hours: float, due: datetime) -> None:
    assert H.add(start, hours * 3600) == due
    assert H.hours_between(start, due) == pytest.approx(hours)


def test_bank_holidays_per_nation_and_closure_days() -> None:
    assert bank_holiday(date(2026, 8, 31), "england") == "Late Summer Bank Holiday"
    assert bank_holiday(date(2026, 8, 31), "scotland") is None  # Scotland's is in early August
    assert bank_holiday(date(2026, 11, 30), "scotland")  # St Andrew's Day
    assert bank_holiday(date(2026, 8, 31), None) is None
    assert H.closed_reason(date(2026, 12, 28)) == "Boxing Day (observed)"
    assert H.closed_reason(date(2026, 3, 7)) == "weekend"

    cfg = copy.deepcopy(BASE_CONFIG)
    cfg["office_hours"] = {"days": ["mon", "tue", "wed", "thu"], "start": "08:30",
                           "end": "16:30", "bank_holidays": "none",
                           "closed_dates": ["2026-03-03"]}
    wh = WorkingHours.from_config(parse_config(cfg))
    assert wh.start == time(8, 30) and wh.nation is None
    assert wh.closed_reason(date(2026, 3, 3)) == "office closed"
    assert wh.closed_reason(date(2026, 3, 6)) == "not a working day"  # Friday is off
    assert wh.is_working_day(date(2026, 8, 31))  # no bank holidays counted
    # Mon 16:00 -> Wed 09:00: 0.5 h Monday, Tuesday closed, 0.5 h Wednesday
    assert wh.hours_between(at(2026, 3, 2, 16), at(2026, 3, 4, 9)) == pytest.approx(1.0)


def test_bad_office_hours_are_one_clear_sentence_each() -> None:
    cfg = copy.deepcopy(BASE_CONFIG)
    cfg["office_hours"] = {"start": "17:00", "end": "09:00"}
    with pytest.raises(ConfigError) as err:
        parse_config(cfg)
    assert err.value.problems == ["office_hours: end must be after start (same day, 24-hour clock)"]
    cfg["office_hours"] = {"days": [], "bank_holidays": "wales"}
    with pytest.raises(ConfigError) as err:
        parse_config(cfg)
    assert "days is empty" in err.value.problems[0]
    cfg["office_hours"] = {"bank_holidays": "france"}
    with pytest.raises(ConfigError) as err:
        parse_config(cfg)
    assert err.value.problems[0].startswith("office_hours.bank_holidays:")
    cfg = copy.deepcopy(BASE_CONFIG)
    cfg["services"][0]["sla_hours"] = 0
    with pytest.raises(ConfigError) as err:
        parse_config(cfg)
    assert err.value.problems[0].startswith("services[0].sla_hours:")
