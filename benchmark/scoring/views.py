"""A row's circuit seen at both levels: its size and recovery in edges and in nodes.

Every score row carries its circuit's edge view (edges_kept, sparsity, recovery against the edge
ground truth) and its node view (nodes_kept, node_sparsity, recovery against the node ground
truth of the Tracr tasks that have one). An edge circuit's node view is the writers of its edges;
a node circuit's edge view is the edges between its nodes (benchmark.graph.nodes). AUROCs are
properties of the record's ranking and are the same in each of its rows.
"""
from __future__ import annotations

from benchmark.core.conventions import EDGE_CONVENTIONS, NODE_CONVENTIONS
from benchmark.graph.nodes import OUTPUT_NODE
from benchmark.scoring.recovery import head_scores, heads_of, is_head, overlap, roc_auc, roc_point


def recovery_view(task, convention: str):
    """(the units recovery is counted in, the true ones, edge set -> units) for a convention:
    edges for an edge-level one, the model's heads for a node-level (published) one."""
    truth = task.ground_truth(convention)
    if convention in NODE_CONVENTIONS:
        heads = [w for w in task.graph.writers if is_head(w)]
        return heads, truth, heads_of
    return task.graph.edges, truth, lambda edges: edges


def node_truths(task) -> dict:
    """Convention -> the task's node-level ground truth (writer ids), for the conventions both
    levels share (structural, zero, resample); none on a language model."""
    have = getattr(task, "node_conventions", ())
    return {c: frozenset(task.node_ground_truth(c)) - {OUTPUT_NODE}
            for c in EDGE_CONVENTIONS if c in have}


def edge_aurocs(task, views: dict, edge_values=None, writer_values=None) -> dict:
    """Convention -> AUROC of the record's ranking at edge level: from edge values (an edge
    record), or for the published head-level convention also from writer values (a node
    record's own head scores); None where the record has no such ranking."""
    out = {}
    for c, (units, truth, _) in views.items():
        labels = [u in truth for u in units]
        if c in NODE_CONVENTIONS and edge_values is not None:
            # a head scores its best outgoing edge; edge units are the canonical edges
            out[c] = roc_auc(head_scores(edge_values, [task.graph.outgoing(h) for h in units]),
                             labels)
        elif c in NODE_CONVENTIONS and writer_values is not None:
            index = task.graph.writer_to_index
            out[c] = roc_auc([writer_values[index[h]] for h in units], labels)
        elif edge_values is not None:
            out[c] = roc_auc(edge_values, labels)
    return out


def node_aurocs(task, truths: dict, writer_values) -> dict:
    """Convention -> AUROC of a writer ranking against the node ground truth."""
    if writer_values is None:
        return {}
    return {c: roc_auc(writer_values, [w in truth for w in task.graph.writers])
            for c, truth in truths.items()}


def edge_columns(task, edges, views: dict, aurocs: dict) -> dict:
    """Size and recovery of an edge set, in the score columns."""
    row = {"edges_kept": len(edges), "sparsity": 1 - len(edges) / task.graph.n_edges}
    for c, (units, truth, view) in views.items():
        for k, v in overlap(view(edges), truth).items():
            row[f"{k}_{c}"] = v
        row[f"auroc_{c}"] = aurocs.get(c)
        row[f"fpr_{c}"], row[f"tpr_{c}"] = roc_point(view(edges), truth, units)
    return row


def node_columns(task, nodes, truths: dict, aurocs: dict) -> dict:
    """Size and recovery of a writer set, in the node columns."""
    n = len(task.graph.writers)
    row = {"n_nodes": n, "nodes_kept": len(nodes), "node_sparsity": 1 - len(nodes) / n}
    writers = list(task.graph.writers)
    for c, truth in truths.items():
        for k, v in overlap(nodes, truth).items():
            row[f"node_{k}_{c}"] = v
        row[f"node_auroc_{c}"] = aurocs.get(c)
        row[f"node_fpr_{c}"], row[f"node_tpr_{c}"] = roc_point(nodes, truth, writers)
    return row
