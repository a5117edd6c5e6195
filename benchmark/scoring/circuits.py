"""Which circuits a discovery record is scored on, at edge and at node level.

A record's own level decides its rows: an edge-level record gives edge rows (`discovered`, or its
ranking's `sparsity=s` and `top=k` circuits) and node rows (`node:` labels: the same choices made
over writers, from its node view); a node-level record gives node rows only. Node rows are
labelled `node:...` so that no filter written for edge rows (`top=`, `sparsity=`, `discovered`)
picks them up. A node circuit is a set of writers (`logits` is always kept and never counted).
The projections are benchmark.graph.nodes': an edge circuit's nodes are its edges' writers, an
edge ranking's node score is a writer's largest outgoing edge score.
"""
from __future__ import annotations

import numpy as np

from benchmark.graph.nodes import OUTPUT_NODE, node_scores_of_edges, nodes_of_edges
from benchmark.scoring.recovery import ranked_indices, ranking_counts

NODE_PREFIX = "node:"


def level_of(record: dict) -> str:
    """"edge" or "node": what the record's scores or circuit are over."""
    level = record.get("level", "edge")
    if level not in ("edge", "node"):
        raise ValueError(f"a discovery of level {level!r} ({record.get('method')}) cannot be "
                         "scored: the scorer knows edge- and node-level records")
    return level


def signed_values(task, record: dict) -> np.ndarray:
    """A scores record's float64 vector as the method gave it, in canonical order of its level
    (read_circuit gives one; an edge record of the older all-JSON format has {edge: score})."""
    from benchmark.graph.scores import score_vector
    scores = record["scores"]
    if isinstance(scores, np.ndarray):
        return scores
    return score_vector(scores, task.graph, level_of(record))


def score_values(task, record: dict) -> np.ndarray:
    """A scores record's ranking values: the scores, or their absolute values where the record's
    `ranking` is "abs" (signed effects)."""
    values = signed_values(task, record)
    return np.abs(values) if record.get("ranking", "signed") == "abs" else values


def writer_values(task, record: dict, values) -> np.ndarray:
    """Per writer (graph.writers order), the node-level value of a record's score vector: a
    node record's own (its `logits` entry dropped), an edge record's projection (each writer's
    largest outgoing edge value)."""
    if level_of(record) == "node":
        return np.asarray(values, dtype=np.float64)[:len(task.graph.writers)]
    return node_scores_of_edges(task.graph, values)


def top_sets(units, values, counts) -> list[frozenset]:
    """The top-k units of a ranking (ranked_indices: highest first, ties in canonical order)
    for each k of `counts`: the ranking is sorted once."""
    order = [units[i] for i in ranked_indices(values)]
    return [frozenset(order[:k]) for k in counts]


def circuits_of(task, record: dict, sparsities) -> list[tuple[str, frozenset]]:
    """(label, edge set) pairs of an edge-level record's edge rows."""
    if level_of(record) != "edge":
        raise ValueError(f"a node-level record ({record['method']}) has no edge rows; its "
                         "circuits are node_circuits_of")
    if record["kind"] == "circuit":
        return [("discovered", frozenset(record["circuit"]))]
    return _ranked(task.graph.edges, score_values(task, record), sparsities, "")


def node_circuits_of(task, record: dict, sparsities) -> list[tuple[str, frozenset]]:
    """(label, writer set) pairs of a record's node rows: `node:discovered` (a circuit's node
    view, or a node circuit), or a node ranking cut at the sparsities over writers
    (`node:sparsity=s`) and along its whole length (`node:top=k`)."""
    graph = task.graph
    if record["kind"] == "circuit":
        kept = (nodes_of_edges(graph, record["circuit"]) if level_of(record) == "edge"
                else frozenset(record["circuit"]) - {OUTPUT_NODE})
        return [(NODE_PREFIX + "discovered", kept)]
    values = writer_values(task, record, score_values(task, record))
    return _ranked(graph.writers, values, sparsities, NODE_PREFIX)


def _ranked(units, values, sparsities, prefix: str) -> list[tuple[str, frozenset]]:
    n = len(units)
    fixed = [max(0, min(n, round((1 - s) * n))) for s in sparsities]
    counts = ranking_counts(n)
    sets = top_sets(units, values, fixed + counts)
    return ([(f"{prefix}sparsity={s:g}", c) for s, c in zip(sparsities, sets)]
            + [(f"{prefix}top={k}", c) for k, c in zip(counts, sets[len(fixed):])])
