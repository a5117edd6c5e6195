"""Circuit files of any origin over one graph: this benchmark's circuit records and MIB's
circuit files (benchmark.graph.mib_format), read into one form, and records exported to MIB's.

A record (methods/README.md, "The circuit record") maps to MIB's file as follows:
- an edge circuit: its edges in_graph, its nodes the writers of those edges; every score 0;
- edge scores: the method's scores as they are (signed effects where the record's ranking is
  "abs", as MIB's are); in_graph the `top` N edges, or those of a `sparsity`, by the record's
  ranking (|score| for "abs"; ties in canonical order), else none: MIB's own score files are
  read for their scores, and its evaluation sets in_graph from them (top-n) itself;
- a node circuit or node scores: node in_graph (and scores); the edges in_graph are the edges
  between kept nodes (benchmark.graph.nodes.edges_of_nodes), their scores 0.
No pruning of dangling edges is done (MIB's `prune`): the file keeps what the record kept.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.core.score_file import is_score_file_entry, read_scores
from benchmark.graph.graph import Graph
from benchmark.graph.mib_format import (
    MibCircuit,
    MibFormatError,
    load_mib,
    mib_cfg,
    read_mib,
    write_mib,
)
from benchmark.graph.nodes import OUTPUT_NODE, edges_of_nodes, nodes_of_edges
from benchmark.graph.scores import score_vector

FORMATS = ("a circuit record of this benchmark (<setting>.json with task, kind and level, as "
           "`python -m benchmark discover` writes it), or MIB's circuit file (.json with cfg, "
           "nodes and edges; .pt with cfg, src_nodes, dst_nodes, edges_scores, edges_in_graph "
           "and nodes_in_graph)")
RECORD_KEYS = ("task", "kind", "status")


@dataclass(frozen=True)
class CircuitFile:
    """One circuit file read over a graph. `level` and `kind` say what it holds at its own
    level ("scores" when it has scores there, else "circuit"); `ranking` how its scores rank
    ("abs" for MIB's signed effects unless the file says otherwise)."""

    path: str
    sha256: str
    format: str  # "record", "mib-json" or "mib-pt"
    content: MibCircuit
    level: str
    kind: str
    ranking: str


def sha256_of(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def circuit_file_format(path) -> str:
    """"record", "mib-json" or "mib-pt", or a ValueError naming the file and the formats read:
    the check a config gets when it is planned (no graph needed)."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"circuit file {path}: no such file; expected {FORMATS}")
    if p.suffix == ".json":
        try:
            d = json.loads(p.read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"circuit file {path}: unreadable JSON ({err}); expected "
                             f"{FORMATS}") from None
        if isinstance(d, dict) and all(k in d for k in RECORD_KEYS):
            if d["status"] != "ok":
                raise ValueError(f"circuit file {path} is a {d['status']} run (no circuit); "
                                 "rerun its discovery or name another file")
            return "record"
    try:
        load_mib(path)
    except MibFormatError as err:
        raise ValueError(f"circuit file {err}; expected {FORMATS}") from None
    return "mib-pt" if p.suffix == ".pt" else "mib-json"


def read_record(path, graph: Graph) -> dict:
    """An `ok` circuit record of this benchmark, checked against `graph` as the method
    protocol checks a discovery: scores (from the sha256-checked side file) a float64 vector
    in canonical order at the record's level, circuit units of the graph."""
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f"circuit file {path}: unreadable ({err}); expected {FORMATS}") from None
    missing = [k for k in RECORD_KEYS if not isinstance(record, dict) or k not in record]
    if missing:
        raise ValueError(f"circuit file {path}: not a circuit record (no "
                         f"{', '.join(missing)}); expected {FORMATS}")
    if record["status"] != "ok":
        raise ValueError(f"circuit file {path} is a {record['status']} run "
                         f"({record.get('error', '')}): it has no circuit; rerun its discovery")
    level, kind = record.get("level", "edge"), record["kind"]
    units = graph.units(level)
    try:
        if kind == "scores":
            body = record.get("scores")
            values = read_scores(path, body) if is_score_file_entry(body) else body
            record["scores"] = score_vector(values, graph, level)
        elif kind == "circuit":
            extra = set(record.get("circuit") or ()) - set(units)
            if record.get("circuit") is None or extra:
                raise ValueError(f"circuit {level}s not in the graph: {sorted(extra)[:3]}")
        else:
            raise ValueError(f"kind {kind!r} is neither 'scores' nor 'circuit'")
    except ValueError as err:
        raise ValueError(f"circuit file {path}: bad output ({err}); rerun its discovery, or "
                         "export the record of this task's graph") from None
    return record


def record_content(graph: Graph, record: dict, top: int | None = None,
                   sparsity: float | None = None) -> MibCircuit:
    """A checked record (read_record) as MIB content: the rules in this module's docstring.
    `top` / `sparsity` choose the in_graph units of a scores record."""
    level, ranking = record.get("level", "edge"), record.get("ranking", "signed")
    meta = {k: record.get(k) for k in ("task", "method", "params", "kind", "seed",
                                       "n_examples", "ablation")}
    meta.update(level=level, ranking=ranking)
    edge_scores = node_scores = None
    if record["kind"] == "circuit":
        if (top, sparsity) != (None, None):
            raise ValueError("--top and --sparsity choose the kept units of a scores record; "
                             "this one is a circuit: leave them out")
        kept = set(record["circuit"])
    else:
        units = graph.edges if level == "edge" else graph.writers
        values = record["scores"][:len(units)]  # node scores: logits' entry (last) dropped
        kept = set(_top_units(units, values, ranking, top, sparsity))
        if level == "edge":
            edge_scores = values
        else:
            node_scores = values
    if level == "edge":
        edges = frozenset(kept)
        nodes = nodes_of_edges(graph, edges)
    else:
        nodes = frozenset(kept - {OUTPUT_NODE})
        edges = edges_of_nodes(graph, nodes)
    return MibCircuit(edges, nodes, edge_scores, node_scores, meta)


def _top_units(units, values, ranking, top, sparsity) -> list:
    if top is not None and sparsity is not None:
        raise ValueError("give --top or --sparsity, not both")
    if sparsity is not None:
        if not 0 <= sparsity <= 1:
            raise ValueError(f"--sparsity {sparsity} must be between 0 and 1 (the fraction "
                             "of units left out)")
        top = round((1 - sparsity) * len(units))  # as the scorer's sparsity=s circuits
    if top is None:
        return []
    if not 0 <= top <= len(units):
        raise ValueError(f"--top {top} must be between 0 and the {len(units)} units scored")
    rank = np.abs(values) if ranking == "abs" else np.asarray(values)
    order = np.lexsort((np.arange(len(rank)), -rank))
    return [units[i] for i in order[:top]]


def read_circuit_file(path, graph: Graph) -> CircuitFile:
    """Any circuit file (circuit_file_format) over `graph`, or a ValueError naming what is wrong."""
    fmt = circuit_file_format(path)
    if fmt == "record":
        record = read_record(path, graph)
        content = record_content(graph, record)
        level, kind = record.get("level", "edge"), record["kind"]
        ranking = record.get("ranking", "signed")
    else:
        try:
            content = read_mib(path, graph)
        except MibFormatError as err:
            raise ValueError(f"circuit file {err}") from None
        meta = content.meta
        level = meta.get("level") or ("node" if content.node_scores is not None
                                      and content.edge_scores is None else "edge")
        scores = content.edge_scores if level == "edge" else content.node_scores
        kind = "scores" if scores is not None else "circuit"
        ranking = meta.get("ranking") or "abs"
    return CircuitFile(str(path), sha256_of(path), fmt, content, level, kind, ranking)


def export_task(path, out) -> str:
    """The task of the record at `path` (whose graph an export needs), after checking that
    `out` names a MIB file: both before a task is loaded."""
    from benchmark.graph.mib_format import check_suffix
    check_suffix(out)
    if circuit_file_format(path) != "record":
        raise ValueError(f"{path} is already a MIB circuit file; export-mib reads this "
                         "benchmark's circuit records")
    with open(path) as f:
        return json.load(f)["task"]


def export_record(path, out, graph: Graph, d_model: int, top: int | None = None,
                  sparsity: float | None = None) -> str:
    """Write the record at `path` as MIB's circuit file `out` (.json or .pt); a line saying
    what was written."""
    record = read_record(path, graph)
    content = record_content(graph, record, top, sparsity)
    write_mib(out, graph, content, mib_cfg(graph, d_model))
    level = record.get("level", "edge")
    scored = (f"{level} scores ({content.meta['ranking']} ranking)"
              if record["kind"] == "scores" else f"a {level} circuit")
    note = ("" if graph.input_writers == ("input",) else
            f"; input writers {list(graph.input_writers)} kept as forward nodes, which MIB's "
            "own loader (one `input`) cannot read")
    return (f"{path}: {scored} of {record['task']} -> {out}: {len(content.edges)} of "
            f"{graph.n_edges} edges and {len(content.nodes)} of {len(graph.writers)} nodes "
            f"in_graph{note}")
