"""The shape of the code, read from the source with `ast` (nothing is imported): no import
cycle among the project's modules, and no import hidden inside a function except in the
CLI (each command imports its own code) and lazy imports of heavy libraries that say so."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "integrations", "migrations")
CLI = {"bot/cli.py"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))
            if "versions" not in p.parts}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """Imports under `if TYPE_CHECKING:` only exist for annotations: they are no edge."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside.update(id(n) for n in ast.walk(node))
    return inside


def imported_names(module: str, path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:  # relative: resolved against the importing module's package
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, base] if base else package)
    return [base] + [f"{base}.{a.name}" for a in node.names]


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the project modules it imports when it is imported (a `from p import m`
    imports the package `p` too)."""

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        skip = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in skip:
                for name in imported_names(module, path, node):
                    target = resolve(name)
                    if target is not None and target != module:
                        graph[module].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the path that closes it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_checker_finds_a_cycle_and_a_clean_graph() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_among_the_projects_modules() -> None:
    modules = project_modules()
    graph = import_graph(modules)
    assert sum(len(v) for v in graph.values()) > 300  # the graph really was read
    assert "bot.services.outbox" in graph["bot.bootstrap"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_import_inside_a_function_but_the_cli_and_named_lazy_ones() -> None:
    hidden: list[str] = []
    for path in project_modules().values():
        rel = str(path.relative_to(ROOT))
        if rel in CLI:
            continue
        source = path.read_text()
        lines = source.splitlines()
        tree = ast.parse(source, rel)
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    said = " ".join(lines[max(0, node.lineno - 5):node.lineno])
                    if "lazy" not in said:
                        hidden.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
    assert not sorted(set(hidden)), "imports inside functions:\n" + "\n".join(sorted(set(hidden)))


def test_every_module_imports() -> None:
    """Each module loads, so a name imported from a module that no longer has it fails
    here, not in the one test that happens to reach that module."""
    import importlib

    failed = []
    for name in sorted(project_modules()):
        if name.startswith("migrations.versions") or name == "migrations.env":
            continue  # run by Alembic, with its context
        try:
            importlib.import_module(name)
        except Exception as exc:
            failed.append(f"{name}: {exc!r}")
    assert not failed, "\n".join(failed)
