"""The app manifest subscribes to everything the listeners handle, and the CLI prints it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from bot.app import build_bolt_app
from bot.bootstrap import build_runtime
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parent.parent


class Recorder:
    """Stands in front of the real Bolt App and notes every registration."""

    def __init__(self, app: Any):
        self.app = app
        self.seen: dict[str, set[str]] = {"event": set(), "command": set(), "action": set(),
                                          "view": set(), "shortcut": set(), "options": set()}

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.app, name)
        if name in self.seen:
            def register(key: Any, *args: Any, **kwargs: Any) -> Any:
                self.seen[name].add(key if isinstance(key, str) else str(key))
                return target(key, *args, **kwargs)
            return register
        return target


def manifest() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "app_manifest.yaml").read_text())


def test_every_listener_is_subscribed_in_the_manifest(tmp_path: Path) -> None:
    from handlers import register_all

    rt = build_runtime(make_settings(f"sqlite:///{tmp_path / 'm.db'}"))
    recorder = Recorder(build_bolt_app(rt))
    register_all(recorder)
    m = manifest()
    events = set(m["settings"]["event_subscriptions"]["bot_events"])
    commands = {c["command"] for c in m["features"]["slash_commands"]}
    # a `message` listener needs the message.* subscriptions of the channel kinds it reads
    listened = {e for e in recorder.seen["event"] if e != "message"}
    if "message" in recorder.seen["event"]:
        assert {"message.channels", "message.groups"} <= events
        scopes = set(m["oauth_config"]["scopes"]["bot"])
        assert {"channels:history", "groups:history", "files:read"} <= scopes
    assert recorder.seen["event"] and listened <= events
    assert recorder.seen["command"] and recorder.seen["command"] <= commands
    if recorder.seen["action"] or recorder.seen["view"]:
        assert m["settings"]["interactivity"]["is_enabled"] is True
    if "app_home_opened" in recorder.seen["event"]:
        assert m["features"]["app_home"]["home_tab_enabled"] is True


def test_manifest_command_prints_the_same_file() -> None:
    r = subprocess.run([sys.executable, "-m", "bot.cli", "manifest"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0
    assert r.stdout == (ROOT / "app_manifest.yaml").read_text()
    # one manifest: bot/app_manifest.yaml (what a wheel carries) is a link to it, not a copy
    assert [p for p in ROOT.glob("*/**/app_manifest.yaml") if ".venv" not in p.parts] \
        == [ROOT / "bot" / "app_manifest.yaml"]
    assert (ROOT / "bot" / "app_manifest.yaml").resolve() == ROOT / "app_manifest.yaml"


def test_manifest_asks_for_the_scopes_the_bot_uses() -> None:
    scopes = set(manifest()["oauth_config"]["scopes"]["bot"])
    for needed in ("chat:write", "commands", "reactions:read", "usergroups:read",
                   "channels:read", "files:write"):
        assert needed in scopes
