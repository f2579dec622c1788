"""Reach figures (daily follower snapshots) and the weekly report: uploaded through the
Slack emulator's files upload v2 flow, read back, and opened as a PNG; the same offline
with `commsdesk report`."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from bot import clock
from bot.cli import main
from bot.db import transaction
from bot.models import FollowerSnapshot, InsightRun, OutboxMessage
from bot.services import reach, report
from tests.harness import Harness, set_clock, wait_for
from tests.insight_data import INSIGHT_CONFIG, local, seed

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def h(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    set_clock(monkeypatch, local(2026, 3, 8, 12))
    with Harness(database_url, config=INSIGHT_CONFIG) as harness:
        with transaction(harness.rt.sessions) as s:
            seed(s, harness.rt.settings.config)
        yield harness


def snapshot(h: Harness, monkeypatch: pytest.MonkeyPatch, day: int, notts: int,
             libraries: int) -> list[reach.SnapshotResult]:
    set_clock(monkeypatch, local(2026, 3, day, 23, 30))
    h.x.users["1111"].followers_count = notts
    h.x.users["2222"].followers_count = libraries
    return reach.snapshot_all(h.rt)


def test_follower_snapshots_and_the_weekly_report(h: Harness, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    first = snapshot(h, monkeypatch, 8, 1000, 500)
    assert [(r.account, r.followers) for r in first] == [("nottscc", 1000),
                                                        ("nottslibraries", 500)]
    lookups = [r for r in h.x.requests_to("user") if "public_metrics" in r.query["user.fields"]]
    assert len(lookups) == 2
    again = snapshot(h, monkeypatch, 8, 1234, 555)  # same day: kept as it was, X not asked
    assert [r.followers for r in again] == [None, None]
    assert len(h.x.requests_to("user")) == 2
    snapshot(h, monkeypatch, 10, 1010, 499)
    snapshot(h, monkeypatch, 15, 1042, 498)
    assert h.count(FollowerSnapshot) == 6

    set_clock(monkeypatch, local(2026, 3, 16, 8, 59))  # Monday, before the report time
    assert report.run_weekly(h.rt) is False
    set_clock(monkeypatch, local(2026, 3, 16, 9, 1))
    assert report.run_weekly(h.rt) is True
    assert report.run_weekly(h.rt) is False  # once a week, whatever restarts or replicas do
    with h.rt.sessions() as s:
        assert [r.key for r in s.query(InsightRun)] == ["2026-W11"]
    h.settle(timeout=30)
    posted = wait_for(lambda: [m for m in h.slack.messages("C0COMMS") if m.get("files")],
                      what="report in the comms channel")
    assert len(posted) == 1
    summary = posted[0]["text"]
    assert "*Weekly report · week 2026-W11 (9 Mar \u2013 15 Mar 2026)*" in summary
    # W11 has M8 only (W10 had M1-M7); replies to M3, M7, M8; one new post
    assert "Mentions in: *1* (▼ 6 on the week before) · Replies out: *3* · New posts: *1*" \
        in summary
    assert "Followers: @NottsCC 1,042 (+42 this week) · @NottsLibraries 498 (-2 this week)" \
        in summary
    assert [len(h.slack.calls_to(m)) for m in ("files.getUploadURLExternal",
                                               "files.completeUploadExternal")] == [1, 1]
    file = posted[0]["files"][0]
    assert file["name"] == "commsdesk-report-2026-W11.png"
    content = h.slack.file_content(file["id"])
    assert content is not None and content.startswith(PNG) and len(content) == file["size"]
    image = Image.open(io.BytesIO(content))
    image.verify()  # a whole, readable PNG
    image = Image.open(io.BytesIO(content))
    assert image.format == "PNG" and image.size == (1200, 750)
    colours = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50  # something was drawn, not a blank canvas

    # a retry whose first try's answer was lost finds the report there and posts nothing
    with transaction(h.rt.sessions) as s:
        s.add(OutboxMessage(channel="C0COMMS", op="weekly_report", payload={"week": "2026-W11"},
                            attempts=1))
    h.rt.kick_outbox()
    wait_for(lambda: h.count(OutboxMessage, OutboxMessage.op == "weekly_report",
                             OutboxMessage.status == "sent") == 2, what="retry handled")
    assert len([m for m in h.slack.messages("C0COMMS") if m.get("files")]) == 1
    assert len(h.slack.calls_to("files.completeUploadExternal")) == 1

    # and when Slack does not answer that look, it is not taken as "not there": later
    h.slack.inject("conversations.history", "503", channel="C0COMMS")
    with transaction(h.rt.sessions) as s:
        retry = OutboxMessage(channel="C0COMMS", op="weekly_report",
                              payload={"week": "2026-W11"}, attempts=1)
        s.add(retry)
    h.rt.kick_outbox()
    wait_for(lambda: h.count(OutboxMessage, OutboxMessage.id == retry.id,
                             OutboxMessage.last_error.like("could not check the channel%")) == 1,
             what="the look failed")
    with transaction(h.rt.sessions) as s:  # its retry time comes
        s.get_one(OutboxMessage, retry.id).not_before = clock.now()
    h.rt.kick_outbox()
    wait_for(lambda: h.count(OutboxMessage, OutboxMessage.id == retry.id,
                             OutboxMessage.status == "sent") == 1, what="second look")
    assert len(h.slack.calls_to("files.completeUploadExternal")) == 1

    # the same offline
    config = tmp_path / "commsdesk.toml"
    config.write_text(
        '[slack]\napprovals_channel = "C0APPROVALS"\ndefault_channel = "C0COMMS"\n'
        'approvers_usergroup = "S0COMMS"\n'
        '[[accounts]]\nname = "nottscc"\nnetwork = "x"\nhandle = "NottsCC"\ncredentials = "N"\n'
        '[[accounts]]\nname = "nottslibraries"\nnetwork = "x"\nhandle = "NottsLibraries"\n'
        'credentials = "L"\n'
        '[[services]]\nname = "waste"\nchannel = "C0WASTE"\nkeywords = ["bin"]\n'
        '[[services]]\nname = "highways"\nchannel = "C0HIGHWAYS"\nkeywords = ["pothole"]\n',
        encoding="utf-8")
    out = tmp_path / "report.png"
    r = CliRunner().invoke(main, ["report", "--week", "2026-W11", "--output", str(out)],
                           env={"DATABASE_URL": h.database_url, "COMMSDESK_CONFIG": str(config)})
    assert r.exit_code == 0, r.output
    assert "Weekly report · week 2026-W11" in r.stdout and "Mentions in: 1" in r.stdout
    assert out.read_bytes().startswith(PNG)
    assert Image.open(out).size == (1200, 750)
    r = CliRunner().invoke(main, ["report", "--week", "2026-03", "--output", str(out)],
                           env={"DATABASE_URL": h.database_url, "COMMSDESK_CONFIG": str(config)})
    assert r.exit_code == 1 and "is not an ISO week" in r.output
