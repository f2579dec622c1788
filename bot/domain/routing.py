"""Which Slack channels a mention goes to. Plain functions: no Slack, no network."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.config import Config


@dataclass(frozen=True)
class Route:
    service: str | None  # None: nobody claimed it, so the default channel
    channel: str
    reason: str


@dataclass(frozen=True)
class MentionFacts:
    account: str  # our account name, e.g. "nottscc"
    author_handle: str | None
    text: str


def keyword_pattern(keywords: list[str]) -> re.Pattern[str] | None:
    """Whole words (or phrases), any case: "bin" matches "Bin!" but not "cabinet"."""
    if not keywords:
        return None
    alternatives = sorted((re.escape(k) for k in keywords), key=len, reverse=True)
    return re.compile(r"(?<![\w])(?:" + "|".join(alternatives) + r")(?![\w])", re.IGNORECASE)


class Router:
    """Compiled routing rules for one config."""

    def __init__(self, config: Config):
        self.config = config
        self.default_channel = config.slack.default_channel
        self.safeguarding_channel = config.safeguarding.channel
        self._safeguarding = (keyword_pattern(config.safeguarding.terms)
                              if config.safeguarding.channel else None)
        self._rules = [
            (svc.name, svc.channel, set(svc.accounts), set(svc.authors),
             keyword_pattern(svc.keywords))
            for svc in config.services
        ]

    def route(self, m: MentionFacts) -> list[Route]:
        routes: list[Route] = []
        seen_channels: set[str] = set()
        author = (m.author_handle or "").lstrip("@").lower()
        for name, channel, accounts, authors, pattern in self._rules:
            reason = None
            if m.account in accounts:
                reason = f"account {m.account}"
            elif author and author in authors:
                reason = f"author @{author}"
            elif pattern is not None:
                hit = pattern.search(m.text)
                if hit:
                    reason = f"keyword “{hit.group(0).lower()}”"
            if reason and channel not in seen_channels:
                routes.append(Route(name, channel, reason))
                seen_channels.add(channel)
        if not routes:
            routes.append(Route(None, self.default_channel, "no service matched"))
        return routes

    def safeguarding_term(self, text: str) -> str | None:
        """The safeguarding term a mention matches (None: none, or escalation is off)."""
        if self._safeguarding is None:
            return None
        hit = self._safeguarding.search(text)
        return hit.group(0).lower() if hit else None
