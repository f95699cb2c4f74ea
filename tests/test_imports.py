"""The import graph of `strategies/`: no cycles (function-level imports included) and no `bot`.

A lazy import inside a function hides a cycle from Python but not from the design: the two
modules can no longer be read, typed or tested one without the other. The walk reads every
`import` statement of every module with `ast`, wherever it stands.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "strategies"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """Every module `path` imports, absolute names; `from pkg import mod` counts as pkg.mod."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            out.add(base)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in known:
                    out.add(sub)
    return out


def graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {name: imports_of(path, name, known) for name, path in mods.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle in the graph restricted to its own nodes, as a path a -> ... -> a."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(edges, white)
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        colour[n] = grey
        stack.append(n)
        for m in sorted(edges[n]):
            if m not in edges or m == n:
                continue
            if colour[m] == grey:
                return stack[stack.index(m):] + [m]
            if colour[m] == white:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        colour[n] = black
        return None

    for n in sorted(edges):
        if colour[n] == white:
            found = visit(n)
            if found:
                return found
    return None


def test_the_walk_sees_function_level_imports(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from strategies import tvm\n    import strategies.alvh\n")
    got = imports_of(src, "strategies.m", {"strategies.tvm", "strategies.alvh"})
    assert {"strategies.tvm", "strategies.alvh"} <= got


def test_cycle_finder_finds_a_two_module_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"a"}, "c": set()}) == ["a", "b", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_strategies_import_graph_has_no_cycle() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle in strategies/: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("name", sorted(_modules()))
def test_strategies_never_import_bot(name: str) -> None:
    path = _modules()[name]
    bad = sorted(m for m in imports_of(path, name, set(_modules()))
                 if m == "bot" or m.startswith("bot."))
    assert not bad, f"{name} imports {bad}: strategies/ must stay pure"
