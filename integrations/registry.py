"""Build the `Network` for a configured account. New networks register here: one line in
`BUILDERS` naming the integration's `build(account, settings)` function."""

from __future__ import annotations

import importlib
from typing import Any

from bot.config import AccountConfig, ConfigError, Settings
from integrations.base import Network

BUILDERS: dict[str, str] = {
    "x": "integrations.registry:_build_x",
    "mastodon": "integrations.mastodon.network:build",
    "bluesky": "integrations.bluesky.network:build",
    "facebook": "integrations.facebook.network:build",
    "flickr": "integrations.flickr.network:build",
    "pinterest": "integrations.pinterest.network:build",
}


def _build_x(account: AccountConfig, settings: Settings) -> Network:
    from integrations.x.network import XNetwork

    creds = settings.x_credentials.get(account.credentials)
    if creds is None:
        raise ConfigError([f"accounts '{account.name}': X credentials "
                           f"X_{account.credentials}_* are not set"])
    return XNetwork(account, creds, settings.env.x_api_base_url)


def credentials_for(account: AccountConfig, settings: Settings) -> dict[str, str]:
    """A non-X account's credentials, or a ConfigError naming the variables to set."""
    creds = settings.network_credentials(account.network, account.credentials)
    if creds is None:
        from bot.config import credential_spec

        names = ", ".join(credential_spec(account.network).names(account.credentials))
        raise ConfigError([f"accounts '{account.name}': {account.network} credentials "
                           f"{names} are not set"])
    return creds


def build_network(account: AccountConfig, settings: Settings) -> Network:
    target = BUILDERS.get(account.network)
    if target is None:
        raise ConfigError([f"accounts '{account.name}': unknown network {account.network!r}"])
    module, _, name = target.partition(":")
    builder: Any = getattr(importlib.import_module(module), name)
    return builder(account, settings)
