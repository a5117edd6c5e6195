"""Score a discovery on the held-out evaluation split: faithfulness, size, recovery, cost.

One row per circuit. A `circuit` method gives one circuit; a `scores` method gives one circuit
per requested sparsity (its top-ranked edges), one per edge count along its whole ranking
(`top=k` rows: the faithfulness curve and ROC curve the leaderboard integrates) and an exact
ROC-AUC of the ranking. Every row carries the empty circuit's faithfulness (the other end of the
normalisation) and, for the discovered and fixed-sparsity circuits, a bootstrap interval over
evaluation examples of its faithfulness.
Node rows (benchmark.scoring.circuits: `node:` labels) make the same choices over writers and are
evaluated by the node-masked forward; a node-level record has only those. Every row shows its
circuit at both levels (benchmark.scoring.views) and, for a scores record, MIB's CPR and CMD of
its ranking at the row's level (benchmark.scoring.mib).
A failed or timed-out discovery gives one row with that status and empty metrics; a non-finite
metric gives status `invalid`.
"""
from __future__ import annotations

import json
import math

import torch

from benchmark.graph.circuit import ablated_outputs, run_circuit, writer_outputs
from benchmark.graph.metrics import agreement, faithfulness_name, faithfulness_per_example
from benchmark.graph.nodes import edges_of_nodes, node_mask_from_nodes, nodes_of_edges, run_nodes
from benchmark.scoring.circuits import (
    NODE_PREFIX,
    circuits_of,
    level_of,
    node_circuits_of,
    score_values,
    signed_values,
    writer_values,
)
from benchmark.scoring.mib import mib_scores
from benchmark.scoring.recovery import ratio_interval
from benchmark.scoring.schema import COLUMNS
from benchmark.scoring.views import (
    edge_aurocs,
    edge_columns,
    node_aurocs,
    node_columns,
    node_truths,
    recovery_view,
)


def seen_fraction(discovery: torch.Tensor, evaluation: torch.Tensor) -> float:
    """Fraction of evaluation inputs that also occur among the discovery inputs: on a task with
    a few hundred distinct inputs the "held-out" split is mostly inputs seen in discovery."""
    seen = {bytes(row) for row in discovery.cpu().numpy().astype("int64")}
    rows = evaluation.cpu().numpy().astype("int64")
    return sum(bytes(r) in seen for r in rows) / max(1, len(rows))


@torch.no_grad()
def evaluate_circuit(task, edges, split, ablation: str, full=None, *, ablated=None,
                     interval: bool = False, out=None) -> dict:
    """Faithfulness, agreement and the task's own measures of one circuit on `split` (and with
    `interval`, the bootstrap interval of the faithfulness over the split's examples).
    `out`: the circuit's outputs when already computed."""
    model, tokens = task.model, split.clean
    full = model(tokens) if full is None else full
    if out is None:
        if ablated is None:
            ablated = ablated_outputs(model, ablation, tokens, split.corrupted)
        out = run_circuit(model, tokens, task.graph.mask_from_edges(edges).to(full.device),
                          ablated)
    return _with_interval(*_measures(task, full, out, split), interval)


def _measures(task, full, out, split) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """(the row's measures, faithfulness numerator and denominator per example)."""
    num, den = faithfulness_per_example(full, out, task.output_kind, task.partial)
    row = {"faithfulness": float(num.sum() / den.sum().clamp(min=1)),
           "agreement": agreement(full, out, task.output_kind, task.numerical_atol,
                                  task.partial),
           **task.extra_metrics(full, out, split)}
    return row, num.cpu(), den.cpu()


def _with_interval(row: dict, num, den, interval: bool) -> dict:
    row = dict(row)
    if interval:
        row["faithfulness_ci_low"], row["faithfulness_ci_high"] = ratio_interval(
            num.numpy(), den.numpy())
    return row


class SplitEvaluator:
    """Evaluates circuits on one evaluation split under one ablation, computing the full model's
    outputs once, and each distinct edge set's measures once: a ranking's `top=k` and
    `sparsity=s` circuits often coincide, and every record has the same empty one.

    Forwards run on the task's device in batches of `batch_size` examples (at most the task's
    `forward_batch`): a GPU holds one batch's masked forward, not the whole split's. Outputs
    are per example, so the batches' outputs, concatenated, are the whole split's, and every
    measure (per-example KL, its bootstrap over examples) is computed on them as before. Only
    the measures are kept per edge set, not the outputs ([N, 2, vocab] on an LM)."""

    def __init__(self, task, split, ablation: str, batch_size: int = 1000):
        self.task, self.split, self.ablation = task, split, ablation
        size = max(1, min(batch_size, getattr(task, "forward_batch", batch_size)))
        self.batches = list(split.batches(size))
        with torch.no_grad():
            self.full = torch.cat([task.model(b.clean) for b in self.batches])
            self._ablated = _kept_ablated(task.model, ablation, split, self.batches)
        self._rows: dict[frozenset, tuple] = {}

    def ablated(self, i: int):
        """What removed edges carry in batch i: kept (`_kept_ablated`), or recomputed."""
        if self._ablated is not None:
            return self._ablated[i]
        b = self.batches[i]
        return ablated_outputs(self.task.model, self.ablation, b.clean, b.corrupted)

    @torch.no_grad()
    def __call__(self, edges: frozenset, interval: bool = False) -> dict:
        if edges not in self._rows:
            mask = self.task.graph.mask_from_edges(edges).to(self.full.device)
            out = torch.cat([run_circuit(self.task.model, b.clean, mask, self.ablated(i))
                             for i, b in enumerate(self.batches)])
            self._rows[edges] = _measures(self.task, self.full, out, self.split)
        return _with_interval(*self._rows[edges], interval)

    @torch.no_grad()
    def nodes(self, nodes: frozenset, interval: bool = False) -> dict:
        """The measures of a node circuit (writers kept; `logits` always), by the node-masked
        forward: one plain forward with removed writers' outputs swapped for their ablated
        values, equal to the edge-masked forward of its edges (benchmark.graph.nodes)."""
        key = ("nodes", frozenset(nodes))
        if key not in self._rows:
            mask = node_mask_from_nodes(self.task.graph, nodes).to(self.full.device)
            out = torch.cat([run_nodes(self.task.model, b.clean, mask, self.ablated(i))
                             for i, b in enumerate(self.batches)])
            self._rows[key] = _measures(self.task, self.full, out, self.split)
        return _with_interval(*self._rows[key], interval)


def _kept_ablated(model, ablation: str, split, batches) -> list | None:
    """The ablated outputs of each batch, when kept: zero ablation's None; mean ablation's
    mean over the whole split (one row; over several batches summed in float64); resample
    ablation's when the split is one batch. None for resample over several batches, which is
    recomputed per batch: every writer's output over a whole split ([W, N, S, D], 8 GB for
    GPT-2 small at 1,000 prompts) would take the memory batching frees."""
    if len(batches) == 1 or ablation == "zero":
        return [ablated_outputs(model, ablation, split.clean, split.corrupted)] * len(batches)
    if ablation != "mean":
        return None
    total = 0
    for b in batches:
        outputs = writer_outputs(model, b.clean)
        total = total + outputs.double().sum(dim=1, keepdim=True)
    return [(total / len(split)).to(outputs.dtype)] * len(batches)


def score_record(task, record: dict, *, sparsities=(0.5, 0.8, 0.9, 0.95), eval_examples=1000,
                 config_hash: str = "", evaluators: dict | None = None,
                 batch_size: int = 1000) -> list[dict]:
    """Rows of one circuit file. `evaluators`: a dict shared by the records of one score job,
    which keeps the evaluation split per (n, seed) and a SplitEvaluator per (n, seed,
    ablation) across them. batch_size: examples per forward (SplitEvaluator)."""
    base = {
        "task": task.name, "method": record["method"],
        "params": json.dumps(record.get("params", {}), sort_keys=True),
        "seed": record["seed"], "n_examples": record["n_examples"],
        "ablation": record["ablation"], "n_edges": task.graph.n_edges,
        "faithfulness_metric": faithfulness_name(task.output_kind),
        "method_version": record.get("method_version", ""), "task_version": task.version,
        "git_commit": record.get("git_commit", ""), "config_hash": config_hash,
        "device": record.get("device", ""), "hardware": record.get("hardware", ""),
        "eval_examples": eval_examples, "status": record.get("status", "ok"),
        "error": record.get("error", ""),
    }
    counters = record.get("counters") or {}
    base.update(runtime_s=counters.get("wall_seconds"),
                forward_passes=counters.get("forward_passes"),
                backward_passes=counters.get("backward_passes"),
                peak_mem_mb=record.get("peak_mem_mb"))
    evaluators = {} if evaluators is None else evaluators
    ev, seen = _evaluation_split(task, record["n_examples"], record["seed"], eval_examples,
                                 evaluators)
    base.update(eval_seen_in_discovery=seen, input_space=task.input_space,
                task_family=task.family)
    if base["status"] != "ok":
        return [_complete(dict(base, level=record.get("level", "edge")))]
    key = (record["n_examples"], record["seed"], record["ablation"])
    if key not in evaluators:
        evaluators[key] = SplitEvaluator(task, ev, record["ablation"], batch_size)
    evaluate = evaluators[key]
    empty = evaluate(frozenset())
    base["faithfulness_empty"] = empty["faithfulness"]
    return [_complete(row) for row in _rows(task, record, sparsities, evaluate, empty, base)]


def _rows(task, record: dict, sparsities, evaluate, empty: dict, base: dict) -> list[dict]:
    """The edge rows (an edge-level record's) and the node rows of an ok record; each carries
    both views of its circuit, the record's AUROCs at both levels and MIB's CPR/CMD of its
    ranking at the record's level (in the rows of that level)."""
    graph, level = task.graph, level_of(record)
    views = {c: recovery_view(task, c) for c in task.conventions}
    truths = node_truths(task)
    edge_auroc, node_auroc, mib = {}, {}, {"edge": {}, "node": {}}
    if record["kind"] == "scores":
        values = score_values(task, record)
        writers = writer_values(task, record, values)
        edge_auroc = edge_aurocs(task, views, values if level == "edge" else None,
                                 writers if level == "node" else None)
        node_auroc = node_aurocs(task, truths, writers)
        signed = signed_values(task, record)
        # at the record's own level: an edge ranking's node projection gets none (its 20 more
        # circuits per record cost a third of a language model's scoring, for a number MIB
        # does not define)
        if level == "edge":
            mib["edge"] = mib_scores(graph.edges, signed, values, evaluate, empty)
        else:
            mib["node"] = mib_scores(graph.writers, writer_values(task, record, signed),
                                     writers, evaluate.nodes, empty)
    rows = []
    circuits = [("edge", label, c) for label, c in
                (circuits_of(task, record, sparsities) if level == "edge" else [])]
    circuits += [("node", label, c) for label, c in node_circuits_of(task, record, sparsities)]
    for row_level, label, kept in circuits:
        interval = not label.removeprefix(NODE_PREFIX).startswith("top=")
        if row_level == "edge":
            edges, nodes, measures = kept, nodes_of_edges(graph, kept), evaluate(kept, interval)
        else:
            edges, nodes = edges_of_nodes(graph, kept), kept
            measures = evaluate.nodes(kept, interval)
        row = dict(base, circuit=label, level=row_level, **mib[row_level])
        row.update(edge_columns(task, edges, views, edge_auroc))
        row.update(node_columns(task, nodes, truths, node_auroc))
        row.update(measures)
        if not all(math.isfinite(row[k]) for k in ("faithfulness", "agreement")):
            row["status"] = "invalid"
            row["error"] = (f"non-finite metric: faithfulness={row['faithfulness']}, "
                            f"agreement={row['agreement']}")
        rows.append(row)
    return rows


def _evaluation_split(task, n: int, seed: int, eval_examples: int, cache: dict):
    """The evaluation split of (n, seed) and the fraction of it seen in discovery, made once
    per score job (drawing 100,000 prompts again for every record cost seconds each)."""
    key = ("split", n, seed, eval_examples)
    if key not in cache:
        data = task.dataset(n=n, seed=seed, n_eval=eval_examples)
        cache[key] = (data.evaluation,
                      round(seen_fraction(data.discovery.clean, data.evaluation.clean), 4))
    return cache[key]


def _complete(row: dict) -> dict:
    return {c: row.get(c) for c in COLUMNS}
