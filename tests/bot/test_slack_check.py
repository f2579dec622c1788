"""`check-config --online` asks the Slack (emulator) about the token, channels and group."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.emulators.slack import SlackEmulator
from bot.slack_check import check_slack
from tests.conftest import BOT_TOKEN, SIGNING_SECRET, make_settings


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN) as emu:
        for cid in ("C0APPROVALS", "C0COMMS", "C0WASTE"):
            emu.add_channel(cid, cid.lower())
        emu.add_usergroup("S0COMMS", "comms", ["U1"])
        yield emu


def test_all_present(slack: SlackEmulator, tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/x.db", slack_api_url=slack.api_url)
    assert check_slack(settings) == []


def test_missing_channel_group_and_membership(slack: SlackEmulator, tmp_path: Path) -> None:
    del slack.channels["C0WASTE"]
    slack.channels["C0COMMS"].bot_is_member = False
    del slack.usergroups["S0COMMS"]
    settings = make_settings(f"sqlite:///{tmp_path}/x.db", slack_api_url=slack.api_url)
    problems = check_slack(settings)
    assert any(p.startswith("services[0].channel: channel C0WASTE unknown") for p in problems)
    assert any("slack.default_channel: the bot is not a member of C0COMMS" in p for p in problems)
    assert any(p.startswith("slack.approvers_usergroup") for p in problems)


def test_bad_token(slack: SlackEmulator, tmp_path: Path) -> None:
    slack.bot_token = "xoxb-other"
    settings = make_settings(f"sqlite:///{tmp_path}/x.db", slack_api_url=slack.api_url)
    assert check_slack(settings) == ["SLACK_BOT_TOKEN was refused by Slack: invalid_auth"]


def test_unreachable(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/x.db", slack_api_url="http://127.0.0.1:9/api/")
    problems = check_slack(settings)
    assert len(problems) == 1 and problems[0].startswith("cannot reach Slack")
