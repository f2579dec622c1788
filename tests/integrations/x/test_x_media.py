"""Images with alt text on X: POST /2/media/upload (multipart, OAuth 1.0a user context),
POST /2/media/metadata for the alt text, then POST /2/tweets with media.media_ids; end to
end from an image shared in the approval thread, and X's rules and faults."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.config import AccountConfig
from integrations.base import Image, PermanentError
from integrations.x.emulator import XEmulator
from integrations.x.network import XCredentials, XNetwork
from tests.harness import CARA, WENDY, Harness, wait_for

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8 + b"\r\n--not-a-boundary\r\n"


@pytest.fixture
def x() -> Iterator[XEmulator]:
    with XEmulator() as emu:
        emu.add_user("1111", "NottsCC", "Nottinghamshire County Council")
        emu.register_credentials("1111", access_token="tok-1111", consumer_key="ck",
                                 consumer_secret="cs", access_token_secret="ts")
        yield emu


def network(x: XEmulator) -> XNetwork:
    account = AccountConfig(name="nottscc", network="x", handle="NottsCC", user_id="1111",
                            credentials="NOTTSCC")
    creds = XCredentials(consumer_key="ck", consumer_secret="cs", access_token="tok-1111",
                         access_token_secret="ts")
    return XNetwork(account, creds, x.root_url, sleep=lambda _s: None)


def test_post_with_images_uploads_each_with_its_alt_text(x: XEmulator) -> None:
    net = network(x)
    published = net.publish("Autumn walks", images=[
        Image(PNG, "A path under oak trees", "walk.png", "image/png"),
        Image(PNG[::-1], "A dog by a lake", "dog.jpg", "image/jpeg")])
    media = x.media_of(published.external_id)
    assert [(m.data, m.alt_text, m.mime_type) for m in media] == [
        (PNG, "A path under oak trees", "image/png"),
        (PNG[::-1], "A dog by a lake", "image/jpeg")]
    [post] = x.posts_created()
    assert post["attachments"] == {"media_keys": [m.media_key for m in media]}
    assert len(x.requests_to("media_upload")) == 2 and len(x.requests_to("create_tweet")) == 1


def test_x_rules_are_checked_before_anything_is_uploaded(x: XEmulator) -> None:
    net = network(x)
    image = Image(PNG, "Alt", "a.png", "image/png")
    with pytest.raises(PermanentError, match="at most 4 images"):
        net.publish("Too many", images=[image] * 5)
    with pytest.raises(PermanentError, match="needs alt text"):
        net.publish("No alt", images=[Image(PNG, "  ", "a.png", "image/png")])
    with pytest.raises(PermanentError, match="at most 5 MB"):
        net.publish("Huge", images=[Image(b"0" * (5 * 1024 * 1024 + 1), "Alt", "big.png",
                                          "image/png")])
    assert not x.requests_to("media_upload") and not x.posts_created()


def test_upload_faults_are_retried_and_a_refusal_is_permanent(x: XEmulator) -> None:
    net = network(x)
    x.inject("media_upload", "503", times=2)
    x.inject("media_metadata", "drop")
    published = net.publish("Gritting tonight", images=[Image(PNG, "A gritter", "g.png",
                                                              "image/png")])
    assert [m.alt_text for m in x.media_of(published.external_id)] == ["A gritter"]
    assert len(x.posts_created()) == 1
    # X refusing the file (a type it does not take) is not tried again
    with pytest.raises(PermanentError, match="400"):
        net.publish("A PDF", images=[Image(b"%PDF-1.7", "A leaflet", "l.pdf",
                                           "application/pdf")])
    assert len(x.posts_created()) == 1


def test_image_shared_in_the_thread_is_posted_to_x_with_its_alt_text(database_url: str) -> None:
    with Harness(database_url) as h:
        answer = str(h.slack.send_command(WENDY, "C0WASTE", "post nottscc Bins on time today")
                     .json()["text"])
        assert "Draft D1" in answer, answer
        msg = wait_for(lambda: h.alerts_in("C0APPROVALS") and h.alerts_in("C0APPROVALS")[0],
                       what="approval message")
        h.slack.share_file(WENDY, "C0APPROVALS", PNG, "bins.png",
                           alt_txt="Green bins lined up on <Elm Road>", thread_ts=msg["ts"])
        wait_for(lambda: "draft.image_added" in h.audit_actions(), what="image stored")
        h.slack.add_reaction(CARA, "C0APPROVALS", msg["ts"], "white_check_mark")
        wait_for(lambda: len(h.x.posts_created()) == 1, what="posted")
        [post] = h.x.posts_created()
        assert post["text"] == "Bins on time today"
        [media] = h.x.media_of(post["id"])
        assert media.data == PNG and media.alt_text == "Green bins lined up on <Elm Road>"
        wait_for(lambda: "draft.published" in h.audit_actions(), what="published")
        assert len(h.x.requests_to("create_tweet")) == 1


GIF = b"GIF89a" + bytes((n * 7919) % 251 for n in range(1_500_000))


def test_gif_goes_through_the_chunked_upload_as_tweet_gif(x: XEmulator) -> None:
    """X takes a GIF only through the chunked upload with media_category tweet_gif:
    initialize, append each segment, finalize, STATUS until processed, then the post."""
    slept: list[float] = []
    net = network(x)
    net._sleep = slept.append
    x.inject("media_upload", "503")  # the initialize is retried
    published = net.publish("Lights switch-on tonight",
                            images=[Image(GIF, "Lights coming on in the market square",
                                          "lights.gif", "image/gif")])
    [media] = x.media_of(published.external_id)
    assert (media.data, media.mime_type, media.category) == (GIF, "image/gif", "tweet_gif")
    assert media.alt_text == "Lights coming on in the market square"
    calls = [(r.method, r.path.rsplit("/", 1)[-1], r.status) for r in x.requests_to("media_upload")]
    assert calls == [("POST", "initialize", 503), ("POST", "initialize", 200),
                     ("POST", "append", 200), ("POST", "append", 200),
                     ("POST", "finalize", 200), ("GET", "upload", 200)]
    init = x.requests_to("media_upload")[1].json
    assert init == {"media_type": "image/gif", "total_bytes": len(GIF), "media_category": "tweet_gif"}
    assert 1.0 in slept  # waited check_after_secs before asking STATUS


def test_emulator_refuses_a_gif_in_one_request(x: XEmulator) -> None:
    import requests
    from requests_oauthlib import OAuth1

    r = requests.post(f"{x.root_url}/2/media/upload", auth=OAuth1("ck", "cs", "tok-1111", "ts"),
                      files={"media": ("a.gif", GIF[:2000], "image/gif")},
                      data={"media_category": "tweet_image", "media_type": "image/gif"}, timeout=10)
    assert r.status_code == 400 and "tweet_gif" in r.text
    assert not x.media


def test_rate_limit_wait_comes_from_the_reset_header(x: XEmulator) -> None:
    """A 429 is waited out until X's x-rate-limit-reset, not a guessed minute."""
    slept: list[float] = []
    net = network(x)
    net._sleep = slept.append
    x.inject("mentions", "429", reset_in=5)
    list(net.fetch_mentions(None))
    [wait] = slept
    assert 4.0 <= wait <= 7.5, wait


def test_reset_read_from_headers_whatever_tweepy_version_raised_it(x: XEmulator) -> None:
    """tweepy before 4.17 raises TooManyRequests without `reset_time` (4.17 added it, and
    pyproject allows 4.14): the wait must come from the response's x-rate-limit-reset."""
    import time as _time

    import requests
    import tweepy

    slept: list[float] = []
    net = network(x)
    net._sleep = slept.append
    resp = requests.Response()
    resp.status_code = 429
    resp.headers["x-rate-limit-reset"] = str(int(_time.time()) + 5)
    resp._content = b'{"title": "Too Many Requests", "detail": "Too Many Requests"}'
    raised: list[int] = []

    def call() -> str:
        if not raised:
            raised.append(1)
            raise tweepy.TooManyRequests(resp)  # as tweepy 4.14-4.16 raise it
        return "ok"

    assert net._call("reading", call) == "ok"
    [wait] = slept
    assert 4.0 <= wait <= 7.5, wait


def test_emulator_checks_oauth1_signatures(x: XEmulator) -> None:
    """X refuses a request whose OAuth 1.0a signature is wrong (401), as the emulator does."""
    import requests
    from requests_oauthlib import OAuth1

    url = f"{x.root_url}/2/users/me"
    assert requests.get(url, auth=OAuth1("ck", "cs", "tok-1111", "ts"), timeout=10).status_code == 200
    assert requests.get(url, auth=OAuth1("ck", "wrong", "tok-1111", "ts"), timeout=10).status_code == 401
    assert requests.get(url, auth=OAuth1("ck", "cs", "tok-1111", "bad"), timeout=10).status_code == 401
    assert requests.get(url, auth=OAuth1("other", "cs", "tok-1111", "ts"), timeout=10).status_code == 401
    # ours, through tweepy with X's host rewritten to the emulator, is signed right
    assert network(x).verify_credentials() == "1111"
