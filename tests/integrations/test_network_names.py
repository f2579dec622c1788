"""Outside `integrations/<network>/`, no code names a specific network: the core loops over
the specs the registry discovers (`integrations/registry.py`). Read with `ast`, so
docstrings and comments may still use networks as examples; what is checked is code:
string constants (a network's key, `X_API_BASE_URL`, `/webhooks/facebook`,
"integrations.mastodon..."), identifiers and attribute names (`x_api_base_url`,
`FACEBOOK_MAX_BODY_BYTES`, `XEmulator`) and imports of a network's own modules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

NETWORKS = ("x", "mastodon", "bluesky", "facebook", "flickr", "pinterest")
_WORDS = "|".join(NETWORKS)
# a whole string that is a network's key, or starts like one of its settings (`x_api...`)
_KEY = re.compile(rf"^(?:{_WORDS})(?:_[a-z0-9_]+)?$", re.IGNORECASE)
# a network's name inside a longer string (not `x`: too short to judge in prose)
_INSIDE = re.compile(r"(?<![a-z])(?:mastodon|bluesky|facebook|flickr|pinterest)(?![a-z])",
                     re.IGNORECASE)
# identifiers: `x_api_base_url`, `FACEBOOK_MAX_BODY_BYTES`, `load_x`, `XEmulator`
_IDENT = re.compile(rf"(?:^|_)(?:{_WORDS})(?:_|$)", re.IGNORECASE)
_CAMEL = re.compile(r"^(?:X|Mastodon|Bluesky|Facebook|Flickr|Pinterest)[A-Z]")

# what is allowed, and why (file, the name as found)
ALLOWED = {
    # the Slack emoji `:x:` (a reaction's name), not the network
    ("bot/config.py", "x"),
    ("bot/demo/web.py", "x"),  # the demo page offers the ✅ and ❌ reactions
    ("bot/demo/mrkdwn.py", "x"),  # ... and shows `:x:` as ❌
}


def _files() -> list[Path]:
    out = [p for top in ("bot", "handlers") for p in sorted((ROOT / top).rglob("*.py"))]
    out += sorted((ROOT / "integrations").glob("*.py"))  # the shared modules, not a network's
    return [p for p in out if "__pycache__" not in p.parts]


def _docstrings(tree: ast.AST) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _identifiers(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, ast.keyword) and node.arg:
        return [node.arg]
    if isinstance(node, ast.alias):
        return [(node.asname or node.name).split(".")[-1]]
    return []


def names_of_networks(source: str, rel: str) -> list[str]:
    tree = ast.parse(source, rel)
    docs = _docstrings(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        where = f"{rel}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[0] == "integrations" and len(parts) > 1 and parts[1] in NETWORKS:
                found.append(f"{where}: imports {node.module}")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            text = node.value
            if (_KEY.match(text) or _INSIDE.search(text)) and (rel, text) not in ALLOWED:
                found.append(f"{where}: string {text!r}")
        for name in _identifiers(node):
            if name == "x":  # a loop variable, a coordinate
                continue
            if (_IDENT.search(name) or _CAMEL.match(name)) and (rel, name) not in ALLOWED:
                found.append(f"{where}: name {name!r}")
    return found


def test_the_checker_sees_network_names_in_code_not_in_prose() -> None:
    bad = ('"""Mastodon and X are examples here."""\n'
           'from integrations.x.network import XNetwork\n'
           'URL = env.x_api_base_url\n'
           'if m.network == "facebook":\n    pass\n'
           'LIMITS = {"/webhooks/flickr": 1}\n'
           'def load_bluesky(x): return [x for x in x]\n')
    found = names_of_networks(bad, "t.py")
    assert any("imports integrations.x.network" in f for f in found)
    assert any("'x_api_base_url'" in f for f in found)
    assert any("'facebook'" in f for f in found)
    assert any("/webhooks/flickr" in f for f in found)
    assert any("'load_bluesky'" in f for f in found)
    assert any("'XNetwork'" in f for f in found)
    assert not any("Mastodon and X" in f for f in found)
    clean = ('for x in xs:\n    print(x)\n'
             'headers = {"X-Slack-Signature": s, "content-type": "application/x-www-form-urlencoded"}\n'
             'SPEC_NAMES = registry.names()\n')
    assert names_of_networks(clean, "t.py") == []


def test_no_module_outside_an_integration_names_a_network() -> None:
    found: list[str] = []
    for path in _files():
        rel = str(path.relative_to(ROOT))
        found += names_of_networks(path.read_text(encoding="utf-8"), rel)
    assert not found, "a network named outside its integration:\n" + "\n".join(found)
