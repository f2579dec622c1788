"""Build the `Network` for a configured account. New networks register here."""

from __future__ import annotations

from commsdesk.config import AccountConfig, ConfigError, Settings
from commsdesk.integrations.base import Network


def build_network(account: AccountConfig, settings: Settings) -> Network:
    if account.network == "x":
        from commsdesk.integrations.x.network import XNetwork

        creds = settings.x_credentials.get(account.credentials)
        if creds is None:
            raise ConfigError([f"accounts '{account.name}': X credentials "
                               f"X_{account.credentials}_* are not set"])
        return XNetwork(account, creds, settings.env.x_api_base_url)
    raise ConfigError([f"accounts '{account.name}': unknown network {account.network!r}"])
