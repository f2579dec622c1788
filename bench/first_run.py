"""A newcomer's first run, timed: clone the repository afresh, run `scripts/run` (set up,
then the offline demo) until the page answers, stop it, and run it again.

    .venv/bin/python -m bench.first_run            # clones HEAD into a temporary folder

Prints the seconds to the page for the cold run (creates .venv, installs from
requirements.lock) and the warm one (nothing changed: the install is skipped), and
whether either printed a warning or called apt. The cold run's time depends on pip's
download cache; the warm one should be a few seconds.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def page_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def timed_run(clone: Path, timeout: float) -> tuple[float, list[str]]:
    """Seconds from `scripts/run` to the demo page answering, and everything it printed."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMMSDESK_", "SLACK_"))}
    env["PATH"] = f"{clone / 'bin-trap'}:{env.get('PATH', '')}"
    start = time.monotonic()
    proc = subprocess.Popen(["scripts/run", "--port", str(port)], cwd=clone, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")),  # type: ignore[union-attr]
                              daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{port}/"
    try:
        while not page_up(url):
            if proc.poll() is not None:
                raise SystemExit("scripts/run stopped early:\n" + "".join(lines))
            if time.monotonic() - start > timeout:
                raise SystemExit("the page did not come up in time:\n" + "".join(lines))
            time.sleep(0.1)
        took = time.monotonic() - start
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        reader.join(timeout=5)
    return took, lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timeout", type=float, default=900)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="commsdesk-first-run-") as tmp:
        clone = Path(tmp) / "commsdesk"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        # apt-get on PATH that records being called: scripts/run must never need it
        trap = clone / "bin-trap"
        trap.mkdir()
        for name in ("apt-get", "apt"):
            (trap / name).write_text(f"#!/bin/sh\necho 'APT CALLED: {name} '\"$*\"\nexit 1\n")
            (trap / name).chmod(0o755)
        rows = []
        for label in ("cold (fresh clone)", "warm (second run)"):
            took, lines = timed_run(clone, args.timeout)
            text = "".join(lines)
            rows.append((label, took, "APT CALLED" in text,
                         sum("warning" in line.lower() for line in lines)))
        print(f"{'run':<22} {'to the page':>12} {'apt?':>6} {'warnings':>9}")
        for label, took, apt, warnings in rows:
            print(f"{label:<22} {took:>10.1f} s {('yes' if apt else 'no'):>6} {warnings:>9}")
        print(f"load average: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
