"""The private APIs the code relies on (app/internals.py): each one listed is
there in the installed libraries, each library that has one is pinned below
its next minor release, and no other private name of these libraries is used
in app/ (a new one must be listed, with its reason)."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

from app.internals import INTERNALS

ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = ("sqlalchemy", "strawberry", "graphql", "litestar", "limits", "uvicorn")


def test_every_listed_internal_is_there():
    for internal in INTERNALS:
        module, _, name = internal.target.partition(":")
        owner, _, attribute = name.partition(".")
        found = getattr(importlib.import_module(module), owner, None)
        assert found is not None, internal.target
        if attribute:
            # An attribute set in __init__ is in the class's source, not on it.
            assert hasattr(found, attribute) or attribute in inspect.getsource(found), (
                internal.target
            )


def test_every_listed_internal_is_used_where_it_says():
    for internal in INTERNALS:
        name = internal.target.rpartition(":")[2].rpartition(".")[2]
        # used_by names a module (maybe followed by a class or a note): the
        # longest dotted prefix that is a module or package is searched.
        parts = internal.used_by.split()[0].split(".")
        while parts:
            path = ROOT.joinpath(*parts)
            if path.with_suffix(".py").is_file():
                sources = [path.with_suffix(".py").read_text()]
                break
            if path.is_dir():
                sources = [f.read_text() for f in path.rglob("*.py")]
                break
            parts.pop()
        assert parts, internal.used_by
        assert any(name in source for source in sources), (internal.target, internal.used_by)


def test_libraries_with_internals_are_pinned_below_their_next_minor():
    text = (ROOT / "pyproject.toml").read_text()
    for library in {i.library for i in INTERNALS}:
        spec = re.search(rf'"{re.escape(library)}(?:\[[a-z]+\])?([^"]*)"', text)
        assert spec is not None, library
        upper = re.search(r"<(\d+)\.(\d+)\b", spec.group(1))
        assert upper is not None, (library, spec.group(1))


def test_no_other_private_name_of_these_libraries_is_used():
    """Imports of underscore names from these libraries, anywhere in app/,
    must be listed (attribute accesses are checked by the listing's users)."""
    listed = {i.target.partition(":")[2].split(".")[0] for i in INTERNALS}
    listed |= {i.target.partition(":")[0] for i in INTERNALS}
    for path in (ROOT / "app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if not node.module.startswith(LIBRARIES):
                    continue
                for alias in node.names:
                    private = alias.name.startswith("_") or any(
                        part.startswith("_") for part in node.module.split(".")
                    )
                    if private:
                        assert alias.name in listed or node.module in listed, (
                            path,
                            node.module,
                            alias.name,
                        )
