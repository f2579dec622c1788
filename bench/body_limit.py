"""Peak memory of a real `commsdesk serve` child while strangers send it 64 MB bodies.

    python -m bench.body_limit [--db sqlite|postgresql|both] [--mb 64] [--repeat 3]
                               [--env K=V ...] [--label TEXT]

Starts `commsdesk serve` as a child process (HTTP mode, against the Slack and X emulators
in this process, as bench/latency.py does), warms every route with ordinary requests,
then sends a `--mb` MB body to each route that accepts POST (`/slack/events`,
`/webhooks/facebook`) and to `/healthz` (which takes none), once with `Content-Length`
and once chunked (no length: the server only learns the size by reading). For each case
the child's peak resident set (VmHWM) is reset first (`/proc/<pid>/clear_refs`, "5"),
then read after the answer: the rise is VmHWM after minus VmRSS before. A sampler
reading VmRSS every 2 ms backs it up (and stands in where clear_refs is not allowed).
Target: every answer 413 (or 405 for a route that reads no body), the server still
healthy, and a peak rise under 5 MB whatever the size sent.

`--env PYTHONPATH=DIR` runs the child on another tree (e.g. an earlier commit laid out as
a `commsdesk` package in DIR, to measure what the change saved); `--label` names it.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.common import db_kinds, fresh_database, loadavg, machine_note, table, wait_quiet
from tests.harness import WENDY, Harness

TARGET_MB = 5.0
CHUNK = 64 * 1024
FB_SECRET = "bench-facebook-app-secret"


def status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def reset_peak(pid: int) -> bool:
    """Reset the child's VmHWM to its current RSS (Linux >= 4.0); False if not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Sampler:
    """VmRSS of a process every `interval` s, keeping the highest."""

    def __init__(self, pid: int, interval: float = 0.002):
        self.pid, self.interval = pid, interval
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, status_kb(self.pid, "VmRSS"))
            time.sleep(self.interval)

    def __enter__(self) -> Sampler:
        self.peak_kb = status_kb(self.pid, "VmRSS")
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, status_kb(self.pid, "VmRSS"))


def body(total: int) -> Iterator[bytes]:
    chunk = b"x" * CHUNK
    sent = 0
    while sent < total:
        piece = chunk[: min(CHUNK, total - sent)]
        sent += len(piece)
        yield piece


def warm(client: httpx.Client, url: str, h: Harness) -> None:
    """Ordinary traffic on every route first, so what it allocates once is not counted."""
    for _ in range(20):
        h.slack.send_command(WENDY, "C0WASTE", "help")
        client.post(f"{url}/webhooks/facebook", content=b'{"object":"page","entry":[]}',
                    headers={"X-Hub-Signature-256": "sha256=" + "0" * 64})
        client.get(f"{url}/healthz")
        client.post(f"{url}/slack/events", content=b"x" * 200_000,
                    headers={"Content-Type": "application/json"})


def run_db(kind: str, mb: int, repeat: int, env: dict[str, str], label: str
           ) -> list[list[Any]]:
    from tests.processes import ServeProcess

    rows: list[list[Any]] = []
    size = mb << 20
    with fresh_database(kind) as database_url:
        tmp = Path(tempfile.mkdtemp(prefix="commsdesk-bodylimit-"))
        h = Harness(database_url)
        h.start_emulators()
        proc = ServeProcess(tmp, h.config, database_url, h.slack.api_url, h.x.root_url,
                            extra_env={"FACEBOOK_APP_SECRET": FB_SECRET, **env}
                            ).wait_ready(60)
        h.slack.bot_events_url = f"{proc.url}/slack/events"
        pid = proc.proc.pid
        try:
            with httpx.Client(timeout=60) as client:
                warm(client, proc.url, h)
                time.sleep(0.5)
                idle_kb = status_kb(pid, "VmRSS")
                for path in ("/slack/events", "/webhooks/facebook", "/healthz"):
                    for mode in ("Content-Length", "chunked"):
                        rises_hwm: list[float] = []
                        rises_sampled: list[float] = []
                        statuses: set[int] = set()
                        took: list[float] = []
                        for _ in range(repeat):
                            headers = {"Content-Type": "application/json"}
                            if mode == "Content-Length":
                                headers["Content-Length"] = str(size)
                            before_kb = status_kb(pid, "VmRSS")
                            cleared = reset_peak(pid)
                            t0 = time.monotonic()
                            with Sampler(pid) as sampler:
                                r = client.post(f"{proc.url}{path}", content=body(size),
                                                headers=headers)
                            took.append(time.monotonic() - t0)
                            statuses.add(r.status_code)
                            if cleared:
                                rises_hwm.append((status_kb(pid, "VmHWM") - before_kb) / 1024)
                            rises_sampled.append((sampler.peak_kb - before_kb) / 1024)
                            health = client.get(f"{proc.url}/healthz")
                            assert health.status_code == 200, health.text
                        worst = max(rises_hwm or rises_sampled)
                        rows.append([
                            label, kind, path, mode, f"{mb} MB", "/".join(map(str, sorted(statuses))),
                            f"{max(rises_hwm):.2f}" if rises_hwm else "n/a",
                            f"{max(rises_sampled):.2f}",
                            f"{min(took) * 1000:.0f}",
                            "yes" if worst < TARGET_MB else "NO",
                        ])
                after_kb = status_kb(pid, "VmRSS")
                rows.append([label, kind, "(all)", "RSS idle before -> after", "", "",
                             f"{idle_kb / 1024:.1f} -> {after_kb / 1024:.1f} MB", "", "", ""])
                # still serving Slack after all that
                r = h.slack.send_command(WENDY, "C0WASTE", "help")
                assert r.status_code == 200, r.text
        finally:
            code = proc.terminate()
            if code != 0:
                print(f"# serve exited {code}:\n{proc.log()[-2000:]}")
            h.slack.stop()
            h.x.stop()
            shutil.rmtree(tmp, ignore_errors=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="sqlite")
    ap.add_argument("--mb", type=int, default=64, help="size of each hostile body (MB)")
    ap.add_argument("--repeat", type=int, default=3, help="sends per case (the worst counts)")
    ap.add_argument("--env", action="append", default=[], metavar="K=V",
                    help="environment for the serve child (repeatable)")
    ap.add_argument("--label", default="this tree", help="what the child runs (first column)")
    args = ap.parse_args(argv)
    env = dict(kv.split("=", 1) for kv in args.env)
    print(f"# {machine_note()}")
    print(f"# a `commsdesk serve` child; each case: VmHWM reset, body sent, peak read; "
          f"worst of {args.repeat}; target: peak RSS rise < {TARGET_MB:.0f} MB")
    rows: list[list[Any]] = []
    for kind in db_kinds(args.db):
        print(f"# {kind}: load at start {wait_quiet()}")
        rows += run_db(kind, args.mb, args.repeat, env, args.label)
        print(f"# {kind}: load at end {loadavg()}")
    print(table(["bot", "db", "route", "body", "size", "answer", "peak RSS rise MB (VmHWM)",
                 "peak RSS rise MB (sampled)", "answered in ms (best)", "< 5 MB"], rows))
    bad = [r for r in rows if r[-1] == "NO"]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
