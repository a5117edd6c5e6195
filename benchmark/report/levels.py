"""The leaderboard's node-level numbers, and which score rows each level's numbers come from.

Score rows are edge rows (level "edge") or node rows (level "node", circuit labels `node:...`:
circuits chosen over writers). The edge-level summary, the headline and the plots read edge rows
only, as before node rows existed; a node-level method (its records are node-level, so it has
node rows only) is shown there through its discovered circuits' edge views. Each summary line
also gets node-level columns, from node rows:

- circuit_level: the level the method's records are at (edge, node);
- node_convention: the node ground truth matching the ablation, where the task has one;
- node_faithfulness, node_sparsity, node_f1, node_exact_rate: of the discovered circuit's node
  view (`node:discovered`); node_auroc: of the method's node ranking (an edge method's projected:
  a writer scores its best outgoing edge);
- node_faith_area: integrated faithfulness at node level, the area of normalised faithfulness
  over the fraction of writers kept (recovery.faithfulness_area): a ranking's `node:top=k`
  circuits, a circuit method's node views;
- mib_cpr, mib_cmd: MIB's CPR and CMD of an edge ranking; node_mib_cpr, node_mib_cmd: of a
  node-level ranking (HISP, NAP; benchmark.scoring.mib): none for an edge ranking's projection.
"""
from __future__ import annotations

import pandas as pd

from benchmark.core.conventions import EDGE_CONVENTIONS, MATCHING
from benchmark.report.spread import finite_values, median, with_spread
from benchmark.scoring.recovery import faithfulness_area, normalised_faithfulness

NODE = "node:"
NODE_SUMMARY_COLUMNS = (
    ["circuit_level", "node_convention"]
    + [x for c in ("mib_cpr", "mib_cmd", "node_faithfulness", "node_faith_area",
                   "node_sparsity", "node_f1") for x in (c, f"{c}_iqr")]
    + ["node_exact_rate", "node_auroc", "node_auroc_iqr", "node_mib_cpr", "node_mib_cpr_iqr",
       "node_mib_cmd", "node_mib_cmd_iqr"]
    + [f"node_{m}_{c}" for c in EDGE_CONVENTIONS for m in ("f1", "auroc")])


def is_node_row(df: pd.DataFrame) -> pd.Series:
    """Rows of circuits chosen at node level (rows written before the column existed: edge)."""
    if "level" not in df:
        return pd.Series(False, index=df.index)
    return df.level.astype(object).where(df.level.notna(), "edge").astype(str) == "node"


def edge_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The score rows the edge-level tables and plots read: every row but node rows."""
    return df[~is_node_row(df)]


def edge_view(g: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """(the edge-level rows of one method's rows, the method's level): an edge method's edge
    rows; a node method's failed rows and its discovered circuits (`node:discovered` relabelled
    `discovered`: their edge view is in the edge columns)."""
    node = is_node_row(g)
    if not node.all() or g.empty:  # an edge record has edge rows (a failed one: its one row)
        return g[~node], "edge"
    rows = g[g.circuit.isna() | (g.circuit == NODE + "discovered")].copy()
    rows["circuit"] = rows.circuit.replace({NODE + "discovered": "discovered"})
    return rows, "node"


def node_convention(g: pd.DataFrame, ablation: str) -> str | None:
    """The node ground truth matching the ablation, when the rows have it."""
    c = MATCHING.get(ablation, "zero")
    has = any(finite_values(g[f"node_{m}_{c}"]).size for m in ("f1", "auroc")
              if f"node_{m}_{c}" in g)
    return c if has else None


def node_curve_points(rows: pd.DataFrame) -> list[tuple[float, float]]:
    """(fraction of writers kept, normalised faithfulness) of node rows."""
    return [(k / n, normalised_faithfulness(f, e)) for k, n, f, e in
            zip(rows.nodes_kept, rows.n_nodes, rows.faithfulness, rows.faithfulness_empty)]


def node_summary(g: pd.DataFrame, ablation: str, kind: str, level: str) -> dict:
    """The node-level columns of one setting's line (g: all its rows, prepared)."""
    row = {"circuit_level": level}
    ok = g[g.status == "ok"]
    node = ok[is_node_row(ok)]
    conv = node_convention(ok, ablation)
    row["node_convention"] = conv or ""
    edge = ok[~is_node_row(ok)].drop_duplicates("seed")
    for name in ("mib_cpr", "mib_cmd"):
        with_spread(row, name, edge[name])
        with_spread(row, f"node_{name}", node.drop_duplicates("seed")[name])
    disc = node[node.circuit == NODE + "discovered"]
    curve = node[node.circuit.str.startswith(NODE + "top=")] if kind == "scores" else disc
    if len(curve):
        with_spread(row, "node_faith_area", curve.groupby("seed").apply(
            lambda s: faithfulness_area(node_curve_points(s))["area"], include_groups=False))
    if len(disc):
        with_spread(row, "node_faithfulness", disc.faithfulness)
        with_spread(row, "node_sparsity", disc.node_sparsity)
    per_run = node.drop_duplicates("seed")
    for c in EDGE_CONVENTIONS:
        row[f"node_f1_{c}"] = median(disc[f"node_f1_{c}"])
        row[f"node_auroc_{c}"] = median(per_run[f"node_auroc_{c}"])
    if conv:
        with_spread(row, "node_f1", disc[f"node_f1_{conv}"])
        with_spread(row, "node_auroc", per_run[f"node_auroc_{conv}"])
        runs = g.seed.nunique()
        if disc[f"node_exact_{conv}"].notna().any():
            row["node_exact_rate"] = f"{int(disc[f'node_exact_{conv}'].sum())}/{runs}"
    return row
