"""The demo page shows every emoji shortcode the bot writes as an emoji, never as text."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("bot", "handlers", "integrations")
SHORTCODE = re.compile(r"(?<![\w:]):([a-z0-9][a-z0-9_+\-]*):(?![\w:`])")
NOT_EMOJI = {"memory"}  # sqlite:///:memory:


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def shortcodes() -> dict[str, str]:
    """Every `:name:` in a string literal (f-strings included, docstrings not) of the bot's
    source, with one place it is written."""
    found: dict[str, str] = {}
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            skip = _docstrings(tree)
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                        and id(node) not in skip:
                    for name in SHORTCODE.findall(node.value):
                        if name not in NOT_EMOJI:
                            found.setdefault(name, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_the_demo_emoji_map_covers_every_shortcode_the_bot_writes() -> None:
    from bot.config import SlackConfig
    from bot.demo.mrkdwn import EMOJI, mrkdwn

    used = shortcodes()
    assert {"globe_with_meridians", "white_check_mark", "memo"} <= set(used)  # the scan works
    missing = {name: where for name, where in used.items() if name not in EMOJI}
    assert not missing, f"add these to bot/demo/mrkdwn.py EMOJI: {missing}"
    for field in ("approve_reaction", "reject_reaction"):  # the reactions it asks for
        assert SlackConfig.model_fields[field].default in EMOJI
    assert str(mrkdwn(":globe_with_meridians: web")) == "🌐 web"
