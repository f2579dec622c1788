"""The networks there are: every subpackage of `integrations` whose `__init__` exports a
`SPEC` (a `NetworkSpec`). This is the one place that enumerates networks; config, Block
Kit labels, slash parsing, server routes, drafting and the demo loop over `specs()`.

A spec names its code as "module:attr" strings; `load` imports one when it is needed, so
reading the specs imports no network's client library."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import TYPE_CHECKING, Any

import integrations
from bot import logs
from integrations.base import NetworkSpec

if TYPE_CHECKING:
    from bot.config import AccountConfig, Settings
    from integrations.base import Network


@cache
def _discover() -> dict[str, NetworkSpec]:
    found: dict[str, NetworkSpec] = {}
    for info in sorted(pkgutil.iter_modules(integrations.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        spec = getattr(importlib.import_module(f"integrations.{info.name}"), "SPEC", None)
        if isinstance(spec, NetworkSpec):
            found[spec.name] = spec
            logs.add_library_loggers(spec.log_libraries)
    return found


def specs() -> tuple[NetworkSpec, ...]:
    """Every network's spec, by name."""
    return tuple(_discover().values())


def names() -> tuple[str, ...]:
    return tuple(_discover())


def spec(network: str) -> NetworkSpec | None:
    return _discover().get(network)


def stage() -> NetworkSpec:
    """The network on the demo page's public pane: the first (by name) whose spec names a
    `demo_stage`."""
    found = next((s for s in specs() if s.demo_stage is not None), None)
    if found is None:
        raise LookupError("no integration offers a demo stage (NetworkSpec.demo_stage)")
    return found


def load(target: str) -> Any:
    """The object a spec names as "module:attr"."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def label(network: str | None) -> str:
    """How people call the network ("Mastodon"); an unknown one: its key, or "?"."""
    found = spec(network or "")
    return found.label if found else (network or "?")


def build_network(account: AccountConfig, settings: Settings) -> Network:
    """The `Network` for a configured account (raises ConfigError, from
    `Settings.credentials_for`, when its credentials are not set). The config admits
    only networks that have a spec."""
    found = spec(account.network)
    if found is None:
        raise ValueError(f"accounts '{account.name}': unknown network {account.network!r}")
    network: Network = load(found.build)(account, settings)
    return network
