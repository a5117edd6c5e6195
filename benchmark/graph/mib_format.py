"""MIB's circuit file (the circuit localization track; hannamw/EAP-IG `graph.py`), written and
read over our graph, so that a circuit moves between this benchmark and MIB's tools both ways.

The layout, as EAP-IG's `Graph.to_json` / `to_pt` write it and `from_json` / `from_pt` read it:
- JSON: `cfg` {n_layers, n_heads, parallel_attn_mlp, d_model}; `nodes` {name: {in_graph,
  score (only when the graph has node scores)}}, `logits` among them (always in the graph);
  `edges` {"a0.h0->a1.h2<q>": {score, in_graph}}, every real edge.
- `.pt` (torch.save of a dict): `cfg`, `src_nodes` (the forward nodes: `input`, then per layer
  its heads and its MLP), `dst_nodes` (the backward nodes: per layer every head's `<q>`, then
  every `<k>`, every `<v>`, then the MLP; `logits` last), `edges_scores` and `edges_in_graph`
  [n_forward, n_backward] (a cell that is no edge, a later writer to an earlier reader, holds 0 /
  False), `nodes_in_graph` [n_forward] bool, and `nodes_scores` [n_forward] when scored.
Our graph is MIB's with parallel_attn_mlp false (an MLP reads its own layer's heads), with the
same names; GPT-2 small gives 157 x 445.

Choices (README, "MIB interop"):
- Tracr's two input writers stay two forward nodes, `tok_embeds` and `pos_embeds`, named in
  `cfg["input_writers"]`: never merged (their sum is no node of our graph). MIB's own loader
  builds one `input` and so cannot load such a file; this module reads it back.
- Scores are written as float64 (EAP-IG writes float32; its loaders copy ours into their
  float32 tensors): our round trip is exact.
- A top-level `circuitbench` entry holds the record's task, method, kind, level and ranking
  (MIB's loaders read only their own keys); the reader takes the ranking from it.
"""
from __future__ import annotations

import json
import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from benchmark.core.artifact import atomic_write_bytes, atomic_write_text
from benchmark.graph.graph import QKV, Graph

SUFFIXES = (".json", ".pt")
PT_KEYS = ("cfg", "src_nodes", "dst_nodes", "edges_scores", "edges_in_graph", "nodes_in_graph")
JSON_KEYS = ("cfg", "nodes", "edges")
META_KEY = "circuitbench"
MIB_INPUT = ("input",)  # the one input writer MIB's graph has


class MibFormatError(ValueError):
    """A file that is not MIB's circuit format, or not of this graph."""


@dataclass(frozen=True)
class MibCircuit:
    """A circuit file's content over our graph: what `in_graph` keeps, and the scores if any.

    edges: the edges in_graph; nodes: the writers in_graph (`logits` always is);
    edge_scores: float64 in graph.edges order, None when the file has none (no `score`, or
        every score 0: the value MIB's Graph starts from);
    node_scores: float64 in graph.writers order (NaN: unscored, as MIB marks it), or None;
    meta: the `circuitbench` entry of a file this benchmark wrote ({} otherwise).
    """

    edges: frozenset
    nodes: frozenset
    edge_scores: np.ndarray | None = None
    node_scores: np.ndarray | None = None
    meta: dict = field(default_factory=dict)


def mib_cfg(graph: Graph, d_model: int) -> dict:
    """The `cfg` of a file of `graph` (a model of width d_model)."""
    cfg = {"n_layers": graph.n_layers, "n_heads": graph.n_heads, "parallel_attn_mlp": False,
           "d_model": int(d_model)}
    if graph.input_writers != MIB_INPUT:
        cfg["input_writers"] = list(graph.input_writers)
    return cfg


def dst_nodes(graph: Graph) -> list[str]:
    """MIB's backward order: per layer the heads' q ports, k ports, v ports, the MLP; logits."""
    out = []
    for layer in range(graph.n_layers):
        out += [f"a{layer}.h{h}<{x}>" for x in QKV for h in range(graph.n_heads)]
        out.append(f"m{layer}")
    return out + ["logits"]


def matrix_index(graph: Graph) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of each edge (graph.edges order) in MIB's [n_forward, n_backward] matrix:
    its writer's forward index (graph.writers is MIB's forward order) and its reader's."""
    column = {d: i for i, d in enumerate(dst_nodes(graph))}
    pairs = [Graph.split(e) for e in graph.edges]
    return (np.array([graph.writer_to_index[w] for w, _ in pairs], dtype=np.int64),
            np.array([column[r] for _, r in pairs], dtype=np.int64))


def to_mib(graph: Graph, circuit: MibCircuit, cfg: dict) -> dict:
    """The JSON form of `circuit` (EAP-IG's to_json layout). An edge without scores scores 0.0,
    as in MIB's own files of binary circuits (its from_json needs the key)."""
    scores = _zeros_or(circuit.edge_scores, graph.n_edges)
    nodes = {w: {"in_graph": w in circuit.nodes} for w in graph.writers}
    if circuit.node_scores is not None:
        for w, s in zip(graph.writers, circuit.node_scores.tolist()):
            nodes[w]["score"] = s
    nodes["logits"] = {"in_graph": True}
    edges = {e: {"score": s, "in_graph": e in circuit.edges}
             for e, s in zip(graph.edges, scores.tolist())}
    out = {"cfg": cfg, "nodes": nodes, "edges": edges}
    return {**out, META_KEY: circuit.meta} if circuit.meta else out


def to_mib_pt(graph: Graph, circuit: MibCircuit, cfg: dict) -> dict:
    """The `.pt` form of `circuit` (EAP-IG's to_pt layout, scores in float64)."""
    rows, cols = matrix_index(graph)
    shape = (len(graph.writers), len(dst_nodes(graph)))
    scores = torch.zeros(shape, dtype=torch.float64)
    scores[rows, cols] = torch.from_numpy(_zeros_or(circuit.edge_scores, graph.n_edges))
    kept = torch.zeros(shape, dtype=torch.bool)
    kept[rows, cols] = torch.tensor([e in circuit.edges for e in graph.edges])
    out = {"cfg": cfg, "src_nodes": list(graph.writers), "dst_nodes": dst_nodes(graph),
           "edges_scores": scores, "edges_in_graph": kept,
           "nodes_in_graph": torch.tensor([w in circuit.nodes for w in graph.writers])}
    if circuit.node_scores is not None:
        out["nodes_scores"] = torch.from_numpy(np.asarray(circuit.node_scores, np.float64))
    return {**out, META_KEY: circuit.meta} if circuit.meta else out


def check_suffix(path) -> str:
    suffix = Path(path).suffix
    if suffix not in SUFFIXES:
        raise MibFormatError(f"{path}: MIB's circuit files end in .json or .pt, not "
                             f"{suffix or '(no suffix)'}; name the file OUT.json or OUT.pt")
    return suffix


def write_mib(path, graph: Graph, circuit: MibCircuit, cfg: dict) -> None:
    """Write `circuit` as MIB's .json or .pt (by the suffix of `path`), atomically."""
    if check_suffix(path) == ".json":
        atomic_write_text(path, json.dumps(to_mib(graph, circuit, cfg)))
    else:
        import io
        buf = io.BytesIO()
        torch.save(to_mib_pt(graph, circuit, cfg), buf)
        atomic_write_bytes(path, buf.getvalue())


def load_mib(path) -> dict:
    """The raw dict of a MIB circuit file, its keys checked (not yet against a graph)."""
    suffix = check_suffix(path)
    try:
        if suffix == ".pt":
            d = torch.load(path, map_location="cpu", weights_only=True)
        else:
            with open(path) as f:
                d = json.load(f)
    except (OSError, ValueError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
        raise MibFormatError(f"{path}: unreadable as a MIB circuit file "
                             f"({type(err).__name__}: {str(err)[:200]})") from None
    need = PT_KEYS if suffix == ".pt" else JSON_KEYS
    missing = [k for k in need if not isinstance(d, dict) or k not in d]
    if missing:
        raise MibFormatError(f"{path}: not a MIB circuit file: no {', '.join(missing)} (a "
                             f"{suffix} circuit file has {', '.join(need)})")
    return d


def read_mib(path, graph: Graph) -> MibCircuit:
    """A MIB circuit file (.json or .pt) as a MibCircuit over `graph`, or MibFormatError naming
    what does not fit. Cells of the .pt matrix that are no edge are not read."""
    d = load_mib(path)
    _check_cfg(path, d["cfg"], graph)
    json_nodes = d.get("nodes") if isinstance(d.get("nodes"), dict) else {}
    if "neurons_in_graph" in d or any(isinstance(v, dict) and "neurons" in v
                                      for v in json_nodes.values()):
        raise MibFormatError(f"{path}: a neuron-level circuit; this benchmark's circuits keep "
                             "edges or whole nodes: use MIB's edge- or node-level file")
    meta = d.get(META_KEY) if isinstance(d.get(META_KEY), dict) else {}
    read = _read_pt if Path(path).suffix == ".pt" else _read_json
    edges, scores, nodes, node_scores = read(path, d, graph)
    if scores is not None and not np.isfinite(scores).all():
        bad = [graph.edges[i] for i in np.flatnonzero(~np.isfinite(scores))[:3]]
        raise MibFormatError(f"{path}: non-finite edge scores, e.g. {bad}")
    if scores is not None and not scores.any():
        scores = None
    if node_scores is not None and np.isnan(node_scores).all():
        node_scores = None
    return MibCircuit(frozenset(edges), frozenset(nodes), scores, node_scores, meta)


def _check_cfg(path, cfg, graph: Graph) -> None:
    try:
        shape = (int(cfg["n_layers"]), int(cfg["n_heads"]),
                 tuple(cfg.get("input_writers", MIB_INPUT)))
        parallel = bool(cfg.get("parallel_attn_mlp", False))
    except (KeyError, TypeError, ValueError) as err:
        raise MibFormatError(f"{path}: its cfg lacks n_layers/n_heads ({err!r})") from None
    if parallel:
        raise MibFormatError(f"{path}: a graph with parallel attention and MLP; this "
                             "benchmark's graph has each MLP read its own layer's heads")
    ours = (graph.n_layers, graph.n_heads, graph.input_writers)
    if shape != ours:
        raise MibFormatError(
            f"{path}: a circuit of a model with {shape[0]} layers, {shape[1]} heads and input "
            f"writer(s) {list(shape[2])}; this task's graph has {ours[0]} layers, {ours[1]} "
            f"heads and input writer(s) {list(ours[2])}: use a circuit file of this task's "
            "model")


def _read_json(path, d: dict, graph: Graph):
    entries, node_entries = d["edges"], d["nodes"]
    if not isinstance(entries, dict) or not isinstance(node_entries, dict):
        raise MibFormatError(f"{path}: `edges` and `nodes` must be objects keyed by name")
    unknown = [e for e in entries if e not in graph.edge_to_index]
    unknown += [n for n in node_entries if n not in graph.node_to_index]
    if unknown:
        raise MibFormatError(f"{path}: names not in this task's graph: {unknown[:3]} (edges "
                             f"look like {graph.edges[0]!r})")
    # an edge or node the file leaves out keeps MIB's Graph default: score 0, not in_graph
    edges = [e for e, v in entries.items() if _entry(path, e, v).get("in_graph")]
    scored = [e for e, v in entries.items() if "score" in v]
    scores = None
    if scored:
        scores = np.zeros(graph.n_edges)
        for e in scored:
            scores[graph.edge_to_index[e]] = _number(path, e, entries[e]["score"])
    nodes = [n for n, v in node_entries.items()
             if n != "logits" and _entry(path, n, v).get("in_graph")]
    node_scores = None
    if any("score" in v for n, v in node_entries.items() if n != "logits"):
        node_scores = np.array([_number(path, w, node_entries.get(w, {}).get("score", math.nan))
                                for w in graph.writers])
    return edges, scores, nodes, node_scores


def _entry(path, name, value) -> dict:
    if not isinstance(value, dict):
        raise MibFormatError(f"{path}: {name!r} must map to {{in_graph, score}}, not {value!r}")
    return value


def _number(path, name, value) -> float:
    if value is None:
        return math.nan  # MIB's own to_json writes an unscored node's NaN; some writers null
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MibFormatError(f"{path}: the score of {name!r} is {value!r}, not a number")
    return float(value)


def _read_pt(path, d: dict, graph: Graph):
    src, dst = list(graph.writers), dst_nodes(graph)
    for key, want in (("src_nodes", src), ("dst_nodes", dst)):
        if list(d[key]) != want:
            diff = next((i for i, (a, b) in enumerate(zip(d[key], want)) if a != b),
                        min(len(d[key]), len(want)))
            raise MibFormatError(f"{path}: {key} differ from this task's graph at position "
                                 f"{diff} (MIB's order: {want[max(0, diff - 1):diff + 2]})")
    shape = (len(src), len(dst))
    for key in ("edges_scores", "edges_in_graph"):
        if not isinstance(d[key], torch.Tensor) or tuple(d[key].shape) != shape:
            got = tuple(d[key].shape) if isinstance(d[key], torch.Tensor) else type(d[key])
            raise MibFormatError(f"{path}: {key} must be a {shape[0]} x {shape[1]} tensor "
                                 f"[src_nodes, dst_nodes], got {got}")
    rows, cols = (torch.from_numpy(a) for a in matrix_index(graph))
    kept = d["edges_in_graph"][rows, cols].bool().tolist()
    edges = [e for e, k in zip(graph.edges, kept) if k]
    scores = d["edges_scores"][rows, cols].to(torch.float64).numpy()
    node_kept = torch.as_tensor(d["nodes_in_graph"]).bool().reshape(-1)
    node_scores = d.get("nodes_scores")
    node_scores = None if node_scores is None else torch.as_tensor(node_scores)
    for key, value in (("nodes_in_graph", node_kept), ("nodes_scores", node_scores)):
        if value is not None and tuple(value.shape) != (len(src),):
            raise MibFormatError(f"{path}: {key} must have one entry per src node "
                                 f"({len(src)}), got shape {tuple(value.shape)}")
    nodes = [w for w, k in zip(src, node_kept.tolist()) if k]
    if node_scores is not None:
        node_scores = node_scores.to(torch.float64).numpy()
    return edges, scores, nodes, node_scores


def _zeros_or(values, n: int) -> np.ndarray:
    return np.zeros(n) if values is None else np.asarray(values, dtype=np.float64)
