"""Fault trials of publishing on all six networks (issue 15): `python -m bench.fault_trial
--mode networks`. Each episode, reproducible from its seed:

1. a fresh database and one network's emulator (X, Mastodon, Bluesky, Facebook, Flickr,
   Pinterest in turn; a post with an image where the network needs one);
2. 1-3 drafts made and approved through the state machine (draft_states.create / add_image / approve;
   the Slack side of approving is the main trial's), then faults queued on the call that
   makes a post and on the one the publisher looks with: the post made and its answer lost
   (`drop_after_commit`), an answer slower than the client's timeout (the post is made
   after the client gave up), dropped connections, 5xx, malformed answers, 429 with a
   short reset and 429 with a reset 10 minutes away;
3. publishers running as real processes (forkserver children, `Publisher.sweep` every
   0.2 s, heartbeat on): one on SQLite, two replicas on PostgreSQL, one of them maybe armed
   to SIGKILL itself at `publish:before_network`/`publish:after_network` or killed by the
   trial at a random moment; and, with a publish call in flight, the clock jumps past the
   lease (the trial moves `lease_until` into the past), so another sweep takes the claim
   over while the first worker's call may still land;
4. time passes for what waits (a `retry_at` of a rate limit or of a takeover settling is
   moved to now), but only while no request is in flight at the emulator, as real time
   would have let it land; a dead publisher is restarted (no faults) after its leases ran
   out;
5. the invariants: at most one post per draft on the network; a `published` draft has its
   post and one `draft.published` record; no draft recorded `failed` while its post is
   live; no draft lost (every approved draft ends published or failed, none left waiting).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import shutil
import signal
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

# imported here so that the forkserver holds them and publishers start without importing
import integrations.bluesky.network
import integrations.facebook.network
import integrations.flickr.network
import integrations.mastodon.network
import integrations.pinterest.network  # noqa: F401
from bench.net_kits import ALT, NETWORKS, PNG, Kit, make_kit
from bot import db
from bot.bootstrap import build_runtime
from bot.emulators.http import Inflight
from bot.models import Account, AuditEvent, Draft, PublishAttempt
from bot.serve import single_process_lock
from bot.services import draft_states
from bot.services.accounts import sync_accounts
from bot.services.draft_states import ApprovalPolicy

# trials write audit records (keyed chain): a key of their own unless one is set
os.environ.setdefault("COMMSDESK_AUDIT_KEY", "fault-trial-audit-key-0123456789abcdefghijklmnop")
CLIENT_TIMEOUT = 1.0
SLOW = 1.4  # past the client's timeout: the post is made after the client gave up
SETTLE_TIMEOUT = 90.0
QUIET = 2.0  # seconds without a request in flight before waits are fast-forwarded
AUTHOR, APPROVER = "U0WASTE", "U0COMMS1"


def _settings(spec: dict[str, Any]) -> Any:
    from bench.fault_trial import CONFIG, make_settings
    from bot.config import parse_config

    base = make_settings(spec["database_url"], "http://127.0.0.1:9/api/", spec["x_api_url"])
    config = dict(CONFIG)
    if spec.get("config_account"):
        config = {**CONFIG, "accounts": [*CONFIG["accounts"], spec["config_account"]]}
    env = base.env.model_copy(update=spec.get("env") or {})
    return dataclasses.replace(base, config=parse_config(config), env=env,
                               credentials={**base.credentials, **{
                                   tuple(k.split("|")): v for k, v in
                                   (spec.get("credentials") or {}).items()}})


def _fast_clients(net: Any) -> None:
    """The trial's short HTTP timeouts and waits on one network client."""
    from integrations.x.transport import BaseURLAdapter

    if hasattr(net, "client"):  # X (tweepy)
        for adapter in net.client.session.adapters.values():
            if isinstance(adapter, BaseURLAdapter):
                adapter.timeout = CLIENT_TIMEOUT
    if hasattr(net, "_http"):
        net._http.timeout = httpx.Timeout(CLIENT_TIMEOUT)
    if hasattr(net, "api"):  # Mastodon.py
        net.api.request_timeout = CLIENT_TIMEOUT
    if hasattr(net, "_timeout"):  # Flickr
        net._timeout = CLIENT_TIMEOUT
    net._sleep = lambda s: time.sleep(min(s, 0.1))


def publisher_main(spec: dict[str, Any], ready: Any) -> None:
    """A publisher process: `Publisher.sweep` every 0.2 s until killed."""
    os.environ.pop("COMMSDESK_FAULT_KILL_AT", None)
    if spec.get("kill_at"):
        os.environ["COMMSDESK_FAULT_KILL_AT"] = spec["kill_at"]
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    settings = _settings(spec)
    rt = build_runtime(settings)
    if spec["database_url"].startswith("sqlite"):
        single_process_lock(rt)  # as serve does: SQLite is one process at a time
    _fast_clients(rt.network(spec["account"]))
    pub = rt.publisher
    pub.owner = f"{spec['name']}-{os.getpid()}"
    pub._sleep = lambda s: time.sleep(min(s, 0.1))
    pub.tick = 0.2
    pub.renew_every = timedelta(seconds=2)
    forkserver = os.getppid()
    ready.value = 1
    while True:
        if os.getppid() != forkserver:  # the trial went away: so does its publisher
            os._exit(0)
        try:
            pub.sweep()
        except Exception:
            traceback.print_exc()
        time.sleep(0.2)


class Unsettled(Exception):
    pass


@dataclass
class NetEpisodeResult:
    seed: int
    db: str
    network: str
    kills: int = 0
    starts: int = 0
    faults: int = 0
    drafts: int = 0
    posts: int = 0
    jumps: int = 0
    takeovers: int = 0
    deferred: int = 0
    failed: int = 0
    kill_points: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    elapsed: float = 0.0


def _count_inflight(emulator: Any) -> Inflight:
    inflight: Inflight = emulator.inflight  # kept by the emulator's server
    return inflight


class NetEpisode:
    def __init__(self, seed: int, dbs: Any, network: str, context: Callable[[], Any]):
        self.seed = seed
        self.rng = random.Random(seed)
        self.dbs = dbs
        self.network = network
        self.ctx = context
        self.result = NetEpisodeResult(seed, dbs.kind, network)
        self.procs: dict[str, Any] = {}
        self.ready: dict[str, Any] = {}
        self.faults_queued = 0

    def run(self) -> NetEpisodeResult:
        started = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix="fault-trial-net-"))
        drop: Callable[[], None] = lambda: None  # noqa: E731
        self.engine: sa.Engine | None = None
        self.x: Any = None
        kit: Kit | None = None
        try:
            if self.network == "x":
                from integrations.x.emulator import XEmulator

                self.x = XEmulator()
                self.x.start()
                self.x.add_user("1111", "NottsCC")
                self.x.add_user("2222", "NottsLibraries")
                self.x.register_credentials("1111", access_token="1111-at-nottscc")
                self.x.register_credentials("2222", access_token="2222-at-libraries")
                self.x.duplicate_window_s = 0  # a second identical post would be made, and seen
            kit = make_kit(self.network, self.x)
            self.kit = kit
            self.inflight = _count_inflight(kit.emulator)
            self.database_url, drop = self.dbs.create(tmp)
            self.engine = db.make_engine(self.database_url)
            self.sessions = db.make_sessionmaker(self.engine)
            self._episode()
            self._stop_all()
            self._check()
        except Unsettled as exc:
            self.result.violations.append(f"did not settle: {exc}")
        except Exception as exc:
            self.result.violations.append(f"harness error: {type(exc).__name__}: {exc}\n"
                                          + traceback.format_exc())
        finally:
            self._stop_all()
            if kit is not None:
                self.result.faults = self.faults_queued - len(kit.emulator.faults.pending())
                kit.stop()
            if self.x is not None:
                self.x.stop()
            if self.engine is not None:
                self.engine.dispose()
            with contextlib.suppress(Exception):
                drop()
            shutil.rmtree(tmp, ignore_errors=True)
        self.result.elapsed = time.monotonic() - started
        return self.result

    # ------------------------------------------------------------ processes

    def _spec(self, name: str, kill_at: str | None) -> dict[str, Any]:
        kit = self.kit
        return {"database_url": self.database_url, "name": name, "kill_at": kill_at,
                "x_api_url": self.x.root_url if self.x is not None else "http://127.0.0.1:9",
                "account": kit.account, "config_account": kit.config_account,
                "credentials": {f"{k[0]}|{k[1]}": v for k, v in kit.credentials.items()},
                "env": kit.env}

    def _start(self, name: str, kill_at: str | None = None) -> None:
        self.result.starts += 1
        if kill_at:
            self.result.kill_points.append(kill_at)
        ready = self.ctx().Value("i", 0)
        self.ready[name] = ready  # kept: the child unpickles it after this returns
        proc = self.ctx().Process(target=publisher_main, args=(self._spec(name, kill_at), ready),
                                  daemon=True)
        proc.start()
        self.procs[name] = proc

    def _stop_all(self) -> None:
        for name, proc in list(self.procs.items()):
            if proc.exitcode is None:
                proc.kill()
                proc.join(10)
            proc.close()
            del self.procs[name]

    def _restart_dead(self) -> None:
        dead = [n for n, p in self.procs.items() if p.exitcode is not None]
        if not dead:
            return
        owners = []
        for name in dead:
            proc = self.procs.pop(name)
            owners.append(f"{name}-{proc.pid}:")
            if proc.exitcode == -signal.SIGKILL:
                self.result.kills += 1
            proc.close()
        deadline = time.monotonic() + 5
        while self.inflight() and time.monotonic() < deadline:  # what it left in flight lands
            time.sleep(0.02)
        self.kit.emulator.faults.clear()
        self._leases_run_out(owners)  # restarted "later": the dead process's leases ran out
        for name in dead:
            self._start(name)

    def _leases_run_out(self, owners: list[str]) -> None:
        """The claims the dead processes held ran out (a live replica's are renewed)."""
        past = datetime.now(UTC) - timedelta(seconds=1)
        with db.transaction(self.sessions) as s:
            for owner in owners:
                s.execute(sa.update(Draft).where(Draft.state == "publishing",
                                                 Draft.lease_token.startswith(owner))
                          .values(lease_until=past))

    def _jump_past_lease(self) -> bool:
        """The clock jumps past the lease of a publish whose call is in flight: another
        sweep may take the claim over while the call can still land."""
        if not self.inflight():
            return False
        past = datetime.now(UTC) - timedelta(seconds=1)
        with db.transaction(self.sessions) as s:
            n = s.execute(sa.update(Draft).where(Draft.state == "publishing")
                          .values(lease_until=past)).rowcount
        return bool(n)

    def _time_passes(self) -> None:
        """What waits (a far rate limit, a takeover settling) is due now, but only once no
        request has been in flight for QUIET seconds: a post whose answer was lost has
        landed by then, and so has one a worker whose claim was taken over was about to
        send (between its last token check and its call; or queued unread in the
        emulator's socket when its process was killed). Real time gives SETTLE (60 s)."""
        # quiet as the emulator saw it, not as this loop sampled it: on a loaded machine
        # one turn of the loop can outlast a whole slow call (one answered after the
        # client gave up), and a wait fast-forwarded then let the retry look before that
        # post landed (a double post no real 60 s would allow)
        if self.inflight.quiet_for() < QUIET:
            return
        now = datetime.now(UTC)
        with db.transaction(self.sessions) as s:
            s.execute(sa.update(Draft).where(Draft.state == "approved",
                                             Draft.retry_at > now).values(retry_at=now))

    # ------------------------------------------------------------ the episode

    def _make_drafts(self, n: int) -> list[tuple[int, str]]:
        from bench.fault_trial import CONFIG
        from bot.config import parse_config

        accounts = [*CONFIG["accounts"]] + ([self.kit.config_account]
                                            if self.kit.config_account else [])
        config = parse_config({**CONFIG, "accounts": accounts})
        out = []
        with db.transaction(self.sessions) as s:
            sync_accounts(s, config)
        for j in range(n):
            text = f"Trial {self.seed} post {j} on {self.network}"
            if self.rng.random() < 0.3:
                text += " & more: https://www.nottinghamshire.gov.uk/news?id=" + str(j)
            with db.transaction(self.sessions) as s:
                acc = s.scalar(sa.select(Account.id).where(Account.name == self.kit.account))
                d = draft_states.create(s, account_id=acc, author=AUTHOR, text=text,
                                         kind="post", approval_channel="C0APPROVALS",
                                         via="trial")
                draft_id = d.id
            if self.kit.image:
                with db.transaction(self.sessions) as s:
                    draft_states.add_image(s, draft_id, AUTHOR, slack_file_id=f"F{j}",
                                            filename="gritter.png", mime_type="image/png",
                                            data=PNG, alt_text=ALT)
            with db.transaction(self.sessions) as s:
                decision = draft_states.approve(s, draft_id, APPROVER,
                                                 policy=ApprovalPolicy(may_approve=True),
                                                 via="trial")
                assert decision.ok, decision.message
            out.append((draft_id, text))
        return out

    def _queue_faults(self) -> None:
        rng = self.rng
        create_kinds = ["drop_after_commit", "drop_after_commit", "drop", "503", "500",
                        "slow", "slow", "429", "429_far", "malformed"]
        look_kinds = ["503", "drop", "slow", "429", "malformed"]
        for _ in range(rng.randint(0, 4)):
            self._fault("create", rng.choice(create_kinds))
        for _ in range(rng.randint(0, 2)):
            self._fault("look", rng.choice(look_kinds))

    def _fault(self, which: str, kind: str) -> None:
        if kind == "429":
            self.kit.inject(which, "429", reset_in=1)
        elif kind == "429_far":
            self.kit.inject(which, "429", reset_in=600)
        elif kind == "slow":
            self.kit.inject(which, "slow", delay=SLOW)
        else:
            self.kit.inject(which, kind)
        self.faults_queued += 1

    def _episode(self) -> None:
        rng = self.rng
        self.drafts = self._make_drafts(rng.randint(1, 3))
        self.result.drafts = len(self.drafts)
        self._queue_faults()
        replicas = ["a", "b"] if self.dbs.kind == "postgresql" else ["a"]
        kill = rng.choice([None, None, "publish:before_network", "publish:after_network",
                           "timer"])
        for name in replicas:
            armed = kill if (name == "a" and kill not in (None, "timer")) else None
            if armed and rng.random() < 0.5:
                armed += f"@{rng.randint(1, 2)}"
            self._start(name, armed)
        kill_timer = time.monotonic() + rng.uniform(0.1, 2.0) if kill == "timer" else None
        jump = rng.random() < 0.35
        deadline = time.monotonic() + SETTLE_TIMEOUT
        stable = 0
        while time.monotonic() < deadline:
            if kill_timer is not None and time.monotonic() >= kill_timer:
                kill_timer = None
                proc = self.procs.get("a")
                if proc is not None and proc.exitcode is None:
                    self.result.kill_points.append("timer")
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.join(5)
            if jump and self._jump_past_lease():
                jump = False
                self.result.jumps += 1
            self._restart_dead()
            if self._settled():
                stable += 1
                if stable >= 3:
                    return
            else:
                stable = 0
                self._time_passes()
            time.sleep(0.1)
        raise Unsettled(self._snapshot())

    def _settled(self) -> bool:
        with self.sessions() as s:
            states = [st for st in s.scalars(sa.select(Draft.state))]
        return all(st in ("published", "failed") for st in states) and not self.inflight()

    def _snapshot(self) -> str:
        with self.sessions() as s:
            rows = s.execute(sa.select(Draft.id, Draft.state, Draft.retry_at,
                                       Draft.lease_until, Draft.last_error)).all()
        return f"network={self.network} drafts={rows} inflight={self.inflight()}"

    # ------------------------------------------------------------ invariants

    def _check(self) -> None:
        with self.sessions() as s:
            drafts = {d.id: d for d in s.scalars(sa.select(Draft))}
            published_audit = Counter(int(e.subject_id) for e in s.scalars(
                sa.select(AuditEvent).where(AuditEvent.action == "draft.published")))
            takeovers = s.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
                AuditEvent.action == "draft.publish_reconciling")) or 0
            deferred = s.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
                AuditEvent.action == "draft.publish_deferred")) or 0
            outcomes = Counter((a.draft_id, a.outcome) for a in s.scalars(
                sa.select(PublishAttempt)))
        self.result.takeovers, self.result.deferred = takeovers, deferred
        for draft_id, text in self.drafts:
            d = drafts[draft_id]
            n = self.kit.posts(text)
            self.result.posts += n
            if n > 1:
                self._violation(f"double post: D{draft_id} has {n} posts on {self.network}")
            if d.state == "published":
                if n != 1:
                    self._violation(f"D{draft_id} recorded published with {n} posts")
                if not d.published_external_id or not d.published_url:
                    self._violation(f"D{draft_id} published without its id or link")
                if published_audit[draft_id] != 1:
                    self._violation(f"D{draft_id} has {published_audit[draft_id]} "
                                    "draft.published records")
                recorded = outcomes[(draft_id, "published")] + outcomes[(draft_id, "reconciled")]
                if recorded != 1:
                    self._violation(f"D{draft_id} has {recorded} recorded publish outcomes")
            elif d.state == "failed":
                self.result.failed += 1
                if n:
                    self._violation(f"live post recorded failed: D{draft_id} ({d.last_error})")
            else:
                self._violation(f"draft lost: D{draft_id} left {d.state} ({d.last_error})")

    def _violation(self, text: str) -> None:
        self.result.violations.append(text)


@dataclass
class NetSummary:
    seed: int
    db: str
    episodes: int = 0
    per_network: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    starts: int = 0
    faults: int = 0
    drafts: int = 0
    posts: int = 0
    jumps: int = 0
    takeovers: int = 0
    deferred: int = 0
    failed: int = 0
    double_posts: int = 0
    live_failed: int = 0
    lost: int = 0
    violations: list[tuple[int, str, str]] = field(default_factory=list)
    kill_points: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0
    slowest: float = 0.0

    def line(self) -> str:
        return (f"episodes={self.episodes} db={self.db} "
                f"per_network={dict(sorted(self.per_network.items()))} drafts={self.drafts} "
                f"posts={self.posts} failed_without_post={self.failed} kills={self.kills} "
                f"publisher_starts={self.starts} faults_injected={self.faults} "
                f"lease_jumps={self.jumps} takeovers={self.takeovers} "
                f"deferred={self.deferred} double_posts={self.double_posts} "
                f"live_posts_recorded_failed={self.live_failed} drafts_lost={self.lost} "
                f"violations={len(self.violations)} elapsed={self.elapsed:.1f}s "
                f"slowest_episode={self.slowest:.1f}s")


def run_network_trial(episodes: int, seed: int, db_kind: str, jobs: int,
                      out: Callable[[str], None] = print, progress_every: int = 60,
                      networks: tuple[str, ...] = NETWORKS) -> NetSummary:
    from concurrent.futures import ThreadPoolExecutor

    from bench.fault_trial import Databases, _context

    out(f"network fault trial: seed={seed}")
    out(f"episodes={episodes} db={db_kind} jobs={jobs} networks={','.join(networks)}")
    master = random.Random(seed)
    plan = [(master.randrange(2**32), networks[i % len(networks)]) for i in range(episodes)]
    summary = NetSummary(seed, db_kind)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="fault-trial-net-"))
    dbs = Databases(db_kind, workdir)
    lock = threading.Lock()

    def one(item: tuple[int, str]) -> None:
        ep_seed, network = item
        res = NetEpisode(ep_seed, dbs, network, _context).run()
        with lock:
            summary.episodes += 1
            summary.per_network[network] += 1
            for name in ("kills", "starts", "faults", "drafts", "posts", "jumps", "takeovers",
                         "deferred", "failed"):
                setattr(summary, name, getattr(summary, name) + getattr(res, name))
            summary.kill_points.update(p.split("@")[0] for p in res.kill_points)
            summary.slowest = max(summary.slowest, res.elapsed)
            if res.elapsed > 20:
                out(f"note: slow episode seed={ep_seed} network={network}: {res.elapsed:.1f}s "
                    f"(kills={res.kills} deferred={res.deferred} jumps={res.jumps})")
            for v in res.violations:
                summary.violations.append((ep_seed, network, v))
                summary.double_posts += v.startswith("double post")
                summary.live_failed += v.startswith("live post recorded failed")
                summary.lost += v.startswith(("draft lost", "did not settle"))
                out(f"VIOLATION episode seed={ep_seed} network={network} db={db_kind}: {v}")
            if summary.episodes % progress_every == 0 or summary.episodes == episodes:
                summary.elapsed = time.monotonic() - started
                out(f"  [{summary.episodes}/{episodes}] "
                    f"per_network={dict(sorted(summary.per_network.items()))} "
                    f"drafts={summary.drafts} posts={summary.posts} kills={summary.kills} "
                    f"faults={summary.faults} jumps={summary.jumps} "
                    f"takeovers={summary.takeovers} deferred={summary.deferred} "
                    f"double_posts={summary.double_posts} "
                    f"live_failed={summary.live_failed} lost={summary.lost} "
                    f"violations={len(summary.violations)} elapsed={summary.elapsed:.0f}s")

    try:
        _context()
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            list(pool.map(one, plan))
    finally:
        dbs.close()
        shutil.rmtree(workdir, ignore_errors=True)
    summary.elapsed = time.monotonic() - started
    out(f"kill points: {dict(summary.kill_points)}")
    out("summary: " + summary.line())
    return summary


def run_network_episode(seed: int, network: str, db_kind: str = "sqlite") -> NetEpisodeResult:
    from bench.fault_trial import Databases, _context

    workdir = Path(tempfile.mkdtemp(prefix="fault-trial-net-"))
    dbs = Databases(db_kind, workdir)
    try:
        return NetEpisode(seed, dbs, network, _context).run()
    finally:
        dbs.close()
        shutil.rmtree(workdir, ignore_errors=True)
