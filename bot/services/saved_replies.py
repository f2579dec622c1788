"""Saved replies: texts the comms team keeps, started from by anyone drafting a reply.

- `/social saved [service]` lists them (anyone); `/social saved add|edit|remove` changes
  them, for the comms approvers group only, asked of Slack at that moment
  (`Approvers.is_approver_live`; no answer: refused). Every change and refusal is audited.
- `/social reply M3 saved:bins-missed`, or "Start from a saved reply" in the Draft reply
  modal, fills in `{author}`, `{ref}` and `{service}` and makes an ordinary draft: it
  still needs approval. The use is stored with the filled text (`saved_reply_uses`), so
  the approval card names the saved reply and says what the draft changed from it, and
  `/social stats` counts uses.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.blockkit.escape import escape, truncate
from bot.blockkit.modals import DRAFT_TEXT_ACTION, DRAFT_TEXT_BLOCK
from bot.clock import now
from bot.db import reading, transaction
from bot.domain import slash
from bot.models import Alert, Draft, Mention, SavedReply, SavedReplyUse
from bot.runtime import Runtime
from bot.services import audit
from bot.services.approvers import UNCONFIRMED, Unconfirmed
from bot.services.mentions import find_mention

MAX_TEXT = 3000
PLACEHOLDERS = ("author", "ref", "service")
_PLACEHOLDER = re.compile(r"\{([^{}\s]{0,40})\}")
ACTION_PICK = "saved_reply_pick"  # the Draft reply modal's "Start from a saved reply"
PICK_BLOCK = "saved_reply"


@dataclass(frozen=True)
class Use:
    """A draft about to start from a saved reply (recorded with the draft)."""

    saved_reply_id: int | None
    scope: str
    name: str
    filled_text: str


def label(scope: str, name: str) -> str:
    return f"{scope}/{name}" if scope else name


# ------------------------------------------------------------------ filling in


def mention_service(s: Session, mention: Mention) -> str:
    """The service a mention is with: its active alert's (the first routed), else ""."""
    row = s.scalars(select(Alert.service).where(
        Alert.mention_id == mention.id, Alert.service.is_not(None)).order_by(
        Alert.active.desc(), Alert.id)).first()
    return row or ""


def fill(text: str, *, author: str, ref: str, service: str) -> str:
    values = {"author": author, "ref": ref, "service": service}
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def fill_for(s: Session, saved: SavedReply, mention: Mention, service: str | None = None
             ) -> str:
    author = f"@{mention.author_handle}" if mention.author_handle else (
        mention.author_name or "there")
    return fill(saved.text, author=author, ref=mention.ref,
                service=service if service is not None else mention_service(s, mention))


def find(s: Session, token: str, service: str = "") -> SavedReply | None:
    """`name` (the service's own first, then everyone's) or `service/name`."""
    scope, _, name = token.rpartition("/")
    if scope:
        return s.scalars(select(SavedReply).where(SavedReply.scope == scope,
                                                  SavedReply.name == name)).first()
    for where in ([service, ""] if service else [""]):
        found = s.scalars(select(SavedReply).where(SavedReply.scope == where,
                                                   SavedReply.name == name)).first()
        if found is not None:
            return found
    return None


def expand(s: Session, cmd: slash.Reply) -> tuple[slash.Reply, Use | None]:
    """`/social reply M3 saved:<name>` -> the same reply with the saved text filled in.
    Raises SlashError when the mention or the saved reply is unknown."""
    if cmd.saved is None:
        return cmd, None
    mention = find_mention(s, cmd.ref)
    if mention is None:
        return cmd, None  # check_command gives its own clear error
    service = mention_service(s, mention)
    saved = find(s, cmd.saved, service)
    if saved is None:
        names = ", ".join(f"`{escape(label(r.scope, r.name))}`"
                          for r in available(s, service)[:20]) or "none yet"
        raise slash.SlashError(f"There is no saved reply called `{cmd.saved}`. "
                               f"Saved replies here: {names}.", slash.USAGE["reply saved"])
    text = fill_for(s, saved, mention, service)
    return (slash.Reply(cmd.ref, text),
            Use(saved.id, saved.scope, saved.name, text))


def record_use(s: Session, draft: Draft, use: Use | None, user: str, via: str) -> None:
    if use is None:
        return
    s.add(SavedReplyUse(draft_id=draft.id, saved_reply_id=use.saved_reply_id,
                        scope=use.scope, name=use.name, filled_text=use.filled_text,
                        used_by=user, via=via))
    audit.record(s, actor=user, action="saved_reply.used", subject_kind="draft",
                 subject_id=draft.id, details={"saved_reply": label(use.scope, use.name),
                                               "via": via,
                                               "changed": draft.text != use.filled_text})


def available(s: Session, service: str = "") -> list[SavedReply]:
    """The service's own saved replies, then everyone's (all of them for "")."""
    q = select(SavedReply).order_by(SavedReply.scope, SavedReply.name)
    if service:
        q = q.where(SavedReply.scope.in_([service, ""]))
    rows = list(s.scalars(q))
    return sorted(rows, key=lambda r: (r.scope != service, r.scope, r.name))


# ------------------------------------------------------------------ /social saved


def check_text(rt: Runtime, text: str) -> str:
    text = text.strip()
    if len(text) > MAX_TEXT:
        raise slash.SlashError(f"A saved reply can be at most {MAX_TEXT} characters "
                               f"(this one is {len(text)}).")
    unknown = sorted({m.group(1) for m in _PLACEHOLDER.finditer(text)} - set(PLACEHOLDERS))
    if unknown:
        raise slash.SlashError(
            "Unknown placeholder " + ", ".join("{" + u + "}" for u in unknown)
            + ": use {author}, {ref} or {service}.")
    return text


def command(rt: Runtime, user: str, cmd: slash.Saved) -> str:
    """The answer to `/social saved ...` (mrkdwn, outside text escaped)."""
    cfg = rt.settings.config
    if cmd.scope and all(sv.name != cmd.scope for sv in cfg.services):
        known = ", ".join(sv.name for sv in cfg.services) or "none configured"
        return (f"There is no service called `{escape(cmd.scope)}`. Services: "
                f"{escape(known)}.")
    if cmd.action == "list":
        return listing(rt, cmd.scope)
    try:  # changing a saved reply: the comms team only, asked of Slack now
        comms: bool | None = rt.approvers.is_approver_live(user)
    except Unconfirmed:
        comms = None
    shown = escape(label(cmd.scope, cmd.name))
    if not comms:
        with transaction(rt.sessions) as s:
            audit.record(s, actor=user, action="saved_reply.refused", subject_kind="saved_reply",
                         subject_id=label(cmd.scope, cmd.name),
                         details={"action": cmd.action,
                                  "reason": "unconfirmed" if comms is None else "not comms"})
        if comms is None:
            return f":no_entry: {UNCONFIRMED} Nothing was changed."
        return (":no_entry: Only the comms team (the approvers group) can add, edit or remove "
                "saved replies. Nothing was changed.")
    if cmd.action != "remove":
        try:
            text = check_text(rt, cmd.text)
        except slash.SlashError as err:
            return err.text()
    with transaction(rt.sessions) as s:
        row = s.scalars(select(SavedReply).where(SavedReply.scope == cmd.scope,
                                                 SavedReply.name == cmd.name)).first()
        if cmd.action == "add":
            if row is not None:
                return (f"There is already a saved reply `{shown}`: use "
                        f"`/social saved edit {shown} ...` to change it.")
            row = SavedReply(scope=cmd.scope, name=cmd.name, text=text, created_by=user,
                             updated_by=user)
            s.add(row)
            s.flush()
            audit.record(s, actor=user, action="saved_reply.added", subject_kind="saved_reply",
                         subject_id=row.id, details={"name": label(cmd.scope, cmd.name),
                                                     "text": text})
            return (f":floppy_disk: Saved reply `{shown}` added. Use it with "
                    f"`/social reply &lt;ref&gt; saved:{shown}` or from a Draft reply button.")
        if row is None:
            return f"There is no saved reply `{shown}`. See them with `/social saved`."
        if cmd.action == "edit":
            before = row.text
            row.text, row.updated_by, row.updated_at = text, user, now()
            audit.record(s, actor=user, action="saved_reply.edited", subject_kind="saved_reply",
                         subject_id=row.id, details={"name": label(cmd.scope, cmd.name),
                                                     "before": before, "text": text})
            return f":floppy_disk: Saved reply `{shown}` updated."
        audit.record(s, actor=user, action="saved_reply.removed", subject_kind="saved_reply",
                     subject_id=row.id, details={"name": label(cmd.scope, cmd.name),
                                                 "text": row.text})
        s.delete(row)
        return f":wastebasket: Saved reply `{shown}` removed."


def listing(rt: Runtime, service: str = "") -> str:
    with reading(rt.sessions) as s:
        rows = available(s, service)
        uses = dict(s.execute(select(SavedReplyUse.saved_reply_id, func.count()).group_by(
            SavedReplyUse.saved_reply_id)).all())
        if not rows:
            return ("No saved replies yet. The comms team adds them with "
                    "`/social saved add &lt;name&gt; &lt;text&gt;`.")
        where = f" for {escape(service)}" if service else ""
        lines = [f":floppy_disk: *Saved replies{where}* (start a draft with "
                 "`/social reply &lt;ref&gt; saved:&lt;name&gt;`)"]
        for r in rows[:50]:
            n = uses.get(r.id, 0)
            lines.append(f"• `{escape(label(r.scope, r.name))}` ({n} use{'' if n == 1 else 's'})"
                         f": {escape(truncate(r.text.replace(chr(10), ' '), 200))}")
        if len(rows) > 50:
            lines.append(f"…and {len(rows) - 50} more.")
    return "\n".join(lines)


# ------------------------------------------------------------------ the approval card


def _changes(before: str, after: str, limit: int = 4) -> list[str]:
    a, b = before.split(), after.split()
    out: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        old, new = " ".join(a[i1:i2]), " ".join(b[j1:j2])
        if op == "replace":
            out.append(f"“{escape(truncate(old, 80))}” → “{escape(truncate(new, 80))}”")
        elif op == "delete":
            out.append(f"removed “{escape(truncate(old, 80))}”")
        else:
            out.append(f"added “{escape(truncate(new, 80))}”")
    if len(out) > limit:
        more = len(out) - limit
        out = [*out[:limit], f"{more} more change{'s' if more > 1 else ''}"]
    return out


def card_line(s: Session, draft: Draft) -> str | None:
    """mrkdwn for the approval card: which saved reply the draft came from, and what was
    changed from it (outside text escaped)."""
    use = s.scalars(select(SavedReplyUse).where(SavedReplyUse.draft_id == draft.id)).first()
    if use is None:
        return None
    name = escape(label(use.scope, use.name))
    if draft.text == use.filled_text:
        return f":floppy_disk: From saved reply `{name}`, unchanged."
    if " ".join(draft.text.split()) == " ".join(use.filled_text.split()):
        return f":floppy_disk: From saved reply `{name}`, changed: spacing only."
    return (f":floppy_disk: From saved reply `{name}`, *changed*: "
            + "; ".join(_changes(use.filled_text, draft.text)) + ".")


# ------------------------------------------------------------------ stats


def usage(s: Session, start: datetime | None = None, end: datetime | None = None
          ) -> list[tuple[str, int]]:
    q = select(SavedReplyUse.scope, SavedReplyUse.name, func.count()).group_by(
        SavedReplyUse.scope, SavedReplyUse.name)
    if start is not None:
        q = q.where(SavedReplyUse.created_at >= start)
    if end is not None:
        q = q.where(SavedReplyUse.created_at < end)
    rows = [(label(sc, n), c) for sc, n, c in s.execute(q)]
    return sorted(rows, key=lambda r: (-r[1], r[0]))


def stats_line(s: Session, start: datetime | None, end: datetime | None) -> str:
    rows = usage(s, start, end)
    total = sum(c for _, c in rows)
    if not total:
        return "Saved replies used: *0*"
    top = ", ".join(f"{escape(n)} {c}" for n, c in rows[:5])
    return f"Saved replies used: *{total}* ({top})"


# ------------------------------------------------------------------ the Draft reply modal


def offer_in_modal(s: Session, view: dict[str, Any], alert_id: int) -> dict[str, Any]:
    """The Draft reply modal (opened from this alert) with "Start from a saved reply":
    the alert's service's saved replies first, then everyone's (when there are any)."""
    alert = s.get(Alert, alert_id)
    rows = available(s, (alert.service or "") if alert else "")[:100]
    if not rows:
        return view
    options = [{"text": {"type": "plain_text", "text": truncate(label(r.scope, r.name), 75)},
                "value": str(r.id)} for r in rows]
    picker = {"type": "actions", "block_id": PICK_BLOCK, "elements": [
        {"type": "static_select", "action_id": ACTION_PICK,
         "placeholder": {"type": "plain_text", "text": "Start from a saved reply"},
         "options": options}]}
    blocks = list(view["blocks"])
    at = next((i for i, b in enumerate(blocks) if b.get("type") == "input"), len(blocks))
    blocks.insert(at, picker)
    return {**view, "blocks": blocks}


def picked(rt: Runtime, view: dict[str, Any], saved_id: int) -> dict[str, Any] | None:
    """The modal with the picked saved reply's filled text in the draft box (a new
    action_id, so Slack shows the new initial value), and the use in its metadata."""
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
        mention_id = int(meta["mention_id"])
    except (KeyError, TypeError, ValueError):
        return None
    with reading(rt.sessions) as s:
        saved = s.get(SavedReply, saved_id)
        mention = s.get(Mention, mention_id)
        if saved is None or mention is None:
            return None
        service = mention_service(s, mention)
        text = fill_for(s, saved, mention, service)
        meta["saved"] = saved.id  # filled in again on submit (metadata holds 3,000 chars)
    blocks = []
    for b in view.get("blocks", []):
        if b.get("block_id") == DRAFT_TEXT_BLOCK:
            element = {**b["element"], "initial_value": text[:3000],
                       "action_id": f"{DRAFT_TEXT_ACTION}~{saved.id}"}
            b = {**b, "element": element}
        blocks.append(b)
    keep = ("type", "callback_id", "title", "submit", "close")
    return {**{k: view[k] for k in keep if k in view}, "blocks": blocks,
            "private_metadata": json.dumps(meta)}


def use_from_modal(s: Session, meta: dict[str, Any]) -> Use | None:
    """The saved reply the modal started from (its metadata), filled in as it was shown."""
    try:
        saved = s.get(SavedReply, int(meta["saved"]))
        mention = s.get(Mention, int(meta["mention_id"]))
    except (KeyError, TypeError, ValueError):
        return None
    if saved is None or mention is None:
        return None
    return Use(saved.id, saved.scope, saved.name, fill_for(s, saved, mention))


def home_lines(s: Session) -> list[str]:
    """App Home (comms team): each saved reply, its use count and its text (escaped)."""
    uses = dict(s.execute(select(SavedReplyUse.saved_reply_id, func.count()).group_by(
        SavedReplyUse.saved_reply_id)).all())
    return [f"• `{escape(label(r.scope, r.name))}` ({uses.get(r.id, 0)} used): "
            f"{escape(truncate(r.text.replace(chr(10), ' '), 120))}" for r in available(s)]
