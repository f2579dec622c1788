"""Listeners stay thin (Bolt's starter template): every function in handlers/ is at
module level and at most 40 lines, and no handler touches the database or the audit
trail itself (it calls one service function per user action)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HANDLERS = Path(__file__).resolve().parents[2] / "handlers"
MAX_LINES = 40
FORBIDDEN_MODULES = ("bot.db", "sqlalchemy", "bot.models", "bot.services.audit")
FORBIDDEN_NAMES = {"transaction", "reading", "Session", "session", "sessions", "audit"}
FILES = sorted(HANDLERS.glob("*.py"))


def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def test_there_are_handler_modules() -> None:
    assert {p.stem for p in FILES} >= {"commands", "events", "actions", "views"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_functions_are_module_level_and_short(path: Path) -> None:
    module = tree(path)
    top = {id(n) for n in module.body}
    for node in ast.walk(module):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            where = f"{path.name}:{node.lineno}"
            assert id(node) in top, f"{where}: a function inside a function (a closure)"
            assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            assert length <= MAX_LINES, f"{where}: {node.name} is {length} lines"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_database_session_or_audit_in_handlers(path: Path) -> None:
    for node in ast.walk(tree(path)):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            names = []
        for name in names:
            assert not name.startswith(FORBIDDEN_MODULES), f"{where}: imports {name}"
        if isinstance(node, ast.ImportFrom):
            assert not {a.name for a in node.names} & FORBIDDEN_NAMES, where
        if isinstance(node, ast.Name):
            assert node.id not in FORBIDDEN_NAMES, f"{where}: uses {node.id}"
        if isinstance(node, ast.Attribute):
            assert node.attr not in FORBIDDEN_NAMES, f"{where}: uses .{node.attr}"


def test_the_shape_check_catches_a_fat_listener(tmp_path: Path) -> None:
    """The checks above would fail on the old shape: a closure opening a transaction."""
    fat = tmp_path / "fat.py"
    fat.write_text("from bot.db import transaction\n\n"
                   "def register(app, rt):\n"
                   "    @app.command('/x')\n"
                   "    def x(ack):\n"
                   "        with transaction(rt.sessions) as s:\n"
                   "            pass\n")
    with pytest.raises(AssertionError, match="closure"):
        test_functions_are_module_level_and_short(fat)
    with pytest.raises(AssertionError, match=r"bot\.db"):
        test_no_database_session_or_audit_in_handlers(fat)
