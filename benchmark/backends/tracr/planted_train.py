"""Strict interchange-intervention training (SIIT, after InterpBench) of a planted circuit.

The high-level model is a compiled Tracr model; the low-level one has tracr's architecture with
more components. An alignment maps each compiled head or MLP to one trained component (the
embeddings and logits map to themselves), hence every compiled edge to one trained edge; the
trained edges that touch an unaligned component are "off-circuit". Interventions are resample
interchanges run through the masked forward: an edge at mask 0 carries its writer's output on
the paired source input. Each training example draws one of:

- plain: no intervention (the output loss);
- iit: one compiled node's outgoing edges, or one compiled edge, interchanged in both models;
  the trained model must give the answer the compiled model gives under the same intervention;
- strict: one off-circuit node's outgoing edges, or one off-circuit edge, interchanged in the
  trained model only; its answer must not change;
- joint: a random half of the compiled edges and of the off-circuit edges interchanged at once;
- circuit: only the compiled ground truth kept (less one of its edges, half the time).

The last two make the edge-level ground truth hold jointly, not only edge by edge.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from benchmark.graph.circuit import graph_of, run_circuit, writer_outputs

KINDS = ("plain", "iit", "strict", "joint", "circuit")
DRAW = (0.2, 0.3, 0.2, 0.15, 0.15)  # how often each kind is drawn


class Alignment:
    """Compiled (high) nodes and edges -> trained (low) ones; the rest of the low graph."""

    def __init__(self, high, low, align: dict):
        self.high_graph, self.low_graph = hg, lg = graph_of(high), graph_of(low)
        self.nodes = {w: w for w in hg.input_writers} | {"logits": "logits"} | dict(align)
        missing = [n for n in hg.writers if n not in self.nodes]
        if missing or any(n not in lg.node_to_index for n in self.nodes.values()):
            raise ValueError(f"alignment {align} must map every compiled component ({missing} "
                             "unmapped) to a node of the trained model")
        self.edges = [self.low_edge(e) for e in hg.edges]
        bad = [e for e in self.edges if e not in lg.edge_to_index]
        if bad:
            raise ValueError(f"alignment {align} breaks the order of the graph: {bad[:3]}")
        self.high_to_low = torch.tensor([lg.edge_to_index[e] for e in self.edges])
        images = set(self.edges)
        self.aligned_low = set(self.nodes.values())
        self.off_edges = torch.tensor([i for i, e in enumerate(lg.edges) if e not in images])
        self.off_nodes = [w for w in lg.writers if w not in self.aligned_low]

    def low_edge(self, edge: str) -> str:
        writer, port = edge.split("->")
        node = port.split("<")[0]
        return f"{self.nodes[writer]}->{self.nodes[node]}{port[len(node):]}"

    def low_mask(self, high_mask: torch.Tensor, off: torch.Tensor) -> torch.Tensor:
        """Low masks [N, El] from high masks [N, Eh] and off-circuit masks [N, n_off]."""
        low = torch.ones(len(high_mask), self.low_graph.n_edges)
        low[:, self.high_to_low] = high_mask
        low[:, self.off_edges] = off
        return low


def catalogs(al: Alignment, truth: list[str]) -> dict:
    """kind -> (high masks [N, Eh], off-circuit masks [N, n_off]) of its fixed interventions."""
    hg, lg = al.high_graph, al.low_graph
    eh, n_off = hg.n_edges, len(al.off_edges)
    off_pos = {int(i): k for k, i in enumerate(al.off_edges)}

    def rows(n):
        return torch.ones(n, eh), torch.ones(n, n_off)
    heads_mlps = [w for w in hg.writers if w not in hg.input_writers]
    h, o = rows(len(heads_mlps) + eh)
    for r, w in enumerate(heads_mlps):
        h[r, hg.outgoing(w)] = 0.0
    h[len(heads_mlps):] -= torch.eye(eh)
    out = {"iit": (h, o)}
    h, o = rows(len(al.off_nodes) + n_off)
    for r, w in enumerate(al.off_nodes):
        o[r, [off_pos[i] for i in lg.outgoing(w)]] = 0.0
    o[len(al.off_nodes):] -= torch.eye(n_off)
    out["strict"] = (h, o)
    kept = hg.mask_from_edges(truth)
    h = kept.repeat(len(truth) + 1, 1)
    for r, e in enumerate(truth):
        h[r + 1, hg.edge_to_index[e]] = 0.0
    out["circuit"] = (h, torch.zeros(len(h), n_off))
    return out


def _targets(high, base, source, high_mask):
    """The compiled model's answers under the intervention: argmax at each position."""
    with torch.no_grad():
        ablated = writer_outputs(high, source)
        return run_circuit(high, base, high_mask, ablated).argmax(-1)


def _loss(low, base, source, low_mask, target):
    """Cross-entropy [N] per example over non-BOS positions, and the logits."""
    ablated = writer_outputs(low, source)
    logits = run_circuit(low, base, low_mask, ablated)
    ce = torch.nn.functional.cross_entropy(logits[:, 1:].transpose(1, 2), target[:, 1:],
                                           reduction="none")
    return ce.mean(1), logits


def _draw(al, cats, kinds, rng, gen):
    """High and low masks [B, E] for a batch of kinds."""
    b = len(kinds)
    high = torch.ones(b, al.high_graph.n_edges)
    off = torch.ones(b, len(al.off_edges))
    for kind in ("iit", "strict", "circuit"):
        rows = np.nonzero(kinds == KINDS.index(kind))[0]
        if len(rows):
            h, o = cats[kind]
            pick = rng.integers(0, len(h), size=len(rows))
            high[rows], off[rows] = h[pick], o[pick]
    rows = np.nonzero(kinds == KINDS.index("joint"))[0]
    high[rows] = (torch.rand(len(rows), high.shape[1], generator=gen) < 0.5).float()
    off[rows] = (torch.rand(len(rows), off.shape[1], generator=gen) < 0.5).float()
    return high, al.low_mask(high, off)


def train(high, low, al: Alignment, truth, clean, corrupted, settings) -> dict:
    """Train `low` in place, seeded and single-threaded; returns the training record."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(high, low, al, truth, clean, corrupted, settings)
    finally:
        torch.set_num_threads(threads)


def _train(high, low, al, truth, clean, corrupted, s) -> dict:
    rng = np.random.default_rng(s.seed)
    gen = torch.Generator().manual_seed(s.seed)
    cats = catalogs(al, truth)
    params = [p for p in low.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=s.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, s.steps)
    t0 = time.perf_counter()
    for _ in range(s.steps):
        pick = rng.integers(0, len(clean), size=s.batch)
        kinds = rng.choice(len(KINDS), size=s.batch, p=DRAW)
        base, source = clean[pick], corrupted[pick]
        high_mask, low_mask = _draw(al, cats, kinds, rng, gen)
        target = _targets(high, base, source, high_mask)
        loss = _loss(low, base, source, low_mask, target)[0].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    seconds = time.perf_counter() - t0
    return {"train_seconds": round(seconds, 3), "steps": s.steps, "batch": s.batch}


@torch.no_grad()
def evaluate(high, low, al, truth, clean, corrupted) -> dict:
    """Each kind's cross-entropy and answer agreement with the compiled model, over every pair
    and every intervention of its catalog (plain: no intervention)."""
    cats, n_off = catalogs(al, truth), len(al.off_edges)
    kinds = {"plain": (torch.ones(1, al.high_graph.n_edges), torch.ones(1, n_off)), **cats}
    high_ablated, low_ablated = writer_outputs(high, corrupted), writer_outputs(low, corrupted)
    result = {}
    for kind, (h, o) in kinds.items():
        low_masks = al.low_mask(h, o)
        losses, agree, total = [], 0, 0
        for r in range(len(h)):
            target = run_circuit(high, clean, h[r], high_ablated).argmax(-1)
            logits = run_circuit(low, clean, low_masks[r], low_ablated)
            ce = torch.nn.functional.cross_entropy(logits[:, 1:].transpose(1, 2), target[:, 1:])
            losses.append(ce.item())
            agree += int((logits[:, 1:].argmax(-1) == target[:, 1:]).sum())
            total += target[:, 1:].numel()
        result[kind] = {"loss": float(np.mean(losses)), "agreement": agree / total,
                        "interventions": len(h)}
    return result
