"""The demo's other networks: every integration whose spec names a demo seed
(`NetworkSpec.demo`, e.g. `integrations/<network>/demo.py: Seed`), each an emulator with
the council's account and a resident or two who mention it.

The demo's stage network (the page's public pane) is set up by the runner; these
accounts sit beside it in the same config, so their mentions arrive in the same Slack
channels, labelled with their network, and drafts for them are approved and published
the same way. Their emulators' state is not saved: a resumed demo starts them empty.

A seed has `in_campaign` (the seeded campaign has a variant for its account),
`emulator`, `start(seed_mentions=...)`, `deliver_webhooks(bot_url)`, `stop()`,
`accounts()` (config entries), `credentials()` (`Settings.credentials` entries) and
`env()` (`Environment` settings, e.g. its API's base URL: the emulator).
"""

from __future__ import annotations

from typing import Any

from integrations import registry


class OtherNetworks:
    def __init__(self) -> None:
        self.seeds: dict[str, Any] = {spec.name: registry.load(spec.demo)()
                                      for spec in registry.specs() if spec.demo is not None}

    @property
    def emulators(self) -> list[Any]:
        return [seed.emulator for seed in self.seeds.values()]

    def start(self, *, seed_mentions: bool) -> None:
        for seed in self.seeds.values():
            seed.start(seed_mentions=seed_mentions)

    def deliver_webhooks(self, bot_url: str) -> None:
        """Networks that push (webhooks): send the seeded deliveries once the bot is
        listening."""
        for seed in self.seeds.values():
            seed.deliver_webhooks(bot_url)

    def stop(self) -> None:
        for seed in self.seeds.values():
            seed.stop()

    def campaign_accounts(self) -> list[str]:
        """The accounts the demo's seeded campaign also posts to."""
        return [acc["name"] for seed in self.seeds.values() if seed.in_campaign
                for acc in seed.accounts()]

    def accounts(self) -> list[dict[str, Any]]:
        return [acc for seed in self.seeds.values() for acc in seed.accounts()]

    def credentials(self) -> dict[tuple[str, str], dict[str, str]]:
        return {k: v for seed in self.seeds.values() for k, v in seed.credentials().items()}

    def env(self) -> dict[str, Any]:
        return {k: v for seed in self.seeds.values() for k, v in seed.env().items()}
