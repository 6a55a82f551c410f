"""The code base's floors: each imports only the floors below it, and nothing imports in a circle.

Read from the source with ``ast`` (nothing is imported), so the test sees every import,
including the ones inside functions.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from mlstream.settings import REPO_ROOT

#: Top-level package -> its floor. A module may import its own floor or the floors below it.
FLOORS = {
    "models": 0,  # model specs (river pipelines): import no project code at all
    "mlstream": 1,  # the library
    "linkage": 2,  # record linkage logic, on the library
    "producers": 3,  # feeds that play datasets into Kafka
    "spark_jobs": 3,  # the Spark jobs (and their spark-submit entry point)
    "apps": 4,  # one package per process: the scorer, the linker, the lineage service
    "tools": 5,  # the mlstream command, demos, benchmarks, local services
}

#: Function-local imports that stay, each for a measured start-up cost (the comment at each one says it).
LOCAL_IMPORTS_ALLOWED: dict[str, set[str]] = {
    # the Kafka producer and the registry client of the metrics sink: importing mlstream.metrics,
    # as model code does where there may be no broker, costs 0.07 s less
    "mlstream.metrics.sink": {"mlstream.kafka.clients", "mlstream.kafka.topics", "mlstream.kafka.serde"},
    # every `mlstream` command builds every command group's parser: the apps (Faust, river),
    # the demos and benches (pandas) would add seconds of CPU to `mlstream --help` (1.3 s)
    "tools.commands.app": {"apps.scorer.app"},
    "tools.commands.bench": {"tools.bench.latency", "tools.bench.linkage", "tools.bench.scorer", "tools.bench.soak"},
    "tools.commands.demo": {"tools.demo_rollback", "tools.demo_security"},
    "tools.commands.chaos": {"tools.chaos"},
    "tools.commands.experiments": {"mlstream.metrics.experiments"},
    "tools.commands.linkage": {"apps.linker.app", "tools.bench.linkage_eval"},
    "tools.commands.security": {"apps.secure_datasets.app"},
}


def modules() -> dict[str, Path]:
    found = {}
    for package in FLOORS:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def imports_of(path: Path, name: str, known: set[str]) -> list[tuple[str, bool]]:
    """(imported project module, imported inside a function) for each project import."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = name.split(".")[: len(name.split(".")) - child.level + (1 if is_package else 0)]
                    base = ".".join(parts + ([base] if base else []))
                # `from package import module` imports the module; `from module import name` the module
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in child.names]
            else:
                visit(child, inside)
                continue
            for target in targets:
                while target and target not in known:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    found.append((target, inside))

    visit(tree, False)
    return found


def graph() -> tuple[dict[str, set[str]], dict[str, list[str]]]:
    mods = modules()
    known = set(mods)
    edges: dict[str, set[str]] = defaultdict(set)
    local: dict[str, list[str]] = defaultdict(list)
    for name, path in mods.items():
        for target, inside in imports_of(path, name, known):
            edges[name].add(target)
            if inside:
                local[name].append(target)
    return edges, local


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan), each a cycle's members."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def strongconnect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in edges.get(node, ()):
            if other not in index:
                strongconnect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(edges):
        if node not in index:
            strongconnect(node)
    return found


def package_of(module: str, mods: set[str]) -> str:
    """The package a module lives in; a module directly under a top-level package stands alone
    (``mlstream.settings`` is a node of its own, beside ``mlstream.kafka``)."""
    if any(m.startswith(module + ".") for m in mods) or module.count(".") <= 1:
        return module
    return module.rpartition(".")[0]


def test_no_import_cycle_between_modules():
    edges, _ = graph()
    assert cycles(edges) == []


def test_no_import_cycle_between_packages():
    edges, _ = graph()
    mods = set(modules())
    packages: dict[str, set[str]] = defaultdict(set)
    for source, targets in edges.items():
        for target in targets:
            a, b = package_of(source, mods), package_of(target, mods)
            # a package may use its own subpackages; the reverse would be a cycle through its __init__
            if a != b and not b.startswith(a + "."):
                packages[a].add(b)
    assert cycles(packages) == []


def test_each_floor_imports_only_floors_below_it():
    edges, _ = graph()
    upward = sorted(f"{source} -> {target}" for source, targets in edges.items() for target in targets
                    if FLOORS[target.split(".")[0]] > FLOORS[source.split(".")[0]]
                    or (source.split(".")[0] != target.split(".")[0]
                        and FLOORS[target.split(".")[0]] == FLOORS[source.split(".")[0]]))
    assert upward == []


def test_function_local_imports_are_the_justified_few():
    _, local = graph()
    unexpected = {module: sorted(set(targets) - LOCAL_IMPORTS_ALLOWED.get(module, set()))
                  for module, targets in local.items()}
    assert {module: targets for module, targets in unexpected.items() if targets} == {}


def test_no_private_module_of_a_dependency_is_imported():
    """A dependency's ``_private`` module may move in any release (confluent-kafka's ``_httpx_compat`` is not
    in 2.12, which the Quix Streams contender's environment pins): only their public modules are used."""
    private = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
            private += [f"{name} imports {target}" for target in targets
                        if target.split(".")[0] not in FLOORS and target != "__future__"
                        and any(part.startswith("_") for part in target.split("."))]
    assert private == []
