"""README.md stays true: every `commsdesk ...` command it names exists in the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import click

from bot.cli import main

ROOT = Path(__file__).resolve().parent.parent
CODE = re.compile(r"```.*?```|`[^`\n]+`", re.S)
COMMAND = re.compile(r"(?:^|[\s/|(])commsdesk((?:\s+[a-z][a-z-]*)+)")


def named_commands(markdown: str) -> set[tuple[str, ...]]:
    """Command paths written in code (inline or fenced), e.g. ("audit", "verify")."""
    found: set[tuple[str, ...]] = set()
    for span in CODE.findall(markdown):
        for line in span.strip("`").splitlines():
            for words in COMMAND.findall(line):
                found.add(tuple(words.split()))
    return found


def resolves(path: tuple[str, ...]) -> bool:
    """The longest prefix of `path` that is a command must cover its first word, and a
    group must be followed by one of its subcommands."""
    cmd: click.Command = main
    for i, word in enumerate(path):
        if not isinstance(cmd, click.Group):
            return i > 0  # the rest are arguments
        sub = cmd.commands.get(word)
        if sub is None:
            return False
        cmd = sub
    return not isinstance(cmd, click.Group) or bool(path)


def test_every_command_the_readme_names_exists() -> None:
    names = named_commands((ROOT / "README.md").read_text("utf-8"))
    assert ("serve",) in {n[:1] for n in names}, "the README should name commands"
    missing = sorted(" ".join(n) for n in names if not resolves(n))
    assert not missing, f"README names commands the CLI does not have: {missing}"


def test_the_check_itself_catches_an_unknown_command() -> None:
    names = named_commands("Run `commsdesk frobnicate --now` then `commsdesk audit verify`.")
    assert names == {("frobnicate",), ("audit", "verify")}
    assert not resolves(("frobnicate",))
    assert not resolves(("audit", "rewrite"))
    assert resolves(("audit", "verify"))
