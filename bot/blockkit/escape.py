"""Outside text made safe for Slack: it can never ping, link or format.

Residents' words are put in `plain_text` objects (no mrkdwn, no emoji
shortcodes) after escaping `&`, `<` and `>` as Slack asks, so `<!channel>`,
`<@U123>`, `<https://evil|bank>` and `*bold*` all show as typed.
"""

from __future__ import annotations

from typing import Any

SECTION_TEXT_LIMIT = 3000  # Block Kit's limit for a section's text


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


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
