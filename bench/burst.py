"""A burst of mentions over several channels, delivered by the real Outbox to the Slack
emulator with its rate limits on: time until all are posted vs the rate-limit lower bound,
and how many alerts were lost or duplicated (both must be 0).

    python -m bench.burst [--db sqlite|postgresql|both] [--n 1000] [--channels 10]
                          [--loop run_forever|drain] [--replicas 2]

The mentions are stored with `store_mentions` (pages of 100, as polling does), then the
outbox drains them: `run_forever` in a thread as `commsdesk serve` runs it (default), or
`drain()` as `commsdesk poll --once` does. Slack allows about one message per second per
channel, so k = ceil(n/channels) alerts in one channel need at least (k - 1) s: that is the
lower bound (a backlog notice, posted in a channel once 20+ alerts wait, takes one more
second's slot: the floor of the ratio is then k / (k - 1), 1.01 for k = 100). Target: elapsed <= 1.2 x lower bound. n=1000 takes ~100 s per database;
`--n 200` is a quick run.

`--replicas 2` (PostgreSQL): the same burst delivered by one outbox and then by two, each
with its own Runtime, engine and lease owner as two `serve` replicas would have (threads of
this process: the work is bound by Slack's per-channel rate, not by CPU); prints both
times, their ratio, and lost/duplicated alerts for both (must be 0).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import pstats
import random
import re
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from bench.common import (
    DEFAULT_CHANNEL,
    SERVICES,
    db_kinds,
    fetched,
    fresh_database,
    loadavg,
    machine_note,
    mention_text,
    table,
    wait_quiet,
)
from bot import db, logs
from bot.bootstrap import build_runtime
from bot.db import transaction
from bot.domain.routing import MentionFacts
from bot.emulators.slack import SlackEmulator
from bot.models import Account
from bot.services import outbox as outbox_module
from bot.services.accounts import sync_accounts
from bot.services.ingest import store_mentions
from tests.conftest import BOT_TOKEN, SIGNING_SECRET, make_settings

PAGE = 100
TARGET = 1.2
TOKEN = re.compile(r"\[b(\d{5})\]")


def burst_config(channels: int) -> dict[str, Any]:
    return {
        "timezone": "Europe/London",
        "poll_interval_seconds": 60,
        "slack": {"approvals_channel": "C0APPROVALS", "default_channel": DEFAULT_CHANNEL,
                  "approvers_usergroup": "S0COMMS"},
        "accounts": [{"name": "nottscc", "network": "x", "handle": "NottsCC",
                      "user_id": "1111", "credentials": "NOTTSCC"}],
        "services": SERVICES[:channels],
    }


def run(kind: str, n: int, channels: int, loop: str, profile: bool = False,
        replicas: int = 1, slack_window: float = 1.0) -> dict[str, Any]:
    config = burst_config(channels)
    rng = random.Random(7)
    base = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
    services = [s["name"] for s in SERVICES[:channels]]
    channel_of = {s["name"]: s["channel"] for s in SERVICES}
    # mention i concerns service i % channels only; its text carries a unique token
    mentions, expected = [], {}
    for i in range(n):
        svc = services[i % channels]
        text = f"{mention_text(rng, [svc])} [b{i:05d}]"
        mentions.append(fetched(1_800_000_000_000_000_000 + i, text, base, rng))
        expected[i] = channel_of[svc]

    slack = SlackEmulator(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
    slack.start()
    slack.enforce_rate_limits = True  # 429 + Retry-After beyond 3 posts/s/channel
    slack.rate_limit_window = slack_window  # 3.0: 3 posts per 3 s, i.e. 1/s sustained
    for cid in [DEFAULT_CHANNEL, "C0APPROVALS", *channel_of.values()]:
        slack.add_channel(cid, cid.lower())
    stop = threading.Event()
    try:
        with fresh_database(kind) as url:
            engine = db.make_engine(url)
            db.upgrade(engine)
            settings = make_settings(url, config=config, slack_api_url=slack.api_url)
            rt = build_runtime(settings, engine)
            router = rt.router
            for i, m in enumerate(mentions):  # the set-up really is one channel each
                routes = router.route(MentionFacts("nottscc", m.author_handle, m.text))
                assert [r.channel for r in routes] == [expected[i]], (m.text, routes)
            with transaction(rt.sessions) as s:
                account_id = sync_accounts(s, settings.config)["nottscc"].id

            ob = outbox_module.Outbox(rt)
            # time each step (a round over the ready channels), without changing it
            steps: list[tuple[float, int]] = []
            real_step = ob.step

            def timed_step() -> int:
                t = time.perf_counter()
                handled = real_step()
                steps.append((time.perf_counter() - t, handled))
                return handled

            ob.step = timed_step  # type: ignore[method-assign]
            # more replicas: each its own Runtime, engine (pool) and outbox owner, as
            # another `serve` process on the same database would have; nobody wakes them
            # (another process's ingest cannot): they find the rows by polling
            others = [outbox_module.Outbox(build_runtime(settings, db.make_engine(url)),
                                           owner=f"replica-{i + 2}")
                      for i in range(replicas - 1)]
            other_threads = [threading.Thread(target=o.run_forever, args=(stop,), daemon=True)
                             for o in others]
            for t in other_threads:
                t.start()
            prof = cProfile.Profile() if profile else None

            def forever() -> None:
                if prof is not None:
                    prof.enable()
                try:
                    ob.run_forever(stop)
                finally:
                    if prof is not None:
                        prof.disable()

            thread = None
            if loop == "run_forever":  # as `serve` runs it: already waiting for work
                thread = threading.Thread(target=forever, daemon=True)
                thread.start()
            t0 = time.time()
            for start in range(0, n, PAGE):
                with transaction(rt.sessions) as s:
                    store_mentions(s, s.get_one(Account, account_id),
                                   mentions[start:start + PAGE], router)
                rt.kick_outbox()
            t_queued = time.time()
            if loop == "drain":
                if prof is not None:
                    prof.enable()
                ob.drain(timeout=3600)
                if prof is not None:
                    prof.disable()
            else:
                deadline = time.monotonic() + 3600
                while ob.pending() and time.monotonic() < deadline:
                    time.sleep(0.2)
                stop.set()
                rt.kick_outbox()
                assert thread is not None
                thread.join(timeout=30)
            for o, t in zip(others, other_threads, strict=True):
                o.rt.kick_outbox()
                t.join(timeout=30)
                o.rt.engine.dispose()
            engine.dispose()
    finally:
        stop.set()
        slack.stop()

    seen: Counter[int] = Counter()
    misrouted = 0
    last_alert = t0
    per_channel: dict[str, list[float]] = {}
    notices = 0
    for cid in {*expected.values(), DEFAULT_CHANNEL}:
        for msg in slack.messages(cid):
            if not msg.get("blocks"):
                notices += 1  # "N new mentions are queued for this channel" (takes a slot)
                continue
            hit = TOKEN.search(json.dumps(msg["blocks"], ensure_ascii=False))
            if hit is None:
                continue
            i = int(hit.group(1))
            seen[i] += 1
            misrouted += expected.get(i) != cid
            ts = float(msg["ts"])
            last_alert = max(last_alert, ts)
            per_channel.setdefault(cid, []).append(ts)
    lost = sum(1 for i in expected if seen[i] == 0)
    duplicated = sum(c - 1 for c in seen.values() if c > 1)
    calls = slack.calls_to("chat.postMessage")
    k = math.ceil(n / channels)
    lower = max(k - 1, 1) * outbox_module.CHANNEL_INTERVAL
    gaps = [b - a for ts in per_channel.values() for a, b in zip(sorted(ts), sorted(ts)[1:],
                                                                  strict=False)]
    busy = [(d, h) for d, h in steps if h > 0]
    if prof is not None:
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("cumulative").print_stats(40)
        print(f"## cProfile of the outbox thread on {kind} (cumulative)\n{buf.getvalue()}")
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("tottime").print_stats(20)
        print(f"## cProfile of the outbox thread on {kind} (own time)\n{buf.getvalue()}")
    return {
        "round_ms": 1000 * sum(d for d, _ in busy) / len(busy) if busy else float("nan"),
        "per_msg_ms": 1000 * sum(d for d, _ in busy) / max(1, sum(h for _, h in busy)),
        "db": kind, "n": n, "channels": channels, "loop": loop, "replicas": replicas,
        "queued_s": t_queued - t0,
        "elapsed_s": last_alert - t0,
        "lower_s": lower,
        "ratio": (last_alert - t0) / lower,
        "lost": lost, "duplicated": duplicated, "misrouted": misrouted, "notices": notices,
        "posts": sum(1 for c in calls if c.status == 200),
        "rate_limited": sum(1 for c in calls if c.status == 429),
        "mean_gap_s": sum(gaps) / len(gaps) if gaps else float("nan"),
        "max_gap_s": max(gaps) if gaps else float("nan"),
    }


def _row(label: str, r: dict[str, Any]) -> list[Any]:
    good = r["ratio"] <= TARGET and r["lost"] == 0 and r["duplicated"] == 0 \
        and r["misrouted"] == 0
    return [label, f"{r['queued_s']:.2f}", f"{r['elapsed_s']:.1f}", f"{r['lower_s']:.0f}",
            f"{r['ratio']:.3f}", r["lost"], r["duplicated"], r["misrouted"], r["notices"],
            r["rate_limited"], f"{r['mean_gap_s']:.3f} / {r['max_gap_s']:.3f}",
            f"{r['round_ms']:.0f} / {r['per_msg_ms']:.1f}",
            f"{'met' if good else 'MISSED'} (<= {TARGET})"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--channels", type=int, default=10, choices=range(1, len(SERVICES) + 1),
                    metavar=f"1..{len(SERVICES)}")
    ap.add_argument("--loop", choices=["run_forever", "drain"], default="run_forever")
    ap.add_argument("--profile", action="store_true", help="cProfile the outbox loop")
    ap.add_argument("--slack-window", type=float, default=1.0,
                    help="the emulator allows 3 posts per this many seconds per channel "
                         "(default 1.0; 3.0 models Slack's 1/s sustained with bursts of 3)")
    ap.add_argument("--replicas", type=int, default=1,
                    help="N > 1: run the burst with one outbox, then with N (each its own "
                         "Runtime and engine, as N `serve` replicas; PostgreSQL only) and "
                         "print the ratio of the times")
    args = ap.parse_args(argv)
    if args.replicas > 1 and (args.db != "postgresql" or args.loop != "run_forever"):
        ap.error("--replicas needs --db postgresql (SQLite is single-process) and "
                 "--loop run_forever")
    logs.configure(level="WARNING")
    print(f"# burst · n={args.n} over {args.channels} channels · outbox loop: {args.loop} · "
          f"Slack emulator rate limits on")
    print(f"# {machine_note()}\n")
    rows, ok = [], True
    by_replicas: dict[int, dict[str, Any]] = {}
    for kind in db_kinds(args.db):
        load_start = wait_quiet()
        for reps in sorted({1, args.replicas}):
            r = run(kind, args.n, args.channels, args.loop, args.profile, reps,
                    args.slack_window)
            by_replicas[reps] = r
            label = kind + (f", {reps} replica(s)" if args.replicas > 1 else "")
            rows.append(_row(label, r))
            ok &= rows[-1][-1].startswith("met")
        print(f"# {kind}: load average (1/5/15 min) at start {load_start}, at end {loadavg()}",
              flush=True)
    print(table(["db", "queued in s", "all posted after s", "lower bound s", "ratio", "lost",
                 "duplicated", "misrouted", "backlog notices", "429s", "gap mean/max s",
                 "outbox round / per msg ms", "target"],
                rows))
    if args.replicas > 1:
        one, more = by_replicas[1], by_replicas[args.replicas]
        print(f"\n{args.replicas} replicas vs one: all posted after {more['elapsed_s']:.1f} s vs "
              f"{one['elapsed_s']:.1f} s = {more['elapsed_s'] / one['elapsed_s']:.2f}x the time "
              f"(rate-limit bound {one['lower_s']:.0f} s either way: Slack's limit is per "
              f"channel, not per replica); lost {more['lost']}, duplicated "
              f"{more['duplicated']}, misrouted {more['misrouted']}, 429s "
              f"{more['rate_limited']} (one replica: {one['rate_limited']})")
        ok &= more["lost"] == 0 and more["duplicated"] == 0 and more["misrouted"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
