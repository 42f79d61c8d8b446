"""The import graph runs one way (README, "Architecture"): read from the code.

Layers, bottom to top:

0. ``app.errors``, ``app.config``: no project imports but each other
1. ``app.domain``: records, rules, ports; no framework, driver or database
2. ``app.context``, ``app.auth``, ``app.ratelimit``, ``app.logs``, ``app.access``, ``app.assets``: plumbing
3. ``app.db`` (implements the domain's ports) and ``app.schema`` (GraphQL types)
4. the faces: ``app.rest`` and ``app.resolvers``; neither imports the other
5. ``app.pipeline``: the one pipeline in front of both faces
6. ``app.main``, ``app.cli``, ``app.serving``: the wiring (and the HTTP server's guards)

A module may import its own layer's neighbours within its package and
anything below; nothing imports upward.
"""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"

LAYERS = {
    "app.errors": 0,
    "app.config": 0,
    "app.domain": 1,
    "app.context": 2,
    "app.auth": 2,
    "app.ratelimit": 2,
    "app.logs": 2,
    "app.access": 2.1,
    "app.tracing": 2.2,
    "app.metrics": 2.2,
    "app.assets": 2,
    "app.idempotency": 2.5,
    "app.internals": 2,
    "app.db": 3,
    "app.schema": 3,
    "app.queries": 3.5,
    "app.rest": 4,
    "app.resolvers": 4,
    "app.pipeline": 5,
    "app.main": 6,
    "app.cli": 6,
    "app.serving": 6,
    "app.operations": 5.5,
}
FRAMEWORKS = ("litestar", "strawberry", "sqlalchemy", "asyncpg", "aiosqlite", "graphql", "jwt")


def _unit(module: str) -> str:
    """The layer unit a module belongs to (``app.db.engine`` -> ``app.db``)."""
    parts = module.split(".")
    for n in (2, 1):
        name = ".".join(parts[:n])
        if name in LAYERS:
            return name
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def _modules() -> dict[str, Path]:
    out = {}
    for path in APP.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        rel = path.relative_to(APP.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        if name != "app":  # the package's empty __init__
            out[name] = path
    return out


def _imports(path: Path) -> list[str]:
    """Every module imported anywhere in the file (functions included)."""
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


EDGES = [(module, imported) for module, path in _modules().items() for imported in _imports(path)]


def test_every_module_is_in_a_layer():
    for module in _modules():
        _unit(module)


def test_no_import_runs_upward():
    upward = [
        (src, dst)
        for src, dst in EDGES
        if dst.startswith("app.") and LAYERS[_unit(dst)] > LAYERS[_unit(src)]
    ]
    assert upward == []


def test_the_faces_do_not_import_each_other():
    crossing = [
        (src, dst)
        for src, dst in EDGES
        if dst.startswith("app.")
        and {_unit(src), _unit(dst)} in ({"app.rest", "app.resolvers"}, {"app.db", "app.schema"})
    ]
    assert crossing == []


def test_the_domain_imports_no_framework_driver_or_database():
    bad = [
        (src, dst)
        for src, dst in EDGES
        if _unit(src) == "app.domain"
        and (
            dst.split(".")[0] in FRAMEWORKS
            or (
                dst.startswith("app.")
                and _unit(dst) != "app.domain"
                and _unit(dst) not in ("app.errors",)
            )
        )
    ]
    assert bad == []


def test_only_the_wiring_imports_the_pipeline():
    importers = {src for src, dst in EDGES if dst == "app.pipeline" and src != "app.pipeline"}
    assert importers <= {"app.main", "app.cli"}


def test_errors_and_context_import_no_framework():
    bad = [
        (src, dst)
        for src, dst in EDGES
        if src in ("app.errors", "app.context") and dst.split(".")[0] in FRAMEWORKS
    ]
    assert bad == []
