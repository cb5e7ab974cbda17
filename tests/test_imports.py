"""No import cycles in ``src/hypervision``: a small AST check over every module.

Every import counts, at module level or inside a function (an import moved into a function
to dodge a cycle is still a cycle), ``if TYPE_CHECKING:`` ones too. Two rules:

1. Modules: no module imports itself back, directly or transitively. Exceptions are listed in
   ``MODULE_CYCLES_ALLOWED`` with the reason; the list may only shrink.
2. Packages (``hypervision.<package>``): the web layer is on top; nothing imports it but the
   application itself (``hypervision.app``). Below it the allowed order is::

       app, cli, demo                 (assemble everything)
       web                            (pages: call the domains' services)
       synthesis, follows, search     (domains built on the main courante)
       logbook, geo, live             (records, places, live streams)
       audit, identity, policy        (who, what they may do, what happened)
       core, storage, config, db      (shared helpers, no domain knowledge)

   No package imports itself back, through any number of others. The mutual dependencies
   that remain are listed in ``PACKAGE_CYCLES_KNOWN`` with their reason; a new one fails, and
   so does a listed one that is gone (the list only shrinks).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src" / "hypervision"

# (module, module): why the cycle remains. None is left: a new one needs a reason here.
MODULE_CYCLES_ALLOWED: dict[frozenset[str], str] = {}

# Package pairs that still import each other, with the reason. None is left (issue 14): a new
# one needs a reason here, and an entry whose cycle is gone fails.
PACKAGE_CYCLES_KNOWN: dict[frozenset[str], str] = {}
TOP = frozenset({"app", "asgi", "__main__", "cli", "demo", "migrations"})


def modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        if "migrations" in path.relative_to(ROOT).parts:
            continue
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imported(name: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The modules of ``hypervision`` that ``name`` imports, anywhere in its code."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            while target and target not in known:
                target = target.rsplit(".", 1)[0] if "." in target else ""
            if target and target != name and target != "hypervision":
                yield target


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: set(imported(name, path, known)) for name, path in known.items()}


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(edges.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(edges.get(node, ()))
    return seen


def package_of(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def test_the_checker_sees_imports_inside_functions() -> None:
    edges = graph()
    assert "hypervision.core.errors" in edges["hypervision.audit.refusals"]
    assert "hypervision.live.bus" in edges["hypervision.live.hub"]
    assert "hypervision.web.router" in edges["hypervision.app"]


def test_no_module_imports_itself_back() -> None:
    edges = graph()
    cycles = set()
    for module, targets in edges.items():
        for target in targets:
            if module in reachable(edges, target):
                pair = frozenset({module, target})
                if pair not in MODULE_CYCLES_ALLOWED:
                    cycles.add(tuple(sorted(pair)))
    assert not cycles, f"import cycles: {sorted(cycles)}"


def test_packages_keep_their_order() -> None:
    edges = graph()
    packages: dict[str, set[str]] = {}
    for module, targets in edges.items():
        for target in targets:
            if package_of(module) != package_of(target):
                packages.setdefault(package_of(module), set()).add(package_of(target))
    into_web = sorted(p for p, targets in packages.items() if "web" in targets and p not in TOP)
    assert into_web == [], f"only the application imports the web layer: {into_web}"
    mutual = {
        frozenset({a, b}) for a, targets in packages.items() for b in targets
        if a in packages.get(b, set())
    }  # fmt: skip
    new = sorted(tuple(sorted(pair)) for pair in mutual - PACKAGE_CYCLES_KNOWN.keys())
    assert not new, f"packages importing each other: {new}"
    gone = sorted(tuple(sorted(pair)) for pair in PACKAGE_CYCLES_KNOWN.keys() - mutual)
    assert not gone, f"no longer a cycle, remove from PACKAGE_CYCLES_KNOWN: {gone}"
    # Longer loops (a -> b -> c -> a) too, once the known pairs' own edges are set aside.
    acyclic = {
        a: {b for b in targets if frozenset({a, b}) not in PACKAGE_CYCLES_KNOWN}
        for a, targets in packages.items()
    }
    looping = sorted(p for p in acyclic if p in reachable(acyclic, p))
    assert not looping, f"packages in an import loop: {looping}"
