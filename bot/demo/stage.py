"""The demo page's public pane: one network's emulator, with the council's accounts and
the residents who mention them, shown as that network's public timelines.

Which network it is comes from the integrations: the one whose spec names a
`demo_stage` (`registry.stage()`), e.g. `integrations/<network>/demo.py: Stage`. This
module says what the demo asks of a stage; it names no network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from integrations import registry


@dataclass(frozen=True)
class Account:
    """A council account on the stage network (an `[[accounts]]` entry of the demo)."""

    name: str
    handle: str
    user_id: str
    display: str
    credentials: str  # the credentials key: `<PREFIX>_<KEY>_*` in a real deployment


@dataclass(frozen=True)
class Resident:
    user_id: str
    handle: str
    name: str


@dataclass(frozen=True)
class SeedMention:
    resident: str  # the resident's handle
    text: str
    minutes_ago: int


@dataclass(frozen=True)
class StagePost:
    """One public post as the pane shows it."""

    id: str
    author: str  # display name
    handle: str
    author_id: str
    created_at: datetime
    text: str  # raw (the page escapes it)
    parent_id: str | None  # the post it replies to
    mentioned_ids: frozenset[str]
    mentioned_handles: frozenset[str]  # lower case

    def mentions(self, account: Account) -> bool:
        return (account.user_id in self.mentioned_ids
                or account.handle.lower() in self.mentioned_handles)


class Stage(Protocol):
    network: str  # the spec's name, as the demo's `[[accounts]]` say it
    handle_pattern: str  # a resident's handle, as a regular expression (and HTML pattern)
    handle_rule: str  # the same in words: "1 to 15 letters, digits or underscores"
    max_length: int  # a resident's post, in characters

    @property
    def root_url(self) -> str: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def add_accounts(self, accounts: tuple[Account, ...]) -> None:
        """Add the council's accounts that are not there yet (a resumed demo keeps its)."""

    def seed(self, residents: tuple[Resident, ...], mentions: tuple[SeedMention, ...]) -> None:
        ...

    def register(self, accounts: tuple[Account, ...]) -> None:
        """Let the bot in: each account's demo credentials are valid on the emulator."""

    def credentials(self, accounts: tuple[Account, ...]) -> dict[tuple[str, str],
                                                                 dict[str, str]]: ...

    def env(self) -> dict[str, Any]:
        """`Environment` settings that point the bot at the emulator."""

    def add_mention(self, account: Account, handle: str, text: str) -> str:
        """A resident's post mentioning the account; its id."""

    def posts(self) -> list[StagePost]:
        """Every post there is, oldest first."""

    def dump(self) -> dict[str, Any]:
        """The emulator's state as JSON-able data (`persist.Saver` adds the file format)."""

    def load(self, data: dict[str, Any]) -> None: ...


def load_stage() -> Stage:
    target = registry.stage().demo_stage
    assert target is not None  # registry.stage() picks a spec that has one
    stage: Stage = registry.load(target)()
    return stage


def handle_ok(stage: Stage, handle: str) -> bool:
    return re.fullmatch(stage.handle_pattern, handle) is not None
