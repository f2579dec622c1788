"""Save and restore the emulators' worlds as JSON, so a second `commsdesk demo` resumes.

The emulators keep their state in plain dataclasses; this module reads and writes
the Slack emulator's (its private fields included, under its lock), and the stage
network's through its stage (`Stage.dump`/`load`). The bot's own state lives in the
demo's SQLite database, which simply stays.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from bot.demo.stage import Stage
from bot.emulators.slack import (
    SlackChannel,
    SlackEmulator,
    SlackUser,
    SlackUsergroup,
    StoredMessage,
    StoredView,
)

FORMAT = 1


def dump_slack(slack: SlackEmulator) -> dict[str, Any]:
    with slack._lock:
        return {
            "format": FORMAT,
            "users": [dataclasses.asdict(u) for u in slack.users.values()],
            "channels": [dataclasses.asdict(c) for c in slack.channels.values()],
            "usergroups": [dataclasses.asdict(g) for g in slack.usergroups.values()],
            "messages": {ch: [dataclasses.asdict(m) for m in msgs]
                         for ch, msgs in slack._messages.items()},
            "ephemerals": [dict(e) for e in slack._ephemerals],
            "views": [dataclasses.asdict(v) for v in slack._views.values()],
            "home_views": dict(slack._home_views),
            "counter": slack._counter,
            "last_ts_us": slack._last_ts_us,
        }


def load_slack(slack: SlackEmulator, data: dict[str, Any]) -> None:
    with slack._lock:
        slack.users = {u["id"]: SlackUser(**u) for u in data["users"]}
        slack.channels = {c["id"]: SlackChannel(**c) for c in data["channels"]}
        slack.usergroups = {g["id"]: SlackUsergroup(**g) for g in data["usergroups"]}
        slack._messages = {ch: [StoredMessage(**m) for m in msgs]
                           for ch, msgs in data["messages"].items()}
        slack._ephemerals = list(data["ephemerals"])
        slack._views = {v["id"]: StoredView(**v) for v in data["views"]}
        slack._home_views = dict(data["home_views"])
        slack._counter = int(data["counter"])
        slack._last_ts_us = int(data["last_ts_us"])


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically: a crash mid-write leaves the previous file whole."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    return data


def state_files(network: str) -> tuple[str, str]:
    """The files a demo keeps its emulators' state in."""
    return "slack-state.json", f"{network}-state.json"


class Saver:
    """Writes each emulator's state to its file whenever it has changed."""

    def __init__(self, slack: SlackEmulator, stage: Stage, data_dir: Path):
        self.slack, self.stage = slack, stage
        slack_name, stage_name = state_files(stage.network)
        self.slack_path = data_dir / slack_name
        self.stage_path = data_dir / stage_name
        self._digests: dict[Path, str] = {}

    def restore(self) -> bool:
        """Load both files; False when there is nothing (complete) to resume."""
        slack_data, stage_data = read_json(self.slack_path), read_json(self.stage_path)
        if slack_data is None or stage_data is None:
            return False
        load_slack(self.slack, slack_data)
        self.stage.load(stage_data)
        return True

    def save(self) -> None:
        for path, data in ((self.slack_path, dump_slack(self.slack)),
                           (self.stage_path, {"format": FORMAT, **self.stage.dump()})):
            digest = hashlib.sha256(
                json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
            if self._digests.get(path) != digest:
                write_json(path, data)
                self._digests[path] = digest
