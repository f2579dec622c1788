"""`commsdesk demo`: the Slack emulator, an emulator for every network (the stage's on the
page's public pane, bot/demo/stage.py; every other integration's demo seed beside it,
bot/demo/networks.py), the real bot (as `serve` runs it) and the demo page, in one
process, started and stopped together."""

from __future__ import annotations

import csv
import fcntl
import os
import signal
import socket
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import func, select

from bot import db, logs
from bot.audit_keys import new_key
from bot.bootstrap import Bot, build
from bot.config import ConfigError, Environment, Settings, read_config_file
from bot.db import reading
from bot.demo import data
from bot.demo.actions import World
from bot.demo.networks import OtherNetworks
from bot.demo.persist import Saver, state_files
from bot.demo.stage import Stage, load_stage
from bot.demo.web import build_app
from bot.emulators.slack import SlackEmulator
from bot.models import Draft
from bot.runtime import Runtime
from bot.scheduler import Background
from bot.services import campaigns, schedule_import
from integrations import registry

HOST = "127.0.0.1"
DEMO_FILES = ("commsdesk.toml", "commsdesk.db", "commsdesk.db-wal", "commsdesk.db-shm",
              "commsdesk.db-journal", data.BATCH_FILE,
              *(name + tmp for name in state_files(data.STAGE) for tmp in ("", ".tmp")))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def config_toml(extra_accounts: list[dict[str, Any]] | None = None) -> str:
    cfg = data.config_dict()
    cfg["accounts"] += extra_accounts or []
    lines = ["# The demo's config: written by `commsdesk demo`, rewritten on each start.", ""]
    lines += [f"{k} = {_toml_value(v)}" for k, v in cfg.items() if not isinstance(v, dict | list)]
    for name, table in cfg.items():  # [slack], [links]
        if isinstance(table, dict):
            lines += ["", f"[{name}]"] + [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    for table in ("accounts", "services", "listening"):
        for entry in cfg.get(table, []):
            lines += ["", f"[[{table}]]"] + [f"{k} = {_toml_value(v)}" for k, v in entry.items()]
    return "\n".join(lines) + "\n"


def wipe(data_dir: Path) -> None:
    """`--reset`: remove the demo's own files (and nothing else) from the data folder."""
    for name in DEMO_FILES:
        (data_dir / name).unlink(missing_ok=True)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def seed_slack(slack: SlackEmulator) -> None:
    for p in data.PEOPLE:
        slack.add_user(p.id, p.name, p.real_name)
    for cid, name, _ in data.CHANNELS:
        slack.add_channel(cid, name)
    _seed_usergroups(slack)


def _seed_usergroups(slack: SlackEmulator) -> None:
    slack.add_usergroup(data.APPROVERS, "comms-approvers", data.COMMS_TEAM, name="Comms approvers")
    slack.add_usergroup(data.YOUTH_LEADS, "youth-leads", ("U0DAN",), name="Youth service leads")


def top_up(slack: SlackEmulator, stage: Stage) -> None:
    """A resumed demo saved before a person, group or account was added gets it now."""
    for p in data.PEOPLE:
        if p.id not in slack.users:
            slack.add_user(p.id, p.name, p.real_name)
    if data.YOUTH_LEADS not in slack.usergroups:
        _seed_usergroups(slack)
    stage.add_accounts(data.ACCOUNTS)


def seed_stage(stage: Stage) -> None:
    stage.add_accounts(data.ACCOUNTS)
    stage.seed(data.RESIDENTS, data.SEED_MENTIONS)


def seed_plans(rt: Runtime, data_dir: Path, campaign: str) -> None:
    """Issue 21 in a new demo: a campaign card (`campaign`, a `/social` text) and a CSV batch card
    in #comms-approvals, made by the real services as `/social post a,b,c` and `commsdesk
    schedule import` make them. Only into a database with no drafts yet, so a resumed or
    restarted demo never gets them twice."""
    log = logs.get("commsdesk.demo")
    with reading(rt.sessions) as s:
        if s.scalar(select(func.count()).select_from(Draft)):
            return
    made = campaigns.submit(rt, data.CAMPAIGN_AUTHOR,
                            lambda s: campaigns.check(rt, s, campaign), via="slash")
    if made.error is not None or made.refusal is not None:
        log.warning("the demo's campaign was not made",
                    error=made.error.text() if made.error is not None else made.refusal)
    base = datetime.now(rt.settings.config.tz).replace(minute=0, second=0, microsecond=0)
    path = data_dir / data.BATCH_FILE
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["account", "time", "text", "campaign"])
        for accounts, day, text, campaign in data.BATCH_ROWS:
            when = (base + timedelta(hours=2) if day == 0
                    else (base + timedelta(days=day)).replace(hour=10))
            out.writerow([accounts, f"{when:%Y-%m-%d %H:%M}", text, campaign])
    checked = schedule_import.check(rt, path)
    if checked.ok:
        schedule_import.store(rt, checked, data.BATCH_AUTHOR, path.name)
    else:
        log.warning("the demo's CSV batch was not imported", problems=checked.problems)


class _Server:
    """An ASGI app under uvicorn in a thread (signals stay with the main thread)."""

    def __init__(self, app: Any, port: int, name: str):
        config = uvicorn.Config(app, host=HOST, port=port, log_level="warning", lifespan="off",
                                timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=name, daemon=True)
        self.port, self.name = port, name

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError([f"the {self.name} could not listen on {HOST}:{self.port}"])
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()


class Demo:
    def __init__(self, port: int = 8000, data_dir: Path = Path("demo-data"), reset: bool = False):
        self.port, self.data_dir, self.reset = port, Path(data_dir), reset
        self.slack = SlackEmulator(signing_secret=data.SIGNING_SECRET, bot_token=data.BOT_TOKEN,
                                   team_id="T0NOTTSCC", team_domain="nottscc",
                                   team_name="Nottinghamshire County Council")
        self.stage = load_stage()
        self.others = OtherNetworks()
        self.saver = Saver(self.slack, self.stage, self.data_dir)
        self.resumed = False
        self._servers: list[_Server] = []
        self._background: Background | None = None
        self.built: Bot | None = None
        self._stop_saving = threading.Event()
        self._saver_thread: threading.Thread | None = None
        self._seed_thread: threading.Thread | None = None
        self.world: World | None = None
        self.rt: Runtime | None = None
        self.bolt: Any = None
        self._loaded = False  # only a loaded (or seeded) world is ever saved
        self._lock_file: Any = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def _settings(self) -> Settings:
        path = self.data_dir / "commsdesk.toml"
        path.write_text(config_toml(self.others.accounts()), encoding="utf-8")
        config = read_config_file(path)
        env = Environment(
            slack_bot_token=data.BOT_TOKEN, slack_signing_secret=data.SIGNING_SECRET,
            slack_app_token=None, slack_api_url=self.slack.api_url,
            database_url=f"sqlite:///{(self.data_dir / 'commsdesk.db').resolve()}",
            commsdesk_audit_key=self._audit_key(),
            **self.stage.env(),
            **self.others.env(),
        )
        creds = self.stage.credentials(data.ACCOUNTS)
        return Settings(config=config, env=env, config_path=path,
                        credentials={**creds, **self.others.credentials()})

    def _audit_key(self) -> str:
        """The demo's own audit key, made on first use and kept with its data (so a
        restarted demo's trail still verifies), never a key shared with anything else."""
        path = self.data_dir / "audit.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(new_key() + "\n", encoding="utf-8")
            path.chmod(0o600)
        return path.read_text(encoding="utf-8").strip()

    def start(self) -> Demo:
        if not port_free(self.port):
            raise ConfigError([f"port {self.port} is already in use: stop what uses it, "
                               "or choose another with --port"])
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_data_dir()
        if self.reset:
            wipe(self.data_dir)
        self.resumed = self.saver.restore()
        if not self.resumed:
            seed_slack(self.slack)
            seed_stage(self.stage)
        else:
            top_up(self.slack, self.stage)
        self._loaded = True
        self.slack.start()
        self.stage.start()
        self.others.start(seed_mentions=not self.resumed)
        self.stage.register(data.ACCOUNTS)
        settings = self._settings()
        logs.add_secrets(settings.secrets())
        # the bot, exactly as `serve` runs it: migrations, Bolt over HTTP, the scheduler
        try:
            built = self.built = build(settings)
        except db.DatabaseError as exc:
            raise db.DatabaseError(f"{exc} (the demo data in {self.data_dir}/ cannot be "
                                   "resumed: start afresh with `commsdesk demo --reset`)") from None
        rt, self.rt, self.bolt = built.rt, built.rt, built.bolt
        bot = _Server(built.asgi, _free_port(), "bot")
        bot.start()
        self._servers.append(bot)
        self.slack.bot_events_url = f"http://{HOST}:{bot.port}/slack/events"
        self.others.deliver_webhooks(f"http://{HOST}:{bot.port}")
        self._background = built.start_background()  # first poll of every account at once
        self.world = World(self.slack, self.stage, rt)
        page = _Server(build_app(self.world, self.port), self.port, "demo page")
        page.start()
        self._servers.append(page)
        self._saver_thread = threading.Thread(target=self._save_loop, name="demo-saver",
                                              daemon=True)
        self._saver_thread.start()
        # after the page is up: it imports each network's code (seconds on a busy machine)
        self._seed_thread = threading.Thread(target=self._seed_plans, name="demo-seed",
                                             daemon=True)
        self._seed_thread.start()
        return self

    def _seed_plans(self) -> None:
        try:
            assert self.rt is not None
            seed_plans(self.rt, self.data_dir,
                       data.campaign_command(self.others.campaign_accounts()))
        except Exception as exc:  # the demo runs on without them
            logs.get("commsdesk.demo").warning("could not seed the demo's plans",
                                               error=str(exc))

    def _lock_data_dir(self) -> None:
        """One demo per data folder: two would overwrite each other's state."""
        self._lock_file = open(self.data_dir / ".lock", "w")  # noqa: SIM115 - held until stop
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            self._lock_file = None
            raise ConfigError([f"another `commsdesk demo` is using {self.data_dir}/: stop it "
                               "first, or give this one another folder with --data"]) from None

    def _save_loop(self) -> None:
        while not self._stop_saving.wait(1.0):
            try:
                self.saver.save()
            except Exception as exc:  # keep the demo running; the exit save tries again
                logs.get("commsdesk.demo").warning("could not save demo state", error=str(exc))

    @property
    def healthy(self) -> bool:
        return all(s.alive for s in self._servers)

    def stop(self) -> None:
        for server in reversed(self._servers):  # the page first, then the bot's endpoint
            server.stop()
        if self._seed_thread is not None:
            self._seed_thread.join(timeout=30)
        if self.world is not None:
            self.world.stop()
        rt = self.rt
        if self.built is not None:
            self.built.stop()  # background, Bolt's listeners, a publish in flight
        self._stop_saving.set()
        if self._saver_thread is not None:
            self._saver_thread.join(timeout=5)
        if self._loaded:
            self.saver.save()
        self.slack.stop()
        self.stage.stop()
        self.others.stop()
        if rt is not None:
            rt.engine.dispose()
        if self._lock_file is not None:
            self._lock_file.close()  # releases the lock
            self._lock_file = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def run_demo(port: int = 8000, reset: bool = False, data_dir: Path = Path("demo-data")) -> None:
    """Start everything, print the page's URL, run until Ctrl-C or SIGTERM, stop cleanly."""
    logs.configure(os.environ.get("COMMSDESK_LOG_LEVEL", "WARNING"),
                   os.environ.get("COMMSDESK_LOG_FORMAT", "console"))
    stop = threading.Event()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    demo = Demo(port=port, data_dir=data_dir, reset=reset)
    try:
        demo.start()
    except BaseException:
        demo.stop()
        _restore(previous)
        raise
    try:
        state = "resumed from" if demo.resumed else "new demo data in"
        print(f"commsdesk demo: open {demo.url} in your browser", flush=True)
        print(f"  {state} {data_dir}/ · Slack emulator {demo.slack.root_url} · "
              f"{registry.label(data.STAGE)} emulator {demo.stage.root_url} · "
              f"bot {demo.slack.bot_events_url}", flush=True)
        print("  Ctrl-C stops it; `commsdesk demo --reset` starts afresh.", flush=True)
        print("  A local demo (anyone on the page acts as anyone): it answers only at "
              "127.0.0.1/localhost; never expose it.", flush=True)
        while not stop.wait(0.5):
            if not demo.healthy:
                print("commsdesk demo: a server stopped unexpectedly; shutting down", flush=True)
                break
    finally:
        print("commsdesk demo: stopping…", flush=True)
        demo.stop()
        _restore(previous)
        print("commsdesk demo: stopped; state saved", flush=True)


def _restore(handlers: dict[int, Any]) -> None:
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
