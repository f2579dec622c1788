"""The inbox (issue 20) over HTTP on SQLite and PostgreSQL: saved replies, keyword
listening, triage by priority and sentiment, private messages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bot.models import AuditEvent, Draft, SavedReply, SavedReplyUse
from tests.harness import CARA, COLIN, HARRY, ROGUE, WENDY, Harness, block_texts, wait_for


@pytest.fixture
def h(database_url: str) -> Iterator[Harness]:
    with Harness(database_url) as harness:
        yield harness


def command(h: Harness, user: str, text: str, channel: str = "C0WASTE") -> str:
    r = h.slack.send_command(user, channel, text)
    assert r.status_code == 200, r.text
    return str(r.json().get("text", ""))


def approval_message(h: Harness, n: int = 1) -> dict[str, Any]:
    msgs = wait_for(lambda: len(h.alerts_in("C0APPROVALS")) >= n and h.alerts_in("C0APPROVALS"),
                    what="approval message")
    return msgs[n - 1]


def draft(h: Harness, draft_id: int = 1) -> Draft:
    with h.rt.sessions() as s:
        d = s.get(Draft, draft_id)
        assert d is not None
        return d


# ------------------------------------------------------------------ saved replies


BINS = "Sorry {author}, the {service} team is on it: quote {ref} if you call us."


def test_saved_reply_starts_a_draft_named_on_its_card_and_counted(h: Harness) -> None:
    assert "added" in command(h, CARA, f"saved add bins-missed {BINS}", "C0COMMS")
    listing = command(h, WENDY, "saved")
    assert "bins-missed" in listing and "{author}" in listing
    h.x.add_mention("1111", "jane", "bins not collected on Elm Road <!channel>")
    h.poll()
    h.settle()
    assert "There is no saved reply called `nope`" in command(h, WENDY, "reply M1 saved:nope")
    answer = command(h, WENDY, "reply M1 saved:bins-missed")
    assert "Draft D1 created" in answer
    assert draft(h).text == "Sorry @jane, the waste team is on it: quote M1 if you call us."
    card = block_texts(approval_message(h))
    assert "From saved reply `bins-missed`, unchanged" in card
    # an approver edits it: the card says what changed from the saved text
    msg = approval_message(h)
    h.slack.click_button(CARA, "C0APPROVALS", msg["ts"], "draft_edit", "1")
    view = wait_for(lambda: h.slack.open_views(CARA))[-1]
    h.slack.submit_view(CARA, view["id"], {"draft_text": {
        "draft_text_input": "Sorry @jane, the waste crew is on it: quote M1 if you call us."}})
    wait_for(lambda: "*changed*" in block_texts(h.slack.message("C0APPROVALS", msg["ts"]) or {}),
             what="card updated")
    card = block_texts(h.slack.message("C0APPROVALS", msg["ts"]) or {})
    assert "“team” → “crew”" in card
    # still approved like any draft: COLIN approves (CARA edited it)
    h.slack.add_reaction(COLIN, "C0APPROVALS", msg["ts"], "white_check_mark")
    wait_for(lambda: draft(h).state == "published", what="published")
    assert [p["text"] for p in h.x.posts_created()] == [
        "Sorry @jane, the waste crew is on it: quote M1 if you call us."]
    stats = command(h, CARA, "stats", "C0COMMS")
    assert "Saved replies used: *1* (bins-missed 1)" in stats
    assert "saved_reply.used" in h.audit_actions()
    # the comms team sees them, with their use, in App Home
    h.slack.open_app_home(CARA)
    home = wait_for(lambda: "*Saved replies* (1)" in block_texts(h.slack.home_view(CARA) or {})
                    and h.slack.home_view(CARA), what="App Home lists saved replies")
    assert "`bins-missed` (1 used)" in block_texts(home)


def test_saved_reply_from_the_draft_reply_modal(h: Harness) -> None:
    command(h, CARA, f"saved add waste/bins-missed {BINS}", "C0COMMS")
    command(h, CARA, "saved add thanks Thanks {author}!", "C0COMMS")
    h.x.add_mention("1111", "jane", "my bins were missed again")
    h.poll()
    h.settle()
    alert = h.alerts_in("C0WASTE")[0]
    h.slack.click_button(WENDY, "C0WASTE", alert["ts"], "alert_draft_reply", "1")
    view = wait_for(lambda: h.slack.open_views(WENDY))[-1]
    options = [o["value"] for b in view["blocks"] if b.get("block_id") == "saved_reply"
               for o in b["elements"][0]["options"]]
    assert len(options) == 2  # the waste team's first, then everyone's
    h.slack.click_view_button(WENDY, view["id"], "saved_reply_pick", options[0])

    def filled() -> str | None:
        v = h.slack.view(view["id"]) or {}
        for b in v.get("blocks", []):
            if b.get("block_id") == "draft_text":
                return b["element"].get("initial_value")
        return None

    text = wait_for(filled, what="saved text filled in")
    assert text == "Sorry @jane, the waste team is on it: quote M1 if you call us."
    r = h.slack.submit_view(WENDY, view["id"], {"draft_text": text})
    assert r.status_code == 200 and not r.content.strip(), r.text
    wait_for(lambda: h.count(Draft) == 1)
    card = block_texts(approval_message(h))
    assert "From saved reply `waste/bins-missed`, unchanged" in card
    with h.rt.sessions() as s:
        use = s.query(SavedReplyUse).one()
        assert (use.via, use.name, use.scope) == ("modal", "bins-missed", "waste")


def test_only_the_comms_team_changes_saved_replies(h: Harness) -> None:
    command(h, CARA, "saved add thanks Thanks {author}!", "C0COMMS")
    for user in (WENDY, ROGUE):
        for text in ("saved add mine Hello", "saved edit thanks Hacked", "saved remove thanks"):
            assert "Only the comms team" in command(h, user, text)
    assert h.count(AuditEvent, AuditEvent.action == "saved_reply.refused") == 6
    # asked live: someone removed from the group loses the right at once
    h.slack.set_usergroup_users("S0COMMS", [COLIN])
    assert "Only the comms team" in command(h, CARA, "saved edit thanks Hacked", "C0COMMS")
    # Slack cannot answer: refused, nothing changed
    h.slack.fail_next("usergroups.users.list", "internal_error")
    assert "Couldn't confirm" in command(h, COLIN, "saved remove thanks", "C0COMMS")
    assert "edited" not in " ".join(h.audit_actions())
    assert "updated" in command(h, COLIN, "saved edit thanks Many thanks {author}!", "C0COMMS")
    assert "Unknown placeholder {name}" in command(h, COLIN, "saved add x Hi {name}", "C0COMMS")
    with h.rt.sessions() as s:
        assert [(r.name, r.text) for r in s.query(SavedReply)] == [
            ("thanks", "Many thanks {author}!")]
    assert "removed" in command(h, COLIN, "saved remove thanks", "C0COMMS")
    assert h.count(SavedReply) == 0


# ------------------------------------------------------------------ keyword listening


def listening_config(*accounts: dict[str, Any], listen_accounts: list[str],
                     budget: int = 30) -> dict[str, Any]:
    from tests.net_harness import config_with

    cfg = config_with(*accounts)
    cfg["listening"] = [{"service": "highways", "terms": ["A60 roadworks", "#NottsRoads"],
                         "accounts": listen_accounts, "interval_seconds": 30,
                         "budget": budget, "budget_window_minutes": 15}]
    return cfg


def heard_alerts(h: Harness, channel: str = "C0HIGHWAYS") -> list[dict[str, Any]]:
    return [m for m in h.alerts_in(channel) if "heard by listening" in block_texts(m)]


def listen(h: Harness) -> list[Any]:
    from bot.services import listening

    results = listening.run_due(h.rt, force=True)
    h.settle()
    return results


def origins(h: Harness) -> list[tuple[str, str]]:
    from bot.models import Mention

    with h.rt.sessions() as s:
        return [(m.origin, m.text) for m in s.query(Mention).order_by(Mention.id)]


@pytest.fixture
def hx(database_url: str) -> Iterator[Harness]:
    with Harness(database_url, listening_config(listen_accounts=["nottscc"], budget=4)) as harness:
        yield harness


def test_x_listened_phrase_is_heard_once_and_answered(hx: Harness) -> None:
    h = hx
    jane = h.x.add_user("5001", "jane", "Jane")["id"]
    heard = h.x.add_tweet(jane, "The a60 ROADWORKS have made me late <!channel> again")
    h.x.add_tweet(jane, "Queues on the A52 #NottsRoads")
    h.x.add_tweet(jane, "Lovely day at the library")  # not a term
    h.x.add_tweet("1111", "Update on the A60 roadworks: lane 2 reopens Monday")  # our own
    both = h.x.add_mention("1111", "sam", "A60 roadworks still blocked, please fix")
    listen(h)  # searched first: the @mention is left to mention polling
    h.poll()
    h.settle()
    alerts = heard_alerts(h)
    assert len(alerts) == 2
    text = block_texts(alerts[0])
    assert "X post heard by listening (not a mention)" in text and "heard “A60 roadworks”" in text
    assert "&lt;!channel&gt;" in text  # outside text escaped
    assert sorted(o for o, _ in origins(h)) == ["heard", "heard", "mention"]
    # found again by search and by polling: nothing new, nothing alerted twice
    listen(h)
    h.poll()
    h.settle()
    assert len(heard_alerts(h)) == 2
    assert sum(1 for c in ("C0COMMS", "C0HIGHWAYS") for m in h.alerts_in(c)
               if "still blocked" in block_texts(m)) == 1
    assert h.audit_actions().count("mention.heard") == 2
    # answered with the same Draft reply flow
    ref = next(f"M{i}" for i, (o, t) in enumerate(origins(h), 1) if "late" in t)
    assert "Draft D1 created" in command(h, HARRY, f"reply {ref} Sorry, we are on it",
                                         "C0HIGHWAYS")
    h.slack.add_reaction(CARA, "C0APPROVALS", approval_message(h)["ts"], "white_check_mark")
    wait_for(lambda: draft(h).state == "published", what="published")
    assert h.x.posts_created()[-1]["referenced_tweets"] == [
        {"type": "replied_to", "id": heard["id"]}]
    assert both["id"] not in [p.get("id") for p in h.x.posts_created()]


def test_x_search_quota_respected(hx: Harness) -> None:
    h = hx
    h.x.limits["search"] = (4, 900)  # the emulator's window, as the config's budget
    jane = h.x.add_user("5001", "jane", "Jane")["id"]
    for n in range(6):
        h.x.add_tweet(jane, f"A60 roadworks day {n}")
        listen(h)
    searches = h.x.requests_to("search")
    assert len(searches) == 4 and all(r.status == 200 for r in searches)
    results = listen(h)
    assert results[0].skipped == "budget spent" and len(h.x.requests_to("search")) == 4
    # X's own 429: the next run moves past its reset; nothing is lost
    h.x.limits["search"] = (180, 900)
    from bot.models import ListenCursor

    with h.rt.sessions() as s:  # a new window
        for c in s.query(ListenCursor):
            c.window_start = None
        s.commit()
    h.x.inject("search", "429", reset_in=600)
    results = listen(h)
    assert "rate limited" in (results[0].error or "")
    with h.rt.sessions() as s:
        row = s.query(ListenCursor).filter(ListenCursor.key.like("q:%")).one()
        assert row.next_run_at is not None and row.last_error
    listen(h)
    assert len(heard_alerts(h)) == 6


def test_bluesky_listened_phrase_is_heard_once(database_url: str) -> None:
    from integrations.bluesky.emulator import BlueskyEmulator
    from tests.net_harness import NetHarness

    with BlueskyEmulator() as bsky:
        council = bsky.add_account("nottscc.bsky.social", "Notts CC", app_password="pw-1")
        jane = bsky.add_account("jane.bsky.social", "Jane Resident")
        bsky.search_limit = (5, 300)
        account = {"name": "nottscc-bsky", "network": "bluesky",
                   "handle": "nottscc.bsky.social", "credentials": "BSKY"}
        cfg = listening_config(account, listen_accounts=["nottscc-bsky"], budget=5)
        with NetHarness(database_url, cfg, credentials={("bluesky", "BSKY"): {
                "app_password": "pw-1"}}, env={"bluesky_api_base_url": bsky.root_url}) as h:
            bsky.add_post(jane, "The A60 roadworks again *sigh*")
            bsky.add_post(jane, "Traffic everywhere #NottsRoads")
            bsky.add_post(jane, "@nottscc.bsky.social the A60 roadworks are blocking my drive")
            ours = bsky.add_post(council, "A60 roadworks: lane 2 reopens Monday")
            h.poll()
            listen(h)
            assert len(heard_alerts(h)) == 2
            assert sorted(o for o, _ in origins(h)) == ["heard", "heard", "mention"]
            # heard first, then it comes as a mention (a reply notification): alerted once
            bsky.add_post(jane, "Monday? The A60 roadworks were meant to end in May",
                          reply_to=ours)
            listen(h)
            h.poll()
            h.settle()
            assert len(heard_alerts(h)) == 3
            assert sum(1 for c in ("C0HIGHWAYS", "C0COMMS") for m in h.alerts_in(c)
                       if "meant to end in May" in block_texts(m)) == 1
            for _ in range(3):
                listen(h)
            assert len(heard_alerts(h)) == 3
            searches = bsky.requests_to("app.bsky.feed.searchPosts")
            assert len(searches) == 5 and getattr(bsky, "search_refused", 0) == 0
            assert all(r.get("sort") == "latest" for r in searches)


def test_mastodon_listened_hashtag_and_phrase_heard_once(database_url: str) -> None:
    from integrations.mastodon.emulator import MastodonEmulator
    from tests.net_harness import NetHarness

    with MastodonEmulator(domain="mastodon.example") as masto:
        council = masto.add_account("NottsCC", "Notts CC", token="masto-tok")
        jane = masto.add_account("jane", "Jane Resident", domain="social.example")
        masto.search_limit = (4, 300)
        account = {"name": "nottscc-masto", "network": "mastodon", "handle": "NottsCC",
                   "credentials": "MASTO", "base_url": masto.root_url}
        cfg = listening_config(account, listen_accounts=["nottscc-masto"], budget=4)
        with NetHarness(database_url, cfg, credentials={("mastodon", "MASTO"): {
                "access_token": "masto-tok"}}) as h:
            masto.add_status(jane, "<p>The A60 roadworks again</p>")
            masto.add_status(jane, "Jam on the ring road #NottsRoads")
            masto.add_status(jane, "A60 roadworks: my private moan", visibility="direct")
            masto.add_mention(jane, "@NottsCC@mastodon.example A60 roadworks, please fix")
            masto.add_status(council, "A60 roadworks: lane 2 reopens #NottsRoads")
            listen(h)
            h.poll()
            h.settle()
            assert len(heard_alerts(h)) == 2
            assert sorted(o for o, _ in origins(h)) == ["heard", "heard", "mention"]
            listen(h)
            listen(h)
            assert len(heard_alerts(h)) == 2
            calls = masto.requests_to("tag_timeline") + masto.requests_to("search")
            assert len(calls) == 4 and getattr(masto, "search_refused", 0) == 0


# ------------------------------------------------------------------ triage


def triage_config() -> dict[str, Any]:
    import copy

    from tests.harness import E2E_CONFIG

    cfg = copy.deepcopy(E2E_CONFIG)
    for svc in cfg["services"]:
        if svc["name"] == "highways":
            svc["urgent_keywords"] = ["flood", "fallen tree", "gas"]
            svc["sla_hours"] = 8
    cfg["insight"] = {"urgent_sla_hours": 1}
    return cfg


@pytest.fixture
def ht(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    from tests.harness import set_clock
    from tests.insight_data import local

    set_clock(monkeypatch, local(2026, 3, 3, 10, 0))  # a Tuesday morning
    with Harness(database_url, config=triage_config()) as harness:
        harness.slack.add_channel("C0HIGHWAYS", "highways", members=[HARRY, CARA])
        yield harness


def test_urgent_negative_mention_marked_first_reminded_and_corrected(
        ht: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.models import Mention, TriageCorrection
    from bot.services import reminders
    from tests.harness import set_clock
    from tests.insight_data import local

    h = ht
    h.x.add_mention("1111", "amy", "Thank you for fixing the pothole so quickly, brilliant!")
    h.x.add_mention("1111", "bob", "A fallen tree is blocking the pothole road and nobody came. "
                                   "Terrible, dangerous, I'm furious")
    h.poll()
    h.settle()
    compliment, urgent = h.alerts_in("C0HIGHWAYS")
    text = block_texts(urgent)
    assert "Urgent* (urgent keyword “fallen tree”)" in text and "Negative" in text
    assert "Normal" in block_texts(compliment) and "Positive" in block_texts(compliment)
    # App Home: the urgent one first, though it came second
    h.slack.open_app_home(HARRY)
    home = wait_for(lambda: h.slack.home_view(HARRY), what="home")
    shown = block_texts(home)
    assert shown.index("*M2*") < shown.index("*M1*") and ":red_circle: *Urgent*" in shown
    # its own reminder at half its 1-hour urgent target; the other waits for its 8 hours
    set_clock(monkeypatch, local(2026, 3, 3, 10, 31))
    assert reminders.check_reminders(h.rt) == 1
    h.settle()
    thread = [m.get("text") or "" for m in h.slack.thread("C0HIGHWAYS", urgent["ts"])[1:]]
    assert len(thread) == 1 and "*Urgent* *M2*" in thread[0] and "50%" in thread[0]
    assert any("*Urgent* *M2* in <#C0HIGHWAYS>" in (m.get("text") or "")
               for m in h.slack.messages("C0COMMS"))
    # stats break mentions down by both
    stats = command(h, CARA, "stats", "C0COMMS")
    assert "By priority: urgent *1* · normal *1*" in stats
    assert "negative *1*" in stats and "positive *1*" in stats
    from bot.clock import now
    from bot.domain import stats as figures
    from bot.services import report

    cfg = h.rt.settings.config
    with h.rt.sessions() as s:  # the weekly report breaks them down too
        week = figures.week_of(now().astimezone(cfg.tz).date(), cfg.tz)
        summary = report.summary(report.build(s, cfg, week, now()))
    assert "By priority: urgent *1* · normal *1*" in summary and "negative *1*" in summary
    # someone outside the channel may not correct it; a member may, audited and counted
    h.slack.click_button(ROGUE, "C0HIGHWAYS", urgent["ts"], "alert_triage", "2:priority:normal")
    wait_for(lambda: "alert.refused" in h.audit_actions(), what="refusal audited")
    h.slack.click_button(HARRY, "C0HIGHWAYS", urgent["ts"], "alert_triage", "2:priority:normal")
    wait_for(lambda: h.count(TriageCorrection) == 1, what="correction stored")
    h.settle()
    with h.rt.sessions() as s:
        assert s.get_one(Mention, 2).priority == "normal"
    assert "Normal" in block_texts(h.slack.message("C0HIGHWAYS", urgent["ts"]) or {})
    assert h.audit_actions().count("mention.triage_corrected") == 1
    assert "Triage corrections: *1*" in command(h, CARA, "stats", "C0COMMS")


# ------------------------------------------------------------------ private messages


def all_public_text(h: Harness, *channels: str) -> str:
    out = []
    for c in channels:
        for m in h.slack.messages(c, include_replies=True):
            out.append((m.get("text") or "") + "\n" + block_texts(m))
    return "\n".join(out)


def test_messenger_answered_inside_the_window_refused_after_and_never_public(
        database_url: str) -> None:
    import time as _time

    from integrations.facebook.emulator import FacebookEmulator
    from tests.net_harness import NetHarness, config_with

    page, token, secret = "1000001", "EAAB-page-token", "fb-app-secret"
    with FacebookEmulator(app_secret=secret) as fb:
        fb.add_page(page, "Nottinghamshire County Council", token)
        account = {"name": "nottscc-fb", "network": "facebook", "handle": "nottinghamshirecc",
                   "credentials": "FB", "page_id": page}
        cfg = config_with(account)
        for svc in cfg["services"]:
            if svc["name"] == "waste":
                svc["private_channel"] = "C0WASTEPRIV"
        with NetHarness(database_url, cfg, credentials={("facebook", "FB"): {
                "page_access_token": token}}, env={
                "facebook_graph_base_url": fb.root_url, "facebook_app_secret": secret,
                "facebook_verify_token": "v"}) as h:
            h.slack.add_channel("C0WASTEPRIV", "waste-private", is_private=True)
            assert h.server is not None
            url = f"{h.server.url}/webhooks/facebook"
            old = int((_time.time() - 25 * 3600) * 1000)
            for psid, text, ts in (("PSID1", "is the tip open? I live at 12 Elm Road", None),
                                   ("PSID2", "pothole outside 3 Oak Lane, my number 0777", None),
                                   ("PSID3", "bins on monday? 9 Ash Grove", old)):
                assert fb.deliver(url, fb.message_payload(page, psid, text, ts)
                                  ).status_code == 200
            h.settle()
            private = h.alerts_in("C0WASTEPRIV")
            assert len(private) == 2 and "12 Elm Road" in block_texts(private[0])
            [hidden] = h.alerts_in("C0HIGHWAYS")
            assert "Private message" in block_texts(hidden)
            assert "private message to" in block_texts(hidden)
            # inside the window: the card shows it, approval sends it by the Send API
            assert "Draft D1" in command(h, WENDY, "reply M1 Yes, 8am to 4pm")
            card = block_texts(h.approval_message())
            assert "Messenger reply window open until" in card
            h.approve()
            wait_for(lambda: draft(h).state == "published", what="published")
            assert [(m["recipient"], m["text"], m["messaging_type"])
                    for m in fb.sent_messages] == [("PSID1", "Yes, 8am to 4pm", "RESPONSE")]
            # after the window: the card says so, and publishing refuses it with the reason
            assert "Draft D2" in command(h, WENDY, "reply M3 Yes, as normal")
            msg = h.approval_message(2)
            assert "Messenger reply window closed" in block_texts(msg)
            h.approve(2)
            wait_for(lambda: draft(h, 2).state == "failed", what="refused")
            h.settle()
            thread = " ".join(m.get("text") or "" for m in h.slack.thread("C0APPROVALS",
                                                                          msg["ts"]))
            assert "24 hours" in thread and len(fb.sent_messages) == 1
            # not a word of them in a public channel
            public = all_public_text(h, "C0WASTE", "C0HIGHWAYS", "C0COMMS", "C0APPROVALS",
                                     "C0LIBRARIES")
            for words in ("Elm Road", "Oak Lane", "Ash Grove", "0777"):
                assert words not in public, words


def test_mastodon_direct_mention_is_private_and_answered_as_direct(database_url: str) -> None:
    from integrations.mastodon.emulator import MastodonEmulator
    from tests.net_harness import NetHarness, config_with

    with MastodonEmulator(domain="mastodon.example") as masto:
        council = masto.add_account("NottsCC", "Notts CC", token="masto-tok")
        jane = masto.add_account("jane", "Jane Resident", domain="social.example")
        account = {"name": "nottscc-masto", "network": "mastodon", "handle": "NottsCC",
                   "credentials": "MASTO", "base_url": masto.root_url}
        with NetHarness(database_url, config_with(account), credentials={
                ("mastodon", "MASTO"): {"access_token": "masto-tok"}}) as h:
            masto.add_mention(jane, "@NottsCC@mastodon.example my bins, 5 Birch Close",
                              visibility="direct")
            h.poll()
            h.settle()
            [alert] = h.alerts_in("C0WASTE")
            assert "Private message" in block_texts(alert)
            assert "Birch Close" not in all_public_text(h, "C0WASTE", "C0COMMS")
            command(h, WENDY, "reply M1 Sorry Jane, they will come tomorrow")
            msg = h.approval_message()
            assert "sent as a direct message too" in block_texts(msg)
            assert "Birch Close" not in block_texts(msg)
            h.approve()
            wait_for(lambda: draft(h).state == "published", what="published")
            [reply] = masto.posts_by(council.id)
            assert reply.visibility == "direct"


def test_listening_config_errors_name_the_key() -> None:
    import copy

    from bot.config import ConfigError, parse_config
    from tests.harness import E2E_CONFIG

    cfg = copy.deepcopy(E2E_CONFIG)
    cfg["accounts"].append({"name": "parks-flickr", "network": "flickr", "handle": "parks",
                            "credentials": "FLICKR", "user_id": "1@N01"})
    cfg["listening"] = [{"service": "waste", "terms": [" "], "accounts": ["nottscc"]}]
    with pytest.raises(ConfigError) as err:
        parse_config(cfg)
    assert "listening[0].terms: name at least one term, none blank" in str(err.value.problems)
    cfg["listening"] = [{"service": "highway", "terms": ["A60"], "accounts": ["nottscc"]},
                        {"service": "waste", "terms": ["bins"], "accounts": ["parks-flickr"]}]
    with pytest.raises(ConfigError) as err:
        parse_config(cfg)
    text = str(err.value.problems)
    assert "listening[0].service: unknown service 'highway'" in text
    assert "listening[1].accounts: 'parks-flickr' is on flickr" in text


def test_retention_purges_heard_posts_and_filled_saved_replies(
        hx: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    from bot import clock
    from bot.models import AuditEvent, Mention
    from bot.services import retention
    from tests.harness import set_clock

    h = hx
    jane = h.x.add_user("5001", "jane", "Jane")["id"]
    h.x.add_tweet(jane, "The A60 roadworks outside 4 Elm Road again")
    listen(h)
    command(h, CARA, "saved add sorry Sorry {author}, we are on it", "C0COMMS")
    command(h, HARRY, "reply M1 saved:sorry", "C0HIGHWAYS")
    wait_for(lambda: h.count(Draft) == 1)
    h.slack.add_reaction(COLIN, "C0APPROVALS", approval_message(h)["ts"], "white_check_mark")
    wait_for(lambda: draft(h).state == "published", what="published")
    set_clock(monkeypatch, clock.now() + timedelta(days=3))
    retention.run(h.rt, days=1)
    with h.rt.sessions() as s:
        heard = s.query(AuditEvent).filter(AuditEvent.action == "mention.heard").one()
        assert heard.details.get("_purged") is True and "Elm Road" not in str(heard.details)
        assert s.get_one(Mention, 1).text == ""
        assert s.query(SavedReplyUse).one().filled_text == ""
