"""Guard published numbers: compare a run's score rows with committed reference rows.

Rows are matched on their identity (task, method, params, seed, size, ablation, circuit); every
reference row must be present and every compared number within its tolerance. Timing and
provenance columns are not compared. Updating the reference is an explicit command
(`python -m benchmark update-reference`) whose diff is reviewed like code.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from benchmark.core.artifact import atomic_write_text
from benchmark.core.conventions import CONVENTIONS, EDGE_CONVENTIONS
from benchmark.scoring.score_files import read_score_file

KEY = ["task", "method", "params", "seed", "n_examples", "ablation", "circuit"]
# column -> (absolute tolerance, relative tolerance); exact columns use (0, 0)
TOLERANCES = {
    "status": None,  # compared as text
    "edges_kept": (0, 0),
    "faithfulness": (1e-6, 1e-3),
    "agreement": (1e-3, 0),
    "task_metric_ratio": (1e-6, 1e-3),
    **{f"{m}_{c}": (1e-9, 0) for c in CONVENTIONS
       for m in ("f1", "exact", "auroc")},
    # node rows and node views (compared once a reference holds them: older ones do not)
    "nodes_kept": (0, 0),
    **{f"node_{m}_{c}": (1e-9, 0) for c in EDGE_CONVENTIONS for m in ("f1", "exact", "auroc")},
    "mib_cpr": (1e-6, 1e-3),
    "mib_cmd": (1e-6, 1e-3),
}
REFERENCE = Path(__file__).resolve().parents[2] / "results" / "reference" / "ci_scores.csv"


def read_scores(paths) -> pd.DataFrame:
    """The rows of the score CSVs as written (not reordered), text columns as text. Two rows of
    one identity (KEY) are refused: a reference would hold both, and compare() see one."""
    frames = [read_score_file(p).assign(_file=str(p)) for p in paths]
    if not frames:
        return pd.DataFrame(columns=KEY)
    scores = pd.concat(frames, ignore_index=True)
    keys = scores[KEY].astype(str)
    dup = keys.duplicated(keep=False)
    if dup.any():
        first = keys[dup].iloc[0]
        files = sorted(set(scores._file[(keys == first).all(axis=1)]))
        raise ValueError(f"score row {dict(first)} is there twice, in {', '.join(files)}; "
                         "name one run's score files only (its <results>/scores folder)")
    return scores.drop(columns="_file")


def reference_frame(scores: pd.DataFrame) -> pd.DataFrame:
    # the compared columns the scores have (a reference from before a convention existed)
    cols = KEY + [c for c in TOLERANCES if c in scores.columns]
    return scores[cols].sort_values(KEY).reset_index(drop=True)


def write_reference(scores: pd.DataFrame, path=REFERENCE) -> Path:
    atomic_write_text(path, reference_frame(scores).to_csv(index=False, float_format="%.10g"))
    return Path(path)


def _close(a, b, tol) -> bool:
    a_missing = a is None or (isinstance(a, float) and math.isnan(a))
    b_missing = b is None or (isinstance(b, float) and math.isnan(b))
    if a_missing or b_missing:
        return a_missing and b_missing
    if tol is None or isinstance(a, str) or isinstance(b, str):
        return str(a) == str(b)
    abs_tol, rel_tol = tol
    a, b = float(a), float(b)
    return abs(a - b) <= abs_tol + rel_tol * abs(b)


def compare(current: pd.DataFrame, reference: pd.DataFrame, tolerances=TOLERANCES) -> list[str]:
    """Human-readable differences; empty when the run reproduces the reference."""
    problems = []
    cur = {tuple(str(v) for v in row[KEY]): row for _, row in current.iterrows()}
    for _, ref in reference.iterrows():
        key = tuple(str(v) for v in ref[KEY])
        if key not in cur:
            problems.append(f"missing row {dict(zip(KEY, key))}")
            continue
        row = cur[key]
        for col, tol in tolerances.items():
            if col not in reference.columns:
                continue
            if not _close(_value(row[col]), _value(ref[col]), tol):
                problems.append(f"{dict(zip(KEY, key))}: {col} = {row[col]!r}, reference "
                                f"{ref[col]!r} (tolerance {tol})")
    return problems


def _value(v):
    if isinstance(v, (bool,)):
        return float(v)
    if isinstance(v, str) and v in ("True", "False"):
        return float(v == "True")
    return v
