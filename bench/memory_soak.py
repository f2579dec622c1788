"""`commsdesk serve` resident memory after a soak of N mentions (issue 9; target <= 150 MB).

    python -m bench.memory_soak [--db sqlite|postgresql|both] [--n 100000] [--batch 5000]
                                [--tracemalloc]

A real `commsdesk serve` child process (as tests/processes.py starts it) polls the X
emulator, which is fed N mentions in batches (each batch once the previous one is stored,
so the bot keeps polling: pages of 100, several polls), stores, audits and routes them over
10 service channels + the default one, and its outbox delivers every alert to the Slack
emulator (pacing sped up with COMMSDESK_SLACK_POST_INTERVAL, as the trials do). RSS of the
child (psutil if installed, else /proc/<pid>/status VmRSS) is sampled all along:

  baseline  the same serve idle after start (first, empty poll done)
  peak      the highest sample while mentions arrive and alerts go out
  final     after every mention is stored and every alert posted, then idle a few seconds

`--tracemalloc` runs the child with tracemalloc on (6 frames, SOAK_FRAMES=n for more) and prints where the memory
still held at the end was allocated (slower, and tracemalloc's own memory counts in RSS:
use it to find the growth, not to measure it).
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from bench.common import (
    BENCH_CONFIG,
    DEFAULT_CHANNEL,
    SERVICES,
    db_kinds,
    fresh_database,
    loadavg,
    machine_note,
    mention_text,
    table,
    wait_quiet,
)
from bot.emulators.slack import SlackEmulator
from integrations.x.emulator import Tweet, XEmulator
from tests.conftest import BOT_TOKEN, SIGNING_SECRET, free_port
from tests.processes import bot_env

TARGET_MB = 150.0
ACCOUNT_USER = "1111"
RESIDENTS = 500

# run `commsdesk serve` with tracemalloc; SIGUSR1 dumps a snapshot to $SOAK_SNAPSHOT
_TRACED_SERVE = """
import os, runpy, signal, sys, tracemalloc
tracemalloc.start(int(os.environ.get('SOAK_FRAMES', '6')))
_n = [0]
def _dump(*_):
    _n[0] += 1
    path = os.environ["SOAK_SNAPSHOT"] + str(_n[0])
    tracemalloc.take_snapshot().dump(path)
    open(path + ".done", "w").close()
signal.signal(signal.SIGUSR1, _dump)
sys.argv = ["commsdesk"] + sys.argv[1:]
runpy.run_module("bot.cli", run_name="__main__")
"""


class SoakX(XEmulator):
    """The X emulator with its lookups indexed (bench only): the plain one scans every
    tweet for each page and every user for each @name, which at 100,000 mentions would
    make the emulator, not the bot, the thing measured."""

    def __init__(self) -> None:
        super().__init__()
        self._by_name: dict[str, Any] = {}
        self._mention_ids: list[int] = []  # mentions of the account, in id order
        self._mention_tweets: list[Tweet] = []

    def add_user(self, id: str, username: str, name: str | None = None, *,
                 followers_count: int = 0) -> dict[str, Any]:
        out = super().add_user(id, username, name, followers_count=followers_count)
        self._by_name[username.lower()] = self.users[id]
        return out

    def _user_by_username(self, username: str) -> Any:
        return self._by_name.get(username.lower())

    def add_soak_mention(self, author_id: str, text: str) -> None:
        with self._lock:
            t = self.add_tweet(author_id, text)
            self._mention_ids.append(int(t["id"]))
            self._mention_tweets.append(self.tweets[t["id"]])

    def _get_mentions(self, request: Any, auth: Any, body: Any, user_id: str) -> Any:
        if user_id != ACCOUNT_USER:
            return super()._get_mentions(request, auth, body, user_id)
        query = request.query
        with self._lock:
            lo = 0
            if (query.get("since_id") or "").isdigit():
                lo = bisect.bisect_right(self._mention_ids, int(query["since_id"]))
            hi = len(self._mention_ids)
            token = query.get("pagination_token") or ""
            with contextlib.suppress(ValueError):
                if token:
                    hi = bisect.bisect_left(self._mention_ids, int(token[5:], 36))
            # one more than a page, so _list_page still says whether there is a next one
            candidates = self._mention_tweets[max(lo, hi - 101):hi]
            return self._list_page(request, candidates)


def rss_bytes(pid: int) -> int:
    try:
        import psutil  # type: ignore[import-untyped]

        return int(psutil.Process(pid).memory_info().rss)
    except ImportError:
        pass
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class Sampler(threading.Thread):
    def __init__(self, pid: int, every: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(OSError, RuntimeError):
                self.samples.append((time.monotonic(), rss_bytes(self.pid)))
            self.stop.wait(self.every)

    def max_since(self, t: float) -> int:
        return max((r for at, r in self.samples if at >= t), default=0)


def mb(b: float) -> str:
    return f"{b / 1e6:.1f}"


@contextlib.contextmanager
def serve(tmp: Path, url: str, slack: SlackEmulator, x: XEmulator, interval: float,
          traced: bool, extra_env: dict[str, str] | None = None
          ) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    config = dict(BENCH_CONFIG)
    config["poll_interval_seconds"] = 10
    if os.environ.get("SOAK_NO_WEEKLY_REPORT"):  # to size the chart's share (matplotlib)
        config["insight"] = {"weekly_report": False}
    env = bot_env(tmp, config, url, slack.api_url, x.root_url, {
        "COMMSDESK_SLACK_POST_INTERVAL": str(interval),
        "SOAK_SNAPSHOT": str(tmp / "soak.snapshot"),
        **(extra_env or {}),
    })
    port = free_port()
    cmd = [sys.executable, "-m", "bot.cli"] if not traced else [
        sys.executable, "-c", _TRACED_SERVE]
    log_path = tmp / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([*cmd, "serve", "--host", "127.0.0.1", "--port", str(port)],
                                cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield proc, f"http://127.0.0.1:{port}", log_path
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def take_snapshot(proc: subprocess.Popen[bytes], tmp: Path, i: int) -> None:
    """Ask the traced child for its i-th tracemalloc snapshot and wait until written."""
    proc.send_signal(signal.SIGUSR1)
    done = tmp / f"soak.snapshot{i}.done"
    deadline = time.monotonic() + 300
    while not done.exists() and time.monotonic() < deadline:
        time.sleep(0.5)


def snapshot(proc: subprocess.Popen[bytes], tmp: Path, i: int) -> tracemalloc.Snapshot:
    return tracemalloc.Snapshot.load(str(tmp / f"soak.snapshot{i}"))


def health(base: str) -> dict[str, Any]:
    try:
        return dict(httpx.get(f"{base}/healthz", timeout=5).json())
    except (httpx.HTTPError, ValueError):
        return {}


def run(kind: str, n: int, batch: int, interval: float, traced: bool,
        extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    rng = random.Random(11)
    names = [s["name"] for s in SERVICES]
    slack = SlackEmulator(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
    slack.start()
    for cid in [DEFAULT_CHANNEL, "C0APPROVALS", *(s["channel"] for s in SERVICES)]:
        slack.add_channel(cid, cid.lower())
    x = SoakX()
    x.start()
    x.limits = {k: (10**9, w) for k, (_, w) in x.limits.items()}  # no X rate limits here
    x.add_user(ACCOUNT_USER, "NottsCC")
    x.register_credentials(ACCOUNT_USER, access_token=f"{ACCOUNT_USER}-at-nottscc")
    residents = [str(50_000 + i) for i in range(RESIDENTS)]
    for uid in residents:
        x.add_user(uid, f"resident{uid}")
    out: dict[str, Any] = {"db": kind, "n": n}
    try:
        with fresh_database(kind) as url, tempfile.TemporaryDirectory(prefix="soak-") as tdir:
            tmp = Path(tdir)
            engine = sa.create_engine(url)

            def stored() -> int:
                with engine.connect() as c:
                    return int(c.exec_driver_sql("SELECT count(*) FROM mentions").scalar() or 0)

            with serve(tmp, url, slack, x, interval, traced, extra_env) as (proc, base,
                                                                           log_path):
                deadline = time.monotonic() + (300 if traced else 60)
                while not health(base).get("last_poll", {}).get("nottscc"):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("serve did not start:\n" + log_path.read_text()[-3000:])
                    time.sleep(0.2)
                sampler = Sampler(proc.pid, 0.5)
                sampler.start()
                time.sleep(5)  # idle: scheduler, outbox and Bolt threads all started
                t_base = time.monotonic() - 3
                out["baseline"] = sampler.max_since(t_base)
                if traced:
                    take_snapshot(proc, tmp, 1)
                t0 = time.monotonic()
                fed = 0
                while fed < n:
                    k = min(batch, n - fed)
                    for _ in range(k):
                        r = rng.random()
                        picked = rng.sample(names, 1 if r < 0.7 else 2) if r < 0.8 else []
                        x.add_soak_mention(rng.choice(residents), mention_text(rng, picked))
                    fed += k
                    while stored() < fed:
                        if proc.poll() is not None:
                            raise SystemExit("serve died:\n" + log_path.read_text()[-3000:])
                        time.sleep(0.5)
                    print(f"  {kind}: {fed:,} mentions stored at {time.monotonic() - t0:.0f} s,"
                          f" RSS {mb(sampler.samples[-1][1])} MB, outbox backlog "
                          f"{health(base).get('outbox_backlog')}", flush=True)
                out["ingested_s"] = time.monotonic() - t0
                if traced:
                    take_snapshot(proc, tmp, 2)
                while health(base).get("outbox_backlog", 1) > 0:
                    if proc.poll() is not None:
                        raise SystemExit("serve died:\n" + log_path.read_text()[-3000:])
                    time.sleep(1)
                out["delivered_s"] = time.monotonic() - t0
                out["peak"] = sampler.max_since(t0)
                time.sleep(10)  # idle again
                if traced:
                    take_snapshot(proc, tmp, 3)
                out["final"] = sampler.samples[-1][1]
                sampler.stop.set()
                posts = [c for c in slack.calls_to("chat.postMessage") if c.status == 200]
                out["posts"] = len(posts)
                out["stored"] = stored()
                if traced:
                    out["snapshots"] = [snapshot(proc, tmp, i) for i in (1, 2, 3)]
            engine.dispose()
    finally:
        slack.stop()
        x.stop()
    return out


def print_snapshot(snap: tracemalloc.Snapshot) -> None:
    snap = snap.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__),
                               tracemalloc.Filter(False, "<frozen importlib._bootstrap>")])
    total = sum(s.size for s in snap.statistics("filename"))
    print(f"\n## tracemalloc at the end: {mb(total)} MB traced, by file (top 12)")
    for s in snap.statistics("filename")[:12]:
        print(f"  {mb(s.size):>7} MB  {s.count:>9,} blocks  {s.traceback[0].filename}")
    print("\n## by line (top 15)")
    for s in snap.statistics("lineno")[:15]:
        f = s.traceback[0]
        print(f"  {mb(s.size):>7} MB  {s.count:>9,} blocks  {f.filename}:{f.lineno}")
    print("\n## biggest 5 by traceback (innermost commsdesk frames)")
    for s in snap.statistics("traceback")[:5]:
        ours = [f"{fr.filename.split('/site-packages/')[-1]}:{fr.lineno}"
                for fr in s.traceback if "commsdesk" in fr.filename or "/work/" in fr.filename]
        print(f"  {mb(s.size):>7} MB  {s.count:>9,} blocks  " + " <- ".join(ours[-6:][::-1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="sqlite")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=5_000,
                    help="mentions added to X at a time (the next once these are stored)")
    ap.add_argument("--post-interval", type=float, default=0.001,
                    help="COMMSDESK_SLACK_POST_INTERVAL for the child (s between posts per "
                         "channel; 1.0 is Slack's real pace)")
    ap.add_argument("--tracemalloc", action="store_true")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra environment for the serve child, e.g. MALLOC_ARENA_MAX=2 "
                         "(repeatable)")
    args = ap.parse_args(argv)
    print(f"# memory soak · n={args.n:,} in batches of {args.batch:,} · {machine_note()}"
          + (f" · child env {' '.join(args.env)}" if args.env else ""))
    rows, ok = [], True
    for kind in db_kinds(args.db):
        load_start = wait_quiet()
        extra = dict(e.split("=", 1) for e in args.env)
        r = run(kind, args.n, args.batch, args.post_interval, args.tracemalloc, extra)
        good = r["final"] <= TARGET_MB * 1e6 and r["peak"] <= TARGET_MB * 1e6
        ok &= good
        rows.append([kind, f"{r['stored']:,}", f"{r['posts']:,}", f"{r['ingested_s']:.0f}",
                     f"{r['delivered_s']:.0f}", mb(r["baseline"]), mb(r["peak"]),
                     mb(r["final"]), f"+{mb(r['final'] - r['baseline'])}",
                     f"{r['final'] / (TARGET_MB * 1e6):.0%}",
                     f"{'met' if good else 'MISSED'} (<= {TARGET_MB:.0f} MB)"])
        print(f"# {kind}: load average (1/5/15 min) at start {load_start}, at end {loadavg()}",
              flush=True)
        if "snapshots" in r:
            base_snap, mid, end = r["snapshots"]
            print_snapshot(end)
            for label, snap in (("all stored, alerts still queued", mid),
                                ("the end (all posted, idle)", end)):
                print(f"\n## growth since the idle baseline at {label} (top 15 by line)")
                for st in snap.compare_to(base_snap, "lineno")[:15]:
                    f = st.traceback[0]
                    print(f"  {st.size_diff / 1e6:+7.2f} MB  {st.count_diff:+9,} blocks  "
                          f"{f.filename}:{f.lineno}")
                print("  by traceback (top 5):")
                for st in snap.compare_to(base_snap, "traceback")[:5]:
                    frames = " <- ".join(f"{fr.filename.split('/')[-1]}:{fr.lineno}"
                                         for fr in list(st.traceback)[::-1][:8])
                    print(f"  {st.size_diff / 1e6:+7.2f} MB  {frames}")
    print(table(["db", "mentions stored", "alerts posted", "all stored after s",
                 "all posted after s", "baseline MB (idle)", "peak MB", "final MB",
                 "growth MB", "final / target", "target"], rows))
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("BENCH_MAX_LOAD", "0.8")
    sys.exit(main())
