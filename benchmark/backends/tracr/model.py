"""`TracrTransformer`: a compiled Tracr model as a torch `GraphModel`.

tracr's architecture (no layer norm, ReLU MLPs, bidirectional attention with scores divided by
sqrt(key_size)) loaded from a compiled artifact, with no jax anywhere.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from benchmark.backends.tracr.fold import COMPRESSION, UNEMBEDDING, fold
from benchmark.core.artifact import Artifact
from benchmark.graph.model import GraphModel


# meta keys that describe the ground truth (a planted model's circuit and its checks)
TRUTH_KEYS = ("planted", "off_circuit", "conventions", "node_conventions")


class TracrTransformer(GraphModel):
    def __init__(self, artifact: Artifact):
        super().__init__()
        meta, arr = artifact.meta, artifact.arrays
        compressed = COMPRESSION in arr  # a learned W: the residual stream has W's width
        if compressed:
            arr = fold(arr, arr[COMPRESSION].astype("float32"), meta["output_dims"])
        # the architecture only: the ground truth stays with the task, out of methods' reach
        self.meta = {k: v for k, v in meta.items()
                     if "ground_truth" not in k and k not in TRUTH_KEYS}
        self.n_layers = meta["n_layers"]
        self.n_heads = meta["n_heads"]
        self.d_model = arr["tok_embed"].shape[1]
        self.key_size = meta["key_size"]
        t = lambda name: nn.Parameter(torch.from_numpy(arr[name].astype("float32")),
                                      requires_grad=False)
        self.tok_embed = t("tok_embed")
        self.pos_embed = t("pos_embed")
        names = ["wq", "bq", "wk", "bk", "wv", "bv", "wo", "w1", "b1", "w2", "b2"]
        self.blocks = nn.ModuleList()
        for layer in range(self.n_layers):
            block = nn.Module()
            for n in names:
                setattr(block, n, t(f"l{layer}_{n}"))
            self.blocks.append(block)
        # tracr stores no unembedding: the outputs are the residual dims of the output space.
        self.register_buffer("output_dims", torch.tensor(meta["output_dims"], dtype=torch.long))
        # compressed: the outputs are read through W^T
        self.unembedding = t(UNEMBEDDING) if compressed else None
        self.scale = math.sqrt(self.key_size)

    def embed(self, tokens):
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        return self.tok_embed[tokens], self.pos_embed[positions].expand(tokens.shape[0], -1, -1)

    def attention(self, layer, q_in, k_in, v_in):
        b = self.blocks[layer]
        # [H,B,S,D] x [H,D,K] -> [H,B,S,K]
        q = torch.einsum("hbsd,hdk->hbsk", q_in, b.wq) + b.bq[:, None, None, :]
        k = torch.einsum("hbsd,hdk->hbsk", k_in, b.wk) + b.bk[:, None, None, :]
        v = torch.einsum("hbsd,hdk->hbsk", v_in, b.wv) + b.bv[:, None, None, :]
        scores = torch.einsum("hbsk,hbtk->hbst", q, k) / self.scale
        pattern = torch.softmax(scores, dim=-1)
        z = torch.einsum("hbst,hbtk->hbsk", pattern, v)
        return torch.einsum("hbsk,hkd->hbsd", z, b.wo)

    def mlp(self, layer, x):
        b = self.blocks[layer]
        return torch.relu(x @ b.w1 + b.b1) @ b.w2 + b.b2

    def unembed(self, x):
        if self.unembedding is not None:
            return x @ self.unembedding
        return x[..., self.output_dims]

    def reference_forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tracr's forward written plainly (one residual stream, all heads from one input), as
        an independent check of the graph-based forward."""
        tok, pos = self.embed(tokens)
        resid = tok + pos
        for layer in range(self.n_layers):
            x = resid.unsqueeze(0).expand(self.n_heads, -1, -1, -1)
            for head_out in self.attention(layer, x, x, x):
                resid = resid + head_out
            resid = resid + self.mlp(layer, resid)
        return self.unembed(resid)

    @property
    def output_kind(self) -> str:
        return self.meta["output_kind"]

    @property
    def partial(self) -> bool:
        """Is the program undefined (None, compiled to the null vector) at some positions?"""
        return bool(self.meta.get("partial_output", False))

    # Residual dims each writer writes and each reader port reads: the structural ground truth.
    def write_dims(self, writer: str) -> frozenset[int]:
        if writer in ("tok_embeds", "pos_embeds"):
            w = self.tok_embed if writer == "tok_embeds" else self.pos_embed
            return _nonzero(w, dim=0)
        layer, head = _parse_node(writer)
        b = self.blocks[layer]
        if head is None:
            return _nonzero(b.w2, dim=0) | _nonzero(b.b2[None], dim=0)
        return _nonzero(b.wo[head], dim=0)

    def read_dims(self, port: str) -> frozenset[int]:
        if port == "logits":
            if self.unembedding is not None:
                return _nonzero(self.unembedding, dim=1)
            return frozenset(self.output_dims.tolist())
        if port.endswith(">"):
            node, kind = port[:-3], port[-2]
            layer, head = _parse_node(node)
            w = getattr(self.blocks[layer], f"w{kind}")[head]  # [D, K]
            return _nonzero(w, dim=1)
        layer, _ = _parse_node(port)
        return _nonzero(self.blocks[layer].w1, dim=1)


def _nonzero(w: torch.Tensor, dim: int) -> frozenset[int]:
    """Indices along the other axis with any non-zero entry (dim is the axis reduced over)."""
    return frozenset(torch.nonzero((w != 0).any(dim=dim)).flatten().tolist())


def _parse_node(node: str) -> tuple[int, int | None]:
    """`a2.h1` -> (2, 1); `m3` -> (3, None)."""
    if node.startswith("a"):
        layer, head = node[1:].split(".h")
        return int(layer), int(head)
    return int(node[1:]), None
