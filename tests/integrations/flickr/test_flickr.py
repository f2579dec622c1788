"""Flickr: a comment on one of the council's photos -> service channel -> /social reply ->
approval -> exactly one comment back on that photo; photo upload with title, description,
tags and alt text; OAuth 1.0a signatures checked by the emulator."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.asgi import health
from bot.config import parse_config
from bot.models import Draft, Mention
from integrations.base import Image, NetworkError, PermanentError, TransientError
from integrations.flickr.budget import CallBudget
from integrations.flickr.emulator import FlickrEmulator
from integrations.flickr.network import FlickrNetwork
from tests.harness import WENDY, block_texts, wait_for
from tests.net_harness import NetHarness, config_with

CREDS = {"api_key": "flickr-key", "api_secret": "flickr-app-secret",
         "oauth_token": "72157-token", "oauth_token_secret": "token-secret-xyz"}
NSID = "12345678@N01"


@pytest.fixture
def flickr() -> Iterator[FlickrEmulator]:
    with FlickrEmulator() as emu:
        emu.add_app(CREDS["api_key"], CREDS["api_secret"])
        emu.council = emu.add_user(NSID, "nottscc", "Nottinghamshire County Council",  # type: ignore[attr-defined]
                                   token=(CREDS["oauth_token"], CREDS["oauth_token_secret"]))
        emu.jane = emu.add_user("99999999@N02", "janeres", "Jane Resident")  # type: ignore[attr-defined]
        yield emu


def _net(flickr: FlickrEmulator, creds: dict[str, str] = CREDS) -> FlickrNetwork:
    acc = parse_config({"slack": {"approvals_channel": "C0A", "default_channel": "C0B",
                                  "approvers_usergroup": "S0C"},
                        "accounts": [{"name": "f", "network": "flickr", "handle": "nottscc",
                                      "credentials": "F"}]}).accounts[0]
    return FlickrNetwork(acc, creds, flickr.root_url, sleep=lambda s: None)


def draft_state(h: NetHarness) -> str:
    with h.rt.sessions() as s:
        d = s.get(Draft, 1)
        return d.state if d else "missing"


def test_comment_to_one_reply_on_the_photo(database_url: str, flickr: FlickrEmulator) -> None:
    account = {"name": "nottscc-flickr", "network": "flickr", "handle": "nottscc",
               "credentials": "FLICKR"}
    photo = flickr.add_photo(flickr.council, "New recycling centre at Giltbrook")  # type: ignore[attr-defined]
    with NetHarness(database_url, config_with(account),
                    credentials={("flickr", "FLICKR"): CREDS},
                    env={"flickr_api_base_url": flickr.root_url}) as h:
        h.poll()  # nothing yet
        comment = flickr.add_comment(photo, flickr.jane, "When does the recycling centre open?")  # type: ignore[attr-defined]
        h.poll()
        h.settle()
        alerts = h.alerts_in("C0WASTE")
        assert len(alerts) == 1 and "recycling centre open" in block_texts(alerts[0])
        with h.rt.sessions() as s:
            m = s.query(Mention).one()
        assert m.external_id.endswith(f":{photo.id}:{comment.id}") and len(m.external_id) <= 64
        h.poll()
        assert h.count(Mention) == 1
        h.slack.send_command(WENDY, "C0WASTE", "reply M1 It opens on 3 March, 8am to 6pm")
        h.approve()
        wait_for(lambda: draft_state(h) == "published", what="published")
        h.rt.publisher.sweep()
        ours = [c for c in flickr.comments_on(photo.id) if c.author == NSID]
        assert [c.text for c in ours] == ["It opens on 3 March, 8am to 6pm"]


def test_upload_photo_with_alt_text_and_tags(flickr: FlickrEmulator) -> None:
    net = _net(flickr)
    with pytest.raises(PermanentError, match="attach an image"):
        net.publish("Just text")
    pub = net.publish("Spring at Rufford Abbey\nThe gardens are open daily. #Rufford #Nottinghamshire",
                      images=[Image(b"\xff\xd8\xff fake jpeg", "Daffodils by the lake at Rufford",
                                    "rufford.jpg")])
    photo = flickr.photos[pub.external_id]
    assert photo.title == "Spring at Rufford Abbey" and photo.owner == NSID
    assert "Daffodils by the lake" in photo.description and photo.size > 0
    assert photo.tags == "Rufford Nottinghamshire"
    with pytest.raises(PermanentError, match="alt text"):
        net.publish("x", images=[Image(b"1", " ")])


def test_signature_faults_and_lost_answers(flickr: FlickrEmulator) -> None:
    bad = _net(flickr, CREDS | {"api_secret": "wrong"})
    with pytest.raises(PermanentError, match="Invalid signature"):
        bad.account_user_id()
    with pytest.raises(PermanentError, match="Invalid auth token"):
        _net(flickr, CREDS | {"oauth_token": "unknown"}).account_user_id()
    net = _net(flickr)
    photo = flickr.add_photo(flickr.council, "Gritters")  # type: ignore[attr-defined]
    old = flickr.add_comment(photo, flickr.jane, "old one", when=int(time.time()) - 100)  # type: ignore[attr-defined]
    flickr.inject("flickr.people.getPhotos", "429", reset_in=0)
    flickr.inject("flickr.photos.comments.getList", "503")
    [page] = list(net.fetch_mentions(None))
    since = page.mentions[0].external_id
    assert since.endswith(old.id)
    flickr.add_comment(photo, flickr.jane, "new one")  # type: ignore[attr-defined]
    assert [m.text for p in net.fetch_mentions(since) for m in p.mentions] == ["new one"]
    flickr.inject("flickr.photos.comments.addComment", "drop_after_commit")
    with pytest.raises(TransientError):
        net.publish("Thanks!", in_reply_to=since)
    found = net.find_published("Thanks!", in_reply_to=since,
                               not_before=datetime.now(UTC) - timedelta(minutes=2))
    assert found is not None and len([c for c in flickr.comments_on(photo.id) if c.author == NSID]) == 1


def test_a_comment_in_the_cursors_second_on_an_older_photo_is_not_lost(
        flickr: FlickrEmulator) -> None:
    """Comment dates are whole seconds: a comment made in the same second as the cursor's,
    on a photo whose id sorts below the cursor's, is new and must be read (the contract
    test's late mention lost when its poll and the comments shared a second)."""
    net = _net(flickr)
    older = flickr.add_photo(flickr.council, "Older")  # type: ignore[attr-defined]
    newer = flickr.add_photo(flickr.council, "Newer")  # type: ignore[attr-defined]
    t = int(time.time()) - 10
    first = flickr.add_comment(newer, flickr.jane, "first", when=t)  # type: ignore[attr-defined]
    [page] = list(net.fetch_mentions(None))
    since = page.mentions[0].external_id
    assert since.endswith(first.id)
    late = flickr.add_comment(older, flickr.jane, "late, same second", when=t)  # type: ignore[attr-defined]
    assert late.photo_id < first.photo_id  # its id sorts below the cursor's
    again = [m.external_id for p in net.fetch_mentions(since) for m in p.mentions]
    assert any(e.endswith(late.id) for e in again), again
    assert all(int(e.split(":")[0]) >= t for e in again)  # nothing older than the cursor


def _upload_reply(flickr: FlickrEmulator, fields: dict[str, str], photo: bytes,
                  signed_fields: dict[str, str] | None, creds: dict[str, str] = CREDS) -> str:
    """An upload whose Authorization header signs `signed_fields` (None: as a generic OAuth
    client does for a multipart body, no field at all); the raw XML answer."""
    import requests
    from requests_oauthlib import OAuth1

    auth = OAuth1(creds["api_key"], creds["api_secret"], creds["oauth_token"],
                  creds["oauth_token_secret"], signature_type="AUTH_HEADER")
    url = f"{flickr.root_url}/services/upload/"
    if signed_fields is None:
        resp = requests.post(url, data=fields, files={"photo": ("a.jpg", photo, "image/jpeg")},
                             auth=auth, timeout=10)
    else:
        header = requests.Request("POST", url, data=signed_fields, auth=auth).prepare() \
            .headers["Authorization"]
        resp = requests.post(url, data=fields, files={"photo": ("a.jpg", photo, "image/jpeg")},
                             headers={"Authorization": header if isinstance(header, str)
                                      else header.decode()}, timeout=10)
    return resp.text


def test_upload_signature_covers_every_field_but_photo(flickr: FlickrEmulator) -> None:
    """Flickr's rule (specs/flickr/NOTES.md §3): the signature covers every multipart field
    except `photo`. The emulator refuses anything else with error 96, as Flickr does."""
    fields = {"title": "Gritters", "description": "Out tonight", "is_public": "1"}
    jpeg = b"\xff\xd8\xff\xe0 a jpeg"
    assert "<photoid>" in _upload_reply(flickr, fields, jpeg, fields)
    # a generic OAuth client signs no field of a multipart body: refused
    assert 'code="96"' in _upload_reply(flickr, fields, jpeg, None)
    # a field changed after signing: refused
    assert 'code="96"' in _upload_reply(flickr, fields | {"title": "Other"}, jpeg, fields)
    # unknown key, no photo bytes, not an image
    assert 'code="100"' in _upload_reply(flickr, fields, jpeg, fields, CREDS | {"api_key": "nope"})
    assert 'code="4"' in _upload_reply(flickr, fields, b"", fields)
    assert 'code="5"' in _upload_reply(flickr, fields, b"%PDF-1.4 not an image", fields)
    # a read-only token cannot upload or comment
    flickr.add_user("55555555@N05", "reader", token=("read-token", "read-secret"), perms="read")
    reader = CREDS | {"oauth_token": "read-token", "oauth_token_secret": "read-secret"}
    assert 'code="99"' in _upload_reply(flickr, fields, jpeg, fields, reader)
    # and ours, with tags and a description that holds the alt text, is accepted
    pub = _net(flickr).publish("Gritters out\nAll main roads tonight #Winter",
                               images=[Image(jpeg, "A gritter on the A60", "g.jpg")])
    assert flickr.photos[pub.external_id].tags == "Winter"


class _Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def _account_net(flickr: FlickrEmulator, name: str, creds: dict[str, str], budget: CallBudget,
                 photos: int = 50) -> FlickrNetwork:
    acc = parse_config({"slack": {"approvals_channel": "C0A", "default_channel": "C0B",
                                  "approvers_usergroup": "S0C"},
                        "accounts": [{"name": name, "network": "flickr", "handle": name,
                                      "credentials": "F"}]}).accounts[0]
    return FlickrNetwork(acc, creds, flickr.root_url, sleep=lambda s: None, budget=budget,
                         photos_per_poll=photos)


def test_the_default_budget_lets_one_account_poll_every_minute_and_caps_two() -> None:
    """3,600 calls an hour per key: one account polling 50 photos each minute (51 calls a
    pass, 3,060 an hour) is never held back; two accounts on the key share it, spread
    over the hour, and never take polling past 3,600 less the reserve for writes."""
    clock = _Clock()
    one = CallBudget(clock=clock)
    one.register("a")
    for _ in range(60):
        assert one.reserve_poll("a", 51)
        for _ in range(51):
            assert one.spend()
        clock.t += 60
    two = CallBudget(clock=clock)
    passes: dict[str, list[int]] = {"a": [], "b": []}
    for name in passes:
        two.register(name)
    for minute in range(180):
        for name in passes:
            if two.reserve_poll(name, 51):
                passes[name].append(minute)
                for _ in range(51):
                    assert two.spend()
        assert two.used() <= 3600 - 360
        clock.t += 60
    assert abs(len(passes["a"]) - len(passes["b"])) <= 1
    # spread: in the third hour both accounts still poll, about every other minute
    assert all(sum(1 for m in ms if m >= 120) >= 25 for ms in passes.values())


def test_one_hourly_budget_per_api_key_shared_by_every_account(flickr: FlickrEmulator) -> None:
    """Two Flickr accounts on one API key, polled every minute for an hour (scaled down: a
    key of 360 calls, 5 photos each): the key's calls, as the emulator counts them, stay
    within its hour; both accounts are polled, spread over the hour; a reply still goes."""
    clock = _Clock()
    budget = CallBudget(360, reserve=36, clock=clock)
    other = flickr.add_user("22222222@N02", "nottsparks",
                            token=("parks-token", "parks-secret"))
    parks_creds = CREDS | {"oauth_token": "parks-token", "oauth_token_secret": "parks-secret"}
    for n in range(5):
        for owner in (flickr.council, other):  # type: ignore[attr-defined]
            photo = flickr.add_photo(owner, f"photo {n}")
            flickr.add_comment(photo, flickr.jane, f"comment {n}")  # type: ignore[attr-defined]
    nets = {"council": _account_net(flickr, "council", CREDS, budget, photos=5),
            "parks": _account_net(flickr, "parks", parks_creds, budget, photos=5)}
    polled: dict[str, list[int]] = {name: [] for name in nets}
    cursors: dict[str, str | None] = dict.fromkeys(nets)
    for minute in range(60):
        for name, net in nets.items():
            before = flickr.calls_in_last_hour(CREDS["api_key"])
            pages = list(net.fetch_mentions(cursors[name]))
            if flickr.calls_in_last_hour(CREDS["api_key"]) > before:
                polled[name].append(minute)
            cursors[name] = max((m.external_id for p in pages for m in p.mentions),
                                default=cursors[name])
        clock.t += 60
    # demand was 2 x 60 x 6 calls = 720: the key's hour holds 360, polling at most 324
    assert flickr.calls_in_last_hour(CREDS["api_key"]) <= 324
    assert all(len(ms) >= 15 for ms in polled.values()), polled
    assert all(any(m >= 45 for m in ms) for ms in polled.values()), polled
    # the reserve keeps room for a reply
    photo_id = cursors["council"].split(":")[1]  # type: ignore[union-attr]
    nets["council"].publish("Thanks, passed on", in_reply_to=cursors["council"])
    assert any(c.text == "Thanks, passed on" for c in flickr.comments_on(photo_id))
    # and once the hour is full, no call is made at all
    while budget.spend():
        pass
    made = flickr.calls_in_last_hour(CREDS["api_key"])
    assert list(nets["parks"].fetch_mentions(cursors["parks"])) == []
    with pytest.raises(NetworkError):
        nets["parks"].publish("One more", in_reply_to=cursors["parks"])
    assert flickr.calls_in_last_hour(CREDS["api_key"]) == made


def test_healthz_shows_the_flickr_keys_use(database_url: str, flickr: FlickrEmulator) -> None:
    account = {"name": "nottscc-flickr", "network": "flickr", "handle": "nottscc",
               "credentials": "FLICKR"}
    flickr.add_photo(flickr.council, "Gritters")  # type: ignore[attr-defined]
    with NetHarness(database_url, config_with(account),
                    credentials={("flickr", "FLICKR"): CREDS},
                    env={"flickr_api_base_url": flickr.root_url}) as h:
        h.poll()
        used = h.rt.network("nottscc-flickr").budget.used()  # type: ignore[attr-defined]
        # never fewer than Flickr counted (an attempt whose connection failed under load
        # before reaching Flickr still counts against our own budget: safe side)
        assert used >= flickr.calls_in_last_hour(CREDS["api_key"]) > 0
        body = health(h.rt)
        [entry] = body["flickr_api_calls"]
        assert entry["accounts"] == ["nottscc-flickr"] and entry["calls_last_hour"] == used
        assert entry["limit"] == 3600 and CREDS["api_key"] not in str(body)
