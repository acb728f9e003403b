"""The house's shape, checked from the source: few files at the root, FastAPI only in the web
layer, no import cycle (imports under TYPE_CHECKING and inside functions count too), routers
that do not import each other, and no function or class that outgrew one job."""
from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

SKIP = {".venv", "tests", "bench", "data", ".git", "node_modules"}


def project_modules() -> dict[str, Path]:
    modules = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        if parts[0] in SKIP or any(part.startswith(".") for part in parts):
            continue
        name = ".".join(parts)[:-3].removesuffix(".__init__")
        modules[name] = path
    return modules


def imports_of(path: Path, module: str, known: set[str]) -> set[str]:
    """Project modules this file imports, anywhere in it."""
    found = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(path, name, set(modules)) for name, path in modules.items()}


def test_root_holds_at_most_twelve_python_files():
    root_files = sorted(path.name for path in ROOT.glob("*.py"))
    assert len(root_files) <= 12, root_files


def test_fastapi_only_in_chat_and_web():
    offenders = []
    for name, path in project_modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            web_import = any(m.split(".")[0] in ("fastapi", "starlette", "sse_starlette") for m in mods)
            if web_import and name != "chat" and not name.startswith("web"):
                offenders.append(name)
    assert not offenders, sorted(set(offenders))


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_no_import_cycle_between_modules():
    edges = graph()
    # a package's __init__ may gather its own modules; that is not a cycle between features
    assert find_cycle(edges) is None, find_cycle(edges)


def test_no_import_cycle_between_packages():
    packages: dict[str, set[str]] = {}
    for module, targets in graph().items():
        home = module.split(".")[0]
        packages.setdefault(home, set()).update(t.split(".")[0] for t in targets if t.split(".")[0] != home)
    assert find_cycle(packages) is None, find_cycle(packages)


def test_no_route_module_imports_another():
    edges = graph()
    routes = {name for name in edges if name.startswith("web.routes.")}
    crossing = {name: edges[name] & routes for name in routes if edges[name] & routes}
    assert not crossing, crossing


def test_no_function_over_60_lines_and_no_class_over_300():
    too_long = []
    for name, path in project_modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            size = (node.end_lineno or node.lineno) - node.lineno + 1
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and size > 60:
                too_long.append(f"{name}.{node.name}: {size} lines")
            if isinstance(node, ast.ClassDef) and size > 300:
                too_long.append(f"{name}.{node.name}: {size} lines (class)")
    assert not too_long, too_long


def test_the_checks_see_a_cycle_when_there_is_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
