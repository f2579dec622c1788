"""House-style checks: plain functions run on every draft and edit.

Each check takes a `Draft` description and the house-style config and returns
findings; its level (off, warn, block) comes from the config key of the same
name. Adding a check is adding one function to `CHECKS`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bot.config import HouseStyleConfig


@dataclass(frozen=True)
class DraftFacts:
    text: str
    length: int  # as the network counts it
    max_length: int
    is_reply: bool
    images: list[tuple[str, str | None]] = field(default_factory=list)  # (name, alt text)


@dataclass(frozen=True)
class Finding:
    check: str
    level: str  # warn|block
    message: str


Check = Callable[[DraftFacts, HouseStyleConfig], list[str]]
CHECKS: dict[str, Check] = {}


def check(name: str) -> Callable[[Check], Check]:
    def deco(fn: Check) -> Check:
        CHECKS[name] = fn
        return fn

    return deco


def _words(words: list[str], text: str) -> list[str]:
    found = []
    for w in words:
        if re.search(r"(?<![\w])" + re.escape(w) + r"(?![\w])", text, re.IGNORECASE):
            found.append(w)
    return found


@check("length")
def length(d: DraftFacts, _c: HouseStyleConfig) -> list[str]:
    if d.length > d.max_length:
        return [f"{d.length} characters; the network allows {d.max_length}"]
    return []


@check("blocked_words")
def blocked_words(d: DraftFacts, c: HouseStyleConfig) -> list[str]:
    return [f"uses the blocked word “{w}”" for w in _words(c.blocked_word_list, d.text)]


@check("flagged_words")
def flagged_words(d: DraftFacts, c: HouseStyleConfig) -> list[str]:
    return [f"uses “{w}”, which the style guide flags" for w in _words(c.flagged_word_list, d.text)]


_HASHTAG = re.compile(r"(?<![\w#])#(\w+)")


@check("hashtag_case")
def hashtag_case(d: DraftFacts, _c: HouseStyleConfig) -> list[str]:
    """#bincollection is read as one word by screen readers; #BinCollection is not."""
    out = []
    for tag in _HASHTAG.findall(d.text):
        letters = [ch for ch in tag if ch.isalpha()]
        if len(letters) >= 8 and all(ch.islower() for ch in letters):
            out.append(f"#{tag} is hard for screen readers: write it in CamelCase "
                       f"(e.g. #{tag[0].upper()}{tag[1:]}…)")
    return out


@check("alt_text")
def alt_text(d: DraftFacts, _c: HouseStyleConfig) -> list[str]:
    return [f"image {name} has no alt text" for name, alt in d.images if not (alt or "").strip()]


_URL = re.compile(r"https?://[^\s<>]+", re.IGNORECASE)


@check("link_domains")
def link_domains(d: DraftFacts, c: HouseStyleConfig) -> list[str]:
    if not c.approved_domains:
        return []
    out = []
    for url in _URL.findall(d.text):
        host = (urlsplit(url).hostname or "").lower()
        if not any(host == dom or host.endswith("." + dom) for dom in c.approved_domains):
            out.append(f"links to {host}, which is not an approved domain")
    return out


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<!\d)(?:\+44\s?\(?0?\)?|0)(?:\d[\s-]?){9,10}(?!\d)")
_POSTCODE_WITH_NUMBER = re.compile(
    r"\b\d{1,4}[a-z]?\s+[a-z][a-z' -]{2,40}?\b[\s,]+(?:[a-z' -]+,\s*)*"
    r"[a-z]{1,2}\d[a-z\d]?\s*\d[a-z]{2}\b",
    re.IGNORECASE,
)
_NI_NUMBER = re.compile(
    r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b",
    re.IGNORECASE,
)


@check("personal_data")
def personal_data(d: DraftFacts, _c: HouseStyleConfig) -> list[str]:
    """Personal data in a public reply: move the conversation to a private channel."""
    found = []
    if _EMAIL.search(d.text):
        found.append("an email address")
    if _PHONE.search(d.text):
        found.append("a phone number")
    if _POSTCODE_WITH_NUMBER.search(d.text):
        found.append("a home address (house number and postcode)")
    if _NI_NUMBER.search(d.text):
        found.append("a National Insurance number")
    if not found:
        return []
    where = "a public reply" if d.is_reply else "a public post"
    return [f"contains {', '.join(found)} in {where}: ask the resident to send details by "
            "direct message or the council's contact form instead"]


def run_checks(d: DraftFacts, c: HouseStyleConfig) -> list[Finding]:
    findings: list[Finding] = []
    for name, fn in CHECKS.items():
        level = getattr(c, name, "warn")
        if level == "off":
            continue
        findings += [Finding(name, level, msg) for msg in fn(d, c)]
    return findings


def blocking(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.level == "block"]
