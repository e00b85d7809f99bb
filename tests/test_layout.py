"""The layout's rules: the core never imports ComfyUI, benchmarks never import the test suite, and no
two modules of the core import each other (directly or round a longer circle)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "megactor_core"


def imports(path: Path, package: str) -> set[str]:
    """Absolute names of the modules ``path`` imports anywhere in it (functions included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def core_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in CORE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        graph[name] = {m for m in imports(path, package) if m in modules and m != name}
    return graph


def test_the_core_never_imports_comfyui():
    for path in CORE.rglob("*.py"):
        names = imports(path, module_name(path))
        assert not {n for n in names if n.split(".")[0] in ("comfy", "comfy_api", "folder_paths", "nodes")}, path


def test_benchmarks_do_not_import_the_tests():
    for path in (ROOT / "benchmarks").glob("*.py"):
        assert not {n for n in imports(path, "benchmarks") if n.split(".")[0] == "tests"}, path


def test_no_import_circles_in_the_core():
    graph = core_graph()
    # Package __init__ files re-export their modules; a module importing its own package's names is
    # not a circle of code, so packages are left out of the walk.
    packages = {name for name in graph if (CORE.parent / name.replace(".", "/") / "__init__.py").is_file()}
    edges = {name: targets - packages for name, targets in graph.items() if name not in packages}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(target):] + [target]))
            if target not in state:
                visit(target, path + [target])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
