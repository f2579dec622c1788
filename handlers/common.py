"""What the button listeners share: reading a button's value, telling the presser."""

from __future__ import annotations

from typing import Any

from bot import logs
from bot.runtime import Runtime

log = logs.get("commsdesk.actions")


def value_id(body: dict[str, Any]) -> int | None:
    """The id a button carries (`<id>` or `<id>:v<version>`)."""
    try:
        return int(str(body["actions"][0]["value"]).split(":", 1)[0])
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def value_version(body: dict[str, Any]) -> int | None:
    """The draft version an Approve/Reject button was shown with (`<id>:v<version>`)."""
    try:
        _, _, version = str(body["actions"][0]["value"]).partition(":v")
        return int(version) if version else None
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def user_of(body: dict[str, Any]) -> str:
    return str((body.get("user") or {}).get("id") or "")


def selected(body: dict[str, Any]) -> str | None:
    """A menu's choice: Slack sends the select's selected_option (the emulator a value)."""
    try:
        action = body["actions"][0]
        return str((action.get("selected_option") or {}).get("value") or action["value"])
    except (KeyError, IndexError, TypeError):
        return None


def tell(rt: Runtime, body: dict[str, Any], text: str) -> None:
    """An ephemeral note to the person who pressed the button."""
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
        "channel_id")
    user = user_of(body)
    if channel and user:
        try:
            rt.slack.chat_postEphemeral(channel=channel, user=user, text=text)
        except Exception as exc:  # telling is best effort; the action itself is done
            log.warning("ephemeral not sent", error=str(exc))


def tell_presser(rt: Runtime, body: dict[str, Any], respond: Any, text: str) -> None:
    """An ephemeral note to whoever pressed the button, even someone who is not a member
    of the channel (chat.postEphemeral would refuse them): through the response_url."""
    try:
        respond(text=text, response_type="ephemeral", replace_original=False)
    except Exception as exc:
        log.warning("refusal not sent by response_url", error=str(exc))
        tell(rt, body, text)
