"""Working time: office hours in the council's time zone, minus weekends, UK bank
holidays and closure days. Response times and SLAs are counted in it, as social
media management tools do (out-of-hours time does not count against a team).

Pure: no I/O. Bank holidays come from the `holidays` package (England and Wales,
Scotland, Northern Ireland).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

from bot.config import Config

# config name -> the `holidays` package's subdivision of GB
NATIONS = {"england": "ENG", "wales": "WLS", "scotland": "SCT", "northern-ireland": "NIR"}
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_DAYS = 3 * 366  # a bound for the day-by-day walks (no SLA is years long)


@functools.lru_cache(maxsize=64)
def _bank_holidays(subdiv: str, year: int) -> dict[date, str]:
    found = holidays.country_holidays("GB", subdiv=subdiv, years=[year])
    return {d: str(name) for d, name in found.items()}


def bank_holiday(day: date, nation: str | None) -> str | None:
    """The bank holiday's name on `day` in a UK nation (None: not one, or no nation)."""
    if nation is None:
        return None
    return _bank_holidays(NATIONS.get(nation, nation), day.year).get(day)


@dataclass(frozen=True)
class WorkingHours:
    tz: ZoneInfo
    start: time = time(9, 0)
    end: time = time(17, 0)
    weekdays: frozenset[int] = frozenset(range(5))  # Monday is 0
    nation: str | None = "england"  # whose bank holidays; None: none
    closed: frozenset[date] = field(default_factory=frozenset)

    @classmethod
    def from_config(cls, cfg: Config) -> WorkingHours:
        oh = cfg.office_hours
        return cls(
            tz=cfg.tz, start=oh.start, end=oh.end,
            weekdays=frozenset(DAY_NAMES.index(d) for d in oh.days),
            nation=None if oh.bank_holidays == "none" else oh.bank_holidays,
            closed=frozenset(oh.closed_dates),
        )

    # ------------------------------------------------------------ days

    def closed_reason(self, day: date) -> str | None:
        """Why a local date is not a working day (None: it is one)."""
        if day.weekday() not in self.weekdays:
            return "weekend" if day.weekday() >= 5 else "not a working day"
        if day in self.closed:
            return "office closed"
        return bank_holiday(day, self.nation)

    def is_working_day(self, day: date) -> bool:
        return self.closed_reason(day) is None

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """The day's office hours as UTC datetimes (None on a closed day)."""
        if not self.is_working_day(day):
            return None
        opens = datetime.combine(day, self.start, tzinfo=self.tz).astimezone(UTC)
        closes = datetime.combine(day, self.end, tzinfo=self.tz).astimezone(UTC)
        return opens, closes

    def _days_from(self, at: datetime) -> Iterable[date]:
        first = at.astimezone(self.tz).date()
        for i in range(MAX_DAYS):
            yield first + timedelta(days=i)

    # ------------------------------------------------------------ spans

    def seconds_between(self, a: datetime, b: datetime) -> float:
        """Working seconds from `a` to `b` (0 when b is not after a)."""
        if b <= a:
            return 0.0
        last = b.astimezone(self.tz).date()
        total = 0.0
        for day in self._days_from(a):
            if day > last:
                break
            win = self.window(day)
            if win is None:
                continue
            lo, hi = max(win[0], a), min(win[1], b)
            if hi > lo:
                total += (hi - lo).total_seconds()
        return total

    def hours_between(self, a: datetime, b: datetime) -> float:
        return self.seconds_between(a, b) / 3600.0

    def add(self, a: datetime, seconds: float) -> datetime:
        """The moment at which `seconds` of working time have passed since `a`."""
        remaining = max(0.0, seconds)
        for day in self._days_from(a):
            win = self.window(day)
            if win is None or win[1] <= a:
                continue
            begin = max(win[0], a)
            available = (win[1] - begin).total_seconds()
            if remaining <= available:
                return begin + timedelta(seconds=remaining)
            remaining -= available
        raise ValueError("no working time within three years: check office_hours")

    def next_open(self, a: datetime) -> datetime:
        """`a` itself during office hours, otherwise when the office next opens."""
        return self.add(a, 0.0)
