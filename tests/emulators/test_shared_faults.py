"""The fault injection every emulator shares (bot/emulators/base.py) behaves the same on
two different networks: a lost answer applies the request and hangs up, a 429 says when
to come back in the network's own rate-limit headers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

import httpx
import pytest

from bot.emulators.base import Emulator
from integrations.mastodon.emulator import MastodonEmulator
from integrations.pinterest.emulator import PinterestEmulator

PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


@dataclass
class Case:
    emulator: Emulator
    key: str  # the fault key of the call that makes a post
    post: Callable[[str], httpx.Response]
    posts: Callable[[], list[str]]  # the texts of the posts the network holds
    remaining: str  # the rate-limit header names
    reset: str
    reset_at: Callable[[str], float]


def _mastodon() -> Case:
    emu = MastodonEmulator()
    emu.start()
    me = emu.add_account("NottsCC", token="masto-token")

    def post(text: str) -> httpx.Response:
        return httpx.post(f"{emu.root_url}/api/v1/statuses", data={"status": text},
                          headers={"Authorization": "Bearer masto-token"}, timeout=5)

    return Case(emu, "post_status", post, lambda: [s.text for s in emu.posts_by(me.id)],
                "x-ratelimit-remaining", "x-ratelimit-reset",
                lambda value: datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


def _pinterest() -> Case:
    emu = PinterestEmulator()
    emu.start()
    emu.add_account("nottscc", "pina-token", boards=("549755885175",))

    def post(text: str) -> httpx.Response:
        body = {"board_id": "549755885175", "title": text, "media_source": {
            "source_type": "image_url", "url": "https://example.org/gritter.png"}}
        return httpx.post(f"{emu.root_url}/v5/pins", json=body,
                          headers={"Authorization": "Bearer pina-token"}, timeout=5)

    return Case(emu, "pins", post, lambda: [p["title"] for p in emu.pins.values()],
                "x-ratelimit-remaining", "x-ratelimit-reset", float)


@pytest.fixture(params=[_mastodon, _pinterest], ids=["mastodon", "pinterest"])
def case(request: pytest.FixtureRequest) -> Iterator[Case]:
    made: Case = request.param()
    yield made
    made.emulator.stop()


def test_a_lost_answer_is_applied_but_never_answered(case: Case) -> None:
    case.emulator.inject(case.key, "drop_after_commit")
    with pytest.raises(httpx.HTTPError):
        case.post("Gritters out tonight")
    assert case.posts() == ["Gritters out tonight"]  # it was made all the same
    assert case.post("Roads gritted").status_code in (200, 201)  # one fault, used once
    assert case.posts() == ["Gritters out tonight", "Roads gritted"]
    # the server counts what it is still answering (the fault trial waits for quiet)
    case.emulator.wait_for(lambda: case.emulator.inflight() == 0)
    assert case.emulator.inflight.quiet_for() >= 0


def test_a_429_says_when_to_come_back_and_makes_nothing(case: Case) -> None:
    case.emulator.inject(case.key, "429", reset_in=120)
    refused = case.post("Gritters out tonight")
    assert refused.status_code == 429
    assert refused.headers[case.remaining] == "0"
    assert 110 < case.reset_at(refused.headers[case.reset]) - time.time() <= 121
    assert case.posts() == []
    answered = case.post("Gritters out tonight")
    assert answered.status_code in (200, 201)
    assert int(answered.headers[case.remaining]) > 0


def test_a_drop_hangs_up_before_anything_is_done(case: Case) -> None:
    case.emulator.inject(case.key, "drop")
    with pytest.raises(httpx.HTTPError):
        case.post("Gritters out tonight")
    assert case.posts() == []
    assert [asked for asked in case.emulator.requests_to(case.key)]  # recorded all the same


def test_an_unknown_fault_kind_is_refused(case: Case) -> None:
    with pytest.raises(ValueError):
        case.emulator.inject(case.key, "teapot")
