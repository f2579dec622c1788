"""Council governance over HTTP against the emulators: tiered permissions, two
approvals, lockdown, pre-election periods, house style, safeguarding, retention."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from bot import clock
from bot.models import AuditEvent, Draft, Mention
from bot.services import audit, retention
from tests.harness import (
    CARA,
    COLIN,
    E2E_CONFIG,
    ROGUE,
    WENDY,
    Harness,
    block_texts,
    wait_for,
)

YPC_LEAD = "U0YPCLEAD"
YOUTH = "U0YOUTH"
RETURNING = "U0RETURNING"


def governance_config(**extra: Any) -> dict[str, Any]:
    cfg = copy.deepcopy(E2E_CONFIG)
    cfg["accounts"].append({
        "name": "ypc", "network": "x", "handle": "NottsYPC", "user_id": "3333",
        "credentials": "YPC", "approvers_usergroup": "S0YPCLEAD",
        "drafters_usergroup": "S0YOUTH"})
    cfg["accounts"].append({
        "name": "jobs", "network": "x", "handle": "NottsJobs", "user_id": "4444",
        "credentials": "JOBS", "required_approvals": 2})
    cfg["safeguarding"] = {"channel": "C0SAFEGUARD"}
    cfg["house_style"] = {"flagged_word_list": ["asap"]}
    cfg.update(extra)
    return cfg


def start(database_url: str, cfg: dict[str, Any]) -> Harness:
    h = Harness(database_url, config=cfg).start()
    h.slack.add_channel("C0SAFEGUARD", "safeguarding")
    for uid in (YPC_LEAD, YOUTH, RETURNING):
        h.slack.add_user(uid, uid.lower())
    h.slack.add_usergroup("S0YPCLEAD", "ypc-lead", [YPC_LEAD])
    h.slack.add_usergroup("S0YOUTH", "youth-workers", [YOUTH])
    h.slack.add_usergroup("S0RETURNING", "returning-officer", [RETURNING])
    for uid, name in (("3333", "NottsYPC"), ("4444", "NottsJobs")):
        h.x.add_user(uid, name)
    for acc in h.rt.settings.config.accounts:
        h.x.register_credentials(acc.user_id or "",
                                 access_token=h.rt.settings.credentials[("x", acc.credentials)]
                                 ["access_token"])
    return h


@pytest.fixture
def h(database_url: str) -> Iterator[Harness]:
    harness = start(database_url, governance_config())
    yield harness
    harness.stop()


def say(h: Harness, user: str, text: str, channel: str = "C0COMMS") -> str:
    r = h.slack.send_command(user, channel, text)
    assert r.status_code == 200
    return str(r.json()["text"])


def approval(h: Harness, n: int = 1) -> dict[str, Any]:
    """The approval message of draft D<n>."""
    def find() -> dict[str, Any] | None:
        return next((m for m in h.alerts_in("C0APPROVALS")
                     if f"draft *D{n}*" in block_texts(m)), None)
    return wait_for(find, what=f"approval message of D{n}")


def state(h: Harness, draft_id: int = 1) -> str:
    with h.rt.sessions() as s:
        d = s.get(Draft, draft_id)
        return d.state if d else "missing"


def posts(h: Harness) -> list[dict[str, Any]]:
    return [p for p in h.x.posts_created() if not p.get("deleted")]


def test_drafting_out_of_scope_is_refused_and_audited(h: Harness) -> None:
    answer = say(h, WENDY, "post ypc Half-term at the youth centre")
    assert "limited to" in answer and "Nothing was stored" in answer
    assert h.count(Draft) == 0
    assert "draft.refused" in h.audit_actions()
    assert "Draft D1" in say(h, YOUTH, "post ypc Half-term at the youth centre")


def test_account_approver_only_approves_their_accounts(h: Harness) -> None:
    say(h, YOUTH, "post ypc Youth club open Friday")
    msg = approval(h)
    say(h, WENDY, "post nottscc Bins on Friday")
    other = approval(h, 2)
    h.slack.add_reaction(YPC_LEAD, "C0APPROVALS", other["ts"], "white_check_mark")
    wait_for(lambda: any("@NottsCC" in e["text"] for e in h.slack.ephemerals(user=YPC_LEAD)))
    assert state(h, 2) == "pending"
    h.slack.add_reaction(YPC_LEAD, "C0APPROVALS", msg["ts"], "white_check_mark")
    wait_for(lambda: state(h, 1) == "published")
    assert [p["text"] for p in posts(h)] == ["Youth club open Friday"]


def test_two_approvals_need_two_different_approvers(h: Harness) -> None:
    say(h, WENDY, "post jobs We're hiring gritter drivers")
    msg = approval(h)
    wait_for(lambda: "Needs 2 approvals" in block_texts(h.slack.message("C0APPROVALS", msg["ts"])
                                                         or {}))
    h.slack.click_button(CARA, "C0APPROVALS", msg["ts"], "draft_approve", "1")
    wait_for(lambda: "draft.approval_added" in h.audit_actions())
    h.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], "white_check_mark")
    wait_for(lambda: any("already approved" in e["text"] for e in h.slack.ephemerals(user=CARA)))
    assert state(h) == "pending" and posts(h) == []
    h.slack.add_reaction(COLIN, "C0APPROVALS", msg["ts"], "white_check_mark")
    wait_for(lambda: state(h) == "published")
    assert len(posts(h)) == 1


def test_pause_holds_publishing_and_resume_releases_once(h: Harness) -> None:
    assert "Only the comms approvers" in say(h, ROGUE, "pause all because I can")
    assert "Publishing paused for nottscc" in say(h, CARA, "pause nottscc Major incident: flooding")
    say(h, WENDY, "post nottscc Recycling centres open as normal")
    msg = approval(h)
    wait_for(lambda: "Publishing paused" in block_texts(
        h.slack.message("C0APPROVALS", msg["ts"]) or {}))
    h.slack.add_reaction(COLIN, "C0APPROVALS", msg["ts"], "white_check_mark")
    wait_for(lambda: state(h) == "approved")
    h.rt.publisher.sweep()
    wait_for(lambda: "waiting: publishing is paused" in block_texts(
        h.slack.message("C0APPROVALS", msg["ts"]) or {}))
    assert posts(h) == []
    # alerts still arrive while paused
    h.x.add_mention("1111", "jane", "bins not collected")
    h.poll()
    wait_for(lambda: h.alerts_in("C0WASTE"))
    assert "resumed for nottscc" in say(h, CARA, "resume nottscc")
    wait_for(lambda: state(h) == "published")
    h.rt.publisher.sweep()
    assert len(posts(h)) == 1
    actions = h.audit_actions()
    assert "publishing.paused" in actions and "publishing.resumed" in actions
    assert "publishing.pause_refused" in actions


def test_a_publish_taken_over_while_paused_is_looked_for_then_held(h: Harness) -> None:
    """A worker died mid-publish (lease run out, outcome unknown); publishing is paused
    before the sweep takes the draft over. It looks (nothing was posted), then holds the
    draft: nothing goes out until the pause ends, and then once."""
    say(h, WENDY, "post nottscc Recycling centres open as normal")
    approval(h)
    with h.rt.sessions.begin() as s:  # taken by a worker that died before its call
        d = s.get_one(Draft, 1)
        d.state, d.lease_token = "publishing", "dead-worker"
        d.lease_until = clock.now() - timedelta(minutes=5)
    assert "Publishing paused for nottscc" in say(h, CARA, "pause nottscc Major incident")
    h.rt.publisher.sweep()
    assert state(h) == "approved" and posts(h) == []
    h.rt.publisher.sweep()  # held, not retried into a post
    assert posts(h) == []
    card = approval(h)["ts"]
    wait_for(lambda: any("nothing reached X; it waits while publishing is held" in
                         (m.get("text") or "") for m in h.slack.thread("C0APPROVALS", card)),
             what="the thread says why")
    assert "resumed for nottscc" in say(h, CARA, "resume nottscc")
    wait_for(lambda: state(h) == "published")
    h.rt.publisher.sweep()
    assert len(posts(h)) == 1


def test_purdah_block_refuses_until_the_period_ends(database_url: str) -> None:
    today = clock.now().astimezone(clock.now().tzinfo).date()
    cfg = governance_config(purdah=[{
        "name": "County council elections", "start": today - timedelta(days=1),
        "end": today + timedelta(days=1), "accounts": ["nottscc"], "rule": "block"}])
    h = start(database_url, cfg)
    try:
        say(h, WENDY, "post nottscc Vote for the new leisure centre plan")
        msg = approval(h)
        assert "County council elections" in block_texts(msg)
        h.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], "white_check_mark")
        wait_for(lambda: any("is blocked" in e["text"] for e in h.slack.ephemerals(user=CARA)))
        assert state(h) == "pending"
        clock.shift(timedelta(days=3))
        try:
            h.slack.click_button(COLIN, "C0APPROVALS", msg["ts"], "draft_approve", "1")
            wait_for(lambda: state(h) == "published")
        finally:
            clock.shift(-timedelta(days=3))
    finally:
        h.stop()


def test_purdah_second_approval_needs_the_named_group(database_url: str) -> None:
    today = clock.now().date()
    cfg = governance_config(purdah=[{
        "name": "By-election", "start": today, "end": today + timedelta(days=5),
        "rule": "second_approval", "approvers_usergroup": "S0RETURNING"}])
    h = start(database_url, cfg)
    try:
        h.slack.set_usergroup_users("S0COMMS", [CARA, COLIN, RETURNING])
        say(h, WENDY, "post nottscc Polling stations open 7am to 10pm")
        msg = approval(h)
        h.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], "white_check_mark")
        h.slack.add_reaction(COLIN, "C0APPROVALS", msg["ts"], "white_check_mark")
        wait_for(lambda: h.count(AuditEvent, AuditEvent.action == "draft.approval_added") == 2)
        assert state(h) == "pending"
        h.slack.add_reaction(RETURNING, "C0APPROVALS", msg["ts"], "white_check_mark")
        wait_for(lambda: state(h) == "published")
        assert len(posts(h)) == 1
    finally:
        h.stop()


def test_house_style_block_prevents_publishing_and_warnings_show(h: Harness) -> None:
    h.x.add_mention("1111", "jane", "my bin was missed")
    h.poll()
    h.settle()
    say(h, WENDY, "reply M1 Sorry! Email jane@example.com with your address ASAP #binday",
        channel="C0WASTE")
    msg = approval(h)
    text = block_texts(msg)
    assert "House style (blocks publishing)" in text and "email address" in text
    assert "House style (warning)" in text and "ASAP" in text.upper()
    h.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], "white_check_mark")
    wait_for(lambda: any("House style" in e["text"] for e in h.slack.ephemerals(user=CARA)))
    h.rt.publisher.sweep()
    assert state(h) == "pending" and posts(h) == []


def test_safeguarding_mention_is_escalated_and_hidden_in_the_service_channel(h: Harness) -> None:
    h.x.add_mention("1111", "worried", "my neighbour's kid says he is not safe at home, bins everywhere")
    h.poll()
    h.settle()
    urgent = wait_for(lambda: h.alerts_in("C0SAFEGUARD"))[0]
    text = block_texts(urgent)
    assert "URGENT" in text and "not safe at home" in text and "waste" in text
    service = block_texts(h.alerts_in("C0WASTE")[0])
    assert "not safe at home" not in service and "Escalated" in service
    assert "mention.escalated" in h.audit_actions()


def test_whoami(h: Harness) -> None:
    assert "comms approvers group" in say(h, CARA, "whoami")
    mine = say(h, WENDY, "whoami")
    assert "@NottsYPC on X (ypc): you cannot draft" in mine
    assert "@NottsCC on X (nottscc): you can draft" in mine
    assert "approve drafts for @NottsYPC on X" in say(h, YPC_LEAD, "whoami")


def test_retention_purges_personal_data_and_keeps_the_trail(h: Harness, tmp_path: Path) -> None:
    for i in range(3):
        h.x.add_mention("1111", "oldresident", f"bin {i} missed at 12 Elm Road")
    h.poll()
    h.settle()
    say(h, WENDY, "reply M1 Sorry, crew on the way", channel="C0WASTE")
    msg = approval(h)
    h.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], "white_check_mark")
    wait_for(lambda: state(h) == "published")
    clock.shift(timedelta(days=400))
    try:
        dry = retention.run(h.rt, dry_run=True, days=365)
        assert (dry.mentions, dry.drafts) == (3, 1) and dry.audit_records >= 4
        with h.rt.sessions() as s:
            assert s.get_one(Mention, 1).text.startswith("@NottsCC bin 0")
        done = retention.run(h.rt, days=365)
        assert (done.mentions, done.drafts) == (3, 1)
        with h.rt.sessions() as s:
            m = s.get_one(Mention, 1)
            assert m.text == "" and m.author_handle is None and m.purged_at is not None
            assert s.get_one(Draft, 1).text == ""
            assert audit.verify(s).ok
        assert h.count(Mention) == 3  # counts survive for statistics
        assert retention.run(h.rt, days=365).mentions == 0  # nothing twice
    finally:
        clock.shift(-timedelta(days=400))


def test_retention_leaves_a_draft_retried_after_it_was_counted(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """An old failed draft is counted for purging; before the purge writes, someone
    presses Retry (another transaction commits). The draft is live again: its text stays."""
    if not h.database_url.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time: the retry waits for the purge")
    say(h, WENDY, "post nottscc Libraries reopen on Monday", channel="C0WASTE")
    approval(h)
    with h.rt.sessions.begin() as s:
        s.get_one(Draft, 1).state = "failed"
    counted = retention._targets

    def counted_then_retried(s: Session, cutoff: Any) -> Any:
        found = counted(s, cutoff)
        assert found[1] == [1]
        with h.rt.sessions.begin() as other:  # Retry, committed meanwhile
            other.get_one(Draft, 1).state = "approved"
        return found

    monkeypatch.setattr(retention, "_targets", counted_then_retried)
    clock.shift(timedelta(days=400))
    try:
        done = retention.run(h.rt, days=365)
    finally:
        clock.shift(-timedelta(days=400))
    assert done.drafts == 0
    with h.rt.sessions() as s:
        d = s.get_one(Draft, 1)
        assert d.text == "Libraries reopen on Monday" and d.purged_at is None


def test_subject_access_export(h: Harness, tmp_path: Path) -> None:
    h.x.add_mention("1111", "Jane_Res", "bins not collected")
    h.x.add_mention("1111", "someone_else", "pothole")
    h.poll()
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL",))}
    env["DATABASE_URL"] = h.database_url
    out = tmp_path / "sar.jsonl"
    r = subprocess.run([sys.executable, "-m", "bot.cli", "audit", "export", "--format",
                        "jsonl", "--subject", "@jane_res", "--output", str(out)], env=env,
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    kinds = [row["record"] for row in rows]
    assert kinds.count("mention") == 1 and "audit" in kinds
    assert all("pothole" not in json.dumps(row) for row in rows)


def test_retention_cli_dry_run_changes_nothing(h: Harness, tmp_path: Path) -> None:
    from tests.processes import bot_env

    h.x.add_mention("1111", "jane", "bins")
    h.poll()
    env = bot_env(tmp_path, h.config, h.database_url, h.slack.api_url, h.x.root_url,
                  {"COMMSDESK_CLOCK_OFFSET_SECONDS": str(400 * 86400)})
    r = subprocess.run([sys.executable, "-m", "bot.cli", "retention", "run", "--dry-run",
                        "--days", "30"], env=env, capture_output=True, text=True, timeout=60,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "would purge" in r.stdout and "1 mention(s)" in r.stdout
    with Session(h.engine) as s:
        assert s.get_one(Mention, 1).purged_at is None
    r = subprocess.run([sys.executable, "-m", "bot.cli", "retention", "run"], env=env,
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    # retention off is a setting, not an error: exit 0 with the reason, nothing purged
    assert r.returncode == 0 and "Retention is off" in r.stdout, r.stderr
    with Session(h.engine) as s:
        assert s.get_one(Mention, 1).purged_at is None


_ = date  # used in configs above via timedelta arithmetic
