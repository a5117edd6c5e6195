"""The score stage: every circuit file of one (task, ablation, n, seed), checked, to one CSV.

Its own module so that the scoring key (benchmark.core.fingerprint.scoring_code_key) covers exactly
this code and what it imports: editing it rescores every circuit, editing other stages doesn't.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from benchmark.core.artifact import atomic_write_text
from benchmark.core.score_file import is_score_file_entry, read_scores

CIRCUIT_FIELDS = ("task", "method", "params", "seed", "n_examples", "ablation", "kind", "status")


def score_stage(task_name: str, cache: str, circuits: list[str], out: str, *,
                sparsities, eval_examples: int, config_hash_: str = "", device: str = "cpu",
                batch_size: int = 1000) -> None:
    """Score every circuit file of one group on `device` (the config's: "auto" is cuda when
    there is one), `batch_size` evaluation examples per forward. The scores do not depend on
    the batch size (benchmark.scoring.evaluate.SplitEvaluator); the device changes the last digits."""
    from benchmark.tasks import load_task
    from benchmark.core.devices import resolve_device
    from benchmark.scoring.evaluate import score_record
    from benchmark.scoring.schema import COLUMNS
    task = load_task(task_name, cache=cache, device=str(resolve_device(device)))
    rows, evaluators = [], {}
    for path in circuits:
        record = read_circuit(path, task_name, task.graph)
        rows.extend(score_record(task, record, sparsities=sparsities,
                                 eval_examples=eval_examples, config_hash=config_hash_,
                                 evaluators=evaluators, batch_size=batch_size))
    atomic_write_text(out, pd.DataFrame(rows, columns=COLUMNS).to_csv(index=False))


def read_circuit(path: str, task_name: str, graph=None) -> dict:
    """A circuit file, checked: readable JSON with the fields scoring needs, of this task, and
    for an `ok` run the scores or circuit its kind promises: with `graph`, the check the method
    protocol makes (scores for exactly the graph's edges, all finite; circuit edges of the
    graph); without it, finite scores for as many edges as the record's graph had.
    The scores are read from the record's side file (benchmark.core.score_file: a missing,
    truncated or swapped one is bad output) and returned as a float64 vector in canonical
    order (a dict {edge: score} in a record of the older all-JSON format read without `graph`)."""
    fix = (f"rerun snakemake, which moves {path} aside (.damaged) and reruns that discovery "
           "(or delete it)")
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f"circuit file {path} is unreadable ({err}); {fix}") from None
    missing = [k for k in CIRCUIT_FIELDS if not isinstance(record, dict) or k not in record]
    if missing:
        raise ValueError(f"circuit file {path} lacks {', '.join(missing)}; {fix}")
    if record["status"] == "ok":
        body = record.get(record["kind"]) if record["kind"] in ("scores", "circuit") else None
        expected = dict if record["kind"] == "scores" else list
        if not isinstance(body, expected):
            raise ValueError(f"circuit file {path} is an ok {record['kind']!r} run without its "
                             f"{record['kind']}; {fix}")
        try:
            if record["kind"] == "scores" and is_score_file_entry(body):
                record["scores"] = read_scores(path, body)
            _check_output(record, graph)
        except ValueError as err:
            why = str(err).replace("; ", ", ")  # the first `; ` ends the reason (damaged.py)
            raise ValueError(f"circuit file {path} is an ok run with bad output ({why}); "
                             f"{fix}") from None
    if record["task"] != task_name:
        raise ValueError(f"circuit file {path} is of task {record['task']!r}, not "
                         f"{task_name!r}; {fix}")
    return record


def _check_output(record: dict, graph) -> None:
    from benchmark.graph.scores import is_finite_number
    from benchmark.protocol import Discovery
    level = record.get("level", "edge")
    if graph is not None:
        circuit = None if record["circuit"] is None else frozenset(record["circuit"])
        checked = Discovery(record["kind"], scores=record["scores"], circuit=circuit,
                            level=level).check(graph)
        record["scores"] = checked.scores
        return
    if record["kind"] == "scores":
        scores = record["scores"]
        if level == "edge" and len(scores) != record.get("n_edges"):
            raise ValueError(f"scores for {len(scores)} edges, not the graph's "
                             f"{record.get('n_edges')}")
        if isinstance(scores, dict):
            bad = [e for e, v in scores.items() if not is_finite_number(v)]
        else:
            bad = [f"#{i}" for i in np.flatnonzero(~np.isfinite(scores))]
        if bad:
            raise ValueError(f"non-finite scores for {len(bad)} {level}s, e.g. {bad[:3]}")


def graph_of_summary(path: str):
    """The graph of a compiled task from its summary (`results/tasks/<task>.json`, written by
    the compile stage), or None when the summary is missing, unreadable or older than the
    `graph` field: the workflow's pre-plan check needs no model for it."""
    from benchmark.graph.graph import Graph
    try:
        with open(path) as f:
            shape = json.load(f)["graph"]
        return Graph(shape["n_layers"], shape["n_heads"], tuple(shape["input_writers"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
