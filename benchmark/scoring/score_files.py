"""Reading score CSV files: the one place that knows how they are parsed.

The leaderboard and the regression check both read score files; the text columns (params JSON,
circuit labels, errors) must stay text and the counts integers, or identical rows compare and
print differently. Keeping that here means a second model backend only has to write the same
columns.
"""
from __future__ import annotations

import pandas as pd

from benchmark.scoring.schema import COLUMNS

# columns read as text, whatever they look like (params "{}", circuit "discovered", errors)
DTYPES = {"params": str, "circuit": str, "error": str}
SORT = ["task", "method", "ablation", "n_examples", "seed", "params", "circuit"]
INTEGER_COLUMNS = ["seed", "n_examples", "n_edges", "edges_kept", "n_nodes", "nodes_kept",
                   "forward_passes", "backward_passes", "eval_examples"]


def read_score_file(path) -> pd.DataFrame:
    """One score CSV as written, its text columns as text (raises EmptyDataError if empty)."""
    return pd.read_csv(path, dtype=DTYPES)


def read_scores(score_files) -> pd.DataFrame:
    """Every row of the score CSVs, in COLUMNS order, sorted deterministically."""
    frames = []
    for path in sorted(map(str, score_files)):
        try:
            frame = read_score_file(path)
        except pd.errors.EmptyDataError:
            continue
        if len(frame):
            frames.append(frame.reindex(columns=COLUMNS))
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    df = pd.concat(frames, ignore_index=True)
    for c in INTEGER_COLUMNS:
        values = pd.to_numeric(df[c], errors="coerce")
        if (values.dropna() % 1 == 0).all():
            df[c] = values.astype("Int64")
    return df.sort_values(SORT, kind="mergesort", na_position="last").reset_index(drop=True)
