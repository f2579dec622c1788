"""`check-config --online`: ask Slack whether the token, channels and user group exist."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError, SlackClientError

from bot.config import Settings
from bot.runtime import make_slack_client


def check_slack(settings: Settings) -> list[str]:
    client = make_slack_client(settings)
    try:
        client.auth_test()
    except SlackApiError as exc:
        return [f"SLACK_BOT_TOKEN was refused by Slack: {exc.response.get('error')}"]
    except (SlackClientError, OSError) as exc:
        return [f"cannot reach Slack at {settings.env.slack_api_url}: {exc}"]
    problems: list[str] = []
    c = settings.config
    channels = {
        "slack.approvals_channel": c.slack.approvals_channel,
        "slack.default_channel": c.slack.default_channel,
    }
    for i, svc in enumerate(c.services):
        channels[f"services[{i}].channel"] = svc.channel
    for key, channel in channels.items():
        try:
            info = client.conversations_info(channel=channel)
            if not info["channel"].get("is_member", True):
                problems.append(f"{key}: the bot is not a member of {channel}; invite it")
        except SlackApiError as exc:
            problems.append(f"{key}: channel {channel} unknown to Slack ({exc.response.get('error')})")
    try:
        client.usergroups_users_list(usergroup=c.slack.approvers_usergroup)
    except SlackApiError as exc:
        problems.append(
            f"slack.approvers_usergroup: user group {c.slack.approvers_usergroup} unknown to "
            f"Slack ({exc.response.get('error')})"
        )
    return problems
