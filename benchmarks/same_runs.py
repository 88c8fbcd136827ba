"""Do two runs (or two comparisons, run by run) hold the same results? For a change that must not
change behaviour: every candidate with its verdict, every DPO pair, every reply the student gave
at every evaluation, every plan, and every metric but the wall-clock and memory ones.

    python benchmarks/same_runs.py runs/<before> runs/<after>
    python benchmarks/same_runs.py runs/compare-<before> runs/compare-<after>

Prints one line per run and table; exits 1 when anything differs.
"""

import json
import sqlite3
import sys
from pathlib import Path

TABLES = {
    "examples": "SELECT cycle, target_id, source, question, answer, accepted, reason, step "
    "FROM examples ORDER BY id",
    "pairs": "SELECT cycle, idx, question, chosen, rejected FROM pairs ORDER BY cycle, idx",
    "metrics": "SELECT cycle, name, round(value, 9) FROM metrics WHERE name NOT LIKE '%rss%' "
    "AND name NOT LIKE '%seconds%' ORDER BY cycle, name",
    "attempts": "SELECT cycle, split, idx, output, score FROM attempts ORDER BY cycle, split, idx",
    "plans": "SELECT cycle, plan FROM plans ORDER BY cycle",
}


def digest(db: Path) -> dict[str, list[tuple]]:
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {name: [tuple(r) for r in connection.execute(sql)] for name, sql in TABLES.items()}
    finally:
        connection.close()


def runs(folder: Path) -> list[Path]:
    """A run folder, or a comparison's runs in arm and seed order."""
    if not (folder / "compare.json").is_file():
        return [folder]
    record = json.loads((folder / "compare.json").read_text())["runs"]
    return [
        folder.parent / record[arm][seed] for arm in sorted(record) for seed in sorted(record[arm])
    ]


def main(before: Path, after: Path) -> int:
    differ = 0
    for a, b in zip(runs(before), runs(after), strict=True):
        left, right = digest(a / "run.db"), digest(b / "run.db")
        for name in TABLES:
            same = left[name] == right[name]
            differ += not same
            verdict = "same" if same else "DIFFERENT"
            print(f"{a.name} | {b.name} | {name}: {len(left[name])} rows, {verdict}")
            if not same:
                pairs = zip(left[name], right[name], strict=False)  # lengths may differ
                print("  first:", [(x, y) for x, y in pairs if x != y][:2])
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
