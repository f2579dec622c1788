"""Pure rules, tested without Slack or any network: routing, the /social grammar,
escaping of outside text, and X's way of counting characters."""

from __future__ import annotations

import copy
from datetime import datetime

import pytest

from bot.blockkit.escape import chunks, escape, outside_text_sections
from bot.config import parse_config
from bot.domain import slash
from bot.domain.routing import MentionFacts, Router
from integrations.x.network import XNetwork
from tests.harness import E2E_CONFIG

ROUTER = Router(parse_config(copy.deepcopy(E2E_CONFIG)))


@pytest.mark.parametrize(
    ("account", "author", "text", "services"),
    [
        ("nottscc", "jane", "My BIN wasn't emptied!", ["waste"]),
        ("nottscc", "jane", "the cabinet meeting is today", [None]),  # not the word "bin"
        ("nottscc", "jane", "recycling and a pothole", ["waste", "highways"]),
        ("nottslibraries", "jane", "lovely staff", ["libraries"]),  # by account
        ("nottscc", "CouncillorJo", "hello", ["vip"]),  # by author, any case
        ("nottscc", "jane", "#bins day", ["waste"]),  # hashtag is a whole word
        ("nottscc", "jane", "binsday", [None]),
        ("nottscc", "jane", "Potholes, potholes", ["highways"]),  # one alert per service
    ],
)
def test_routing(account: str, author: str, text: str, services: list[str | None]) -> None:
    routes = ROUTER.route(MentionFacts(account, author, text))
    assert [r.service for r in routes] == services
    if services == [None]:
        assert routes[0].channel == "C0COMMS"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", slash.Help()),
        ("help", slash.Help()),
        ("reply M12 Thanks &amp; sorry", slash.Reply(slash.MentionRef(mention_id=12), "Thanks & sorry")),
        ("reply <https://x.com/jane/status/123> hi", slash.Reply(slash.MentionRef(network="x", external_id="123"), "hi")),
        ("reply https://twitter.com/jane/status/123?s=20 hi", slash.Reply(slash.MentionRef(network="x", external_id="123"), "hi")),
        ("post NottsCC line one\nline two", slash.Post("nottscc", "line one\nline two")),
        ("post nottscc see <https://notts.gov.uk|notts.gov.uk> &lt;3", slash.Post("nottscc", "see https://notts.gov.uk <3")),
        ("post nottscc hi <@U123|cara>", slash.Post("nottscc", "hi @cara")),
        ("post nottscc bell\x07 and \x1b[31mred", slash.Post("nottscc", "bell and [31mred")),
        ("schedule nottscc 2026-12-01 09:30 Carols", slash.Schedule("nottscc", datetime(2026, 12, 1, 9, 30), "Carols")),
    ],
)
def test_slash_grammar(raw: str, expected: slash.Command) -> None:
    assert slash.parse(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["reply", "reply M1", "reply banana hi", "post", "post nottscc", "schedule nottscc",
     "schedule nottscc 2026-13-01 09:00 x", "schedule nottscc 2026-12-01 25:00 x", "fly away"],
)
def test_slash_errors_say_what_and_how(raw: str) -> None:
    with pytest.raises(slash.SlashError) as exc:
        slash.parse(raw)
    assert exc.value.text()


def test_escape_disarms_slack_markup() -> None:
    assert escape("<!channel> & <@U1>") == "&lt;!channel&gt; &amp; &lt;@U1&gt;"


def test_long_text_is_split_without_breaking_entities_or_losing_anything() -> None:
    text = ("&" * 5000) + ("😀" * 3000)
    parts = chunks(escape(text))
    assert "".join(parts) == escape(text)
    for p in parts:
        assert len(p.encode("utf-16-le")) // 2 <= 2900
        assert not p.endswith(("&", "&a", "&am", "&amp"))
    assert all(b["text"]["type"] == "plain_text" for b in outside_text_sections(text))


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("hello", 5),
        ("https://www.nottinghamshire.gov.uk/" + "x" * 200, 23),  # every URL counts 23
        ("see notts.gov.uk/bins now", 4 + 23 + 4),
        ("日本語", 6),  # CJK counts 2
        ("😀", 2),  # emoji count 2
        ("café", 4),
    ],
)
def test_x_counts_like_x(text: str, length: int) -> None:
    assert XNetwork.weighted_length(None, text) == length  # type: ignore[arg-type]
