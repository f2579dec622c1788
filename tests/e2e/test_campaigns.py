"""Campaigns (issue 21): `/social post nottscc,nottscc-masto,nottscc-bsky <text>` makes
one draft per account on one approval card; approving publishes each variant exactly
once through the same Publisher; one network failing shows on its own line with its own
Retry while the others are published; the campaign name tags the posts."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from bench.net_kits import Kit, make_kit
from bot import clock
from bot.blockkit.plans import ACTION_RETRY_ROW
from bot.models import (
    Approval,
    AuditEvent,
    Draft,
    DraftGroupItem,
    OutboxMessage,
    PublishAttempt,
)
from bot.services.decisions import decide
from bot.services.groups import refresh_group_of
from tests.harness import CARA, COLIN, E2E_CONFIG, WENDY, Harness, block_texts, wait_for
from tests.net_harness import NetHarness, config_with

TEXT = "Gritters are out tonight on all A roads. Drive carefully"


class World:
    def __init__(self, h: NetHarness, kits: dict[str, Kit]):
        self.h, self.kits = h, kits

    def card(self) -> dict[str, Any]:
        return wait_for(lambda: next((m for m in self.h.alerts_in("C0APPROVALS")
                                      if "Campaign C" in block_texts(m)), None),
                        timeout=60, what="campaign card")

    def fresh(self) -> dict[str, Any]:
        msg = self.h.slack.message("C0APPROVALS", self.card()["ts"])
        assert msg is not None
        return msg

    def state(self, draft_id: int) -> str:
        with self.h.rt.sessions() as s:
            return s.get_one(Draft, draft_id).state

    def posts(self, text: str) -> dict[str, int]:
        return {n: k.posts(text) for n, k in self.kits.items()}


@pytest.fixture
def w(database_url: str) -> Iterator[World]:
    masto, bsky = make_kit("mastodon"), make_kit("bluesky")
    try:
        assert masto.config_account and bsky.config_account
        config = config_with(masto.config_account, bsky.config_account)
        config["links"] = {"tracked_domains": ["nottinghamshire.gov.uk"]}
        h = NetHarness(database_url, config,
                       credentials={**masto.credentials, **bsky.credentials},
                       env={**masto.env, **bsky.env})
        x = make_kit("x", h.x)
        with h:
            yield World(h, {"x": x, "mastodon": masto, "bluesky": bsky})
    finally:
        masto.stop()
        bsky.stop()


def send(w: World, user: str, text: str) -> str:
    r = w.h.slack.send_command(user, "C0WASTE", text)
    assert r.status_code == 200, r.text
    return str(r.json().get("text", ""))


def test_one_card_three_variants_three_posts_each_exactly_once(w: World) -> None:
    h = w.h
    answer = send(w, WENDY, f"post nottscc,nottscc-masto,nottscc-bsky campaign:winter-roads "
                            f"{TEXT}")
    assert "Campaign C1 “winter roads” created: D1 (nottscc), D2 (nottscc-masto), " \
           "D3 (nottscc-bsky)" in answer
    card = w.card()
    text = block_texts(card)
    assert "3 draft(s)" in text and "campaign winter roads" in text
    assert "*nottscc* (x)" in text and "*nottscc-masto* (mastodon)" in text \
        and "*nottscc-bsky* (bluesky)" in text
    assert "/280" in text and "/500" in text and "/300" in text  # each network's limit
    assert len(h.alerts_in("C0APPROVALS")) == 1  # one card, not three
    # the author cannot approve them; an approver approves all three at once
    h.slack.click_button(WENDY, "C0APPROVALS", card["ts"], "group_approve_all")
    wait_for(lambda: "draft.decision_refused" in h.audit_actions(), what="refused")
    h.slack.click_button(CARA, "C0APPROVALS", card["ts"], "group_approve_all")
    wait_for(lambda: all(w.state(i) == "published" for i in (1, 2, 3)), timeout=90,
             what="three published")
    assert w.posts(TEXT) == {"x": 1, "mastodon": 1, "bluesky": 1}
    # a second approver, and the publisher asked again, change nothing
    for i in (1, 2, 3):
        assert not decide(h.rt, i, COLIN, "approve", via="button").ok
        h.rt.publisher.publish(i)
    assert w.posts(TEXT) == {"x": 1, "mastodon": 1, "bluesky": 1}
    assert h.count(PublishAttempt) == 3
    assert h.audit_actions().count("draft.approved") == 3
    wait_for(lambda: block_texts(w.fresh()).count(":globe_with_meridians:") == 3,
             timeout=60, what="card shows three published")
    with h.rt.sessions() as s:
        tags = list(s.scalars(sa.select(DraftGroupItem.campaign).order_by(DraftGroupItem.id)))
        created = s.scalar(sa.select(AuditEvent.details).where(
            AuditEvent.action == "campaign.created"))
    assert tags == ["winter roads"] * 3
    assert created["drafts"] == [1, 2, 3]


def test_one_network_failing_shows_its_own_retry_and_holds_nobody_back(w: World) -> None:
    h = w.h
    w.kits["mastodon"].inject("create", "503", times=200)
    send(w, WENDY, f"post nottscc,nottscc-masto,nottscc-bsky {TEXT}")
    card = w.card()
    h.slack.click_button(CARA, "C0APPROVALS", card["ts"], "group_approve_all")
    wait_for(lambda: w.state(1) == "published" and w.state(3) == "published"
             and w.state(2) == "failed", timeout=120, what="two published, one failed")
    assert w.posts(TEXT) == {"x": 1, "mastodon": 0, "bluesky": 1}
    msg = wait_for(lambda: (m := w.fresh()) and "Retry" in block_texts(m) and m, timeout=60,
                   what="Retry on the card")
    retry_rows = [b["block_id"] for b in msg["blocks"]
                  if b.get("type") == "actions" and any(e.get("action_id") == "group_retry_row"
                                                        for e in b.get("elements", []))]
    assert retry_rows == ["variant:2"]  # on Mastodon's line only
    assert ":warning:" in block_texts(msg)
    w.kits["mastodon"].emulator.faults.clear()
    h.slack.click_button(COLIN, "C0APPROVALS", card["ts"], "group_retry_row",
                         block_id="variant:2")
    wait_for(lambda: w.state(2) == "published", timeout=90, what="retried")
    assert w.posts(TEXT) == {"x": 1, "mastodon": 1, "bluesky": 1}


def test_a_variant_too_long_for_one_network_stores_nothing(w: World) -> None:
    long = "Winter update. " * 22  # 329 (trimmed): fits Mastodon's 500, not X's 280 or Bluesky's 300
    answer = send(w, WENDY, f"post nottscc-masto,nottscc {long}")
    assert "For nottscc: That text is 329 characters" in answer
    assert w.h.count(Draft) == 0
    answer = send(w, WENDY, f"post nottscc,nottscounty {TEXT}")
    assert "no account called `nottscounty`" in answer
    assert w.h.count(Draft) == 0


# ------------------------------------------------------------- multi-step approval

LENA, HUGO = "U0LEAD1", "U0HEAD1"  # a service lead; a head of service


@pytest.fixture
def steps(database_url: str) -> Iterator[Harness]:
    config = copy.deepcopy(E2E_CONFIG)
    config["accounts"][0]["approval_steps"] = ["S0LEAD", "S0HEAD", "S0COMMS"]
    with Harness(database_url, config=config) as h:
        h.slack.add_user(LENA, "lena")
        h.slack.add_user(HUGO, "hugo")
        h.slack.add_usergroup("S0LEAD", "leads", [LENA])
        h.slack.add_usergroup("S0HEAD", "heads", [HUGO, CARA])
        yield h


def react(h: Harness, user: str, ts: str) -> None:
    if user in h.slack.reactions("C0APPROVALS", ts).get("white_check_mark", []):
        h.slack.remove_reaction(user, "C0APPROVALS", ts, "white_check_mark")
    h.slack.add_reaction(user, "C0APPROVALS", ts, "white_check_mark")


def card_text(h: Harness, ts: str) -> str:
    return block_texts(h.slack.message("C0APPROVALS", ts) or {})


def steps_done(h: Harness) -> list[tuple[int, str, str]]:
    with h.rt.sessions() as s:
        return [(a.draft_version, a.user_id, a.decision) for a in s.scalars(
            sa.select(Approval).where(Approval.decision.in_(("approve", "skipped")))
            .order_by(Approval.id))]


def test_three_steps_need_three_different_people_in_order_and_an_edit_restarts(
        steps: Harness) -> None:
    h = steps
    r = h.slack.send_command(WENDY, "C0WASTE", "post nottscc Gritting tonight on the A60")
    assert "Draft D1" in r.json()["text"]
    msg = wait_for(lambda: h.alerts_in("C0APPROVALS"), timeout=60, what="card")[0]
    wait_for(lambda: "1. <!subteam^S0LEAD> ← now" in card_text(h, msg["ts"]), timeout=60,
             what="steps on the card")
    react(h, CARA, msg["ts"])  # comms, but step 1 is the service lead's
    wait_for(lambda: "draft.decision_refused" in h.audit_actions(), what="refused")
    react(h, LENA, msg["ts"])
    wait_for(lambda: len(steps_done(h)) == 1, what="step 1")
    wait_for(lambda: f"1. <!subteam^S0LEAD> :white_check_mark: <@{LENA}>" in card_text(
        h, msg["ts"]) and "2. <!subteam^S0HEAD> ← now" in card_text(h, msg["ts"]),
        timeout=60, what="card at step 2")
    react(h, CARA, msg["ts"])  # step 2: CARA is a head too
    wait_for(lambda: len(steps_done(h)) == 2, what="step 2")
    react(h, CARA, msg["ts"])  # step 3 (comms): not the same person again
    wait_for(lambda: h.audit_actions().count("draft.decision_refused") >= 1
             and len(steps_done(h)) == 2, what="same person refused")
    assert h.x.posts_created() == []
    # an edit sends it back to step one
    h.slack.click_button(WENDY, "C0APPROVALS", msg["ts"], "draft_edit", "1")
    view = wait_for(lambda: h.slack.open_views(WENDY))[-1]
    h.slack.submit_view(WENDY, view["id"], {"draft_text": {
        "draft_text_input": "Gritting tonight on the A60 and A614"}})
    wait_for(lambda: "1. <!subteam^S0LEAD> ← now" in card_text(h, msg["ts"])
             and "v2" in card_text(h, msg["ts"]), timeout=60, what="back to step 1")
    react(h, HUGO, msg["ts"])  # a head cannot start it
    react(h, LENA, msg["ts"])
    wait_for(lambda: [d for d in steps_done(h) if d[0] == 2] == [(2, LENA, "approve")],
             what="v2 step 1")
    react(h, HUGO, msg["ts"])
    wait_for(lambda: len([d for d in steps_done(h) if d[0] == 2]) == 2, what="v2 step 2")
    with h.rt.sessions() as s:
        assert s.get_one(Draft, 1).state == "pending"
    react(h, COLIN, msg["ts"])
    wait_for(lambda: [p.get("sent_text") for p in h.x.posts_created()]
             == ["Gritting tonight on the A60 and A614"], timeout=60, what="published once")
    assert [d for d in steps_done(h) if d[0] == 2] == [(2, LENA, "approve"),
                                                       (2, HUGO, "approve"),
                                                       (2, COLIN, "approve")]


def test_only_comms_may_skip_a_step_and_it_is_audited(steps: Harness) -> None:
    h = steps
    h.slack.send_command(WENDY, "C0WASTE", "post nottscc Libraries open late")
    msg = wait_for(lambda: h.alerts_in("C0APPROVALS"), timeout=60, what="card")[0]
    answer = h.slack.send_command(LENA, "C0WASTE", "skip D1 lead is away").json()["text"]
    assert "Only the comms approvers group" in answer
    answer = h.slack.send_command(COLIN, "C0WASTE", "skip D1 lead is away").json()["text"]
    assert "Step 1 (S0LEAD) of D1 skipped" in answer
    assert "draft.step_skipped" in h.audit_actions()
    wait_for(lambda: f"1. <!subteam^S0LEAD> skipped by <@{COLIN}>" in card_text(h, msg["ts"]),
             timeout=60, what="skip shown")
    answer = h.slack.send_command(COLIN, "C0WASTE", "skip D1 again").json()["text"]
    assert "Step 2 (S0HEAD) of D1 skipped" in answer
    answer = h.slack.send_command(COLIN, "C0WASTE", "skip D1 and again").json()["text"]
    assert "last step" in answer
    react(h, CARA, msg["ts"])  # the last step, comms
    wait_for(lambda: len(h.x.posts_created()) == 1, timeout=60, what="published")


# ------------------------------------------------------------------ tracked links

COUNCIL = "https://www.nottinghamshire.gov.uk/roads/gritting"


def test_council_links_gain_utm_parameters_visible_on_the_card(w: World) -> None:
    h = w.h
    answer = send(w, WENDY, f"post nottscc,nottscc-masto campaign:winter-roads Gritting routes "
                            f"{COUNCIL}. Also https://example.com/weather?a=1")
    assert "Campaign C1" in answer
    card = w.card()
    text = block_texts(card)
    assert f"{COUNCIL}?utm_source=x&amp;utm_medium=social&amp;utm_campaign=winter-roads." \
        in text
    assert f"{COUNCIL}?utm_source=mastodon&amp;utm_medium=social&amp;utm_campaign=winter-roads" \
        in text
    assert "https://example.com/weather?a=1" in text and "weather?a=1&amp;utm" not in text
    h.slack.click_button(CARA, "C0APPROVALS", card["ts"], "group_approve_all")
    wait_for(lambda: w.state(1) == "published" and w.state(2) == "published", timeout=90,
             what="published")
    sent = [p["sent_text"] for p in h.x.posts_created()]
    assert sent == [f"Gritting routes {COUNCIL}?utm_source=x&utm_medium=social&"
                    "utm_campaign=winter-roads. Also https://example.com/weather?a=1"]


def test_x_still_counts_a_tagged_link_as_23(w: World) -> None:
    h = w.h
    body = "A" * 256  # 256 + space + a link counted as 23 = 280, X's limit exactly
    answer = send(w, WENDY, f"post nottscc {body} {COUNCIL}")
    assert "Draft D1 created" in answer, answer
    msg = wait_for(lambda: h.alerts_in("C0APPROVALS"), timeout=60, what="card")[0]
    text = block_texts(msg)
    assert f"{COUNCIL}?utm_source=x&amp;utm_medium=social" in text and "280/280" in text
    answer = send(w, WENDY, f"post nottscc {body}A {COUNCIL}")
    assert "281 characters" in answer and h.count(Draft) == 1


def test_new_post_modal_with_more_accounts_makes_one_campaign(w: World) -> None:
    h = w.h
    h.slack.open_app_home(WENDY)
    view = wait_for(lambda: h.slack.home_view(WENDY), timeout=60, what="home")
    h.slack.click_view_button(WENDY, view["id"], "home_new_post")
    modal = wait_for(lambda: h.slack.open_views(WENDY), timeout=30, what="modal")[-1]
    also = next(b for b in modal["blocks"] if b.get("block_id") == "post_also")
    assert also["element"]["type"] == "multi_static_select"
    r = h.slack.submit_view(WENDY, modal["id"], {
        "post_account_select": "nottscc", "post_also_select": ["nottscc-masto", "nottscc-bsky"],
        "post_campaign_name": "Winter roads", "post_text_input": TEXT})
    assert r.status_code == 200 and not r.content.strip(), r.text
    card = w.card()
    text = block_texts(card)
    assert "Campaign C1 “Winter roads”" in text and "3 draft(s)" in text
    with h.rt.sessions() as s:
        tags = list(s.scalars(sa.select(DraftGroupItem.campaign).order_by(DraftGroupItem.id)))
    assert tags == ["Winter roads"] * 3


def test_an_edit_adding_a_council_link_tags_it_too(w: World) -> None:
    h = w.h
    send(w, WENDY, f"post nottscc,nottscc-masto campaign:winter-roads {TEXT}")
    card = w.card()
    h.slack.click_button(WENDY, "C0APPROVALS", card["ts"], "draft_edit", block_id="variant:2")
    view = wait_for(lambda: h.slack.open_views(WENDY), timeout=30, what="edit modal")[-1]
    r = h.slack.submit_view(WENDY, view["id"], {"draft_text": {
        "draft_text_input": f"Gritting routes: {COUNCIL}"}})
    assert r.status_code == 200, r.text
    with h.rt.sessions() as s:
        assert s.get_one(Draft, 2).text == (f"Gritting routes: {COUNCIL}?utm_source=mastodon&"
                                             "utm_medium=social&utm_campaign=winter-roads")
    wait_for(lambda: "utm_source=mastodon" in block_texts(w.fresh()), timeout=60,
             what="card shows the tagged link")


def test_an_image_shared_on_the_campaign_card_goes_to_each_variant(w: World) -> None:
    from bench.net_kits import ALT, PNG
    from bot.models import DraftImage

    h = w.h
    send(w, WENDY, f"post nottscc,nottscc-masto,nottscc-bsky {TEXT}")
    card = w.card()
    wait_for(lambda: h.count(Draft, Draft.id > 0) == 3 and w.fresh(), what="card")
    h.slack.share_file(WENDY, "C0APPROVALS", PNG, "gritter.png", alt_txt=ALT,
                       thread_ts=card["ts"])
    wait_for(lambda: h.count(DraftImage) == 3, timeout=60, what="image on each variant")
    wait_for(lambda: block_texts(w.fresh()).count("1 image(s)") == 3, timeout=60,
             what="card shows the images")
    h.slack.click_button(CARA, "C0APPROVALS", card["ts"], "group_approve_all")
    wait_for(lambda: all(w.state(i) == "published" for i in (1, 2, 3)), timeout=90,
             what="three published with the image")


def test_stats_break_published_posts_down_by_campaign(w: World) -> None:
    h = w.h
    send(w, WENDY, f"post nottscc,nottscc-masto,nottscc-bsky campaign:winter-roads {TEXT}")
    h.slack.click_button(CARA, "C0APPROVALS", w.card()["ts"], "group_approve_all")
    send(w, WENDY, "post nottscc-masto,nottscc-bsky Library opening hours change in May")
    untagged = wait_for(lambda: next((m for m in h.alerts_in("C0APPROVALS")
                                      if "Library opening" in block_texts(m)), None),
                        timeout=60, what="second card")
    h.slack.click_button(CARA, "C0APPROVALS", untagged["ts"], "group_approve_all")
    wait_for(lambda: all(w.state(i) == "published" for i in range(1, 6)), timeout=120,
             what="five published")
    answer = send(w, COLIN, "stats")
    assert "*Campaigns* (posts published):" in answer
    assert "• winter roads: *3* (nottscc 1, nottscc-bsky 1, nottscc-masto 1)" in answer
    assert answer.count("• ") == 1  # the untagged campaign's two posts are not a campaign
    assert "New posts: *5*" in answer
    one = send(w, COLIN, "stats nottscc-masto")
    assert "• winter roads: *1* (nottscc-masto 1)" in one
    assert "Campaigns" not in send(w, COLIN, "stats waste")  # a service's are its replies


def test_a_change_committed_after_the_outbox_took_the_cards_update_still_shows(
        w: World, database_url: str) -> None:
    """A variant fails; its transaction sees the card's update waiting, but the outbox
    takes and renders that update before the failure commits. The card must still come
    to show the failure (with its Retry), not stay as it was until the next change."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time: the outbox cannot take the update "
                    "while the change is open")
    h = w.h
    send(w, WENDY, f"post nottscc,nottscc-masto campaign:roads {TEXT}")
    card = w.card()
    h.settle()
    with h.rt.sessions.begin() as s:  # the card's update, waiting (held back for now)
        refresh_group_of(s, s.get_one(Draft, 2))
        s.flush()
        waiting = s.scalars(sa.select(OutboxMessage).where(
            OutboxMessage.op == "update_group", OutboxMessage.status == "pending")).one()
        waiting.not_before = clock.now() + timedelta(hours=1)
    change = h.rt.sessions()
    change.begin()
    try:
        d2 = change.get_one(Draft, 2)
        d2.state, d2.last_error = "failed", "answered 503"
        refresh_group_of(change, d2)
        with h.rt.sessions.begin() as s:  # the waiting update comes due and is taken
            s.get_one(OutboxMessage, waiting.id).not_before = clock.now()
        h.rt.kick_outbox()
        wait_for(lambda: h.count(OutboxMessage, OutboxMessage.id == waiting.id,
                                 OutboxMessage.status == "sent") == 1, what="taken and sent")
        change.commit()
    finally:
        change.close()
    h.rt.kick_outbox()
    h.settle()
    blocks = json.dumps(h.slack.message("C0APPROVALS", card["ts"])["blocks"])
    assert f'"{ACTION_RETRY_ROW}"' in blocks, "the card never showed the failure"
