"""Everything a running bot holds: settings, database, Slack client, networks, and the
services handed to it at start-up (bot/bootstrap.py): the publisher, the approvers and the
outbox's renderers. It imports none of the services that use it."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot import logs
from bot.audit_keys import use_keyring
from bot.config import Settings
from bot.db import make_engine, make_sessionmaker
from bot.domain.routing import Router
from integrations.base import Network
from integrations.registry import build_network

if TYPE_CHECKING:
    from bot.services.approvers import Approvers
    from bot.services.outbox import Renderer
    from bot.services.publishing import Publisher


def make_slack_client(settings: Settings, *, retries: bool = True) -> WebClient:
    """A Web API client. `retries`: it tries again itself after a dropped connection, a 5xx
    or a 429. Off for the outbox: a POST whose answer was lost or was a 5xx may have
    posted, so the outbox tries again itself and looks in the channel first (and it paces
    429s per channel)."""
    handlers: list[Any] = []
    if retries:
        handlers = [ConnectionErrorRetryHandler(max_retry_count=2),
                    ServerErrorRetryHandler(max_retry_count=2),
                    RateLimitErrorRetryHandler(max_retry_count=3)]
    return WebClient(
        token=settings.env.slack_bot_token,
        base_url=settings.env.slack_api_url,
        timeout=10,
        retry_handlers=handlers,  # [] is none (None would be slack_sdk's default retries)
    )


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    slack: WebClient
    outbox_wakeup: threading.Event = field(default_factory=threading.Event)
    extras: dict[str, Any] = field(default_factory=dict)  # e.g. "background" (scheduler)
    _networks: dict[str, Network] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # handed in by bot/bootstrap.py (build_runtime), never imported from here
    publisher: Publisher = field(init=False)
    approvers: Approvers = field(init=False)
    renderers: dict[str, Renderer] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings, engine: Engine | None = None) -> Runtime:
        logs.add_secrets(settings.secrets())  # redacted wherever text leaves the process
        engine = engine or make_engine(settings.env.database_url)
        keyring = settings.audit_keyring()
        if keyring is not None:  # what this engine's audit records are signed with
            use_keyring(engine, keyring)
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_sessionmaker(engine),
            slack=make_slack_client(settings),
        )

    @cached_property
    def router(self) -> Router:
        return Router(self.settings.config)

    @cached_property
    def outbox_slack(self) -> WebClient:
        """The outbox's client retries nothing: the outbox does, looking before it posts."""
        return make_slack_client(self.settings, retries=False)

    def network(self, account_name: str) -> Network:
        with self._lock:
            if account_name not in self._networks:
                account = self.settings.config.account(account_name)
                if account is None:
                    raise KeyError(account_name)
                self._networks[account_name] = build_network(account, self.settings)
            return self._networks[account_name]

    def kick_outbox(self) -> None:
        self.outbox_wakeup.set()
