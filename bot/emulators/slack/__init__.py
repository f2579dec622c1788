"""An offline Slack: a workspace, its Web API and the "Slack side" driver.

- :mod:`.workspace`: the state (users, channels, user groups, messages, files,
  reactions, views) and how Slack shows it;
- :mod:`.web_api`: the ``/api/<method>`` handlers slack_sdk's
  ``WebClient(base_url=emulator.start())`` talks to, with Slack's own shapes and errors;
- :mod:`.driver`: what Slack sends the bot (events, slash commands, interactivity),
  signed with the signing secret exactly as Slack signs them, to ``bot_events_url``.

:class:`SlackEmulator` is all three on one server (the shared emulator base:
:mod:`bot.emulators.base`).
"""

from __future__ import annotations

from bot.emulators.slack.driver import SlackDriver
from bot.emulators.slack.web_api import WebApi
from bot.emulators.slack.workspace import (
    MAX_TEXT_LENGTH,
    RATE_LIMITED_METHOD,
    Call,
    Delivery,
    SlackChannel,
    SlackError,
    SlackUser,
    SlackUsergroup,
    StoredMessage,
    StoredView,
    Workspace,
    slack_escape,
)

__all__ = [
    "MAX_TEXT_LENGTH", "RATE_LIMITED_METHOD", "Call", "Delivery", "SlackChannel", "SlackDriver",
    "SlackEmulator", "SlackError", "SlackUser", "SlackUsergroup", "StoredMessage", "StoredView",
    "WebApi", "Workspace", "slack_escape",
]


class SlackEmulator(SlackDriver, WebApi):
    """A Slack workspace and Web API on 127.0.0.1, and the signed driver that plays Slack
    towards the bot. ``start()`` returns the ``.../api/`` base URL."""

    @property
    def api_url(self) -> str:
        """The Web API base URL, ``http://127.0.0.1:PORT/api/``."""
        return f"{self.root_url}/api/"

    def start(self) -> str:
        super().start()
        return self.api_url

    def stop(self) -> None:
        self._stop_driver()
        super().stop()
