"""App Home over HTTP: what a drafter, an approver and an admin see; kept current when
things change (and not republished when nothing did); its New post and Schedule buttons."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from bot import clock
from bot.db import transaction
from bot.models import Draft, HomeView, Pause
from bot.services import home
from tests.harness import CARA, HARRY, WENDY, Harness, block_texts, wait_for
from tests.insight_data import INSIGHT_CONFIG, LONDON

ADMIN = "U0ADMIN"


def home_config() -> dict[str, Any]:
    cfg = copy.deepcopy(INSIGHT_CONFIG)
    cfg["slack"]["admins_usergroup"] = "S0ADMINS"
    today = clock.now().astimezone(LONDON).date()
    cfg["purdah"] = [{"name": "County council elections", "start": str(today - timedelta(days=2)),
                      "end": str(today + timedelta(days=20))}]
    return cfg


@pytest.fixture
def h(database_url: str) -> Iterator[Harness]:
    with Harness(database_url, config=home_config()) as harness:
        harness.slack.add_user(ADMIN, "ada")
        harness.slack.add_usergroup("S0ADMINS", "admins", [ADMIN])
        # strict channel membership: who is in which service
        harness.slack.add_channel("C0WASTE", "waste", members=[WENDY, CARA])
        harness.slack.add_channel("C0HIGHWAYS", "highways", members=[HARRY, CARA])
        harness.slack.add_channel("C0COMMS", "comms", members=[CARA, ADMIN])
        yield harness


def open_home(h: Harness, user: str, after: str | None = None) -> dict[str, Any]:
    """Open the Home tab and return the view Slack shows (a new one, if `after` is given)."""
    h.slack.open_app_home(user)
    return wait_for(lambda: (v := h.slack.home_view(user)) and v.get("hash") != after and v,
                    what=f"home of {user}")


def buttons(view: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for b in view["blocks"]:
        if b.get("accessory", {}).get("type") == "button":
            out.append({**b["accessory"], "section": b["text"]["text"]})
        for el in b.get("elements", []):
            if el.get("type") == "button":
                out.append(el)
    return out


def setup_world(h: Harness) -> None:
    h.x.add_mention("1111", "jane", "bins not collected on Elm Road")  # M1 waste
    h.x.add_mention("1111", "bob", "pothole on the A60")  # M2 highways
    h.x.add_mention("1111", "sam", "the tip was shut <!channel>")  # M3 waste
    h.x.add_mention("1111", "amy", "what time does the council open?")  # M4 unrouted
    h.poll()
    h.settle()
    assert "Draft D1" in h.slack.send_command(WENDY, "C0WASTE", "reply M1 Sorry Jane, crew sent"
                                              ).json()["text"]
    assert "Draft D2" in h.slack.send_command(HARRY, "C0HIGHWAYS", "post nottscc Gritters out"
                                              ).json()["text"]
    with transaction(h.rt.sessions) as s:
        s.add(Pause(account_id=None, reason="Major incident: flooding", paused_by=CARA))
    h.settle()


def test_home_for_a_drafter_an_approver_and_an_admin(h: Harness) -> None:
    setup_world(h)
    waste_alerts = h.alerts_in("C0WASTE")
    approvals = h.alerts_in("C0APPROVALS")

    wendy = open_home(h, WENDY)
    text = block_texts(wendy)
    assert "drafter · your services: waste" in text
    assert "Publishing paused* for every account by <@U0COMMS1>" in text
    assert "Major incident: flooding" in text
    assert "*County council elections* (pre-election period)" in text
    assert "publishing is blocked" in text
    assert "*Mentions waiting in your services* (2)" in text
    assert text.index("*M1*") < text.index("*M3*")  # oldest first
    assert "*M2*" not in text and "*M4*" not in text
    assert "&lt;!channel&gt;" in text and "<!channel>" not in text  # outside text is inert
    assert "unclaimed" in text and "reply due" in text
    assert "*D1* · reply to M1 as @NottsCC on X · pending" in text
    assert "Approval queue" not in text and "Every service" not in text
    jump = next(b for b in buttons(wendy) if "*M1*" in b.get("section", ""))
    assert jump["url"] == ("https://council.slack.com/archives/C0WASTE/p"
                           + waste_alerts[0]["ts"].replace(".", ""))
    assert {b["action_id"] for b in buttons(wendy)} >= {"home_new_post", "home_schedule_post",
                                                        "home_refresh"}

    harry = block_texts(open_home(h, HARRY))
    assert "your services: highways" in harry and "*M2*" in harry and "*M1*" not in harry
    assert "*D2* · new post as @NottsCC on X · pending" in harry

    cara_view = open_home(h, CARA)
    cara = block_texts(cara_view)
    assert "comms approver" in cara
    assert "*Mentions waiting in your services* (4)" in cara
    assert "*Approval queue* (2)" in cara
    assert "*D1* · reply to M1 as @NottsCC on X by <@U0WASTE>" in cara
    review = [b for b in buttons(cara_view) if b.get("text", {}).get("text") == "Review"]
    assert [b["url"].rsplit("/p", 1)[1] for b in review] == [
        m["ts"].replace(".", "") for m in approvals]  # one click to each approval message

    admin = block_texts(open_home(h, ADMIN))
    assert "drafter, admin · your services: libraries, vip, comms (unrouted)" in admin
    assert "*Approval queue* (2)" in admin
    assert "*waste*: 2 waiting" in admin and "*highways*: 1 waiting" in admin
    assert "*comms*: 1 waiting" in admin
    assert "Slack messages waiting: 0" in admin and "@NottsCC on X: last polled" in admin
    assert h.count(HomeView) == 4

    # nothing changed: nothing is republished (Slack's views.publish budget)
    h.slack.reset_calls()
    assert home.refresh_homes(h.rt) == 0
    assert h.slack.calls_to("views.publish") == []
    # Wendy claims M1: her Home (and the approver's, which lists M1) follow
    h.slack.click_button(WENDY, "C0WASTE", waste_alerts[0]["ts"], "alert_claim")
    wait_for(lambda: "is on it" in block_texts(h.slack.message("C0WASTE",
                                                               waste_alerts[0]["ts"]) or {}))
    assert home.refresh_homes(h.rt) >= 2
    assert "<@U0WASTE> is on it" in block_texts(h.slack.home_view(WENDY) or {})
    assert "<@U0WASTE> is on it" in block_texts(h.slack.home_view(CARA) or {})
    assert home.refresh_homes(h.rt) == 0
    # an approval empties the queue on the approver's Home
    h.slack.add_reaction(CARA, "C0APPROVALS", approvals[1]["ts"], "x")
    wait_for(lambda: h.count(Draft, Draft.state == "rejected") == 1)
    home.refresh_homes(h.rt)
    assert "*Approval queue* (1)" in block_texts(h.slack.home_view(CARA) or {})
    assert "rejected" in block_texts(h.slack.home_view(HARRY) or {})


def test_home_buttons_draft_and_schedule_posts(h: Harness) -> None:
    view = open_home(h, WENDY)
    assert "No drafts yet" in block_texts(view)
    h.slack.click_view_button(WENDY, view["id"], "home_new_post")
    modal = wait_for(lambda: h.slack.open_views(WENDY), what="new post modal")[-1]
    assert modal["callback_id"] == "home_new_post_modal"
    r = h.slack.submit_view(WENDY, modal["id"], {"post_account_select": "nottscc",
                                                 "post_text_input": "   "})
    assert r.json()["errors"] == {"post_text": "Write the post first."}
    r = h.slack.submit_view(WENDY, modal["id"], {
        "post_account_select": "nottscc",
        "post_text_input": "Bin collections run as normal on Friday"})
    assert r.status_code == 200 and not r.content.strip()
    wait_for(lambda: h.count(Draft) == 1)
    wait_for(lambda: "*D1* · new post as @NottsCC on X · pending"
             in block_texts(h.slack.home_view(WENDY) or {}), what="home shows D1")
    wait_for(lambda: h.alerts_in("C0APPROVALS"), what="approval message")

    view = h.slack.home_view(WENDY) or {}
    h.slack.click_view_button(WENDY, view["id"], "home_schedule_post")
    modal = wait_for(lambda: [v for v in h.slack.open_views(WENDY)
                              if v["private_metadata"] == "schedule"], what="schedule modal")[-1]
    r = h.slack.submit_view(WENDY, modal["id"], {
        "post_account_select": "nottscc", "post_text_input": "Half-term at the YPCs",
        "post_date_pick": "2020-01-06", "post_time_pick": "10:00"})
    assert "in the past" in r.json()["errors"]["post_date"]
    later = (clock.now() + timedelta(days=3)).astimezone(h.rt.settings.config.tz)
    r = h.slack.submit_view(WENDY, modal["id"], {
        "post_account_select": "nottscc", "post_text_input": "Half-term at the YPCs",
        "post_date_pick": f"{later:%Y-%m-%d}", "post_time_pick": "10:00"})
    assert r.status_code == 200, r.text
    wait_for(lambda: h.count(Draft) == 2)
    with h.rt.sessions() as s:
        d2 = s.get_one(Draft, 2)
        local = d2.scheduled_for.astimezone(h.rt.settings.config.tz)  # type: ignore[union-attr]
    assert (local.date(), local.hour, local.minute) == (later.date(), 10, 0)
    assert d2.author == WENDY and d2.state == "pending"

    h.slack.reset_calls()
    h.slack.click_view_button(WENDY, view["id"], "home_refresh")
    wait_for(lambda: h.slack.calls_to("views.publish"), what="refresh publishes")
    assert "*D2* · new post as @NottsCC on X · pending" in block_texts(h.slack.home_view(WENDY) or {})
