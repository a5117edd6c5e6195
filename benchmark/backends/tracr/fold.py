"""Fold a residual-stream compression W (D -> d) into a compiled model's weights.

With W stored, the model's residual stream has d dims: embeddings are written through W, every
block reads through W^T and writes back through W, the outputs are read through W^T. Folding
W into the weights once gives exactly that model with the ordinary forward. The same function
serves numpy (loading an artifact) and torch (training W, differentiably).
"""
from __future__ import annotations

COMPRESSION = "compression"  # the artifact array holding W [D, d]
UNEMBEDDING = "unembedding"  # added by `fold`: W^T restricted to the output dims [d, O]

_READ = ("wq", "wk", "wv", "w1")  # [.., D, K]: read through W^T
_WRITE = ("wo", "w2", "b2")  # [.., D] last: written through W


def fold(arrays: dict, w, output_dims) -> dict:
    """The weights of the compressed model: every array that touches the residual stream
    mapped through `w` [D, d]; biases inside blocks (bq, b1, ...) unchanged."""
    out = {k: v for k, v in arrays.items() if k != COMPRESSION}
    for name in ("tok_embed", "pos_embed"):
        out[name] = arrays[name] @ w
    for key, value in arrays.items():
        short = key.partition("_")[2]
        if not key.startswith("l") or not short:
            continue
        if short in _READ:
            out[key] = w.T @ value
        elif short in _WRITE:
            out[key] = value @ w
    out[UNEMBEDDING] = w.T[:, list(output_dims)]
    return out
