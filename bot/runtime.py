"""Everything a running bot holds: settings, database, Slack client, networks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from commsdesk.config import Settings
from commsdesk.db import make_engine, make_sessionmaker
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker


def make_slack_client(settings: Settings, *, retry_rate_limits: bool = True) -> WebClient:
    handlers: list[Any] = [ConnectionErrorRetryHandler(max_retry_count=2),
                           ServerErrorRetryHandler(max_retry_count=2)]
    if retry_rate_limits:
        handlers.append(RateLimitErrorRetryHandler(max_retry_count=3))
    return WebClient(
        token=settings.env.slack_bot_token,
        base_url=settings.env.slack_api_url,
        timeout=10,
        retry_handlers=handlers,
    )


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    slack: WebClient
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings, engine: Engine | None = None) -> Runtime:
        engine = engine or make_engine(settings.env.database_url)
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_sessionmaker(engine),
            slack=make_slack_client(settings),
        )
