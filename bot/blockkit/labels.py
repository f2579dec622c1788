"""How an account is named to people: its handle and its network (`@NottsCC on Mastodon`).

One council can hold the same handle on several networks, so a handle alone is ambiguous.
The label is plain text: escape it (blockkit.escape.escape) where it goes into mrkdwn.
"""

from __future__ import annotations

from integrations import registry


def network_label(network: str | None) -> str:
    return registry.label(network)


def account_label(handle: str | None, network: str | None, name: str | None = None) -> str:
    """`@NottsCC on Mastodon`; with `name` (what `/social post NAME` takes) appended in
    brackets: `@NottsCC on Mastodon (nottscc-mastodon)`."""
    label = f"@{(handle or '?').lstrip('@')} on {network_label(network)}"
    return f"{label} ({name})" if name else label
