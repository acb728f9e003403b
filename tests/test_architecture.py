"""The house's shape, checked from the source: few files at the root, FastAPI only in the web
layer, imports only downwards through the declared layers and no cycle (imports under
TYPE_CHECKING and inside functions count too), no hidden imports by name, routers that do not
import each other, and no function or class (Python or the page's JavaScript) that outgrew one job."""
from __future__ import annotations

import ast
import json
import shutil
import subprocess
from pathlib import Path

from tests.conftest import ROOT

SKIP = {".venv", "tests", "bench", "data", ".git", "node_modules"}
MAX_FUNCTION_LINES, MAX_CLASS_LINES = 50, 250

# The packages (and root modules) from the bottom up: a module imports from its own layer or the
# ones below, never above. A new package takes its place here (the test says so).
LAYERS = [
    ["settings"],                                   # the settings and their env names
    ["core"],                                       # contracts, events, errors, threads
    ["rag", "tools", "store"],                      # search, tool syntax, SQLite/JSONL storage
    ["models"],                                     # model files, the registry, swaps, remote backends
    ["llm_engine", "vlm_engine", "image_engine", "rag_engine", "emotion_engine"],  # the engines
    ["vram_guard"],                                 # the slot: the only door to a heavy model
    ["analytics", "conversations", "documents", "memories", "sandbox", "catalog"],  # features
    ["turns"],                                      # a request with a model, from lease to saved result
    ["mark"],                                       # PKC Mark, which runs turns
    ["web"],                                        # routes and wire formats
    ["chat"],                                       # the app
]
# Modules that may import by name (invisible to the checks above), and why.
IMPORTLIB_ALLOWED = {"settings"}  # find_spec locates the embedded model's package without importing it


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
    packages = package_edges()
    assert find_cycle(packages) is None, find_cycle(packages)


def test_no_route_module_imports_another():
    edges = graph()
    routes = {name for name in edges if name.startswith("web.routes.")}
    crossing = {name: edges[name] & routes for name in routes if edges[name] & routes}
    assert not crossing, crossing


def package_edges() -> dict[str, set[str]]:
    packages: dict[str, set[str]] = {}
    for module, targets in graph().items():
        home = module.split(".")[0]
        packages.setdefault(home, set()).update(t.split(".")[0] for t in targets if t.split(".")[0] != home)
    return packages


def upward_imports(edges: dict[str, set[str]], layers: list[list[str]]) -> list[str]:
    """Every import of a package from a layer above its own (and every package in no layer)."""
    level = {name: index for index, layer in enumerate(layers) for name in layer}
    found = [f"{name}: not in LAYERS" for name in sorted(edges) if name not in level]
    for name, targets in sorted(edges.items()):
        found += [f"{name} (layer {level[name]}) imports {target} (layer {level[target]})"
                  for target in sorted(targets) if name in level and target in level and level[target] > level[name]]
    return found


def test_imports_go_down_the_layers():
    assert upward_imports(package_edges(), LAYERS) == []


def test_the_layer_check_sees_an_upward_import():
    layers = [["low"], ["high"]]
    assert upward_imports({"low": {"high"}, "high": set()}, layers) == ["low (layer 0) imports high (layer 1)"]
    assert upward_imports({"high": {"low"}, "low": set(), "new": set()}, layers) == ["new: not in LAYERS"]


def test_nothing_is_imported_by_name():
    """importlib and __import__ hide a dependency from the checks above."""
    by_name = set()
    for name, path in project_modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            imported = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                        [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            called = isinstance(node, ast.Name) and node.id == "__import__"
            if called or any(m.split(".")[0] == "importlib" for m in imported):
                by_name.add(name)
    assert by_name == IMPORTLIB_ALLOWED


def test_no_python_function_over_50_lines_and_no_class_over_250():
    too_long = []
    for name, path in project_modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            size = (node.end_lineno or node.lineno) - node.lineno + 1
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and size > MAX_FUNCTION_LINES:
                too_long.append(f"{name}.{node.name}: {size} lines")
            if isinstance(node, ast.ClassDef) and size > MAX_CLASS_LINES:
                too_long.append(f"{name}.{node.name}: {size} lines (class)")
    assert not too_long, too_long


def long_js_functions(files: list[Path], limit: int) -> list[dict]:
    checker = ROOT / "tests" / "js" / "function_lengths.mjs"
    assert (ROOT / "tests" / "js" / "node_modules" / "acorn").is_dir(), "run ./install.sh test (it installs tests/js)"
    node = shutil.which("node")
    assert node, "Node.js is needed for the page's checks"
    out = subprocess.run([node, str(checker), str(limit), *map(str, files)], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_no_page_function_over_50_lines():
    files = [ROOT / "app.js", *sorted((ROOT / "ui").glob("*.js"))]
    assert long_js_functions(files, MAX_FUNCTION_LINES) == []


def test_the_page_check_sees_a_long_function(tmp_path):
    sample = tmp_path / "sample.js"
    body = "\n".join(f"  x += {i};" for i in range(60))
    sample.write_text(f"export function tall() {{\n  let x = 0;\n{body}\n  return x;\n}}\nconst short = () => 1;\n")
    assert [(f["name"], f["lines"]) for f in long_js_functions([sample], 50)] == [("tall", 64)]


def test_the_checks_see_a_cycle_when_there_is_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
