"""The search syntax the network emulators understand (for keyword listening): terms
and "quoted phrases" (all must match, whole words, any case), `#hashtags`, `OR` between
alternatives, parentheses, and `-from:<handle>` / `-is:retweet` (X's operators)."""

from __future__ import annotations

import re

_TOKEN = re.compile(r'"[^"]*"|\(|\)|[^\s()]+')


def parse(query: str) -> tuple[list[list[str]], set[str]]:
    """(alternatives, each a list of terms that must all match; authors left out)."""
    alternatives: list[list[str]] = [[]]
    excluded: set[str] = set()
    for token in _TOKEN.findall(query):
        if token in ("(", ")"):
            continue
        if token == "OR":
            alternatives.append([])
            continue
        if token.startswith("-from:"):
            excluded.add(token[len("-from:"):].lower())
            continue
        if token.startswith(("-is:", "is:", "lang:", "-")):
            continue
        alternatives[-1].append(token.strip('"').lower())
    return [a for a in alternatives if a], excluded


def _has(term: str, text: str) -> bool:
    return re.search(rf"(?<![\w#@]){re.escape(term)}(?!\w)", text, re.I) is not None


def matches(query: str, text: str, author: str = "") -> bool:
    alternatives, excluded = parse(query)
    if author.lower() in excluded:
        return False
    return any(all(_has(t, text) for t in terms) for terms in alternatives)


def hashtags(text: str) -> set[str]:
    return {t.lower() for t in re.findall(r"(?<![\w#])#(\w+)", text)}
