"""Each house-style check on a table of good and bad texts."""

from __future__ import annotations

import pytest

from bot.config import HouseStyleConfig
from bot.domain.house_style import CHECKS, DraftFacts, run_checks

CFG = HouseStyleConfig(blocked_word_list=["idiot"], flagged_word_list=["asap"],
                       approved_domains=["nottinghamshire.gov.uk", "gov.uk"])


def facts(text: str, *, length: int | None = None, images: list[tuple[str, str | None]] | None = None,
          reply: bool = True) -> DraftFacts:
    return DraftFacts(text=text, length=len(text) if length is None else length, max_length=280,
                      is_reply=reply, images=images or [])


@pytest.mark.parametrize(
    ("check", "text", "fires"),
    [
        ("blocked_words", "Don't be an idiot", True),
        ("blocked_words", "Idiotic? no: idiot!", True),
        ("blocked_words", "We'll fix it", False),
        ("flagged_words", "We'll do it ASAP", True),
        ("flagged_words", "We'll do it soon", False),
        ("hashtag_case", "Check your #bincollection day", True),
        ("hashtag_case", "Check your #BinCollection day", False),
        ("hashtag_case", "Go #notts", False),  # short tags read fine
        ("link_domains", "See https://www.nottinghamshire.gov.uk/bins", False),
        ("link_domains", "See https://www.gov.uk/council-tax", False),
        ("link_domains", "See https://bit.ly/3xyz", True),
        ("link_domains", "See https://nottinghamshire.gov.uk.evil.example/x", True),
        ("personal_data", "Email jane.doe@example.com and we'll sort it", True),
        ("personal_data", "Ring us on 0115 977 4000", True),
        ("personal_data", "Call +44 7700 900123 today", True),
        ("personal_data", "Was that 12 Elm Road, NG1 5AB?", True),
        ("personal_data", "Is your NI number AB 12 34 56 C?", True),
        ("personal_data", "Thanks, we've passed this to the team", False),
        ("personal_data", "Bins go out on 12 May in NG1", False),
        ("personal_data", "Follow @NottsCC for updates", False),
    ],
)
def test_check_table(check: str, text: str, fires: bool) -> None:
    assert bool(CHECKS[check](facts(text), CFG)) is fires


def test_length_and_alt_text() -> None:
    assert CHECKS["length"](facts("x", length=281), CFG)
    assert not CHECKS["length"](facts("x", length=280), CFG)
    assert CHECKS["alt_text"](facts("x", images=[("pothole.jpg", "")]), CFG)
    assert not CHECKS["alt_text"](facts("x", images=[("pothole.jpg", "A pothole on Elm Road")]), CFG)


def test_levels_come_from_config() -> None:
    text = "Email jane@example.com ASAP #bincollection"
    levels = {f.check: f.level for f in run_checks(facts(text), CFG)}
    assert levels == {"personal_data": "block", "flagged_words": "warn", "hashtag_case": "warn"}
    quiet = HouseStyleConfig(personal_data="off", flagged_words="block", hashtag_case="off",
                             flagged_word_list=["asap"])
    assert {f.check: f.level for f in run_checks(facts(text), quiet)} == {"flagged_words": "block"}
