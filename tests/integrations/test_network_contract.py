"""One contract for every network: the same story run against each of the six, with the
network's emulator, and every request our integration sent and every answer the emulator
gave checked against the network's published spec (tests/spec_check.py).

- mentions in, with a late or out-of-order item (Mastodon: a late-federated status with an
  older id; Bluesky: an older record key; Flickr: a comment on an older photo; Facebook: a
  comment on an older post; X: a reply in an older thread), polled by the real bot, stored
  once, the cursor saved, and resumed by a new runtime (a restart) without repeats;
- reply (where the network has replies), post, an image with its alt text;
- limits checked before anything is sent;
- a 429 waited out until the reset the network gave, a 5xx tried again;
- and the bot's Slack calls in the mentions story, by Slack's Web API spec.

Lost answers and find_published are tests/integrations/test_exactly_once_networks.py's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.models import Account, Mention, PollCursor
from integrations.base import Capability, Image, PermanentError
from tests import spec_check
from tests.conftest import make_settings
from tests.net_harness import NetHarness, config_with

pytestmark = pytest.mark.skipif(not spec_check.specs_available(),
                                reason="../shared/specs is not there")

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
NETWORKS = ["x", "mastodon", "bluesky", "facebook", "flickr", "pinterest"]


@dataclass
class Case:
    """One network's emulator, account and the moves the contract needs."""

    network: str
    emulator: Any
    account: dict[str, Any]
    credentials: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    read_fault: str = ""  # the fault key of the read that polling makes first
    post_fault: str = ""  # the fault key of creating a post
    extra: dict[str, Any] = field(default_factory=dict)
    reset_wait: tuple[float, float] = (3.0, 6.5)  # what a 429 "reset in 4 s" must wait

    def network_obj(self, slept: list[float]) -> Any:
        """The account's Network as the bot builds it (registry), sleeping into `slept`."""
        from integrations.registry import build_network

        base = make_settings("sqlite://", config=config_with(self.account),
                             x_api_base_url=self.emulator.root_url)
        settings = dataclasses.replace(base, env=base.env.model_copy(update=self.env),
                                       credentials={**base.credentials, **self.credentials})
        net = build_network(settings.config.account(self.account["name"]), settings)
        net._sleep = slept.append
        return net


def _x() -> Case:
    from integrations.x.emulator import XEmulator

    emu = XEmulator().__enter__()
    emu.add_user("1111", "NottsCC", "Nottinghamshire County Council")
    emu.add_user("2222", "NottsLibraries", "Inspire Libraries")
    emu.add_user("3333", "NottsContract", "Nottinghamshire County Council (contract)")
    emu.add_user("4444", "janeres", "Jane Resident")
    # the credentials make_settings gives the account: signatures are checked (OAuth 1.0a)
    emu.register_credentials("3333", access_token="3333-at-contractx", consumer_key="ck-contractx",
                             consumer_secret="cs-contractx-secret",
                             access_token_secret="ats-contractx-secret")
    account = {"name": "contract-x", "network": "x", "handle": "NottsContract", "user_id": "3333",
               "credentials": "CONTRACTX"}
    case = Case("x", emu, account, env={"x_api_base_url": emu.root_url},
                read_fault="mentions", post_fault="create_tweet")
    return case


def _mastodon() -> Case:
    from integrations.mastodon.emulator import MastodonEmulator

    emu = MastodonEmulator(domain="mastodon.example").__enter__()
    emu.council = emu.add_account("NottsCC", "Nottinghamshire County Council", token="masto-tok")
    emu.jane = emu.add_account("jane", "Jane Resident", domain="social.example")
    account = {"name": "contract-masto", "network": "mastodon", "handle": "NottsCC",
               "credentials": "CMASTO", "base_url": emu.root_url}
    return Case("mastodon", emu, account,
                credentials={("mastodon", "CMASTO"): {"access_token": "masto-tok"}},
                read_fault="notifications", post_fault="post_status")


def _bluesky() -> Case:
    from integrations.bluesky.emulator import BlueskyEmulator

    emu = BlueskyEmulator().__enter__()
    emu.council = emu.add_account("nottscc.bsky.social", "Nottinghamshire County Council",
                                  app_password="abcd-efgh-ijkl-mnop")
    emu.jane = emu.add_account("jane.bsky.social", "Jane Resident")
    account = {"name": "contract-bsky", "network": "bluesky", "handle": "nottscc.bsky.social",
               "credentials": "CBSKY"}
    return Case("bluesky", emu, account,
                credentials={("bluesky", "CBSKY"): {"app_password": "abcd-efgh-ijkl-mnop"}},
                env={"bluesky_api_base_url": emu.root_url},
                read_fault="app.bsky.notification.listNotifications",
                post_fault="com.atproto.repo.createRecord")


def _facebook() -> Case:
    from integrations.facebook.emulator import FacebookEmulator

    emu = FacebookEmulator(app_secret="fb-app-secret-123456").__enter__()
    emu.add_page("1000001", "Nottinghamshire County Council", "EAAB-contract", followers=5)
    account = {"name": "contract-fb", "network": "facebook", "handle": "nottinghamshirecc",
               "credentials": "CFB", "page_id": "1000001"}
    return Case("facebook", emu, account,
                credentials={("facebook", "CFB"): {"page_access_token": "EAAB-contract"}},
                env={"facebook_graph_base_url": emu.root_url,
                     "facebook_app_secret": "fb-app-secret-123456",
                     "facebook_verify_token": "verify-me"},
                read_fault="feed", post_fault="feed",
                # Graph gives estimated_time_to_regain_access in whole minutes
                reset_wait=(59.0, 62.0))


def _flickr() -> Case:
    from integrations.flickr.emulator import FlickrEmulator

    creds = {"api_key": "contract-key", "api_secret": "contract-secret",
             "oauth_token": "72157-contract", "oauth_token_secret": "contract-token-secret"}
    emu = FlickrEmulator().__enter__()
    emu.add_app(creds["api_key"], creds["api_secret"])
    emu.council = emu.add_user("12345678@N01", "nottscc", "Nottinghamshire County Council",
                               token=(creds["oauth_token"], creds["oauth_token_secret"]))
    emu.jane = emu.add_user("99999999@N02", "janeres", "Jane Resident")
    account = {"name": "contract-flickr", "network": "flickr", "handle": "nottscc",
               "credentials": "CFLICKR"}
    return Case("flickr", emu, account, credentials={("flickr", "CFLICKR"): creds},
                env={"flickr_api_base_url": emu.root_url},
                read_fault="flickr.people.getPhotos", post_fault="upload")


def _pinterest() -> Case:
    from integrations.pinterest.emulator import PinterestEmulator

    emu = PinterestEmulator().__enter__()
    emu.add_account("nottscc", "pina-contract", followers=3, boards=("549755885175",))
    account = {"name": "contract-pins", "network": "pinterest", "handle": "nottscc",
               "credentials": "CPINS", "board_id": "549755885175"}
    return Case("pinterest", emu, account,
                credentials={("pinterest", "CPINS"): {"access_token": "pina-contract"}},
                env={"pinterest_api_base_url": emu.root_url},
                read_fault="user_account", post_fault="pins")


CASES = {"x": _x, "mastodon": _mastodon, "bluesky": _bluesky, "facebook": _facebook,
         "flickr": _flickr, "pinterest": _pinterest}


@pytest.fixture(params=NETWORKS)
def case(request: pytest.FixtureRequest) -> Iterator[Case]:
    made = CASES[request.param]()
    try:
        yield made
        # the judge: every request sent and every answer given, against the spec
        problems = spec_check.check_exchanges(made.network, made.emulator)
        assert not problems, "\n".join(dict.fromkeys(problems))
    finally:
        made.emulator.__exit__(None, None, None)


# ------------------------------------------------------------------ mentions


def _mention(case: Case, text: str, *, late: bool = False) -> str | None:
    """A resident's mention of the account; `late`: one that arrives out of order (older
    than what the last poll saw). The external id it must be stored under."""
    emu = case.emulator
    if case.network == "x":
        older = case.extra.get("first_x")
        tweet = emu.add_tweet("4444", f"@NottsContract {text}",
                              **({"in_reply_to": older} if late and older else {}))
        case.extra.setdefault("first_x", tweet["id"])
        return str(tweet["id"])
    if case.network == "mastodon":
        first = case.extra.get("first_masto")
        status = emu.add_mention(emu.jane, f"@NottsCC@mastodon.example {text}",
                                 **({"status_id": str(int(first) - 5000)} if late and first else {}))
        case.extra.setdefault("first_masto", status.id)
        return str(status.id)
    if case.network == "bluesky":
        from integrations.bluesky import richtext

        kw: dict[str, Any] = {}
        if late:
            earlier = datetime.now(UTC) - timedelta(hours=2)
            kw = {"rkey": richtext.tid(int(earlier.timestamp() * 1_000_000), 3),
                  "created_at": earlier}
        post = emu.add_post(emu.jane, f"@nottscc.bsky.social {text}", **kw)
        return richtext.compact_id(post.uri)
    if case.network == "facebook":
        posts = case.extra.setdefault("fb_posts", [emu.add_post("1000001", "Older news"),
                                                   emu.add_post("1000001", "Newer news")])
        comment, _ = emu.add_comment(posts[0] if late else posts[1], "555", "Jane Resident", text)
        return str(comment.id)
    if case.network == "flickr":
        photos = case.extra.setdefault("photos", [emu.add_photo(emu.council, "Older photo"),
                                                  emu.add_photo(emu.council, "Newer photo")])
        comment = emu.add_comment(photos[0] if late else photos[1], emu.jane, text)
        return f":{comment.photo_id}:{comment.id}"
    return None  # Pinterest: its API reads no comments or mentions


def _stored(h: NetHarness, case: Case) -> list[str]:
    with h.rt.sessions() as s:
        return [m.external_id for m in s.query(Mention).join(Account, Account.id == Mention.account_id)
                .filter(Account.name == case.account["name"])]


def _cursor(h: NetHarness, case: Case) -> str | None:
    with h.rt.sessions() as s:
        row = s.query(PollCursor).join(Account, Account.id == PollCursor.account_id).filter(
            Account.name == case.account["name"]).one_or_none()
        return row.since_id if row else None


def _harness(case: Case, database_url: str) -> NetHarness:
    h = NetHarness(database_url, config_with(case.account), credentials=case.credentials,
                   env=case.env)
    if case.network == "x":  # the bot's X is this case's emulator
        h.x, h._own_x = case.emulator, False
    return h


def _matches(stored: list[str], expected: str) -> bool:
    return any(s == expected or s.endswith(expected) for s in stored)


def test_mentions_in_with_a_late_one_cursor_saved_and_resumed(case: Case, database_url: str
                                                              ) -> None:
    if _mention(case, "probe", late=False) is None:
        pytest.skip(f"{case.network}'s API reads no mentions (nothing to poll)")
    case.emulator.exchanges.clear()
    with _harness(case, database_url) as h:
        results = h.poll()
        first = _stored(h, case)
        assert not [r.error for r in results if r.error], results
        assert len(first) == 1, first
        cursor = _cursor(h, case)
        assert cursor, "a cursor is saved after a successful poll"
        new = _mention(case, "the bins on Elm Road were missed")
        late = _mention(case, "the tip was shut on Sunday", late=True)
        h.poll()
        after = _stored(h, case)
        assert len(after) == 3 and _matches(after, new or "") and _matches(after, late or ""), after
        saved = _cursor(h, case)
    # a restart: a new runtime on the same database resumes from the saved cursor
    with _harness(case, database_url) as again:
        assert _cursor(again, case) == saved
        again.poll()
        again.poll()
        assert sorted(_stored(again, case)) == sorted(after)  # nothing twice, nothing lost
        again.settle()
    # the bot's side of Slack (alerts posted, users and channels asked), by Slack's spec
    for bot in (h, again):
        problems = spec_check.check_exchanges("slack", bot.slack)
        assert not problems, "\n".join(dict.fromkeys(problems))
    assert any(r.path == "/api/chat.postMessage" for r, _ in h.slack.exchanges)


# ------------------------------------------------------------------ publishing


def _landed(case: Case, published: Any) -> tuple[str, list[tuple[bytes, str]]]:
    """(text as the network holds it, [(image bytes, alt text)]) of a published post."""
    emu = case.emulator
    pid = published.external_id
    if case.network == "x":
        [post] = [p for p in emu.posts_created() if p["id"] == pid]
        return post["text"], [(m.data, m.alt_text) for m in emu.media_of(pid)]
    if case.network == "mastodon":
        status = emu.statuses[pid]
        return status.text, [(m.data, m.description) for m in emu.media_of(status)]
    if case.network == "bluesky":
        [rec] = [r for r in emu.posts_by(emu.council.did) if pid in r.uri or pid.split("/")[0] in r.uri]
        return rec.value["text"], [(b.data, alt) for b, alt in emu.images_of(rec)]
    if case.network == "facebook":
        [post] = [o for o in emu.by_page("1000001") if o.id == pid]
        return post.message, [(p.data, p.alt_text_custom) for p in emu.photos_of(post)]
    if case.network == "flickr":
        photo = emu.photos[pid]
        alt = photo.description.rsplit("Image: ", 1)[-1]
        return photo.title, [(b"", alt)]
    pin = emu.pins[pid]
    return pin["title"], [(b"", pin["alt_text"])]


def test_post_with_an_image_and_its_alt_text(case: Case) -> None:
    slept: list[float] = []
    net = case.network_obj(slept)
    alt = "A gritter spreading salt on the A60 at night"
    published = net.publish("Gritters are out tonight", images=[Image(PNG, alt, "g.png",
                                                                      "image/png")])
    text, images = _landed(case, published)
    assert "Gritters are out tonight" in text
    assert [a for _, a in images] == [alt]
    assert all(data in (b"", PNG) for data, _ in images)


def test_reply_lands_on_what_it_answers(case: Case) -> None:
    slept: list[float] = []
    net = case.network_obj(slept)
    if Capability.REPLY not in net.capabilities:
        with pytest.raises(PermanentError):
            net.publish("Thanks", in_reply_to="1")
        return
    external = _mention(case, "when is the recycling centre open?")
    pages = list(net.fetch_mentions(None))
    [target] = [m for p in pages for m in p.mentions if m.external_id.endswith(external or "")]
    reply = net.publish("It opens at 8am every day", in_reply_to=target.external_id)
    emu = case.emulator
    if case.network == "x":
        [post] = [p for p in emu.posts_created() if p["id"] == reply.external_id]
        assert any(r["id"] == external for r in post.get("referenced_tweets") or [])
    elif case.network == "mastodon":
        assert emu.statuses[reply.external_id].in_reply_to_id == external
    elif case.network == "bluesky":
        [rec] = [r for r in emu.posts_by(emu.council.did) if "It opens at 8am" in r.value["text"]]
        assert rec.value["reply"]["parent"]["uri"].split("/")[-1] == external.split("/")[0]
    elif case.network == "facebook":
        assert any(c.message == "It opens at 8am every day" for c in emu.comments_on(external))
    elif case.network == "flickr":
        photo_id = external.split(":")[1]
        assert any(c.text == "It opens at 8am every day" for c in emu.comments_on(photo_id))


def test_limits_are_checked_before_anything_is_sent(case: Case) -> None:
    slept: list[float] = []
    net = case.network_obj(slept)
    before = len(case.emulator.exchanges)
    too_long = "Gritting " * (net.max_length // 9 + 2)
    five = [Image(PNG, f"alt {n}", f"{n}.png", "image/png") for n in range(5)]
    with pytest.raises(PermanentError):
        net.publish("An image with no alt text", images=[Image(PNG, " ", "a.png", "image/png")])
    if case.network in ("x", "mastodon", "bluesky"):
        with pytest.raises(PermanentError):
            net.publish("Five images", images=five)
    if case.network in ("pinterest",):
        with pytest.raises(PermanentError):
            net.publish(too_long[:150], images=five[:1])  # a title over 100 characters
    assert len(case.emulator.exchanges) == before, "nothing sent for what breaks a limit"
    assert net.weighted_length(too_long) > net.max_length


def test_429_waits_for_the_reset_and_5xx_is_tried_again(case: Case) -> None:
    slept: list[float] = []
    net = case.network_obj(slept)
    emu = case.emulator
    emu.inject(case.read_fault, "429", reset_in=4)
    emu.inject(case.read_fault, "503")
    if Capability.READ_MENTIONS in net.capabilities:
        list(net.fetch_mentions(None))
    else:
        net.followers()
    assert slept, "a 429 and a 503 were waited out"
    low, high = case.reset_wait
    assert low <= slept[0] <= high, slept  # the reset (Flickr: Retry-After) it was given
    assert len(slept) >= 2
