"""The mutation score of app/domain, from ``mutmut results --all true`` on stdin.

    mutmut results --all true | python tests/domain/mutation_score.py [--min 90]
    python tests/domain/mutation_score.py --check-copy

Killed (or timed out: the tests did not pass) over every mutant that is not
listed as equivalent in docs/mutants.md (its "Equivalent mutants" section:
one ``- `name`: reason`` line each). Prints the summary and the surviving
mutants that count; exits 1 below ``--min`` percent, or when the results are
incomplete. A listed mutant that no longer exists or is now killed is
reported as a stale entry (mutant numbers shift when a function changes).

``--check-copy``: mutmut runs the tests in ./mutants/, a copy holding
app/domain and what ``[tool.mutmut] also_copy`` lists; this checks that the
list still names every part of the app package the tests import (all but
app/domain and app/static), so a new module fails here with its name rather
than as an ImportError inside mutmut's clean run.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "mutants.md"
NOT_COPIED = {"domain", "static", "__pycache__"}  # mutated by mutmut / not imported
DETECTED = {"killed", "timeout"}
LINE = re.compile(r"^\s*(?P<name>\S+__mutmut_\d+): (?P<status>.+?)\s*$")
LISTED = re.compile(r"^- `(?P<name>[^`]+__mutmut_\d+)`")


def equivalents(docs: Path) -> set[str]:
    """The names listed under the "Equivalent mutants" heading."""
    names: set[str] = set()
    inside = False
    for line in docs.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            inside = line.strip().lower().startswith("## equivalent mutants")
        elif inside and (m := LISTED.match(line)):
            names.add(m["name"])
    return names


def check_copy() -> int:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    copied = {p.strip("/") for p in config["tool"]["mutmut"].get("also_copy", [])}
    needed = {
        f"app/{p.name}"
        for p in (ROOT / "app").iterdir()
        if p.name not in NOT_COPIED and (p.is_dir() or p.suffix in {".py", ".typed"})
    }
    missing = sorted(needed - copied)
    if missing:
        print("[tool.mutmut] also_copy in pyproject.toml misses: " + ", ".join(missing))
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min", type=float, default=90.0, help="percent required")
    parser.add_argument("--docs", type=Path, default=DOCS)
    parser.add_argument("--check-copy", action="store_true")
    args = parser.parse_args()
    if args.check_copy:
        return check_copy()

    status = {m["name"]: m["status"] for line in sys.stdin if (m := LINE.match(line))}
    if not status:
        print("mutation score: no mutants in the input (did `mutmut run` run?)")
        return 1
    listed = equivalents(args.docs)
    equivalent = {n for n in listed if n in status and status[n] not in DETECTED}
    stale = sorted(listed - equivalent)
    counted = {n: s for n, s in status.items() if n not in equivalent}
    detected = sum(s in DETECTED for s in counted.values())
    score = 100.0 * detected / len(counted) if counted else 100.0

    print(f"mutants of app/domain: {len(status)}")
    for name, n in sorted(Counter(status.values()).items()):
        print(f"  {name}: {n}")
    print(f"equivalent (listed in {args.docs.name}, not counted): {len(equivalent)}")
    survivors = sorted(n for n, s in counted.items() if s not in DETECTED)
    if survivors:
        print(f"not killed and not listed as equivalent: {len(survivors)}")
        for name in survivors:
            print(f"  {name}: {counted[name]}")
    if stale:
        print(f"stale equivalent entries (missing now, or killed): {len(stale)}")
        for name in stale:
            print(f"  {name}: {status.get(name, 'no such mutant')}")
    print(f"score: {detected} killed / {len(counted)} = {score:.1f}% (required: {args.min:g}%)")

    unchecked = [n for n, s in status.items() if s == "not checked"]
    if unchecked:
        print(f"FAILED: {len(unchecked)} mutants were not checked (an interrupted run?)")
        return 1
    if score < args.min:
        print(f"FAILED: the fast tests kill less than {args.min:g}% of app/domain's mutants")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
