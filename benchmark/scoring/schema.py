"""The columns of a score file, in order: what the score stage writes and the report reads.

Torch-free, so that the report, the regression check and the workflow's damaged-file check
read the schema without importing the scoring code (torch, scipy).
"""
from __future__ import annotations

from benchmark.core.conventions import CONVENTIONS, EDGE_CONVENTIONS

# level: "edge" or "node", the level at which the row's circuit was chosen (node rows' circuit
# labels start with `node:`); n_nodes counts the graph's writers, nodes_kept and node_sparsity
# the row's circuit's node view, node_* its recovery of the node ground truth (Tracr tasks);
# mib_cpr / mib_cmd: MIB's CPR and CMD of the record's ranking at the row's level
# (benchmark.scoring.mib; a circuit record has none).
NODE_COLUMNS = (["level", "n_nodes", "nodes_kept", "node_sparsity"]
                + [f"node_{m}_{c}" for c in EDGE_CONVENTIONS
                   for m in ("precision", "recall", "f1", "exact", "auroc", "fpr", "tpr")]
                + ["mib_cpr", "mib_cmd"])

COLUMNS = (
    ["task", "method", "params", "seed", "n_examples", "ablation", "circuit", "n_edges",
     "edges_kept", "sparsity", "faithfulness_metric", "faithfulness", "faithfulness_ci_low",
     "faithfulness_ci_high", "faithfulness_empty", "agreement"]
    + [f"{m}_{c}" for c in CONVENTIONS for m in ("precision", "recall", "f1", "exact", "auroc",
                                                  "fpr", "tpr")]
    + ["task_metric", "task_metric_full", "task_metric_circuit", "task_metric_ratio"]
    + NODE_COLUMNS
    + ["runtime_s", "forward_passes", "backward_passes", "peak_mem_mb", "status", "error",
       "method_version", "task_version", "git_commit", "config_hash", "device", "hardware",
       "eval_examples", "eval_seen_in_discovery", "input_space", "task_family"]
)
