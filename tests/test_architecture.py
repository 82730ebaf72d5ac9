"""The layout holds: no import cycle among the package's modules, options in one table, small modules."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

from locust_aiapi._jsonl import record_to_dict
from locust_aiapi._options import OPTIONS, AIOptions
from locust_aiapi._records import RequestKind, RequestRecord

PACKAGE = Path(__file__).resolve().parent.parent / "locust_aiapi"


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, modules: set[str], root: Path = PACKAGE) -> set[str]:
    """Every package module ``path`` imports, at any depth of the file (function-level imports too)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(path) for path in paths}
    graph = {module_name(path): imports_of(path, modules) for path in paths}
    # a package's __init__ re-exports its modules; importing a submodule runs it, which is not a
    # dependency of the submodule on its siblings
    return {name: {t for t in targets if not _is_parent(t, name)} for name, targets in graph.items()}


def _is_parent(candidate: str, name: str) -> bool:
    return name.startswith(candidate + ".")


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_among_the_package_modules() -> None:
    graph = import_graph()
    assert "locust_aiapi._run_state" in graph and graph["locust_aiapi._plugin"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_sees_late_imports_and_finds_cycles(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "b.py").write_text("def f():\n    from .c import thing\n    import p.a\n")
    modules = {"p", "p.a", "p.b", "p.c"}
    assert imports_of(root / "b.py", modules, root) == {"p.a", "p.c"}
    assert find_cycle({"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}}) == ["p.a", "p.b", "p.c", "p.a"]
    assert find_cycle({"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": set()}) is None


def test_the_run_state_is_a_leaf_below_the_glue() -> None:
    graph = import_graph()
    glue = {
        "locust_aiapi._plugin",
        "locust_aiapi._users",
        "locust_aiapi._arrival_user",
        "locust_aiapi._shapes",
        "locust_aiapi._distributed",
        "locust_aiapi._end_of_run",
        "locust_aiapi._exporter",
        "locust_aiapi._startup",
    }
    reachable: set[str] = set()
    todo = ["locust_aiapi._run_state"]
    while todo:
        for target in graph[todo.pop()]:
            if target not in reachable:
                reachable.add(target)
                todo.append(target)
    assert not reachable & glue


def test_every_option_row_fills_one_field_and_every_field_has_a_row() -> None:
    fields = [field.name for field in dataclasses.fields(AIOptions)]
    rows = [option.field for option in OPTIONS]
    assert sorted(rows) == sorted(fields)
    assert len(set(option.flag for option in OPTIONS)) == len(OPTIONS)
    assert all(option.flag.startswith("--ai-") for option in OPTIONS)


def test_modules_stay_small_and_functions_short() -> None:
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        assert "noqa: C901" not in text, path
        lines = text.count("\n")
        if lines > 320:
            too_long.append(f"{path.name}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 45:
                    too_long.append(f"{path.name}:{node.name}: {length} lines")
    assert not too_long, too_long


def test_the_readme_names_every_jsonl_field_and_no_other() -> None:
    readme = (PACKAGE.parent / "README.md").read_text()
    entry = readme.split("- **`--ai-requests-jsonl PATH`**:", 1)[1].split("\n- **", 1)[0]
    named = set(re.findall(r"`([a-z0-9_]+)`", entry)) - {"success", "failure", "cancelled"}
    record = RequestRecord("chat", RequestKind.CHAT, "m", True, 1.0, 1.0, end_s=2.0)
    assert named == set(record_to_dict(record))
