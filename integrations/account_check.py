"""`commsdesk check-config --online`, the networks' half: each account's credentials are
tried against its network (`Network.verify_credentials`: each network's cheapest call
that needs them, e.g. "who am I")."""

from __future__ import annotations

from bot.config import ConfigError, Settings
from integrations.base import Network, NetworkError
from integrations.registry import build_network


def verify_account(network: Network) -> str:
    """Ask the network who these credentials are; returns its id for the account."""
    return str(network.verify_credentials())


def check_networks(settings: Settings) -> list[str]:
    problems: list[str] = []
    for acc in settings.config.accounts:
        try:
            net = build_network(acc, settings)
            net.max_attempts = 1  # a check, not a job: one try, no waiting
            verify_account(net)
        except ConfigError as exc:
            problems += exc.problems
        except NetworkError as exc:
            problems.append(f"accounts '{acc.name}': {acc.network} did not accept the "
                            f"credentials {acc.credentials}: {exc}")
    return problems
