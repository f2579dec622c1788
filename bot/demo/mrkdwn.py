"""Slack text to safe HTML, for the demo page.

Slack text arrives with ``&``, ``<`` and ``>`` escaped as entities; real markup
is inside ``<...>`` (links, user and channel mentions, dates). Everything here
decodes the entities, then HTML-escapes the text itself (markupsafe), so
nothing a resident or a message wrote can become HTML on the page.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from markupsafe import Markup, escape

EMOJI: dict[str, str] = {
    "white_check_mark": "✅", "heavy_check_mark": "✔️", "x": "❌", "warning": "⚠️",
    "memo": "📝", "hourglass_flowing_sand": "⏳", "hourglass": "⌛", "rocket": "🚀",
    "arrow_right": "➡️", "no_entry_sign": "🚫", "no_entry": "⛔", "raising_hand": "🙋",
    "large_blue_circle": "🔵", "fast_forward": "⏩", "heavy_minus_sign": "\u2796",
    "alarm_clock": "⏰", "tada": "🎉", "eyes": "👀", "+1": "👍", "thumbsup": "👍",
    "-1": "👎", "wave": "👋", "bulb": "💡", "speech_balloon": "💬", "bell": "🔔",
    "calendar": "📅", "link": "🔗", "mag": "🔍", "house": "🏠", "information_source": "\u2139\ufe0f",
    "question": "❓", "exclamation": "❗", "clock3": "🕒", "pushpin": "📌", "bar_chart": "📊",
    "construction": "🚧", "car": "🚗", "books": "📚", "recycle": "♻️", "wastebasket": "🗑️",
    "heart": "❤️", "pencil2": "✏️", "inbox_tray": "📥", "outbox_tray": "📤", "lock": "🔒",
    "smile": "😄", "slightly_smiling_face": "🙂", "pray": "🙏", "sparkles": "✨",
    "arrow_forward": "▶️", "ballot_box_with_ballot": "🗳️", "busts_in_silhouette": "👥",
    "double_vertical_bar": "⏸️", "frame_with_picture": "🖼️", "globe_with_meridians": "🌐",
    "octagonal_sign": "🛑", "rotating_light": "🚨",
    # triage and saved replies (issue 20)
    "red_circle": "🔴", "white_circle": "⚪", "slightly_frowning_face": "🙁",
    "neutral_face": "😐", "floppy_disk": "💾",
    # planning (issue 21): group cards, approval steps, the calendar
    "arrows_counterclockwise": "🔄", "twisted_rightwards_arrows": "🔀", "ladder": "🪜",
}  # tests/demo/test_demo_emoji.py checks that every shortcode the bot writes is here

_ENTITY = re.compile(r"<([^<>]*)>")
_EMOJI = re.compile(r":([a-z0-9_+\-]+):")
_HELD = re.compile(r"\x00(\d+)\x00")
_SAFE_URL = re.compile(r"^(https?://|mailto:)", re.IGNORECASE)
_DATE = re.compile(r"^!date\^\d+\^[^|]*(?:\^[^|]*)?\|(.*)$", re.DOTALL)
# emphasis: the marker must hug non-space text, as Slack requires
_STYLES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"`([^`\n]+)`"), "code"),
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]*?\S)\*(?![\w*])"), "strong"),
    (re.compile(r"(?<![\w_])_(?=\S)([^_\n]*?\S)_(?![\w_])"), "em"),
    (re.compile(r"(?<![\w~])~(?=\S)([^~\n]*?\S)~(?![\w~])"), "del"),
)


def unescape(text: str) -> str:
    """Slack's three entities (``&lt; &gt; &amp;``) back to characters."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def emoji(text: str) -> str:
    return _EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), text)


def plain(text: str, with_emoji: bool = True) -> Markup:
    """A ``plain_text`` object's text: no formatting, entities decoded, escaped."""
    raw = unescape(text or "")
    return escape(emoji(raw) if with_emoji else raw)


def _styled(raw: str) -> Markup:
    """Inline styles on raw text (already free of Slack entities)."""
    out = str(escape(emoji(raw)))
    for pattern, tag in _STYLES:
        out = pattern.sub(lambda m, t=tag: f"<{t}>{m.group(1)}</{t}>", out)  # type: ignore[misc]
    return Markup(out.replace("\n", "<br>"))


def _link(url: str, label: str | None) -> Markup:
    shown = _styled(unescape(label)) if label else escape(unescape(url))
    target = unescape(url)
    if not _SAFE_URL.match(target):
        return shown
    return Markup('<a href="{}" target="_blank" rel="noopener noreferrer">{}</a>').format(
        target, shown)


def _entity(inner: str, user_name: Callable[[str], str],
            channel_name: Callable[[str], str], group_name: Callable[[str], str]) -> Markup:
    body, _, label = inner.partition("|")
    if body.startswith("@"):
        return Markup('<span class="sk-mention">@{}</span>').format(label or user_name(body[1:]))
    if body.startswith("#"):
        return Markup('<span class="sk-mention">#{}</span>').format(
            label or channel_name(body[1:]))
    if body.startswith("!"):
        date = _DATE.match(inner)
        if date:
            return escape(unescape(date.group(1)))
        if body.startswith("!subteam^"):
            return Markup('<span class="sk-mention">@{}</span>').format(
                label or group_name(body[len("!subteam^"):]))
        return Markup('<span class="sk-mention">@{}</span>').format(label or body[1:])
    return _link(body, label or None)


def mrkdwn(text: str, *, user_name: Callable[[str], str] = str,
           channel_name: Callable[[str], str] = str,
           group_name: Callable[[str], str] = str) -> Markup:
    """Slack mrkdwn (``*bold*``, ``_italic_``, ``~strike~``, `` `code` ``, links,
    ``<@U..>``, ``<#C..>``, ``:emoji:``) as safe HTML."""
    rendered: list[Markup] = []

    def hold(match: re.Match[str]) -> str:
        # each <...> entity is rendered on its own and held by a placeholder, so that
        # emphasis can still span it (``_since <!date^…|25 Nov>_``)
        rendered.append(_entity(match.group(1), user_name, channel_name, group_name))
        return f"\x00{len(rendered) - 1}\x00"

    held = _ENTITY.sub(hold, (text or "").replace("\x00", ""))
    styled = _quotes(str(_styled(unescape(held))))
    return Markup(_HELD.sub(lambda m: str(rendered[int(m.group(1))]), styled))


def _quotes(html: str) -> str:
    """Lines that begin with ``>`` (escaped by now) are a quote, as Slack shows them."""
    lines = html.split("<br>")
    if not any(line.startswith("&gt;") for line in lines):
        return html
    return "<br>".join(f'<span class="sk-quote">{line[4:]}</span>' if line.startswith("&gt;")
                       else line for line in lines)


def post_text(text: str) -> Markup:
    """A public post's raw text from the stage's emulator (not escaped there): escape, keep
    line breaks."""
    return Markup(str(escape(text)).replace("\n", "<br>"))
