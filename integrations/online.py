"""`commsdesk check-config --online`, the networks' half: each account's credentials are
tried against its network (X: GET /2/users/me; Mastodon: verify_credentials; Bluesky:
createSession; Facebook: the page; Flickr: flickr.test.login; Pinterest: user_account)."""

from __future__ import annotations

from typing import Any

from bot.config import ConfigError, Settings
from integrations.base import NetworkError


def verify_account(network: Any) -> str:
    """Ask the network who these credentials are; returns its id for the account."""
    verify = getattr(network, "verify_credentials", None)
    if verify is not None:
        return str(verify())
    return str(network.account_user_id())


def check_networks(settings: Settings) -> list[str]:
    from integrations.registry import build_network

    problems: list[str] = []
    for acc in settings.config.accounts:
        try:
            net = build_network(acc, settings)
            if hasattr(net, "max_attempts"):
                net.max_attempts = 1  # a check, not a job: one try, no waiting
            verify_account(net)
        except ConfigError as exc:
            problems += exc.problems
        except NetworkError as exc:
            problems.append(f"accounts '{acc.name}': {acc.network} did not accept the "
                            f"credentials {acc.credentials}: {exc}")
    return problems
