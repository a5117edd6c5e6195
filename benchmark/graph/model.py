"""The interface a model backend provides to the graph and the masked forward.

`GraphModel` is the blocks of a residual transformer as separate functions, so that the masked
forward (benchmark.graph.circuit) can feed each reader its own input. The backends implement
it: benchmark.backends.tracr.model (compiled Tracr models), benchmark.backends.lm.model
(transformers causal LMs).
"""
from __future__ import annotations

import torch
from torch import nn


class GraphModel(nn.Module):
    """A residual transformer seen as blocks.

    Shapes: tokens [B, S]; residual-stream tensors [B, S, D]; head inputs and outputs
    [H, B, S, D], one slice per head, so that each head's query, key and value can differ.
    """

    n_layers: int
    n_heads: int
    d_model: int

    def embed(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Token and position embeddings, the graph's two input writers."""
        raise NotImplementedError

    def attention(self, layer: int, q_in, k_in, v_in) -> torch.Tensor:
        """Every head of one layer: inputs [H, B, S, D] each, output [H, B, S, D]."""
        raise NotImplementedError

    def mlp(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def unembed(self, x: torch.Tensor) -> torch.Tensor:
        """Final residual [B, S, D] to outputs [B, S, n_outputs]."""
        raise NotImplementedError

    def readout_positions(self, tokens: torch.Tensor) -> torch.Tensor:
        """The residual positions whose outputs the task reads, bool [B, S]: by default every
        position but 0 (BOS, which every metric skips). A model that reads fewer overrides it
        (a prompt LM: its answer position); methods that weigh positions use it (IFR)."""
        read = torch.ones(tokens.shape, dtype=torch.bool, device=tokens.device)
        read[:, 0] = False
        return read

    def shard_units(self) -> list:
        """Submodules a weight-sharding engine (FSDP) may make units of, each using its weights
        only inside its own forward (benchmark.graph.ranks.shard_model); none by default: the
        model is then replicated on every rank."""
        return []

    def forward(self, tokens: torch.Tensor, mask=None, ablated=None, **kwargs) -> torch.Tensor:
        """The masked forward (benchmark.graph.circuit.run_circuit; no mask: the plain model, a
        residual stream that every block adds to in graph order)."""
        from benchmark.graph.circuit import run_circuit  # one code path for plain and masked runs
        return run_circuit(self, tokens, mask, ablated, **kwargs)
