"""`commsdesk schedule import FILE.csv` (issue 21): many drafts from one CSV file.

Every row is checked before anything is stored; one bad row stores nothing and the
report names each bad row and why. A good file becomes drafts awaiting approval (one
per row and account), shown on one batch card in the approvals channel where an
approver approves row by row or all at once. Each draft is created and audited on its
own, exactly as `/social schedule` makes it."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bot.clock import now
from bot.db import transaction
from bot.domain import slash, tracking
from bot.models import Draft, DraftImage, DraftVersion
from bot.runtime import Runtime
from bot.services import audit, groups
from bot.services.accounts import account_ids
from bot.services.drafting import check_length
from bot.services.images import MAX_IMAGE_BYTES, sniff
from integrations.base import Capability

MAX_ROWS = 350  # as Hootsuite and Sprout take
COLUMNS = {  # header (lower case, spaces as _) -> field
    "account": "accounts", "accounts": "accounts", "account(s)": "accounts",
    "time": "time", "when": "time", "scheduled_for": "time", "date": "time",
    "text": "text", "message": "text",
    "image": "image", "image_path": "image", "image_file": "image",
    "alt_text": "alt_text", "alt": "alt_text",
    "campaign": "campaign",
}
REQUIRED = ("accounts", "time", "text")
TIME_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M")


@dataclass(frozen=True)
class PlannedRow:
    line: int  # the CSV line (the header is line 1)
    accounts: tuple[str, ...]
    when: datetime  # UTC
    text: str
    texts: dict[str, str]  # per account: links to council domains tagged for its network
    image: tuple[str, str, bytes] | None  # (file name, MIME type, bytes)
    alt_text: str | None
    campaign: str | None


@dataclass
class Checked:
    rows: list[PlannedRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "row 3: ..." (the file's line)

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.rows)


@dataclass(frozen=True)
class Imported:
    group_ref: str
    group_id: int
    draft_ids: list[int]


def _key(header: str) -> str:
    return header.strip().lower().replace(" ", "_").replace("-", "_")


def _parse_time(value: str, tz: object) -> datetime | None:
    for fmt in TIME_FORMATS:
        try:
            return datetime.strptime(value.strip(), fmt).replace(tzinfo=tz)  # type: ignore[arg-type]
        except ValueError:
            continue
    return None


def check(rt: Runtime, path: Path, progress: Callable[[int], None] | None = None) -> Checked:
    """Read and check every row; nothing is stored."""
    out = Checked()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        out.problems.append(f"{path}: cannot be read ({exc.strerror or exc}).")
        return out
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        out.problems.append(f"{path.name}: is not UTF-8 text; save it as “CSV UTF-8”.")
        return out
    reader = csv.reader(io.StringIO(content, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        out.problems.append(f"{path.name}: is empty; the first line must name the columns "
                            "(account, time, text, image, alt text, campaign).")
        return out
    except csv.Error as exc:
        out.problems.append(f"{path.name}: line 1 is not CSV ({exc}).")
        return out
    fields: dict[int, str] = {}
    for i, name in enumerate(header):
        key = COLUMNS.get(_key(name))
        if key is None and name.strip():
            out.problems.append(f"line 1: unknown column “{name.strip()}”; the columns are "
                                "account, time, text, image, alt text, campaign.")
        elif key is not None:
            fields[i] = key
    missing = [c for c in REQUIRED if c not in fields.values()]
    if missing:
        out.problems.append(f"line 1: the column(s) {', '.join(missing)} are missing.")
    if out.problems:
        return out
    config = rt.settings.config
    base = path.parent
    t_now = now()
    count = 0
    try:
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            count += 1
            row = {f: "" for f in COLUMNS.values()}
            for i, v in enumerate(values):
                if i in fields:
                    row[fields[i]] = v.strip()
                elif v.strip():
                    out.problems.append(f"row {line}: has more values than the header has "
                                        "columns (a comma in the text needs the text in "
                                        "\"double quotes\").")
            planned = _check_row(rt, config, base, line, row, t_now, out.problems)
            if planned is not None:
                out.rows.append(planned)
            if progress:
                progress(1)
    except csv.Error as exc:
        out.problems.append(f"row {reader.line_num}: is not valid CSV ({exc}).")
    if count == 0:
        out.problems.append(f"{path.name}: has no rows after the header.")
    if count > MAX_ROWS:
        out.problems.append(f"{path.name}: has {count} rows; at most {MAX_ROWS} go in one "
                            "import. Split the file.")
    return out


def _check_row(rt: Runtime, config: object, base: Path, line: int, row: dict[str, str],
               t_now: datetime, problems: list[str]) -> PlannedRow | None:
    bad: list[str] = []
    names = tuple(a.strip() for a in row["accounts"].replace(";", ",").split(",") if a.strip())
    known = [a for a in names if config.account(a) is not None]  # type: ignore[attr-defined]
    if not names:
        bad.append("no account")
    for a in names:
        if config.account(a) is None:  # type: ignore[attr-defined]
            bad.append(f"there is no account called “{a}”")
    if len(set(names)) != len(names):
        bad.append("an account is named twice")
    when = None
    if not row["time"]:
        bad.append("no time (YYYY-MM-DD HH:MM)")
    else:
        local = _parse_time(row["time"], config.tz)  # type: ignore[attr-defined]
        if local is None:
            bad.append(f"the time “{row['time']}” is not YYYY-MM-DD HH:MM")
        elif local <= t_now:
            bad.append(f"the time {row['time']} is in the past")
        else:
            when = local.astimezone(t_now.tzinfo)
    text = row["text"]
    texts: dict[str, str] = {}
    campaign = row["campaign"] or None
    if not text:
        bad.append("no text")
    else:
        domains = config.links.tracked_domains  # type: ignore[attr-defined]
        for a in known:
            texts[a] = tracking.tag(text, rt.network(a).network, campaign, domains)
            try:
                check_length(rt, a, texts[a])
            except slash.SlashError as err:
                bad.append(f"for {a}: {err.message}")
    image: tuple[str, str, bytes] | None = None
    alt = row["alt_text"] or None
    if row["image"]:
        p = Path(row["image"])
        p = p if p.is_absolute() else base / p
        try:
            data = p.read_bytes()
        except OSError:
            bad.append(f"the image {row['image']} cannot be read")
            data = b""
        if data:
            mime = sniff(data)
            if mime is None:
                bad.append(f"{row['image']} is not a JPEG, PNG, GIF or WebP image")
            elif len(data) > MAX_IMAGE_BYTES:
                bad.append(f"{row['image']} is larger than "
                           f"{MAX_IMAGE_BYTES // (1024 * 1024)} MB")
            else:
                image = (p.name, mime, data)
            for a in known:
                if Capability.MEDIA not in rt.network(a).capabilities:
                    bad.append(f"{a}'s network cannot post images")
        if not alt:
            bad.append("the image has no alt text (a description for people who cannot "
                       "see it)")
    elif alt:
        bad.append("alt text given but no image")
    if campaign and len(campaign) > 128:
        bad.append("the campaign name is longer than 128 characters")
    if bad:
        problems.append(f"row {line}: " + "; ".join(bad) + ".")
        return None
    assert when is not None
    return PlannedRow(line, names, when, text, texts, image, alt, campaign)


def store(rt: Runtime, checked: Checked, author: str, source: str,
          progress: Callable[[int], None] | None = None) -> Imported:
    """One transaction: every draft (audited each), its image, the batch and its card."""
    if not checked.ok:
        raise ValueError("only a file with no bad rows is stored")
    channel = rt.settings.config.slack.approvals_channel
    with transaction(rt.sessions) as s:
        accounts = account_ids(rt, s)
        group = groups.create_group(s, kind="batch", name=source, author=author, channel=channel)
        # drafts.create's rows and audit record for each draft, inserted in bulk (one flush
        # per table, not one per draft: 350 rows in one statement each)
        made: list[tuple[PlannedRow, Draft]] = []
        for row in checked.rows:
            for name in row.accounts:
                made.append((row, Draft(account_id=accounts[name], author=author,
                                        text=row.texts[name], kind="post", mention_id=None,
                                        scheduled_for=row.when, approval_channel=channel,
                                        state="pending", version=1)))
        s.add_all([d for _, d in made])
        s.flush()
        for n, (row, draft) in enumerate(made, 1):
            s.add(DraftVersion(draft_id=draft.id, version=1, text=draft.text,
                               edited_by=author))
            audit.record(s, actor=author, action="draft.created", subject_kind="draft",
                         subject_id=draft.id, details={
                             "kind": "post", "account_id": draft.account_id, "mention_id": None,
                             "text": draft.text, "via": "csv",
                             "scheduled_for": row.when.isoformat(),
                             "batch": group.id, "row": row.line, "campaign": row.campaign})
            if row.image is not None:
                filename, mime, data = row.image
                digest = hashlib.sha256(data).hexdigest()
                s.add(DraftImage(draft_id=draft.id, slack_file_id=f"csv:{digest[:28]}",
                                 filename=filename, mime_type=mime, size=len(data),
                                 sha256=digest, data=data, alt_text=row.alt_text,
                                 added_by=author, draft_version=1))
            groups.add_item(s, group, draft, row.line, row.campaign)
            if progress and (n == len(made) or n % 25 == 0):
                progress(25 if n % 25 == 0 else n % 25)
        ids = [d.id for _, d in made]
        audit.record(s, actor=author, action="batch.imported", subject_kind="batch",
                     subject_id=group.id, details={"file": source, "rows": len(checked.rows),
                                                   "drafts": len(ids)})
        groups.post_card(s, group)
        ref, gid = group.ref, group.id
    rt.kick_outbox()
    return Imported(ref, gid, ids)
