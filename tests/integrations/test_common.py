"""What every network's client shares (integrations/common.py), judged without a network."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from integrations.common import parse_time


@pytest.mark.parametrize(("given", "expected"), [
    ("2026-12-07T06:30:00.123Z", datetime(2026, 12, 7, 6, 30, 0, 123000, tzinfo=UTC)),
    ("2026-12-07T06:30:00", datetime(2026, 12, 7, 6, 30, tzinfo=UTC)),  # Pinterest: no zone
    ("2026-12-07T07:30:00+01:00",
     datetime(2026, 12, 7, 7, 30, tzinfo=timezone(timedelta(hours=1)))),
    (datetime(2026, 12, 7, 6, 30), datetime(2026, 12, 7, 6, 30, tzinfo=UTC)),  # Mastodon.py
])
def test_network_times_become_aware(given: object, expected: datetime) -> None:
    got = parse_time(given)
    assert got == expected and got is not None and got.tzinfo is not None


@pytest.mark.parametrize("given", [None, "", "yesterday", "2026-13-40T00:00:00Z", 1796622181])
def test_what_is_not_a_time_is_none(given: object) -> None:
    assert parse_time(given) is None
