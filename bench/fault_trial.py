"""Fault trials: randomized episodes of the core loop under injected faults and SIGKILLs.

    python -m bench.fault_trial --episodes 1000 --seed 12345 [--db sqlite|postgresql] [--jobs 2]

Each episode (reproducible from its own seed, printed with any violation):

1. a fresh database (a SQLite file in a temp dir, or a fresh PostgreSQL schema) and
   fresh Slack and X emulators;
2. **ingest**: a few random mentions (some matching several services), random faults
   queued on X ``mentions`` and Slack ``chat.postMessage`` (429 with reset, 500/503,
   timeouts, dropped connections, malformed JSON, ``ok:false``), and a bot that may be
   SIGKILLed at ``poll:after_store`` or ``outbox:after_send``; after a kill it is restarted
   with no faults and its clock moved past the leases, until the loop settles;
3. **publishing**: drafts made with ``/social post`` and decided by emoji through the Slack
   side (approvals, rejections, refusals by a non-approver and by the author, duplicate
   and retried deliveries) under faults on X ``create_tweet``/``timeline`` and Slack, with
   a SIGKILL at ``publish:before_network``, ``publish:after_network`` or
   ``outbox:after_send``; restart, settle;
4. the invariants: every mention stored once and alerted exactly once per routed channel
   (in the database and in Slack), no outbox row delivered twice, every approved draft
   published exactly once, nothing published without a valid approval, audit verify.

The bot runs as a real child process (multiprocessing ``forkserver``, so it starts from a
single-threaded, already-imported parent in ~0.2 s instead of ~1.5 s for ``commsdesk
serve``). It builds its own Runtime and engine and runs the code paths ``serve`` runs:
migrations, ``sync_accounts``, the Bolt app over HTTP (``build_asgi`` + uvicorn, signed
requests), ``poll_account`` in a polling thread, ``Outbox.step`` in an outbox thread and
``Publisher.sweep`` in a sweep thread, with ``COMMSDESK_FAULT_KILL_AT`` in its environment.
Only the schedule is faster (polls and sweeps every 0.5 s, Slack pacing 0.01 s)
and the HTTP client timeouts are 1 s, so that "slow" faults become real timeouts quickly.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import uvicorn

# the bot's modules are imported here so that the forkserver holds them and each bot
# process starts without importing anything
import handlers  # noqa: F401

# the network trial's publisher processes are forked from this module's forkserver too
from bench import fault_trial_networks
from bot import clock, db
from bot.app import build_bolt_app
from bot.asgi import build_asgi
from bot.bootstrap import build, build_runtime
from bot.config import Environment, Settings, parse_config
from bot.domain.routing import MentionFacts, Router
from bot.emulators.http import Inflight
from bot.emulators.slack import SlackEmulator
from bot.models import (
    Account,
    Alert,
    Approval,
    AuditEvent,
    Draft,
    Mention,
    OutboxMessage,
    PollCursor,
)
from bot.serve import single_process_lock
from bot.services import audit
from bot.services import outbox as outbox_mod
from bot.services import publishing as _publishing  # noqa: F401
from bot.services.polling import poll_account
from integrations.x.emulator import XEmulator
from integrations.x.transport import BaseURLAdapter

PG_ADMIN_URL = os.environ.get(
    "COMMSDESK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SIGNING_SECRET = "trial-signing-secret"
BOT_TOKEN = "xoxb-trial-token"
WENDY, CARA, COLIN, ROGUE = "U0WASTE", "U0COMMS1", "U0COMMS2", "U0ROGUE"
APPROVERS = {CARA, COLIN}
CHANNELS = ["C0APPROVALS", "C0COMMS", "C0WASTE", "C0HIGHWAYS", "C0LIBRARIES", "C0VIP"]
CLIENT_TIMEOUT = 1.0  # the bot's HTTP timeouts in trials; "slow" faults exceed it
SLOW = 1.3
SETTLE_TIMEOUT = 60.0
OUTBOX_METADATA = "commsdesk_outbox"

CONFIG: dict[str, Any] = {
    "timezone": "Europe/London",
    "poll_interval_seconds": 60,
    "slack": {"approvals_channel": "C0APPROVALS", "default_channel": "C0COMMS",
              "approvers_usergroup": "S0COMMS"},
    "accounts": [
        {"name": "nottscc", "network": "x", "handle": "NottsCC", "user_id": "1111",
         "credentials": "NOTTSCC"},
        {"name": "nottslibraries", "network": "x", "handle": "NottsLibraries",
         "user_id": "2222", "credentials": "LIBRARIES"},
    ],
    "services": [
        {"name": "waste", "channel": "C0WASTE", "keywords": ["bin", "bins", "recycling", "tip"]},
        {"name": "highways", "channel": "C0HIGHWAYS",
         "keywords": ["pothole", "potholes", "gritting"]},
        {"name": "libraries", "channel": "C0LIBRARIES", "keywords": ["library"],
         "accounts": ["nottslibraries"]},
        {"name": "vip", "channel": "C0VIP", "keywords": ["mayor"], "authors": ["councillorjo"]},
    ],
}
ACCOUNT_IDS = {"nottscc": "1111", "nottslibraries": "2222"}
TOPICS = ["bin", "pothole", "library", "mayor", "recycling", "gritting"]
AUTHORS = ["jane", "bob", "councillorjo", "resident42", "ann_b"]


def make_settings(database_url: str, slack_api_url: str, x_api_base_url: str) -> Settings:
    cfg = parse_config(CONFIG)
    env = Environment(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                      slack_app_token=None, slack_api_url=slack_api_url,
                      x_api_base_url=x_api_base_url, database_url=database_url)
    creds = {("x", a.credentials): {
        "consumer_key": f"ck-{a.credentials.lower()}",
        "consumer_secret": f"cs-{a.credentials.lower()}-secret",
        "access_token": f"{a.user_id}-at-{a.credentials.lower()}",
        "access_token_secret": f"ats-{a.credentials.lower()}-secret"} for a in cfg.accounts}
    return Settings(config=cfg, env=env, config_path=Path("commsdesk.toml"), credentials=creds)


# ---------------------------------------------------------------------------- the bot child


def bot_main(spec: dict[str, Any], port_box: Any) -> None:
    """A bot process: what `serve` runs, on a fast schedule. Runs until killed."""
    os.environ.pop("COMMSDESK_FAULT_KILL_AT", None)
    if spec.get("kill_at"):
        os.environ["COMMSDESK_FAULT_KILL_AT"] = spec["kill_at"]
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    # Slack pacing (COMMSDESK_SLACK_POST_INTERVAL) is for real workspaces, not emulators
    outbox_mod.CHANNEL_INTERVAL = 0.01
    clock.shift(timedelta(seconds=spec["offset"]))
    settings = make_settings(spec["database_url"], spec["slack_api_url"], spec["x_api_url"])
    # the bot as `serve` builds it (bot/bootstrap.py); this loop stands in for the scheduler
    built = build(settings, before_migrate=single_process_lock)  # SQLite: one process
    rt = built.rt
    rt.slack.timeout = CLIENT_TIMEOUT
    rt.outbox_slack.timeout = CLIENT_TIMEOUT
    for acc in settings.config.accounts:
        network: Any = rt.network(acc.name)
        for adapter in network.client.session.adapters.values():
            if isinstance(adapter, BaseURLAdapter):
                adapter.timeout = CLIENT_TIMEOUT
    server = uvicorn.Server(uvicorn.Config(built.asgi, host="127.0.0.1", port=0,
                                           log_level="critical", lifespan="off"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # our own free port: no race with other episodes
    port_box.value = sock.getsockname()[1]
    owner = f"trial-{os.getpid()}"

    def forever(fn: Callable[[], Any], pause: float) -> None:
        while True:
            try:
                fn()
            except Exception:  # the loop goes on, as APScheduler's jobs do
                traceback.print_exc()
            time.sleep(pause)

    def poll() -> None:
        for acc in settings.config.accounts:
            poll_account(rt, acc.name, owner)

    box = outbox_mod.Outbox(rt, owner)

    def drain() -> None:
        if box.step() == 0:
            rt.outbox_wakeup.wait(0.1)
            rt.outbox_wakeup.clear()

    forkserver = os.getppid()

    def orphaned() -> None:  # the trial went away: so does its bot
        if os.getppid() != forkserver:
            os._exit(0)

    for fn, pause in ((poll, 0.5), (drain, 0.0), (rt.publisher.sweep, 0.5), (orphaned, 1.0)):
        threading.Thread(target=forever, args=(fn, pause), daemon=True).start()
    server.run(sockets=[sock])
    os._exit(0)


_CTX: Any = None


def _context() -> Any:
    global _CTX
    if _CTX is None:
        _CTX = mp.get_context("forkserver")
        _CTX.set_forkserver_preload(["bench.fault_trial"])
        os.environ["COMMSDESK_FAULT_TRIAL_FORKSERVER"] = "1"  # inherited by the forkserver
        try:
            _CTX.Process(target=time.sleep, args=(0,)).start()  # starts the forkserver now
        finally:
            del os.environ["COMMSDESK_FAULT_TRIAL_FORKSERVER"]
    return _CTX


def _warm_up() -> None:
    """Import everything a bot process imports lazily (handlers, networks, renderers,
    uvicorn's protocols), so that each process forked from the forkserver starts at once."""
    settings = make_settings("sqlite://", "http://127.0.0.1:9/api/", "http://127.0.0.1:9")
    rt = build_runtime(settings)  # imports only: no database to migrate here
    asgi = build_asgi(rt, build_bolt_app(rt))
    for acc in settings.config.accounts:
        rt.network(acc.name)
    outbox_mod.Outbox(rt)
    config = uvicorn.Config(asgi, lifespan="off")
    config.load()
    rt.engine.dispose()


if os.environ.pop("COMMSDESK_FAULT_TRIAL_FORKSERVER", None):  # the forkserver, once
    _warm_up()


# ---------------------------------------------------------------------------- databases


class Databases:
    """Fresh databases per episode: a migrated SQLite template copied, or a new PG schema."""

    def __init__(self, kind: str, workdir: Path):
        self.kind = kind
        self.workdir = workdir
        self._template: Path | None = None
        self._lock = threading.Lock()
        self._admin: sa.Engine | None = None

    def template(self) -> Path:
        with self._lock:
            if self._template is None:
                path = self.workdir / "template.db"
                eng = db.make_engine(f"sqlite:///{path}")
                db.upgrade(eng)
                eng.dispose()  # the last connection closing folds the WAL into the file
                self._template = path
            return self._template

    def create(self, tmp: Path) -> tuple[str, Callable[[], None]]:
        if self.kind == "sqlite":
            path = tmp / "commsdesk.db"
            shutil.copyfile(self.template(), path)
            return f"sqlite:///{path}", lambda: None
        with self._lock:
            if self._admin is None:
                self._admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        schema = f"ft_{uuid.uuid4().hex[:12]}"
        with self._admin.connect() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
        eng = db.make_engine(url)
        with self._lock:  # alembic's context is process-global: one migration at a time
            db.upgrade(eng)
        eng.dispose()

        def drop() -> None:
            assert self._admin is not None
            with self._admin.connect() as conn:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))

        return url, drop

    def close(self) -> None:
        if self._admin is not None:
            self._admin.dispose()


def pg_available() -> bool:
    try:
        eng = sa.create_engine(PG_ADMIN_URL)
        with eng.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        eng.dispose()
        return True
    except Exception:
        return False


# ---------------------------------------------------------------------------- an episode


class Unsettled(Exception):
    pass


def _count_inflight(emulator: Any) -> Inflight:
    """How many requests the (started) emulator is still answering, and for how long it has
    answered none: kept by the emulator's server itself (:class:`Inflight`), from the
    moment it accepts a connection until the request's thread is done, so a request that
    came and went between two looks of a busy trial loop is not missed."""
    inflight: Inflight = emulator.inflight
    return inflight


@dataclass
class EpisodeResult:
    seed: int
    db: str
    kills: int = 0
    starts: int = 0
    faults: int = 0
    mentions: int = 0
    drafts: int = 0
    approved: int = 0
    redeliveries: int = 0
    kill_points: list[str] = field(default_factory=list)
    other_exits: list[int] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    elapsed: float = 0.0


class Episode:
    def __init__(self, seed: int, dbs: Databases, *, slack_malformed: bool = False):
        self.seed = seed
        self.slack_malformed = slack_malformed
        self.rng = random.Random(seed)
        self.dbs = dbs
        self.result = EpisodeResult(seed, dbs.kind)
        self.proc: Any = None
        self.port = 0
        self.offset = 0.0
        self.faults_queued = 0

    # ------------------------------------------------------------ lifecycle

    def run(self) -> EpisodeResult:
        started = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix="fault-trial-"))
        self.slack = SlackEmulator(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
        self.x = XEmulator()
        drop: Callable[[], None] = lambda: None  # noqa: E731
        self.engine: sa.Engine | None = None
        try:
            self.database_url, drop = self.dbs.create(tmp)
            self._start_emulators()
            self.engine = db.make_engine(self.database_url)
            self.sessions = db.make_sessionmaker(self.engine)
            self._ingest_phase()
            self._publish_phase()
            self._stop_bot()
            self._check_invariants()
        except Unsettled as exc:
            self.result.violations.append(f"did not settle: {exc}")
        except Exception as exc:
            self.result.violations.append(f"harness error: {type(exc).__name__}: {exc}\n"
                                          + traceback.format_exc())
        finally:
            self._stop_bot()
            self.result.faults = self.faults_queued - len(self.slack.faults.pending()) - len(
                self.x.faults.pending())
            self.slack.stop()
            self.x.stop()
            if self.engine is not None:
                self.engine.dispose()
            with contextlib.suppress(Exception):
                drop()
            shutil.rmtree(tmp, ignore_errors=True)
        self.result.elapsed = time.monotonic() - started
        return self.result

    def _start_emulators(self) -> None:
        self.slack.start()
        self.x.start()
        self.slack_inflight = _count_inflight(self.slack)
        self.x_inflight = _count_inflight(self.x)
        for cid in CHANNELS:
            self.slack.add_channel(cid, cid.lower())
        for uid in (WENDY, CARA, COLIN, ROGUE):
            self.slack.add_user(uid, uid.lower())
        self.slack.add_usergroup("S0COMMS", "comms", [CARA, COLIN])
        self.slack.client_timeout = 5.0
        self.x.add_user("1111", "NottsCC")
        self.x.add_user("2222", "NottsLibraries")
        self.x.register_credentials("1111", access_token="1111-at-nottscc")
        self.x.register_credentials("2222", access_token="2222-at-libraries")
        self.x.duplicate_window_s = 0  # a second identical post would be created, and seen

    def _start_bot(self, kill_at: str | None) -> None:
        if self.result.starts:
            self._leases_run_out()  # restarted "later": the dead process's leases ran out
        self.result.starts += 1
        self.port = 0
        self.port_box = _context().Value("i", 0)
        spec = {"database_url": self.database_url, "slack_api_url": self.slack.api_url,
                "x_api_url": self.x.root_url, "offset": self.offset,
                "kill_at": kill_at}
        if kill_at:
            self.result.kill_points.append(kill_at)
        self.proc = _context().Process(target=bot_main, args=(spec, self.port_box),
                                       daemon=True)
        self.proc.start()

    def _leases_run_out(self) -> None:
        """Time passes between a crash and the restart: every lease the dead process held
        (outbox rows 60 s, poll cursors 10 min, publishing 5 min) runs out.

        The trial moves the leases into the past rather than the new process's clock into
        the future: the bot compares its clock with Slack's and X's (the outbox looks for
        its own post from `created_at - 60 s`, the publisher on the timeline from the first
        attempt - 2 min), and the emulators keep real time, so a clock moved by more than
        those margins would make the bot miss what it did and post again, a skew a real
        deployment (NTP) does not have."""
        past = datetime.now(UTC) - timedelta(seconds=1)
        with db.transaction(self.sessions) as s:
            for model in (OutboxMessage, PollCursor, Draft):
                s.execute(sa.update(model).where(model.lease_until.is_not(None))
                          .values(lease_until=past))

    def _fast_forward(self) -> None:
        """Let the outbox's retry back-off (2, 4, 8 ... s) pass at once: what the bot would
        do after waiting, sooner. Only while no request is in flight, so a post that timed
        out but is still being made cannot be overtaken by its own retry."""
        if self.slack_inflight() or self.x_inflight():
            return
        t = datetime.now(UTC)
        with db.transaction(self.sessions) as s:
            s.execute(sa.update(OutboxMessage)
                      .where(OutboxMessage.status.in_(("pending", "blocked")),
                             OutboxMessage.not_before > t)
                      .values(not_before=t))
            # a publish waiting for a rate limit or for a lost answer to show: due now
            s.execute(sa.update(Draft).where(Draft.state == "approved", Draft.retry_at > t)
                      .values(retry_at=t))

    def _stop_bot(self) -> None:
        if self.proc is not None:
            if self.proc.exitcode is None:
                self.proc.terminate()
                self.proc.join(10)
                if self.proc.exitcode is None:
                    self.proc.kill()
                    self.proc.join(10)
            self.proc.close()
            self.proc = None

    def _alive(self) -> bool:
        return self.proc is not None and self.proc.exitcode is None

    def _after_death(self) -> None:
        """The bot died (SIGKILL): wait for requests it left in flight, then restart it
        with no faults and no kill point."""
        code = self.proc.exitcode
        if code == -signal.SIGKILL:
            self.result.kills += 1
        else:  # not a kill point: recorded and reported, then handled like any crash
            self.result.other_exits.append(code)
        self.proc.close()
        self.proc = None
        deadline = time.monotonic() + 5
        while (self.slack_inflight() or self.x_inflight()) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.slack.faults.clear()
        self.x.faults.clear()
        self._start_bot(None)
        self._ready()

    def _ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._alive():
                self._after_death()
                continue
            if not self.port:
                self.port = self.port_box.value
                if not self.port:
                    time.sleep(0.02)
                    continue
                self.slack.bot_events_url = f"http://127.0.0.1:{self.port}/slack/events"
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz",
                             timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        raise Unsettled("bot never became ready")

    def _wait(self, what: str, predicate: Callable[[], bool],
              timeout: float = SETTLE_TIMEOUT, on_slow: Callable[[], None] | None = None,
              stable: int = 2) -> None:
        """Wait for `predicate` (true `stable` times in a row), restarting a killed bot."""
        deadline = time.monotonic() + timeout
        nudge_at = time.monotonic() + 4
        hits = 0
        while time.monotonic() < deadline:
            if not self._alive():
                self._after_death()
                hits = 0
            if predicate():
                hits += 1
                if hits >= stable:
                    return
                time.sleep(0.1)
                continue
            hits = 0
            self._fast_forward()
            if on_slow is not None and time.monotonic() > nudge_at:
                on_slow()
                nudge_at = time.monotonic() + 4
            time.sleep(0.1)
        raise Unsettled(f"{what} (after {timeout:.0f}s); {self._snapshot()}")

    def _snapshot(self) -> str:
        with self.sessions() as s:
            drafts = s.execute(sa.select(Draft.id, Draft.state, Draft.last_error)).all()
            rows = s.execute(sa.select(OutboxMessage.id, OutboxMessage.op, OutboxMessage.status,
                                       OutboxMessage.last_error)
                             .where(OutboxMessage.status != "sent")).all()
            n = s.scalar(sa.select(sa.func.count()).select_from(Mention))
        return f"mentions={n} drafts={drafts} unsent outbox={rows}"

    # ------------------------------------------------------------ faults

    def _queue(self, emulator: Any, key: str, kind: str, **kw: Any) -> None:
        emulator.inject(key, kind, 1, **kw)
        self.faults_queued += 1

    def _slack_faults(self, methods: list[str], n: int) -> None:
        kinds = ["429", "500", "503", "drop", "error", "slow"]
        if self.slack_malformed:
            # off by default: the outbox lets this escape (JSONDecodeError from slack_sdk is
            # neither SlackClientError nor OSError), so the row waits out its 60 s lease
            kinds.append("malformed")
        for _ in range(n):
            kind = self.rng.choice(kinds)
            method = self.rng.choice(methods)
            if kind == "429":
                self._queue(self.slack, method, "429", retry_after=1)
            elif kind == "error":
                self._queue(self.slack, method, "error",
                            error=self.rng.choice(["internal_error", "fatal_error",
                                                   "service_unavailable"]))
            elif kind == "slow":
                self._queue(self.slack, method, "slow", delay=SLOW)  # past the client timeout
            else:
                self._queue(self.slack, method, kind)

    def _x_faults(self, endpoint: str, n: int) -> None:
        for _ in range(n):
            kinds = ["429", "500", "503", "drop", "malformed", "slow"]
            if endpoint == "create_tweet":
                kinds.append("drop_after_commit")  # posted, but the answer is lost
            kind = self.rng.choice(kinds)
            if kind == "429":
                self._queue(self.x, endpoint, "429", reset_in=1)
            elif kind == "slow":
                # reads time out; a post is only slowed (a post still being made when the
                # bot looks for it is a race no client can win, not a fault of the bot)
                self._queue(self.x, endpoint, "slow",
                            delay=0.3 if endpoint == "create_tweet" else SLOW)
            else:
                self._queue(self.x, endpoint, kind)

    # ------------------------------------------------------------ phases

    def _ingest_phase(self) -> None:
        rng = self.rng
        n = rng.randint(2, 6)
        for i in range(n):
            account = rng.choice(["1111", "1111", "2222"])
            topics = rng.sample(TOPICS, rng.choice([0, 1, 1, 2, 3]))
            text = " ".join([*topics, f"question {self.seed}-{i}"])
            self.x.add_mention(account, rng.choice(AUTHORS), text)
        self.result.mentions = n
        self._x_faults("mentions", rng.randint(0, 3))
        self._slack_faults(["chat.postMessage"], rng.randint(0, 3))
        kill = rng.choice([None, "poll:after_store", "outbox:after_send", "outbox:after_send"])
        if kill == "poll:after_store":
            kill += f"@{rng.randint(1, 2)}"
        elif kill == "outbox:after_send":
            kill += f"@{rng.randint(1, n)}"
        self._start_bot(kill)

        def settled() -> bool:
            with self.sessions() as s:
                stored = s.scalar(sa.select(sa.func.count()).select_from(Mention))
                unsent = s.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)
                                  .where(OutboxMessage.status.in_(("pending", "blocked"))))
            return stored == n and unsent == 0

        self._wait("ingest", settled)

    def _publish_phase(self) -> None:
        rng = self.rng
        # the ingest bot stops; the next one may die around publishing
        self._stop_bot()
        kill = rng.choice([None, "publish:before_network", "publish:after_network",
                           "publish:after_network", "outbox:after_send"])
        if kill is not None:
            kill += f"@{rng.randint(1, 2)}"
        # X faults on posting and on the reconciling timeline read: at most three, so four
        # publish attempts always get through; Slack faults on posts and updates
        budget = rng.randint(0, 3)
        create = rng.randint(0, budget)
        self._x_faults("create_tweet", create)
        self._x_faults("timeline", budget - create)
        self._slack_faults(["chat.postMessage", "chat.update"], rng.randint(0, 3))
        self._start_bot(kill)
        self._ready()
        nd = rng.randint(1, 3)
        self.result.drafts = nd
        texts = {f"Trial update {self.seed} number {j}" for j in range(nd)}
        for text in sorted(texts):
            self._command(text)

        def drafts_posted() -> bool:
            with self.sessions() as s:
                rows = s.execute(sa.select(Draft.text, Draft.approval_ts)).all()
            have = {t for t, ts in rows if ts}
            missing = texts - {t for t, _ in rows}
            for text in missing:  # the command was lost with a killed bot: type it again
                if self._alive():
                    self._command(text)
            return have == texts

        self._wait("approval messages", drafts_posted)
        with self.sessions() as s:
            drafts = s.execute(sa.select(Draft.id, Draft.approval_ts)
                               .order_by(Draft.id)).all()
        self.intended: dict[int, str] = {}
        for draft_id, ts in drafts:
            plan = rng.choices(["approve", "reject", "leave", "rogue"], [7, 1, 1, 1])[0]
            self.intended[draft_id] = plan
            if rng.random() < 0.2:  # the author tries to approve their own draft
                self._react(WENDY, ts, "white_check_mark")
            if plan == "rogue":
                self._react(ROGUE, ts, "white_check_mark")
            elif plan == "reject":
                self._react(rng.choice(sorted(APPROVERS)), ts, "x")
            elif plan == "approve":
                first, second = rng.sample(sorted(APPROVERS), 2)
                self._react(first, ts, "white_check_mark", retries=rng.choice([0, 0, 1, 2]))
                if rng.random() < 0.3:  # a second approver, too late to matter
                    self._react(second, ts, "white_check_mark")
        self.result.approved = sum(1 for p in self.intended.values() if p == "approve")

        def published() -> bool:
            with self.sessions() as s:
                states = dict(s.execute(sa.select(Draft.id, Draft.state)).all())
                unsent = s.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)
                                  .where(OutboxMessage.status.in_(("pending", "blocked"))))
            done = all(states[d] in ("published", "failed") for d, p in self.intended.items()
                       if p == "approve")
            busy = any(st in ("approved", "publishing") for st in states.values())
            return done and not busy and unsent == 0

        def redeliver() -> None:
            """An approval whose delivery died with the bot: the approver reacts again
            (a new event), as a person would when nothing happened."""
            with self.sessions() as s:
                pending = s.execute(sa.select(Draft.id, Draft.approval_ts)
                                    .where(Draft.state == "pending")).all()
            for draft_id, ts in pending:
                if self.intended.get(draft_id) == "approve" and self._alive():
                    self.result.redeliveries += 1
                    self._send_reaction(rng.choice(sorted(APPROVERS)), ts, "white_check_mark")

        self._wait("publishing", published, on_slow=redeliver, stable=3)

    # ------------------------------------------------------------ the Slack side

    def _command(self, text: str) -> None:
        with contextlib.suppress(httpx.HTTPError):  # the bot died under it: typed again
            self.slack.send_command(WENDY, "C0WASTE", f"post nottscc {text}")

    def _send_reaction(self, user: str, ts: str, name: str, event_id: str | None = None,
                       retry_num: int | None = None) -> str:
        event = {"type": "reaction_added", "user": user, "reaction": name,
                 "item": {"type": "message", "channel": "C0APPROVALS", "ts": ts},
                 "item_user": "U0BOT"}
        event_id = event_id or f"Ev{uuid.uuid4().hex[:10].upper()}"
        with contextlib.suppress(httpx.HTTPError):
            self.slack.send_event(event, event_id=event_id, retry_num=retry_num)
        return event_id

    def _react(self, user: str, ts: str, name: str, retries: int = 0) -> None:
        with contextlib.suppress(ValueError, LookupError, httpx.HTTPError):
            self.slack.add_reaction(user, "C0APPROVALS", ts, name)
        event_id = self.slack.last_event_id
        for n in range(1, retries + 1):  # Slack retrying the same event (same event_id)
            time.sleep(self.rng.choice([0.0, 0.05, 0.3]))
            self._send_reaction(user, ts, name, event_id=event_id, retry_num=n)

    # ------------------------------------------------------------ invariants

    def _violation(self, text: str) -> None:
        self.result.violations.append(text)

    def _check_invariants(self) -> None:
        router = Router(parse_config(CONFIG))
        with self.sessions() as s:
            accounts = {a.id: a.name for a in s.scalars(sa.select(Account))}
            mentions = list(s.scalars(sa.select(Mention)))
            alerts = list(s.scalars(sa.select(Alert)))
            rows = {r.id: r for r in s.scalars(sa.select(OutboxMessage))}
            drafts = list(s.scalars(sa.select(Draft)))
            approvals = list(s.scalars(sa.select(Approval)))
            approved_audit = Counter(int(e.subject_id) for e in s.scalars(
                sa.select(AuditEvent).where(AuditEvent.action == "draft.approved")))
            verified = audit.verify(s)
        if not verified.ok:
            self._violation(f"audit verify failed at record {verified.bad_id}: "
                            f"{verified.reason}")
        # every mention on X stored once
        on_x = {t.id for t in self.x.tweets.values() if not t.via_api and t.mentions}
        stored = Counter(m.external_id for m in mentions)
        for ext in on_x - set(stored):
            self._violation(f"mention {ext} was never stored")
        for ext, k in stored.items():
            if k > 1:
                self._violation(f"mention {ext} stored {k} times")
        # alerted once per routed channel, in the database and in Slack
        per_alert: Counter[int] = Counter()
        per_row: Counter[int] = Counter()
        with self.slack._lock:
            posted = [(c, m) for c, msgs in self.slack._messages.items() for m in msgs]
        for channel, msg in posted:
            meta = msg.metadata or {}
            if meta.get("event_type") != OUTBOX_METADATA:
                continue
            row_id = (meta.get("event_payload") or {}).get("outbox_id")
            per_row[row_id] += 1
            row = rows.get(row_id)
            if row is not None and row.op == "post_alert" and row.alert_id is not None:
                if row.channel != channel:
                    self._violation(f"outbox row {row_id} posted in {channel}, not "
                                    f"{row.channel}")
                per_alert[row.alert_id] += 1
        for row_id, k in per_row.items():
            if k > 1:
                self._violation(f"outbox row {row_id} ({rows[row_id].op}) posted {k} times")
        by_mention: dict[int, list[Alert]] = {}
        for a in alerts:
            by_mention.setdefault(a.mention_id, []).append(a)
        for m in mentions:
            want = sorted(r.channel for r in router.route(
                MentionFacts(accounts[m.account_id], m.author_handle, m.text)))
            got = sorted(a.channel for a in by_mention.get(m.id, []))
            if got != want:
                self._violation(f"mention {m.external_id} ({m.text!r} by {m.author_handle}) "
                                f"alerted in {got}, routed to {want}")
            for a in by_mention.get(m.id, []):
                if per_alert[a.id] != 1:
                    self._violation(f"alert {a.id} for mention {m.external_id} appears "
                                    f"{per_alert[a.id]} times in {a.channel}")
        for row in rows.values():
            if row.status != "sent":
                self._violation(f"outbox row {row.id} ({row.op}) left {row.status}: "
                                f"{row.last_error}")
        # publishing: once per approved draft, never without a valid approval
        posts = Counter(p["text"] for p in self.x.posts_created() if not p.get("deleted"))
        valid: dict[int, bool] = {}
        for d in drafts:
            valid[d.id] = any(a.draft_id == d.id and a.decision == "approve"
                              and a.user_id in APPROVERS and a.user_id != d.author
                              and a.draft_version == d.version for a in approvals) \
                and approved_audit[d.id] >= 1
            n = posts.get(d.text, 0)
            plan = self.intended.get(d.id)
            if plan == "approve":
                if d.state != "published" or n != 1:
                    self._violation(f"approved draft D{d.id} is {d.state} with {n} post(s) "
                                    f"({d.last_error})")
            elif n or d.state == "published":
                self._violation(f"draft D{d.id} ({plan}) is {d.state} with {n} post(s)")
            if n and not valid[d.id]:
                self._violation(f"draft D{d.id} published without a valid approval")
        texts = {d.text for d in drafts}
        for text, n in posts.items():
            if text not in texts:
                self._violation(f"a post no draft asked for: {text!r} x{n}")


# ---------------------------------------------------------------------------- the trial


@dataclass
class Summary:
    seed: int
    db: str
    episodes: int = 0
    kills: int = 0
    starts: int = 0
    faults: int = 0
    redeliveries: int = 0
    violations: list[tuple[int, str]] = field(default_factory=list)
    kill_points: Counter[str] = field(default_factory=Counter)
    other_exits: list[tuple[int, int]] = field(default_factory=list)  # (episode seed, code)
    elapsed: float = 0.0
    slowest: float = 0.0

    def line(self) -> str:
        return (f"episodes={self.episodes} db={self.db} kills={self.kills} "
                f"bot_starts={self.starts} faults_injected={self.faults} "
                f"redeliveries={self.redeliveries} other_exits={len(self.other_exits)} "
                f"violations={len(self.violations)} "
                f"elapsed={self.elapsed:.1f}s slowest_episode={self.slowest:.1f}s")


def run_trial(episodes: int, seed: int, db_kind: str = "sqlite", jobs: int = 4,
              out: Callable[[str], None] = print, progress_every: int = 50,
              slack_malformed: bool = False) -> Summary:
    out(f"fault trial: seed={seed}")
    out(f"episodes={episodes} db={db_kind} jobs={jobs} slack_malformed={slack_malformed}")
    master = random.Random(seed)
    seeds = [master.randrange(2**32) for _ in range(episodes)]
    summary = Summary(seed, db_kind)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="fault-trial-"))
    dbs = Databases(db_kind, workdir)
    lock = threading.Lock()

    def one(ep_seed: int) -> None:
        res = Episode(ep_seed, dbs, slack_malformed=slack_malformed).run()
        with lock:
            summary.episodes += 1
            summary.kills += res.kills
            summary.starts += res.starts
            summary.faults += res.faults
            summary.redeliveries += res.redeliveries
            summary.kill_points.update(p.split("@")[0] for p in res.kill_points)
            for code in res.other_exits:
                summary.other_exits.append((ep_seed, code))
                out(f"note: episode seed={ep_seed}: a bot process exited with {code}")
            for v in res.violations:
                summary.violations.append((ep_seed, v))
                out(f"VIOLATION episode seed={ep_seed} db={db_kind}: {v}")
            summary.slowest = max(summary.slowest, res.elapsed)
            if summary.episodes % progress_every == 0 or summary.episodes == episodes:
                summary.elapsed = time.monotonic() - started
                out(f"  [{summary.episodes}/{episodes}] kills={summary.kills} "
                    f"faults={summary.faults} violations={len(summary.violations)} "
                    f"elapsed={summary.elapsed:.0f}s")

    try:
        _context()
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            list(pool.map(one, seeds))
    finally:
        dbs.close()
        shutil.rmtree(workdir, ignore_errors=True)
    summary.elapsed = time.monotonic() - started
    out(f"kill points armed: {dict(summary.kill_points)}")
    out("summary: " + summary.line())
    return summary


def run_episode(seed: int, db_kind: str = "sqlite", slack_malformed: bool = False
                ) -> EpisodeResult:
    """One episode by its seed (as printed with a violation), for reproducing it."""
    workdir = Path(tempfile.mkdtemp(prefix="fault-trial-"))
    dbs = Databases(db_kind, workdir)
    try:
        return Episode(seed, dbs, slack_malformed=slack_malformed).run()
    finally:
        dbs.close()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    p.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--jobs", type=int, default=4,
                   help="episodes run at once (they mostly wait on timers)")
    p.add_argument("--slack-malformed", action="store_true",
                   help="also answer Slack calls with malformed JSON (each costs a 60 s lease)")
    p.add_argument("--episode-seed", type=int, default=None,
                   help="run the one episode with this seed (as printed with a violation)")
    p.add_argument("--mode", choices=["loop", "networks"], default="loop",
                   help="loop: the whole loop on X through Slack (default); networks: "
                        "publishing on all six networks (bench/fault_trial_networks.py)")
    p.add_argument("--network", default=None,
                   help="networks mode: only this network (with --episode-seed: its network)")
    args = p.parse_args(argv)
    if args.db == "postgresql" and not pg_available():
        print(f"PostgreSQL not reachable at {PG_ADMIN_URL}", file=sys.stderr)
        return 2
    if args.mode == "networks":
        if args.episode_seed is not None:
            one = fault_trial_networks.run_network_episode(args.episode_seed,
                                                           args.network or "x", args.db)
            print(one)
            return 1 if one.violations else 0
        seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
        networks = (args.network,) if args.network else fault_trial_networks.NETWORKS
        net_summary = fault_trial_networks.run_network_trial(args.episodes, seed, args.db,
                                                             args.jobs, networks=networks)
        return 1 if net_summary.violations else 0
    if args.episode_seed is not None:
        res = run_episode(args.episode_seed, args.db, args.slack_malformed)
        print(res)
        return 1 if res.violations else 0
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    summary = run_trial(args.episodes, seed, args.db, args.jobs,
                        slack_malformed=args.slack_malformed)
    return 1 if summary.violations else 0


if __name__ == "__main__":
    # run through the imported module, so that the bot processes find `bot_main` in the
    # forkserver's copy of bench.fault_trial rather than in a re-imported __main__
    from bench.fault_trial import main as _main

    sys.exit(_main())
