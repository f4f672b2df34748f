"""The package reads as a one-way pipeline (docs/architecture.md): every ragcds module's imports (top-level
and local ones alike, read with ast) form no cycle and never reach from a stage into a later one; and no
function runs over 60 lines (a CLI command's option declarations do not count)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "ragcds"
MAX_LINES = 60

# The stages in data-flow order; a module may import its own stage and earlier ones. The most specific
# prefix decides. Re-indexing (update, versions, diff) lives in index/ but runs the retrieval self-test and
# compares versions, so it is a stage after retrieval (the gates themselves get the search passed in).
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundation", ("ragcds", "ragcds.config", "ragcds.errors", "ragcds.files", "ragcds.plugins",
                    "ragcds.clinical", "ragcds.findings", "ragcds.population", "ragcds.lexicon",
                    "ragcds.question")),
    ("ingest", ("ragcds.ingest",)),
    ("index", ("ragcds.index",)),
    ("retrieve", ("ragcds.fusion", "ragcds.book", "ragcds.retrieve")),
    ("reindex", ("ragcds.index.update", "ragcds.index.versions", "ragcds.index.diff")),
    ("policy", ("ragcds.select", "ragcds.triage", "ragcds.policy")),
    ("generate", ("ragcds.generate",)),
    ("log and evaluate", ("ragcds.audit", "ragcds.evaluate")),
    ("serve", ("ragcds.serve", "ragcds.integrations")),
    ("cli", ("ragcds.cli",)),
)


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return out


MODULES = _modules()


def _imports(tree: ast.Module) -> set[str]:
    """The ragcds modules a module imports (``from pkg import mod`` counts as importing ``pkg.mod``)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("ragcds"))
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith("ragcds"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in MODULES else node.module)
    return {m for m in found if m in MODULES}


GRAPH = {name: _imports(tree) - {name} for name, tree in MODULES.items()}


def stage_of(module: str) -> int:
    best, rank = -1, -1
    for i, (_, prefixes) in enumerate(STAGES):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, rank = len(p), i
    assert rank >= 0, f"{module} belongs to no stage: add it to STAGES"
    return rank


def test_every_module_has_a_stage():
    for module in MODULES:
        stage_of(module)


def test_no_import_reaches_into_a_later_stage():
    upward = [
        f"{m} ({STAGES[stage_of(m)][0]}) imports {d} ({STAGES[stage_of(d)][0]})"
        for m, deps in GRAPH.items()
        for d in sorted(deps)
        if stage_of(d) > stage_of(m)
    ]
    assert upward == []


def find_cycles(graph: dict[str, set[str]]) -> list[str]:
    """Every import cycle met by a depth-first walk, as 'a → b → a'."""
    cycles, state = [], dict.fromkeys(graph, 0)  # 0 new, 1 on the path, 2 done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph[m]):
            if state[d] == 1:
                cycles.append(" → ".join([*path[path.index(d):], d]))
            elif state[d] == 0:
                visit(d, [*path, d])
        state[m] = 2

    for m in graph:
        if state[m] == 0:
            visit(m, [m])
    return cycles


def test_no_import_cycle():
    assert find_cycles(GRAPH) == []


def _length(fn: ast.FunctionDef | ast.AsyncFunctionDef, cli: bool) -> int:
    """Lines of a function; for a CLI command, from its first body line (option declarations excluded)."""
    start = fn.body[0].lineno if cli else fn.lineno
    return fn.end_lineno - start + 1  # type: ignore[operator]


def test_no_function_over_60_lines():
    long = [
        f"{module}.{fn.name}: {_length(fn, module.startswith('ragcds.cli'))} lines"
        for module, tree in MODULES.items()
        for fn in ast.walk(tree)
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        and _length(fn, module.startswith("ragcds.cli")) > MAX_LINES
    ]
    assert long == []


def test_the_checks_catch_what_they_guard_against():
    """The rules above are not vacuous: stages are ordered, a cycle is found, a local import is read."""
    assert stage_of("ragcds.index.store") < stage_of("ragcds.retrieve") < stage_of("ragcds.index.update")
    assert stage_of("ragcds.index.gates") < stage_of("ragcds.retrieve") < stage_of("ragcds.cli.main")
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a → b → c → a"]
    local = ast.parse("def f():\n    from ragcds.retrieve import HybridRetriever\n")
    assert _imports(local) == {"ragcds.retrieve"}
