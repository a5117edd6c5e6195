"""The score stage: every circuit file of one (task, ablation, n, seed), checked, to one CSV.

Its own module so that the scoring key (benchmark.fingerprint.scoring_code_key) covers exactly
this code and what it imports: editing it rescores every circuit, editing other stages doesn't.
"""
from __future__ import annotations

import json

import pandas as pd

from benchmark.artifact import atomic_write_text

CIRCUIT_FIELDS = ("task", "method", "params", "seed", "n_examples", "ablation", "kind", "status")


def score_stage(task_name: str, cache: str, circuits: list[str], out: str, *,
                sparsities, eval_examples: int, config_hash_: str = "") -> None:
    from benchmark import load_task
    from benchmark.evaluate import COLUMNS, score_record
    task = load_task(task_name, cache=cache)
    rows, evaluators = [], {}
    for path in circuits:
        record = read_circuit(path, task_name)
        rows.extend(score_record(task, record, sparsities=sparsities,
                                 eval_examples=eval_examples, config_hash=config_hash_,
                                 evaluators=evaluators))
    atomic_write_text(out, pd.DataFrame(rows, columns=COLUMNS).to_csv(index=False))


def read_circuit(path: str, task_name: str) -> dict:
    """A circuit file, checked: readable JSON with the fields scoring needs, of this task, and
    for an `ok` run the scores or circuit its kind promises."""
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
    if record["task"] != task_name:
        raise ValueError(f"circuit file {path} is of task {record['task']!r}, not "
                         f"{task_name!r}; {fix}")
    return record
