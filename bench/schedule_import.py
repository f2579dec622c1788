"""`commsdesk schedule import` timed: a CSV of 350 rows (Hootsuite's and Sprout's limit)
becomes 350 drafts awaiting approval on one batch card. Target: under 10 s.

    .venv/bin/python -m bench.schedule_import [--db sqlite|postgresql|both] [--rows 350]

Runs the real command line in a fresh process (`commsdesk schedule import FILE --no-post`:
the batch card is left to the bot's outbox) against an empty, migrated database, and
prints the wall time of the whole command (start-up, checking every row, one transaction
storing every draft with its audit record) and the drafts it stored, and the time the
command itself prints (checking and storing, without Python's start-up). Migrating the empty
database happens before the timer starts.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from bench.common import db_kinds, fresh_database, loadavg, machine_note, table

CONFIG = '''timezone = "Europe/London"
[slack]
approvals_channel = "C0APPROVALS"
default_channel = "C0COMMS"
approvers_usergroup = "S0COMMS"
[[accounts]]
name = "nottscc"
network = "x"
handle = "NottsCC"
user_id = "1111"
credentials = "NOTTSCC"
[[accounts]]
name = "nottslibraries"
network = "x"
handle = "NottsLibraries"
user_id = "2222"
credentials = "LIBRARIES"
[[services]]
name = "waste"
channel = "C0WASTE"
keywords = ["bin"]
'''


def csv_text(rows: int) -> str:
    from zoneinfo import ZoneInfo

    from bot.clock import now

    tz = ZoneInfo("Europe/London")
    lines = ["account,time,text,image,alt text,campaign"]
    for i in range(rows):
        when = (now() + timedelta(days=1 + i % 28)).astimezone(tz)
        account = "nottscc" if i % 3 else "nottslibraries"
        lines.append(f"{account},{when:%Y-%m-%d} {8 + i % 12:02d}:{(i * 7) % 60:02d},"
                     f"\"Service update {i}: bins, libraries and roads this week, see "
                     f"https://www.nottinghamshire.gov.uk/update/{i}\",,,Winter {i % 4}")
    return "\n".join(lines) + "\n"


def run_once(kind: str, rows: int) -> tuple[float, float, int]:
    with fresh_database(kind) as url, tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "commsdesk.toml"
        config.write_text(CONFIG, encoding="utf-8")
        path = Path(tmp) / "posts.csv"
        path.write_text(csv_text(rows), encoding="utf-8")
        env = dict(os.environ, DATABASE_URL=url, COMMSDESK_CONFIG=str(config),
                   SLACK_BOT_TOKEN="xoxb-bench", SLACK_SIGNING_SECRET="bench",
                   SLACK_API_URL="http://127.0.0.1:9/api/",
                   COMMSDESK_AUDIT_KEY="bench-audit-key-0123456789abcdefghijklmnopqrstuvwxyz")
        for cred in ("NOTTSCC", "LIBRARIES"):
            for part in ("CONSUMER_KEY", "CONSUMER_SECRET", "ACCESS_TOKEN",
                         "ACCESS_TOKEN_SECRET"):
                env[f"X_{cred}_{part}"] = f"bench-{part.lower()}"
        exe = str(Path(sys.executable).with_name("commsdesk"))
        subprocess.run([exe, "db", "upgrade"], env=env, check=True, capture_output=True)
        started = time.monotonic()
        done = subprocess.run([exe, "schedule", "import", str(path), "--no-post"], env=env,
                              capture_output=True, text=True)
        took = time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit(f"import failed: {done.stdout}{done.stderr}")
        import re

        found = re.search(r"\(([0-9.]+) s\)", done.stdout)
        inner = float(found.group(1)) if found else float("nan")
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT count(*) FROM drafts WHERE state = 'pending'"
                                          )).scalar_one()
        engine.dispose()
        return took, inner, int(stored)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgresql", "both"])
    parser.add_argument("--rows", type=int, default=350)
    args = parser.parse_args()
    print(machine_note(), "· load", loadavg())
    out = []
    for kind in db_kinds(args.db):
        took, inner, stored = run_once(kind, args.rows)
        out.append([kind, args.rows, stored, f"{took:.2f} s", f"{inner:.2f} s",
                    "yes" if took < 10 and stored == args.rows else "NO"])
    print(table(["database", "rows", "drafts stored", "command wall time",
                 "check + store (as printed)", "< 10 s"], out))


if __name__ == "__main__":
    main()
