"""Outside text made safe for Slack: it can never ping, link or format.

The one rule for everything shown in Slack: text a person or a network supplies (residents'
words, pause reasons, echoes of bad command input, file names, network error text) goes
through `escape` (`&`, `<` and `>` escaped as Slack asks, so `<!channel>`, `<@U123>` and
`<https://evil|bank>` show as typed) or into `plain_text` (no mrkdwn, no emoji shortcodes,
so `*bold*` stays literal too). A URL from a network becomes a link only through
`safe_link`: `https://` on that network's own hosts (`link_hosts`), escaped; anything
else is shown as inert text, never a link.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from integrations import registry

SECTION_TEXT_LIMIT = 3000  # Block Kit's limit for a section's text


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_HOST = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?)+$")

# each network's own web hosts (and their subdomains): the only places its links may point
NETWORK_HOSTS: dict[str, tuple[str, ...]] = {
    spec.name: spec.link_hosts for spec in registry.specs() if spec.link_hosts}


def link_hosts(network: str, base_url: str | None = None) -> tuple[str, ...]:
    """Where links from this network may point: its spec's `link_hosts`, or for a network
    whose links are the account's own (`links_on_account_host`, e.g. a fediverse
    instance) only the host of its configured `base_url`; an unknown network: nowhere."""
    spec = registry.spec(network)
    if spec is not None and spec.links_on_account_host:
        try:
            host = (urlsplit(base_url).hostname or "") if base_url else ""
        except ValueError:
            host = ""
        return (host.lower(),) if _HOST.match(host) else ()
    return NETWORK_HOSTS.get(network, ())


def account_link_hosts(network: str, account: object | None) -> tuple[str, ...]:
    """`link_hosts` for a configured account (its `base_url`, the account's own server,
    where its network's links are the account's own)."""
    return link_hosts(network, getattr(account, "base_url", None))


def allowed_url(url: str | None, allowed_hosts: tuple[str, ...] | list[str]) -> str | None:
    """`url` when it is https on one of `allowed_hosts` (or a subdomain), else None."""
    if not url or len(url) > 2000 or any(c.isspace() or ord(c) < 32 for c in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme.lower() != "https" or not host or parts.username is not None \
            or parts.password is not None or port not in (None, 443):
        return None
    if not _HOST.match(host) or not any(host == h or host.endswith("." + h)
                                        for h in allowed_hosts if h):
        return None
    return url


def safe_link(url: str | None, label: str, allowed_hosts: tuple[str, ...] | list[str]) -> str:
    """mrkdwn for a link from outside: `<url|label>` (both escaped) when the URL is https on
    an allowed host; otherwise the label and the URL as inert text (never a link)."""
    ok = allowed_url(url, allowed_hosts)
    if ok is not None:
        target = escape(ok).replace("|", "%7C")
        return f"<{target}|{escape(label).replace('|', '¦')}>"
    if not url:
        return escape(label)
    return f"{escape(label)} (unverified link, not opened: {code(truncate(url, 200))})"


def code(text: str) -> str:
    """Outside text as inline code: escaped, and no backtick or newline to break out."""
    return "`" + escape(text.replace("`", "'").replace("\n", " ")) + "`"


def mrkdwn(text: str, limit: int = SECTION_TEXT_LIMIT) -> dict[str, Any]:
    """A mrkdwn text object (the caller escaped what came from outside), within Slack's limit."""
    return {"type": "mrkdwn", "text": fit(text, limit)}


def fit(text: str, limit: int = SECTION_TEXT_LIMIT) -> str:
    """At most `limit` characters (UTF-16 units, as Slack counts), never cut inside an
    entity (`&amp;`) or a `<...>` of the bot's own markup."""
    if _utf16_len(text) <= limit:
        return text
    cut = text[: max(0, limit - 1)]
    while _utf16_len(cut) > limit - 1:
        cut = cut[:-1]
    amp, semi = cut.rfind("&"), cut.rfind(";")
    if amp > semi and amp >= len(cut) - 6:
        cut = cut[:amp]
    lt, gt = cut.rfind("<"), cut.rfind(">")
    if lt > gt:
        cut = cut[:lt]
    return cut + "…"


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def chunks(text: str, limit: int = SECTION_TEXT_LIMIT - 100) -> list[str]:
    """Split escaped text into pieces Slack accepts, never inside an entity."""
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    i = 0
    while i < len(text):
        token = text[i]
        if token == "&":
            end = text.find(";", i, i + 6)
            if end != -1:
                token = text[i : end + 1]
        width = _utf16_len(token)
        if size + width > limit and current:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(token)
        size += width
        i += len(token)
    if current or not pieces:
        pieces.append("".join(current))
    return pieces


def plain(text: str) -> dict[str, Any]:
    """A plain_text object for outside text (already escaped by the caller)."""
    return {"type": "plain_text", "text": text or " ", "emoji": False}


def outside_text_sections(text: str, max_blocks: int = 20) -> list[dict[str, Any]]:
    """Outside text, escaped, as one or more section blocks (long text stays whole)."""
    parts = chunks(escape(text))
    if len(parts) > max_blocks:
        parts = [*parts[: max_blocks - 1], "… (too long to show here; open the post)"]
    return [{"type": "section", "text": plain(p)} for p in parts]


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
