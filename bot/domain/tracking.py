"""Tracked links (issue 21): links to the council's own domains get UTM parameters
(utm_source = the network, utm_medium = social, utm_campaign = the campaign) before
approval, so the approver sees the link that will be published. Pure.

Parameters already in a link are kept (never overwritten); other sites' links are left
alone. Networks still count a link their own way (X and Mastodon: 23 characters)."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


def _tracked(host: str, domains: list[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in domains)


def tag_url(url: str, network: str, campaign: str | None) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    have = {k.lower() for k, _ in query}
    add = [("utm_source", network), ("utm_medium", "social")]
    if campaign and _slug(campaign):
        add.append(("utm_campaign", _slug(campaign)))
    query += [(k, v) for k, v in add if k not in have]
    return urlunsplit(parts._replace(query=urlencode(query)))


def tag(text: str, network: str, campaign: str | None, domains: list[str]) -> str:
    """`text` with every link to `domains` tagged."""
    if not domains:
        return text

    def one(m: re.Match[str]) -> str:
        url = m.group(0)
        tail = ""
        while url and url[-1] in _TRAILING:
            tail, url = url[-1] + tail, url[:-1]
        try:
            host = urlsplit(url).hostname or ""
        except ValueError:
            return m.group(0)
        if not _tracked(host, domains):
            return m.group(0)
        return tag_url(url, network, campaign) + tail

    return _URL.sub(one, text)
