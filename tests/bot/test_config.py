"""Bad configuration: every problem named with its key, exit 1, never a traceback."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.config import ConfigError, parse_config
from tests.conftest import BASE_CONFIG

GOOD_TOML = """
timezone = "Europe/London"
poll_interval_seconds = 60

[slack]
approvals_channel = "C0APPROVALS"
default_channel = "C0COMMS"
approvers_usergroup = "S0COMMS"

[[accounts]]
name = "nottscc"
network = "x"
handle = "NottsCC"
credentials = "NOTTSCC"

[[services]]
name = "waste"
channel = "C0WASTE"
keywords = ["bin", "bins"]
"""

GOOD_ENV = {
    "COMMSDESK_AUDIT_KEY": "config-test-audit-key-0123456789abcdef",
    "SLACK_BOT_TOKEN": "xoxb-1-2-abc",
    "SLACK_SIGNING_SECRET": "s3cret-signing",
    "X_NOTTSCC_CONSUMER_KEY": "ck",
    "X_NOTTSCC_CONSUMER_SECRET": "cs",
    "X_NOTTSCC_ACCESS_TOKEN": "at",
    "X_NOTTSCC_ACCESS_TOKEN_SECRET": "ats",
}


def run_cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("SLACK_", "X_", "COMMSDESK_", "DATABASE_URL"))}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=60,
    )


def problems_for(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(data)
    return exc.value.problems


def test_good_config_parses() -> None:
    cfg = parse_config(BASE_CONFIG)
    assert cfg.account("nottscc") is not None
    assert cfg.slack.approve_reaction == "white_check_mark"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c["accounts"][0].update(network="myspace"), "accounts[0].network: unknown network 'myspace'"),
        (lambda c: c["accounts"].append(dict(c["accounts"][0])), "accounts[1].name: duplicate account name 'nottscc'"),
        (lambda c: c["services"][0].update(channel="#waste"), "services[0].channel: '#waste' is not a Slack channel id"),
        (lambda c: c["services"][0].update(keywords=[]), "services[0]: keywords is empty"),
        (lambda c: c.update(timezone="Europe/Nottingham"), "timezone: 'Europe/Nottingham' is not a known time zone"),
        (lambda c: c.update(poll_interval=30), "poll_interval: unknown key (did you mean 'poll_interval_seconds'?)"),
        (lambda c: c["slack"].update(aprovals_channel="C1"), "slack.aprovals_channel: unknown key (did you mean 'approvals_channel'?)"),
        (lambda c: c.update(poll_interval_seconds="often"), "poll_interval_seconds: input should be a valid integer"),
        (lambda c: c["slack"].pop("approvers_usergroup"), "slack.approvers_usergroup: required but missing"),
        (lambda c: c["slack"].update(bot_token="xoxb-123"), "slack.bot_token: secrets must not be in the config file"),
        (lambda c: c["services"][0].update(accounts=["nottcc"]), "services[0].accounts: unknown account 'nottcc' (did you mean 'nottscc'?)"),
    ],
)
def test_each_bad_config_names_its_key(mutate: Any, expected: str) -> None:
    data = copy.deepcopy(BASE_CONFIG)
    mutate(data)
    problems = problems_for(data)
    assert any(p.startswith(expected) for p in problems), problems


def test_every_problem_is_reported_at_once() -> None:
    data = copy.deepcopy(BASE_CONFIG)
    data["timezone"] = "Mars/Base"
    data["accounts"][0]["network"] = "friendster"
    data["services"][0]["channel"] = "waste"
    problems = problems_for(data)
    assert len(problems) == 3, problems


def test_check_config_ok(tmp_path: Path) -> None:
    (tmp_path / "commsdesk.toml").write_text(GOOD_TOML)
    r = run_cli(["check-config"], tmp_path, GOOD_ENV)
    assert r.returncode == 0, r.stderr
    assert "config OK" in r.stdout


@pytest.mark.parametrize(
    ("toml", "env_drop", "expected"),
    [
        ("timezone = \n", [], "not valid TOML"),
        (GOOD_TOML, ["SLACK_BOT_TOKEN"], "SLACK_BOT_TOKEN is not set"),
        (GOOD_TOML, ["SLACK_SIGNING_SECRET"], "SLACK_SIGNING_SECRET is not set"),
        (GOOD_TOML, ["X_NOTTSCC_ACCESS_TOKEN"], "X_NOTTSCC_ACCESS_TOKEN"),
        (GOOD_TOML.replace('network = "x"', 'network = "x"\ncolour = "blue"'), [], "accounts[0].colour: unknown key"),
        (GOOD_TOML.replace("poll_interval_seconds = 60", 'poll_interval_seconds = "soon"'), [], "poll_interval_seconds"),
        (None, [], "not found: run `commsdesk init`"),
    ],
)
def test_check_config_bad_input_exits_1_without_traceback(
    tmp_path: Path, toml: str | None, env_drop: list[str], expected: str
) -> None:
    if toml is not None:
        (tmp_path / "commsdesk.toml").write_text(toml)
    env = {k: v for k, v in GOOD_ENV.items() if k not in env_drop}
    r = run_cli(["check-config"], tmp_path, env)
    assert r.returncode == 1
    assert expected in r.stderr, r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "commsdesk.toml").write_text(GOOD_TOML)
    (tmp_path / ".env").write_text("\n".join(f"{k}={v}" for k, v in GOOD_ENV.items()))
    r = run_cli(["check-config"], tmp_path, {})
    assert r.returncode == 0, r.stderr


def test_init_writes_and_never_overwrites(tmp_path: Path) -> None:
    r = run_cli(["init"], tmp_path, {})
    assert r.returncode == 0
    toml = (tmp_path / "commsdesk.toml").read_text()
    assert "approvals_channel" in toml and "#" in toml
    assert "SLACK_BOT_TOKEN" in (tmp_path / ".env.example").read_text()
    (tmp_path / "commsdesk.toml").write_text("# mine\n")
    r = run_cli(["init"], tmp_path, {})
    assert r.returncode == 0
    assert (tmp_path / "commsdesk.toml").read_text() == "# mine\n"
    assert "left as it is" in r.stdout


def test_init_template_is_a_valid_config(tmp_path: Path) -> None:
    run_cli(["init"], tmp_path, {})
    r = run_cli(["check-config"], tmp_path, GOOD_ENV)
    assert r.returncode == 0, r.stderr


def test_init_examples_of_every_network_are_valid_once_uncommented(tmp_path: Path) -> None:
    """The commented [[accounts]] examples `init` writes (one per network, from each
    integration's spec) make a config check-config accepts when uncommented."""
    from integrations import registry

    run_cli(["init"], tmp_path, {})
    toml = (tmp_path / "commsdesk.toml").read_text()
    start = toml.index("# Other networks")
    end = toml.index("\n\n", start)
    examples = "\n".join(line.removeprefix("# ").removeprefix("#")
                         for line in toml[start:end].splitlines()[1:])
    assert examples.count("[[accounts]]") == len(registry.specs()) - 1  # all but X's
    (tmp_path / "commsdesk.toml").write_text(toml[:start] + examples + toml[end:])
    env = dict(GOOD_ENV)
    for spec in registry.specs():
        creds = spec.credentials
        env.update({f"{creds.prefix}_NOTTSCC_{part}": "secret" for part in creds.parts})
        env.update(dict.fromkeys(creds.shared, "secret"))
    r = run_cli(["check-config"], tmp_path, env)
    assert r.returncode == 0, r.stdout + r.stderr
