"""Damaged results are moved aside before the workflow plans, so that they are recomputed.

Snakemake trusts any output file that exists. A circuit or score file that was truncated or
edited by hand would be scored, or shown in the leaderboard, as if it were a result. Before
Snakemake builds its job graph, every existing circuit and score file of the config is checked;
a damaged one is renamed to `<name>.damaged` (kept for inspection, never deleted; a later one
becomes `<name>.damaged.1`, `.2`, ...) with a warning naming it, and Snakemake then reruns the
job that makes it. Good files are never touched. A circuit file's scores live in a side file
(`<name>.scores.npy`, benchmark.core.score_file) tied to it by hash: a missing, truncated or
swapped side file makes the circuit file damaged, and both are set aside.
A circuit file whose run was stopped from outside (status `cancelled`: scancel, a scheduler's
limit, a kill) is a complete, visible cell of the run that wrote it, and moved aside as
`<name>.cancelled` by the next run, which reruns it: the method is not to blame.
"""
from __future__ import annotations

import csv
import os
import sys


class NotScoreFile(ValueError):
    """A CSV with a header other than the score columns (a leaderboard table, say): not a
    damaged score file, so a reader of a folder of CSVs may skip it."""


def check_scores(path: str, columns: list[str]) -> None:
    """A score file: a CSV with exactly the score columns and complete rows."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"score file {path} is unreadable ({err})") from None
    if not rows:
        raise ValueError(f"score file {path} does not have the score columns")
    if rows[0] != list(columns):
        raise NotScoreFile(f"score file {path} does not have the score columns")
    short = [i for i, row in enumerate(rows[1:], 2) if len(row) != len(columns)]
    if short:
        raise ValueError(f"score file {path} has incomplete rows (line {short[0]})")


class Cancelled(ValueError):
    suffix = ".cancelled"


def check_not_cancelled(record: dict, path: str) -> None:
    if record.get("status") == "cancelled":
        raise Cancelled(f"circuit file {path} is of a run stopped from outside")


def quarantine(checks) -> list[str]:
    """Run `check()` for each existing (path, check) or (path, check, side files); move damaged
    files aside, with their side files (a circuit file's `.scores.npy`, whichever of the two is
    damaged). Returns the checked paths moved."""
    moved = []
    for path, check, *side in checks:
        if not os.path.exists(path):
            continue
        try:
            check()
        except ValueError as err:
            suffix = getattr(err, "suffix", ".damaged")
            aside = _free_name(path + suffix)
            os.replace(path, aside)
            for other in (side[0] if side else ()):
                if os.path.lexists(other):
                    os.replace(other, _free_name(other + suffix))
            moved.append(path)
            print(f"circuitbench: {str(err).split('; ')[0]}: moved to {aside}; "
                  "the job that makes it reruns", file=sys.stderr)
    return moved


def _free_name(aside: str) -> str:
    """`aside`, or `aside.1`, `aside.2`, ...: an earlier copy set aside is kept, not replaced."""
    name, i = aside, 0
    while os.path.lexists(name):
        i += 1
        name = f"{aside}.{i}"
    return name
