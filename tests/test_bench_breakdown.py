"""bench.breakdown's table: the parts it names add up to what it measured."""

from __future__ import annotations

from bench.breakdown import table

FIGURES = {
    "http_server": 333.0,
    "http_floor_ours": 34.0,
    "http_floor": 33.0,
    "whole": 211.0,
    "typename": 32.0,
    "no_database": 91.0,
    "reads": 75.0,
    "driver": 43.0,
    "http_typename": 128.0,
    "http_postgraphile5": 432.0,
}


def _rows(figures: dict[str, float]) -> list[tuple[str, str]]:
    """(label with its indent, cell) of each row of the one-workload table."""
    rows = []
    for line in table({"w": figures}).splitlines()[2:]:
        label, cell = line[2:-2].rsplit(" | ", 1)
        rows.append((label, cell))
    return rows


def _groups(rows: list[tuple[str, str]]) -> dict[str, list[float]]:
    """Each top-level row's direct parts (its rows indented by two spaces)."""
    groups: dict[str, list[float]] = {}
    top = ""
    for label, cell in rows:
        if not label.startswith(" "):
            top = label
            groups[top] = []
        elif not label.startswith("    ") and cell != "—":
            groups[top].append(float(cell.replace(",", "")))
    return groups


def test_the_parts_add_up_to_the_server_total() -> None:
    rows = _rows(FIGURES)
    cells = {label.strip(): cell for label, cell in rows}
    parts = _groups(rows)["server over HTTP (as bench.run measures it)"]
    assert len(parts) == 7
    assert sum(parts) == FIGURES["http_server"]
    assert cells["in no one layer, in process (whole - without the read - the reads)"] == "45"
    assert cells["in no one layer, over HTTP (server - whole request - the floor)"] == "88"
    # The smallest query's own remainder: over HTTP - in process - the floor.
    assert cells["in no one layer (over HTTP - in process - the floor)"] == "62"


def test_the_budget_against_postgraphile_and_without_it() -> None:
    cells = {label.strip(): cell for label, cell in _rows(FIGURES)}
    assert cells["ours at 1.5x v5 would spend at most"] == "288"
    assert cells["ours at 2.0x v5 would spend at most"] == "216"
    figures = {k: v for k, v in FIGURES.items() if k != "http_postgraphile5"}
    cells = {label.strip(): cell for label, cell in _rows(figures)}
    assert cells["PostGraphile v5 over HTTP"] == "—"
    assert cells["ours at 1.5x v5 would spend at most"] == "—"
