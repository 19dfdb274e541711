"""The structure the README's Architecture section draws: no import cycles, a light client, small
modules. (The layers themselves are import-linter contracts in pyproject.toml, run by make lint.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 400  # a hand-written module longer than this does more than one thing


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def test_the_cycle_finder_finds_a_cycle() -> None:
    class Graph:
        modules = frozenset({"a", "b", "c", "d"})

        @staticmethod
        def find_modules_directly_imported_by(module: str) -> set[str]:
            return {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}[module]

    assert _cycles(Graph()) == [["a", "b", "c"]]  # type: ignore[arg-type]


def test_no_module_imports_itself_through_others() -> None:
    # Imports inside functions count too: they hid the client <-> streams and the training
    # data <-> remote cycles. Only imports under `if TYPE_CHECKING:` are left out (they never run).
    graph = grimp.build_graph("augsvc", "training", exclude_type_checking_imports=True)
    assert _cycles(graph) == []


def test_importing_the_client_loads_neither_the_service_nor_the_transforms() -> None:
    code = ("import sys, augsvc.client; "
            "print(sorted(m for m in ('albumentations', 'transformers', 'augsvc.service', "
            "'augsvc.image.pipeline', 'augsvc.text.pipeline') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_no_hand_written_module_is_over_the_size_limit() -> None:
    generated = ROOT / "augsvc" / "wire" / "v1"
    sizes = {str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
             for folder in ("augsvc", "training", "benchmarks") for path in (ROOT / folder).rglob("*.py")
             if generated not in path.parents}
    assert len(sizes) > 50  # the walk found the tree
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
