"""Campaigns (issue 21): `/social post nottscc,nottscc-masto,nottscc-bsky <text>` makes
one draft per account on one approval card; approving publishes each variant exactly
once through the same Publisher; one network failing shows on its own line with its own
Retry while the others are published; the campaign name tags the posts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from bench.net_kits import Kit, make_kit
from commsdesk.models import AuditEvent, Draft, DraftGroupItem, PublishAttempt
from commsdesk.services.decisions import decide
from tests.harness import CARA, COLIN, WENDY, block_texts, wait_for
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
        h = NetHarness(database_url, config_with(masto.config_account, bsky.config_account),
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
