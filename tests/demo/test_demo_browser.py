"""`commsdesk demo` in Debian's Chromium: issue 5's story, played in the page as a person would.

The demo runs as `commsdesk demo` does (a subprocess, free port, its own data folder);
screenshots of each step land in artifacts/demo/.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "demo"
MENTION = "Deep pothole on Main Street, Calverton outside the Co-op, burst my tyre (ref Z81)"
REPLY = "Sorry about your tyre! Our highways team will inspect Main Street within 48 hours."

pytestmark = pytest.mark.timeout(150)


def _need_browser() -> None:
    problem = None
    if not Path(CHROMIUM).exists():
        problem = f"{CHROMIUM} is missing: scripts/setup installs Debian's chromium"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is missing: pip install -e '.[dev]'"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)


class DemoProcess:
    """`commsdesk demo` in a subprocess; its URL is read from what it prints."""

    def __init__(self, data_dir: Path, port: int):
        self.data_dir, self.port = data_dir, port
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "demo", "--port", str(port),
             "--data", str(data_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self._wait_for_url()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    def _wait_for_url(self, timeout: float = 40.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            match = re.search(r"open (http://\S+)", line)
            if match:
                return match.group(1)
        self.kill()
        raise AssertionError("the demo did not print its URL:\n" + "".join(self.output))

    def state(self, person: str, channel: str) -> dict[str, object]:
        url = f"{self.url}state?as={person}&ch={channel}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.loads(resp.read())

    def stop(self) -> int:
        """Ctrl-C, as a person would; the demo saves its state and exits 0."""
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                "the demo did not stop on Ctrl-C:\n" + "".join(self.output)) from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoProcess]:
    _need_browser()
    proc = DemoProcess(tmp_path / "demo-data", free_port())
    try:
        yield proc
    finally:
        proc.kill()


def test_the_whole_story_in_the_browser(demo: DemoProcess) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 720})  # a laptop's window
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        expect.set_options(timeout=20_000)

        def shot(name: str) -> None:
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"))

        def top_message(text: str):  # type: ignore[no-untyped-def]
            return page.locator("#sk-main .sk-msgs > article", has_text=text)

        def channel(name: str) -> None:
            page.locator("#sk-sidebar").get_by_role(
                "button", name=re.compile(rf"channel {re.escape(name)}(\s|$)")).click()
            expect(page.locator("#sk-main h3")).to_contain_text(name)

        def status(text: str | re.Pattern[str]) -> None:
            expect(page.locator("#status")).to_contain_text(text)

        def once(text: str) -> None:
            """Exactly one message only visible to me in this channel says `text`, and stays
            the only one (a second confirmation would follow within a second)."""
            mine = page.locator("#sk-main article.ephemeral", has_text=text)
            expect(mine).to_have_count(1)
            page.wait_for_timeout(1500)
            expect(mine).to_have_count(1)

        def compose(text: str) -> None:
            page.locator("#compose-text").fill(text)
            page.locator("#composer").get_by_role("button", name="Send").click()

        def submitted() -> str:
            """The draft the status line says was just made (the demo seeds some first)."""
            status(re.compile(r"Submitted as draft D\d+"))
            found = re.search(r"draft (D\d+)", page.locator("#status").inner_text())
            assert found
            return found.group(1)

        page.goto(demo.url)
        for network in ("X", "Mastodon", "Bluesky", "Facebook", "Flickr", "Pinterest"):
            expect(page.locator("#subtitle")).to_contain_text(network)
        # the seeded resident mentions reach their service channels within seconds
        page.get_by_label("You are").select_option("U0WENDY")
        expect(top_message("green bin")).to_be_visible()
        # every network's mentions land in the same channels, labelled with their network
        expect(top_message("recycling centre at Giltbrook")).to_contain_text("Mastodon")
        shot("01-seeded-mentions")
        channel("comms")  # outside text shows as typed: decoded, never as markup
        expect(top_message("Rufford Abbey <3 brilliant day out & the kids")).to_be_visible()
        expect(top_message("play area at Rufford")).to_contain_text("Flickr")
        channel("libraries")
        expect(top_message("library in Retford")).to_contain_text("Facebook")
        channel("highways")
        expect(top_message("street light out on Chilwell Road")).to_contain_text("Bluesky")

        # a resident posts about a pothole on the public pane
        form = page.locator("#mention-form")
        form.get_by_label("Mention").select_option(label="@NottsCC")
        form.get_by_label("Resident's handle").fill("calverton_pat")
        form.get_by_label("Post text").fill(MENTION)
        form.get_by_role("button", name="Post mention").click()
        expect(page.locator("#public-posts article.pub-post", has_text="ref Z81")).to_be_visible()

        # ... and it appears in Highways, where the highways officer drafts a reply
        page.get_by_label("You are").select_option("U0HARRY")
        expect(page.locator("#sk-main h3")).to_contain_text("highways")
        alert = top_message("ref Z81")
        expect(alert).to_be_visible()
        expect(alert).to_contain_text("keyword “pothole”")
        # at 1280x720 the alert's buttons sit on one row, and the page fits the window
        buttons = alert.locator(".sk-actions").first.get_by_role("button")
        expect(buttons).to_have_count(4)
        tops = {round(b.bounding_box()["y"]) for b in buttons.all()}  # type: ignore[index]
        assert len(tops) == 1, f"the alert's buttons wrap: {tops}"
        assert page.evaluate("document.documentElement.scrollHeight") <= 720
        expect(page.locator("#sk-sidebar .sk-chan.selected .count")).to_have_count(0)
        shot("02-pothole-in-highways")
        alert.get_by_role("button", name="Draft reply").click()
        dialog = page.get_by_role("dialog", name="Draft a reply")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("Replying as @NottsCC on X")  # the network named
        dialog.get_by_label("Your draft").fill(REPLY)
        expect(dialog).to_contain_text(f"{len(REPLY)}/280 characters")  # live count, views.update
        shot("03-draft-modal")
        dialog.get_by_role("button", name="Send for approval").click()
        expect(dialog).to_be_hidden()
        expect(alert).to_contain_text("Draft pending approval")
        d1 = submitted()
        once(d1)  # one confirmation per draft
        alert.scroll_into_view_if_needed()
        shot("03b-alert-and-draft")  # docs/demo.png

        # /social post confirms once too; whoami names each account with its network
        compose("/social post nottscc Gritters are out tonight on the A60 and A614")
        d2 = f"D{int(d1[1:]) + 1}"  # the next draft
        status(f"Submitted as draft {d2}")
        once(d2)
        compose("/social whoami")
        whoami = page.locator("#sk-main article.ephemeral", has_text="you can draft")
        expect(whoami).to_contain_text("@NottsCC on X (nottscc): you can draft")
        expect(whoami).to_contain_text("@NottsCC on Mastodon (nottscc-mastodon): you can draft")

        # the officer's own ✅ on their own draft publishes nothing, and says why
        channel("comms-approvals")
        draft = top_message(REPLY)
        expect(draft).to_contain_text("Waiting for approval")
        draft.get_by_role("button", name="React ✅").click()
        refusal = page.locator("#sk-main article.ephemeral", has_text="nothing was published")
        expect(refusal).to_be_visible()
        expect(refusal).to_contain_text(re.compile(r"Only members of the comms approvers"))
        status(re.compile(rf"^Your ✅ on {d1} was refused: Only members of the comms "
                          r"approvers group @comms-approvers"))
        expect(draft).to_contain_text("Waiting for approval")
        shot("04-own-approval-refused")

        # a comms officer who is not the author approves with ✅
        page.get_by_label("You are").select_option("U0PRIYA")
        expect(page.locator("#sk-main h3")).to_contain_text("comms-approvals")
        expect(page.locator("#sk-main")).not_to_contain_text("nothing was published")  # Harry's
        draft.get_by_role("button", name="React ✅").click()
        status(f"Reaction ✅ added: {d1} approved.")
        expect(draft).to_contain_text("Published (approved by @Priya Sharma)")
        # the seeded plans (issue 21): one campaign card with a variant per network, the
        # council link tagged for each; the CSV batch on its own card, at step 1 of 2
        campaign = top_message("Campaign C1")
        expect(campaign).to_contain_text("Summer Reading Challenge")
        expect(campaign).to_contain_text("Approve all 3 pending")
        for account, network in (("nottscc", "x"), ("nottscc-mastodon", "mastodon"),
                                 ("nottscc-bluesky", "bluesky")):
            expect(campaign).to_contain_text(f"{account} ({network})")
            expect(campaign).to_contain_text(f"utm_source={network}&utm_medium=social")
        batch = top_message("youth-summer-programme.csv")
        expect(batch).to_contain_text("Approve all 4 pending")
        expect(batch).to_contain_text("step 1 of 2")
        campaign.scroll_into_view_if_needed()
        shot("05b-campaign-card")
        expect(draft.locator(".sk-thread")).to_contain_text("x.com/NottsCC/status/")
        shot("05-approved-and-published")

        # the reply appears under the mention on the public pane
        mention_post = page.locator("#public-posts article.pub-post", has_text="ref Z81")
        reply = mention_post.locator(".pub-replies article.pub-post.council", has_text=REPLY)
        expect(reply).to_be_visible()
        expect(reply).to_contain_text("@NottsCC")
        reply.scroll_into_view_if_needed()
        page.locator("section.public").screenshot(path=str(ARTIFACTS / "06-reply-on-public-pane.png"))

        # the audit pane shows each step
        audit = page.locator("#audit")
        for action in ("mention.received", "draft.created",
                       "draft.decision_refused", "draft.approved", "draft.publishing",
                       "draft.published"):
            expect(audit.locator(f'li[data-action="{action}"]').first).to_be_visible()
        expect(audit.locator('li[data-action="draft.decision_refused"]').first) \
            .to_contain_text("Harry Clarke")
        expect(audit.locator('li[data-action="draft.approved"]').first) \
            .to_contain_text("Priya Sharma")
        expect(audit).to_contain_text("chain intact")
        expect(audit.locator('li[data-action="draft.decision_refused"]').first) \
            .to_contain_text("the comms approvers group @comms-approvers")
        assert not re.search(r"<[@#!]", audit.inner_text()), "raw Slack markup in the audit pane"
        page.locator("section.audit").screenshot(path=str(ARTIFACTS / "07-audit-trail.png"))

        # and back in Highways, the alert says it was answered
        page.get_by_label("You are").select_option("U0HARRY")
        expect(top_message("ref Z81")).to_contain_text("Replied by @Harry Clarke")
        page.locator("#sk-sidebar [data-go=home]").click()  # the App Home names networks too
        expect(page.locator("#sk-main")).to_contain_text(f"{d2} · new post as @NottsCC on X")
        # ... and this week's calendar (issue 21), with the seeded batch waiting in it
        expect(page.locator("#sk-main")).to_contain_text("Calendar · week")
        expect(page.locator("#sk-main")).to_contain_text("waiting for approval · Youth summer")
        assert not errors, errors
        browser.close()

    # Ctrl-C stops everything cleanly; a second run resumes the same demo
    assert demo.stop() == 0, "".join(demo.output)
    assert (demo.data_dir / "slack-state.json").exists()
    again = DemoProcess(demo.data_dir, free_port())
    try:
        deadline = time.monotonic() + 10
        while not any("resumed" in line for line in again.output):
            assert time.monotonic() < deadline, "".join(again.output)
            time.sleep(0.05)
        regions = again.state("U0PRIYA", "C0APPROVALS")["regions"]
        assert REPLY in regions["sk-main"]  # type: ignore[index]
        assert REPLY in regions["public-posts"]  # type: ignore[index]
        assert again.stop() == 0
    finally:
        again.kill()
    assert time.monotonic() - started < 90
    assert not [line for line in demo.output if "was missed" in line]  # scheduler start-up


def test_channel_badges_count_unread() -> None:
    from bot.demo import model

    def msg(ts: str, user: str = "U0BOT", **extra: str) -> dict[str, str]:
        return {"ts": ts, "user": user, **extra}

    state = {"channels": [
        {"id": "C0WASTE", "messages": [msg("1.0"), msg("2.0"), msg("3.0", "U0WENDY"),
                                       msg("4.0", parent_user_id="U0BOT", thread_ts="1.0")]},
        {"id": "C0HIGHWAYS", "messages": [msg("5.0")]},
    ]}
    seen: dict[str, float] = {}

    def counts(selected: str) -> dict[str, int]:
        model.mark_seen(state, selected, seen)
        return {c["id"]: c["count"] for c in model.sidebar(state, "U0WENDY", selected, seen)
                ["channels"] if c["id"] in ("C0WASTE", "C0HIGHWAYS")}

    # my own messages and thread replies are not unread; the open channel has no badge
    assert counts("C0HIGHWAYS") == {"C0WASTE": 2, "C0HIGHWAYS": 0}
    assert counts("C0WASTE") == {"C0WASTE": 0, "C0HIGHWAYS": 0}
    state["channels"][0]["messages"].append(msg("6.0"))
    assert counts("C0HIGHWAYS") == {"C0WASTE": 1, "C0HIGHWAYS": 0}


def test_slack_text_is_rendered_safely() -> None:
    from bot.demo.mrkdwn import mrkdwn, plain

    html = str(mrkdwn(
        "*Ref M1* &lt;script&gt;alert(1)&lt;/script&gt; &amp; <@U0PRIYA> <#C0WASTE> "
        "<https://x.com/a/status/1|view post> <javascript:alert(1)|click> :white_check_mark: "
        "<!date^1700000000^{date_short_pretty}|14 Nov 2023>",
        user_name={"U0PRIYA": "Priya Sharma"}.get, channel_name={"C0WASTE": "waste"}.get))
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp;" in html
    assert "<strong>Ref M1</strong>" in html
    assert "@Priya Sharma" in html and "#waste" in html and "✅" in html
    assert '<a href="https://x.com/a/status/1"' in html and ">view post</a>" in html
    assert "javascript:" not in html and "click" in html
    assert "14 Nov 2023" in html
    assert str(plain("&lt;!channel&gt; *not bold* :x:", with_emoji=False)) == \
        "&lt;!channel&gt; *not bold* :x:"


def test_every_block_kind_renders_escaped() -> None:
    from slack_sdk import WebClient

    from bot.demo import model
    from bot.demo.web import _jinja
    from bot.emulators.slack import SlackEmulator

    with SlackEmulator() as slack:
        slack.add_user("U0PRIYA", "priya", "Priya Sharma")
        slack.add_channel("C0HIGHWAYS", "highways")
        client = WebClient(token=slack.bot_token, base_url=slack.api_url)
        posted = client.chat_postMessage(channel="C0HIGHWAYS", text="fallback", blocks=[
            {"type": "header", "text": {"type": "plain_text", "text": "Weekly <b>report</b>"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Open:* <@U0PRIYA>"},
             "fields": [{"type": "mrkdwn", "text": "*Waste*\n3"},
                        {"type": "plain_text", "text": "&lt;img src=x&gt;"}],
             "accessory": {"type": "button", "action_id": "more", "value": "1",
                           "text": {"type": "plain_text", "text": "More"}}},
            {"type": "divider"},
            {"type": "image", "image_url": "https://example.org/chart.png", "alt_text": "chart"},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": ":warning: late"}]},
            {"type": "actions", "elements": [
                {"type": "button", "action_id": "go", "value": "7", "style": "danger",
                 "text": {"type": "plain_text", "text": "Go"}}]},
        ])
        client.reactions_add(channel="C0HIGHWAYS", timestamp=posted["ts"], name="white_check_mark")
        client.chat_postMessage(channel="C0HIGHWAYS", thread_ts=posted["ts"], text="in thread")
        client.chat_postEphemeral(channel="C0HIGHWAYS", user="U0PRIYA", text="just for you")
        state = slack.state()
    names = model.Names(state)
    items = model.timeline(state, "C0HIGHWAYS", "U0PRIYA", names)
    html = _jinja().get_template("_main.html").render(
        home=None, names=names, items=items,
        channel={"name": "highways", "is_dm": False, "purpose": "Highways"})
    assert '<h4 class="sk-header">Weekly &lt;b&gt;report&lt;/b&gt;</h4>' in html
    assert "<strong>Open:</strong>" in html and "@Priya Sharma" in html
    assert "<strong>Waste</strong><br>3" in html and "&lt;img src=x&gt;" in html
    assert '<hr class="sk-divider">' in html and 'alt="chart"' in html and "⚠️ late" in html
    assert 'data-action-id="more"' in html and 'class="btn danger"' in html
    assert "✅ 1" in html and "in thread" in html and "1 reply" in html
    assert "Only visible to you" in html and "just for you" in html


def test_emulator_state_survives_a_restart(tmp_path: Path) -> None:
    from bot.demo.persist import Saver
    from bot.demo.runner import seed_slack, seed_stage
    from bot.demo.stage import load_stage
    from bot.emulators.slack import SlackEmulator

    slack, stage = SlackEmulator(), load_stage()
    seed_slack(slack)
    seed_stage(stage)
    slack.post_user_message("U0HARRY", "C0HIGHWAYS", "on my way", send_event=False)
    Saver(slack, stage, tmp_path).save()
    slack2, stage2 = SlackEmulator(), load_stage()
    assert Saver(slack2, stage2, tmp_path).restore()
    assert slack2.state() == slack.state()
    assert stage2.posts() == stage.posts() and len(stage.posts()) == 7
    assert stage2.dump() == stage.dump()
    from bot.demo import data  # a new post after the restart takes a new id

    fresh = stage2.add_mention(data.ACCOUNTS[0], "new_resident", "hello")
    assert fresh not in {p.id for p in stage.posts()}


def test_the_pane_matches_mentions_by_id_or_handle_not_one_for_the_other() -> None:
    from datetime import UTC, datetime

    from bot.demo.stage import Account, StagePost

    council = Account("nottscc", "NottsCC", "1111", "Council", "NOTTSCC")

    def post(ids: set[str], handles: set[str]) -> StagePost:
        return StagePost("9", "Res", "res", "90001", datetime.now(UTC), "hi", None,
                         frozenset(ids), frozenset(handles))

    assert post({"1111"}, set()).mentions(council)
    assert post(set(), {"nottscc"}).mentions(council)
    assert not post(set(), {"1111"}).mentions(council)  # a resident whose handle is 1111
