"""Shared pieces for the benchmarks: databases, a 10-service config, realistic mentions.

Run the scripts from the repository root as modules (``python -m bench.ingest``) so
that ``commsdesk`` (the editable install) and ``tests.conftest`` both import.
"""

from __future__ import annotations

import contextlib
import os
import platform
import random
import statistics
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from integrations.base import FetchedMention

PG_ADMIN_URL = os.environ.get(
    "COMMSDESK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

# ten services, each with its own channel and whole-word keywords
SERVICES: list[dict[str, Any]] = [
    {"name": "waste", "channel": "C0WASTE", "keywords": ["bin", "bins", "recycling", "tip"]},
    {"name": "highways", "channel": "C0HIGHWAYS", "keywords": ["pothole", "potholes", "gritting"]},
    {"name": "libraries", "channel": "C0LIBRARIES", "keywords": ["library", "libraries"]},
    {"name": "adultcare", "channel": "C0ADULTCARE", "keywords": ["care home", "carer"]},
    {"name": "youth", "channel": "C0YOUTH", "keywords": ["youth centre", "youth club"]},
    {"name": "parks", "channel": "C0PARKS", "keywords": ["park", "playground"]},
    {"name": "trading", "channel": "C0TRADING", "keywords": ["scam", "rogue trader"]},
    {"name": "planning", "channel": "C0PLANNING", "keywords": ["planning application"]},
    {"name": "counciltax", "channel": "C0TAX", "keywords": ["council tax"]},
    {"name": "transport", "channel": "C0TRANSPORT", "keywords": ["bus", "buses"]},
]
DEFAULT_CHANNEL = "C0COMMS"

BENCH_CONFIG: dict[str, Any] = {
    "timezone": "Europe/London",
    "poll_interval_seconds": 60,
    "slack": {
        "approvals_channel": "C0APPROVALS",
        "default_channel": DEFAULT_CHANNEL,
        "approvers_usergroup": "S0COMMS",
    },
    "accounts": [
        {"name": "nottscc", "network": "x", "handle": "NottsCC", "user_id": "1111",
         "credentials": "NOTTSCC"},
    ],
    "services": SERVICES,
}

# one sentence per service that contains one of its keywords
_TOPICAL = {
    "waste": "the bins weren't collected on {street} again this week",
    "highways": "there is a huge pothole outside {place} on {street}",
    "libraries": "is the library on {street} open on Sunday?",
    "adultcare": "my mum's care home on {street} hasn't had a visit",
    "youth": "the youth club near {place} has been closed for a month",
    "parks": "the playground at {place} has broken swings",
    "trading": "a rogue trader knocked on doors on {street} today",
    "planning": "who do I ask about the planning application for {place}?",
    "counciltax": "my council tax bill for {street} is wrong",
    "transport": "the 7:40 bus from {place} never turned up",
}
_NEUTRAL = [
    "thank you for the help earlier",
    "great work by your team at {place} this morning",
    "how do I contact someone about {street}?",
    "the website has been down since lunchtime",
    "when is the next meeting about {place}?",
]
_STREETS = ["Elm Road", "Mansfield Road", "Station Street", "Church Lane", "High Street",
            "Derby Road", "Carlton Hill", "Victoria Street"]
_PLACES = ["West Bridgford", "Beeston", "Arnold", "Hucknall", "Worksop", "Newark",
           "Retford", "Southwell", "Eastwood", "Ollerton"]
_EXTRAS = ["", " Please sort it.", " Not good enough 😡", " Thanks in advance!",
           " #Notts", " https://t.co/abc123XYZ", " This is the third time!!"]


def mention_text(rng: random.Random, services: list[str]) -> str:
    """A resident's tweet about the given services (none: not for any service)."""
    fill = {"street": rng.choice(_STREETS), "place": rng.choice(_PLACES)}
    parts = [_TOPICAL[s].format(**fill) for s in services] or [
        rng.choice(_NEUTRAL).format(**fill)]
    return "@NottsCC " + " and ".join(parts) + rng.choice(_EXTRAS)


def fetched(external_id: int, text: str, base: datetime, rng: random.Random) -> FetchedMention:
    user = rng.randrange(10_000, 99_999)
    return FetchedMention(
        external_id=str(external_id),
        text=text,
        author_external_id=str(user),
        author_handle=f"resident{user}",
        author_name=f"Resident {user}",
        url=f"https://x.com/resident{user}/status/{external_id}",
        posted_at=base + timedelta(seconds=external_id % 100_000),
        conversation_id=str(external_id),
        in_reply_to_external_id=None,
    )


def mixed_mentions(n: int, seed: int = 3) -> list[FetchedMention]:
    """n mentions: ~70% match one service, ~10% two, ~20% none (default channel)."""
    rng = random.Random(seed)
    names = [s["name"] for s in SERVICES]
    base = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
    out = []
    for i in range(n):
        r = rng.random()
        picked = rng.sample(names, 1 if r < 0.7 else 2) if r < 0.8 else []
        out.append(fetched(1_800_000_000_000_000_000 + i, mention_text(rng, picked), base, rng))
    return out


# ---------------------------------------------------------------- databases


@contextlib.contextmanager
def fresh_database(kind: str) -> Iterator[str]:
    """A URL for an empty database: a temp SQLite file, or a new PostgreSQL schema
    (dropped afterwards)."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="commsdesk-bench-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def db_kinds(arg: str) -> list[str]:
    return ["sqlite", "postgresql"] if arg == "both" else [arg]


# ---------------------------------------------------------------- reporting


def machine_note() -> str:
    return (f"{platform.node()} · {os.cpu_count()} CPU(s) · Python {platform.python_version()} "
            f"· SQLAlchemy {sa.__version__}")


def pct(values: list[float], q: int) -> float:
    """The q-th percentile (1-99), linear interpolation between closest ranks."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A GitHub-flavoured Markdown table (readable in a terminal too)."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
            for r in cells]
    return "\n".join([line, sep, *body])


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def wait_quiet(threshold: float | None = None, max_wait: float = 900.0) -> str:
    """Wait (up to max_wait s) until the 1-minute load average is below threshold, so other
    work on a small machine does not end up in the figures. Returns the load it started at.
    BENCH_MAX_LOAD sets the threshold (default 0.8; 0 disables waiting)."""
    import time

    limit = float(os.environ.get("BENCH_MAX_LOAD", "0.8")) if threshold is None else threshold
    deadline = time.monotonic() + max_wait
    while limit > 0 and os.getloadavg()[0] >= limit and time.monotonic() < deadline:
        time.sleep(5)
    return loadavg()
