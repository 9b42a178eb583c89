"""Imports point one way: chatprobe's import graph, read statically with ``ast``.

How the graph is built (over every module under ``src/chatprobe``):

* an edge A -> B for every ``import B`` / ``from B import x`` in A that names a chatprobe
  module (``from P import m`` where ``P.m`` is a module is an edge to ``P.m``); relative
  imports are resolved;
* imports inside functions count: a lazy import is still a dependency, it only moves the cost;
* imports under ``if TYPE_CHECKING:`` never run, so they are kept apart as *type-only* edges:
  they may not form a runtime cycle (they do not run), but they still must not point at the
  CLI layer, and type-only cycles are allowed only where listed below;
* the parent packages Python imports on the way (``chatprobe.checks`` for
  ``chatprobe.checks.registry``) are not edges: a package ``__init__`` that imports its own
  submodules would otherwise be a cycle with each of them;
* dynamic imports (``importlib.import_module``) are not seen; ``chatprobe.cli`` uses one to
  load subcommands lazily, which is the one place allowed to.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import chatprobe

PACKAGE = Path(chatprobe.__file__).parent
CLI_LAYER = ("chatprobe.commands", "chatprobe.cli")

RUNTIME_EXCEPTIONS = {
    ("chatprobe.checks.registry", "chatprobe.checks.builtin"): (
        "register-on-import: registered() imports the built-in checks, whose @check "
        "decorators add them to the registry"
    ),
}
"""Edges allowed to close a runtime cycle, and why."""

TYPE_ONLY_EXCEPTIONS: dict[tuple[str, str], str] = {}
"""TYPE_CHECKING-only edges allowed to close a cycle, and why."""


@dataclass
class Graph:
    runtime: dict[str, set[str]] = field(default_factory=dict)
    type_only: dict[str, set[str]] = field(default_factory=dict)

    def edges(self, *, with_types: bool) -> dict[str, set[str]]:
        if not with_types:
            return self.runtime
        return {m: self.runtime[m] | self.type_only[m] for m in self.runtime}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, *, under_type_checking: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """Every import statement, with whether it sits under ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                yield from _imports_of(child, True)
            for child in node.orelse:
                yield from _imports_of(child, under_type_checking)
        else:
            yield from _imports_of(node, under_type_checking)


def _imports_of(node: ast.AST, type_only: bool) -> Iterator[tuple[ast.AST, bool]]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node, type_only
    else:
        yield from _imports(node, under_type_checking=type_only)


@cache
def graph() -> Graph:
    files = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
    result = Graph()
    for name, path in files.items():
        runtime = result.runtime.setdefault(name, set())
        type_only = result.type_only.setdefault(name, set())
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node, is_type_only in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([node.module] if node.module else [])])
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in files else base)
            for target in targets:
                if target in files and target != name:
                    (type_only if is_type_only else runtime).add(target)
        type_only -= runtime
    return result


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _without(
    edges: dict[str, set[str]], dropped: dict[tuple[str, str], str]
) -> dict[str, set[str]]:
    return {m: {t for t in targets if (m, t) not in dropped} for m, targets in edges.items()}


def test_the_graph_sees_imports_of_every_kind() -> None:
    g = graph()
    assert len(g.runtime) > 60
    assert "chatprobe.endpoints" in g.runtime["chatprobe.commands.check"]  # module level
    assert "chatprobe.endpoints" in g.runtime["chatprobe.load.launcher"]  # inside a function
    assert "chatprobe.checks.builtin" in g.runtime["chatprobe.checks.registry"]
    assert "chatprobe.suites.model" in g.type_only["chatprobe.checks.context"]  # TYPE_CHECKING
    assert "chatprobe.checks.match" in g.runtime["chatprobe.suites.model"]


def test_no_runtime_import_cycles_but_the_check_registry() -> None:
    remaining = cycles(_without(graph().runtime, RUNTIME_EXCEPTIONS))
    assert remaining == [], f"import cycles: {remaining}"


def test_the_listed_runtime_exception_is_still_needed() -> None:
    edges = graph().runtime
    for source, target in RUNTIME_EXCEPTIONS:
        assert target in edges[source], f"{source} -> {target} is gone: drop the exception"
    assert cycles(edges), "no runtime cycle left: drop RUNTIME_EXCEPTIONS"


def test_type_only_imports_close_no_other_cycle() -> None:
    allowed = RUNTIME_EXCEPTIONS | TYPE_ONLY_EXCEPTIONS
    remaining = cycles(_without(graph().edges(with_types=True), allowed))
    assert remaining == [], f"import cycles through TYPE_CHECKING imports: {remaining}"


def _in_cli_layer(module: str) -> bool:
    return any(module == layer or module.startswith(layer + ".") for layer in CLI_LAYER)


def test_no_library_module_imports_the_cli_layer() -> None:
    offenders = sorted(
        f"{source} -> {target}"
        for source, targets in graph().edges(with_types=True).items()
        if not _in_cli_layer(source)
        for target in targets
        if _in_cli_layer(target)
    )
    assert offenders == []


LOAD_ENGINE_PARTS = (
    "targets",
    "polite",
    "quota",
    "timeline",
    "sink",
    "request",
    "exchange",
    "receive",
    "locust_stats",
    "status",
    "bare",
    "work",
    "workloads",
    "conversation",
    "trace",
)
LOAD_ENGINE_TOP = ("process", "users", "plugin")


def test_the_load_engine_parts_never_reach_up_to_the_run_or_the_users() -> None:
    """Each part of the load engine is tied one way: none imports, even indirectly, the
    process's run, the users or the locustfile entry point that compose them."""
    edges = graph().edges(with_types=True)
    top = {f"chatprobe.load.{name}" for name in LOAD_ENGINE_TOP}
    for part in LOAD_ENGINE_PARTS:
        seen: set[str] = set()
        todo = [f"chatprobe.load.{part}"]
        while todo:
            module = todo.pop()
            for target in edges[module] - seen:
                seen.add(target)
                todo.append(target)
        assert not seen & top, (part, sorted(seen & top))
    assert "chatprobe.load.process" in edges["chatprobe.load.users"]
    assert "chatprobe.load.users" in edges["chatprobe.load.plugin"]
