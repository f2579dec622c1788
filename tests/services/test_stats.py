"""Stats over HTTP (`/social stats`) and on the command line (`commsdesk stats`) equal the
figures worked out by hand for the fixed data set in tests/insight_data.py."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.db import transaction
from bot.domain import stats
from bot.services.stats import Scope, split_args, table
from tests.harness import WENDY, Harness
from tests.insight_data import INSIGHT_CONFIG, seed


@pytest.fixture
def h(database_url: str) -> Iterator[Harness]:
    with Harness(database_url, config=INSIGHT_CONFIG) as harness:
        with transaction(harness.rt.sessions) as s:
            seed(s, harness.rt.settings.config)
        yield harness


LATER = datetime(2026, 11, 25, 12, tzinfo=UTC)


def test_figures_equal_the_hand_computed_ones(h: Harness) -> None:
    cfg = h.rt.settings.config
    scope, period = split_args(cfg, ["2026-03"], LATER)
    assert scope == Scope("all") and period.label == "March 2026"
    with h.rt.sessions() as s:
        rows = {f.scope: f for f in table(s, cfg, scope, period, LATER)}
    total = rows["all"]
    assert (total.mentions_in, total.replies_out, total.posts_out) == (8, 7, 1)
    assert (total.claim_p50, total.claim_p90) == pytest.approx((0.5, 2.25))
    assert (total.reply_p50, total.reply_p90) == pytest.approx((1.2, 8.0))
    assert (total.sla_met, total.sla_due) == (6, 8)
    assert total.busiest_hours == ((10, 2), (12, 2), (11, 1))
    waste = rows["waste"]
    assert (waste.mentions_in, waste.replies_out, waste.posts_out) == (5, 5, 0)
    assert (waste.claim_p50, waste.claim_p90) == pytest.approx((0.5, 2.25))
    assert (waste.reply_p50, waste.reply_p90) == pytest.approx((1.2, 7.0))
    assert (waste.sla_met, waste.sla_due, waste.sla_met_pct) == (4, 5, 80.0)
    assert waste.busiest_hours == ((10, 2), (15, 1), (16, 1))
    highways = rows["highways"]
    assert (highways.mentions_in, highways.replies_out) == (3, 2)
    assert (highways.claim_p50, highways.claim_p90) == pytest.approx((0.1, 0.1))
    assert (highways.reply_p50, highways.reply_p90) == pytest.approx((1.2, 8.0))
    assert (highways.sla_met, highways.sla_due) == (2, 3)  # M5 took 8 h of its 8
    unrouted = rows[stats.UNROUTED]
    assert (unrouted.mentions_in, unrouted.reply_p50, unrouted.sla_met_pct) == (1, 1.0, 100.0)
    assert rows["@nottscc"].mentions_in == 8 and rows["@nottscc"].posts_out == 1
    assert rows["libraries"].mentions_in == 0 and rows["libraries"].sla_met_pct is None
    # a week inside the month, by ISO week
    _, week = split_args(cfg, ["2026-W10"], LATER)  # Mon 2 to Sun 8 March
    with h.rt.sessions() as s:
        w = table(s, cfg, Scope("service", "waste"), week, LATER)[0]
    assert (w.mentions_in, w.replies_out) == (4, 3)  # M1-M4; replies to M1, M2, M9


def test_social_stats_over_http(h: Harness) -> None:
    r = h.slack.send_command(WENDY, "C0WASTE", "stats waste 2026-03")
    text = r.json()["text"]
    assert "*Stats · March 2026* · service waste" in text
    assert "Mentions in: *5* · Replies out: *5*" in text
    assert "Time to first claim: p50 30 min · p90 2.2 h" in text
    assert "Time to reply: p50 1.2 h · p90 7.0 h" in text
    assert "SLA met: 80% (4 of 5 due)" in text
    assert "Busiest hours: 10:00\u201311:00 (2), 15:00\u201316:00 (1), 16:00\u201317:00 (1)" in text

    everything = h.slack.send_command(WENDY, "C0WASTE", "stats 2026-03").json()["text"]
    assert "all services" in everything and "Mentions in: *8*" in everything
    assert "SLA met: 75% (6 of 8 due)" in everything
    assert "```" in everything and "highways" in everything  # the per-service table

    account = h.slack.send_command(WENDY, "C0WASTE", "stats @NottsCC 2026-03").json()["text"]
    assert "account nottscc" in account and "New posts: *1*" in account

    bad = h.slack.send_command(WENDY, "C0WASTE", "stats bins 2026-03").json()["text"]
    assert "`bins` is neither a service nor an account" in bad and "waste" in bad
    assert "Use: `/social stats" in bad
    too_many = h.slack.send_command(WENDY, "C0WASTE", "stats waste 7d extra").json()["text"]
    assert "at most a service or account and a period" in too_many
    assert "stats" in h.slack.send_command(WENDY, "C0WASTE", "help").json()["text"]


def test_commsdesk_stats_csv_and_table(h: Harness, tmp_path: Path) -> None:
    config = tmp_path / "commsdesk.toml"
    config.write_text(
        'timezone = "Europe/London"\n'
        '[slack]\napprovals_channel = "C0APPROVALS"\ndefault_channel = "C0COMMS"\n'
        'approvers_usergroup = "S0COMMS"\n'
        '[[accounts]]\nname = "nottscc"\nnetwork = "x"\nhandle = "NottsCC"\n'
        'user_id = "1111"\ncredentials = "NOTTSCC"\n'
        '[[services]]\nname = "waste"\nchannel = "C0WASTE"\nkeywords = ["bin"]\nsla_hours = 4\n'
        '[[services]]\nname = "highways"\nchannel = "C0HIGHWAYS"\nkeywords = ["pothole"]\n'
        'sla_hours = 8\n', encoding="utf-8")
    runner = CliRunner()
    env = {"DATABASE_URL": h.database_url, "COMMSDESK_CONFIG": str(config)}
    r = runner.invoke(main, ["stats", "2026-03", "--format", "csv"], env=env)
    assert r.exit_code == 0, r.output
    rows = {row["scope"]: row for row in csv.DictReader(io.StringIO(r.stdout))}
    assert list(rows) == ["all", "waste", "highways", stats.UNROUTED, "@nottscc"]
    assert rows["all"]["mentions_in"] == "8" and rows["all"]["sla_met_pct"] == "75.0"
    assert (rows["waste"]["reply_p50_h"], rows["waste"]["reply_p90_h"]) == ("1.20", "7.00")
    assert rows["highways"]["sla_met_pct"] == "66.7"
    assert rows["all"]["busiest_hours"] == "10:00(2) 12:00(2) 11:00(1)"
    r = runner.invoke(main, ["stats", "waste", "2026-03"], env=env)
    assert r.exit_code == 0, r.output
    assert "March 2026 · service waste" in r.stdout and "80% of 5" in r.stdout
    r = runner.invoke(main, ["stats", "2026-13"], env=env)
    assert r.exit_code == 1 and "is not a month" in r.output
