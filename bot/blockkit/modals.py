"""Modals opened from buttons."""

from __future__ import annotations

from typing import Any

from bot.config import Config

REROUTE_CALLBACK = "reroute_alert"
REROUTE_BLOCK = "service"
REROUTE_ACTION = "service_select"


def reroute_modal(alert_id: int, config: Config) -> dict[str, Any]:
    options = [
        {"text": {"type": "plain_text", "text": svc.name}, "value": svc.name}
        for svc in config.services
    ]
    return {
        "type": "modal",
        "callback_id": REROUTE_CALLBACK,
        "private_metadata": str(alert_id),
        "title": {"type": "plain_text", "text": "Reroute mention"},
        "submit": {"type": "plain_text", "text": "Move"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": REROUTE_BLOCK,
                "label": {"type": "plain_text", "text": "Which service should handle it?"},
                "element": {"type": "static_select", "action_id": REROUTE_ACTION,
                            "options": options[:100]},
            }
        ],
    }


DRAFT_REPLY_CALLBACK = "draft_reply"
DRAFT_EDIT_CALLBACK = "draft_edit"
DRAFT_TEXT_BLOCK = "draft_text"
DRAFT_TEXT_ACTION = "draft_text_input"
DRAFT_COUNT_BLOCK = "draft_count"


def _count_block(length: int, limit: int) -> dict[str, Any]:
    over = length > limit
    text = f"{length}/{limit} characters" + (f" · {length - limit} too many" if over else "")
    return {"type": "context", "block_id": DRAFT_COUNT_BLOCK,
            "elements": [{"type": "mrkdwn", "text": (":warning: " if over else "") + text}]}


def draft_modal(
    *,
    callback_id: str,
    title: str,
    submit: str,
    metadata: str,
    account_label: str,
    quoted: list[dict[str, Any]],
    initial_text: str,
    length: int,
    limit: int,
) -> dict[str, Any]:
    """The draft modal: account, the post replied to, the text and a live count."""
    element: dict[str, Any] = {
        "type": "plain_text_input", "action_id": DRAFT_TEXT_ACTION, "multiline": True,
        "min_length": 1, "max_length": 3000,
        "dispatch_action_config": {"trigger_actions_on": ["on_character_entered"]},
    }
    if initial_text:
        element["initial_value"] = initial_text
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": metadata,
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": submit},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "context", "elements": [{"type": "mrkdwn", "text": account_label}]},
            *quoted,
            {"type": "input", "block_id": DRAFT_TEXT_BLOCK, "dispatch_action": True,
             "label": {"type": "plain_text", "text": "Your draft"}, "element": element},
            _count_block(length, limit),
            {"type": "context", "elements": [{"type": "mrkdwn", "text": (
                "Nothing is published until a member of the comms team approves it.")}]},
        ],
    }


def with_count(view: dict[str, Any], length: int, limit: int) -> dict[str, Any]:
    """The same modal with its character count brought up to date (for views.update)."""
    blocks = [(_count_block(length, limit) if b.get("block_id") == DRAFT_COUNT_BLOCK else b)
              for b in view["blocks"]]
    keep = ("type", "callback_id", "private_metadata", "title", "submit", "close")
    return {**{k: view[k] for k in keep if k in view}, "blocks": blocks}
