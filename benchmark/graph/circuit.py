"""The masked forward: run a model with a circuit, each reader seeing only its kept edges.

Each reader's input is the sum over its writers, in graph order, of
`mask * clean_output + (1 - mask) * ablated_output`. With every mask at 1 the terms are exactly the
writers' outputs, added in the residual stream's order, so the full circuit equals the plain model
bit for bit (tests check it on every task, against an independent residual-stream forward
too). Masks may be continuous and carry gradients (Edge Pruning trains them), and may differ
per example (a mask of shape [B, n_edges]).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from benchmark.core.conventions import ABLATIONS
from benchmark.graph.graph import Graph, ReaderGroup


@dataclass
class Recording:
    """What a run leaves behind for methods that need it (EAP's gradients, ACDC's cache).

    `writers[w]` is writer w's output [B, S, D]; `group_inputs[g]` is reader group g's input
    [P, B, S, D] (one slice per port, in the group's port order).
    """

    writers: list = field(default_factory=list)
    group_inputs: list = field(default_factory=list)
    keep_inputs: bool = True  # False saves memory when only writer outputs are needed
    # the model's per-batch context (`run_context`), for partial re-runs of the same batch
    context: dict = field(default_factory=dict)

    def rows(self, rows: slice) -> "Recording":
        """The recording of a slice of the batch's examples (the ground truth's early exit);
        the context is not sliced: run_circuit derives a batch's own from its tokens."""
        return Recording([w[rows] for w in self.writers],
                         [None if x is None else x[:, rows] for x in self.group_inputs],
                         self.keep_inputs)


def graph_of(model) -> Graph:
    graph = getattr(model, "_graph", None)
    if graph is None:
        graph = Graph.for_model(model)
        model._graph = graph
    return graph


def run_context(model, tokens: torch.Tensor,
                attention_mask: torch.Tensor | None = None) -> dict:
    """Keyword arguments of `model.attention` and `model.unembed` for a batch of tokens.

    A model may derive them from the tokens (`model.context`: a prompt LM finds its padding and
    answer positions from its pad id); an explicit `attention_mask` is added on top. Models
    without either (tracr) get none, so their blocks need not accept any."""
    ctx = dict(model.context(tokens)) if hasattr(model, "context") else {}
    if attention_mask is not None:
        ctx["attention_mask"] = attention_mask
    return ctx


def run_circuit(model, tokens: torch.Tensor, mask: torch.Tensor | None = None,
                ablated: torch.Tensor | None = None, *, record: Recording | None = None,
                start: Recording | None = None, start_group: int = 0,
                embeddings: tuple | None = None,
                attention_mask: torch.Tensor | None = None,
                checkpoint_layers: bool = False) -> torch.Tensor:
    """Outputs [B, S, n_outputs] of `model` on `tokens` with edges weighted by `mask`.

    mask: None (every edge kept), [n_edges] or [B, n_edges], canonical edge order.
    ablated: what a removed edge carries, [W, B or 1, S, D] per writer; None means zero.
    start/start_group: reuse the writer outputs of an earlier run for every group before
        `start_group` (ACDC and the ground truth re-run only what an ablated edge changes).
    embeddings: override the input writers' outputs (EAP-IG interpolates them).
    attention_mask: [B, S], 1 at real tokens, 0 at padding (LMs); passed on to
        `model.attention` and `model.unembed` with the model's own context (run_context).
    checkpoint_layers: with autograd on, keep only the writers' outputs of each attention or
        MLP block and recompute its input and inside in the backward pass (activation
        checkpointing per block: memory for the biggest models, one more forward in time).
        Its group inputs are then not recorded.
    """
    graph = graph_of(model)
    ctx = run_context(model, tokens, attention_mask)
    checkpointed = checkpoint_layers and torch.is_grad_enabled()
    if checkpointed and record is not None and record.keep_inputs:
        raise ValueError("run_circuit: checkpoint_layers keeps no group inputs to record; "
                         "pass a Recording(keep_inputs=False) or no recording")
    if start is not None:
        writers = list(start.writers[:graph.groups[start_group].n_writers_before])
    else:
        start_group = 0
        writers = list(embeddings if embeddings is not None else model.embed(tokens))
    if record is not None:
        record.writers, record.group_inputs = writers, [None] * len(graph.groups)
        record.context = ctx
        if start is not None:
            record.group_inputs[:start_group] = start.group_inputs[:start_group]
    mask_rows = None if mask is None else (mask if mask.dim() == 2 else mask.unsqueeze(0))
    plain = mask is None and ablated is None
    stacked = None
    if not plain and not torch.is_grad_enabled():
        # without autograd, writers also go into one [W, B, S, D] buffer: each group reads a
        # view of it instead of re-stacking every writer before it (the ground truth's cost)
        stacked = writers[0].new_empty((graph.groups[-1].n_writers_before, *writers[0].shape))
        for w, out in enumerate(writers):
            stacked[w] = out
    resid, n_summed = None, 0
    for g in range(start_group, len(graph.groups)):
        group = graph.groups[g]
        if plain:  # the plain model: one running residual stream, read by every port
            for w in range(n_summed, group.n_writers_before):
                resid = writers[w] if resid is None else resid + writers[w]
            n_summed = group.n_writers_before
            x = resid.unsqueeze(0).expand(len(group.ports), -1, -1, -1)
        elif checkpointed and group.kind != "logits":
            from torch.utils.checkpoint import checkpoint
            m = _group_mask(group, mask_rows, writers[0])

            def block(*inputs, group=group, m=m):
                return _block(model, group, _masked_sum(m, ablated, *inputs), ctx)
            new = checkpoint(block, *writers[:group.n_writers_before], use_reentrant=False,
                             preserve_rng_state=False)
            writers.extend(new)
            continue
        else:
            x = group_input(group, writers, mask_rows, ablated, stacked)  # [P, B, S, D]
        if record is not None and record.keep_inputs:
            record.group_inputs[g] = x
        # the block's saved views of its input are rebuilt in the backward pass (_SavedInput),
        # unless it is recorded (kept anyway, and gradients may stop at it: EAP)
        with _SavedInput.of(None if record is not None and record.keep_inputs else x):
            if group.kind == "logits":
                return model.unembed(x[0], **ctx)
            new = _block(model, group, x, ctx)
        if stacked is not None:
            stacked[len(writers):len(writers) + len(new)] = torch.stack(new)
        writers.extend(new)
    raise AssertionError("graph has no logits group")


def _block(model, group: ReaderGroup, x: torch.Tensor, ctx: dict) -> tuple:
    """The new writers' outputs of an attention or MLP group from its input [P, B, S, D]."""
    if group.kind == "attn":
        p, b, s, d = x.shape
        qkv = x.view(model.n_heads, 3, b, s, d)
        return model.attention(group.layer, qkv[:, 0], qkv[:, 1], qkv[:, 2], **ctx).unbind(0)
    return (model.mlp(group.layer, x[0]),)


def _group_mask(group: ReaderGroup, mask_rows, like: torch.Tensor) -> torch.Tensor:
    """The group's mask [Bm, W, P] (ones [1, W, P] for the full circuit) in `like`'s dtype."""
    if mask_rows is None:
        return torch.ones(1, group.n_writers_before, len(group.ports), dtype=like.dtype,
                          device=like.device)
    return mask_rows[:, group.edge_index.to(mask_rows.device)].to(like.dtype)


def group_input(group: ReaderGroup, writers, mask_rows, ablated,
                stacked: torch.Tensor | None = None) -> torch.Tensor:
    """Every port's input [P, B, S, D]: sum_w mask[w, p] * clean_w + (1 - mask) * ablated_w.

    Written as one matrix product over writers for speed; its sum over a short writer axis runs
    in writer order, which the exactness tests pin down. With autograd on, the product's
    stacked copy of the writers is not kept for the backward pass (one per group: memory
    quadratic in depth), nor is the input itself (the readers' norms would keep one per group,
    [P, B, S, D], the largest tensor of a layer): the sum is recomputed once in the backward
    pass from the writers, which the graph holds anyway, with the very same operations, so the
    gradients are bit for bit those of the plain product (_GroupInput, _SavedInput).
    """
    n_w, m = group.n_writers_before, _group_mask(group, mask_rows, writers[0])
    if stacked is not None:
        return _masked_sum(m, ablated, stacked[:n_w])
    if not torch.is_grad_enabled():
        return _masked_sum(m, ablated, *writers[:n_w])
    return _GroupInput.apply(_Recompute(m, ablated, writers[:n_w]), m, ablated, *writers[:n_w])


class _Recompute:
    """A group's masked sum, rebuilt in the backward pass with autograd on, from detached
    copies of its inputs: once, shared by the blocks' saved views of the input (_SavedInput)
    and the sum's own backward (_GroupInput), then dropped."""

    def __init__(self, m, ablated, writers):
        self.inputs, self.graph = (m, ablated, *writers), None

    def get(self):
        """(leaves, input): the recomputed sum and the leaves it was computed from (m,
        ablated or None, the writers)."""
        if self.graph is None:
            with torch.enable_grad():
                leaves = [None if t is None else t.detach().requires_grad_(t.requires_grad)
                          for t in self.inputs]
                self.graph = leaves, _masked_sum(*leaves)
        return self.graph


class _GroupInput(torch.autograd.Function):
    """The masked sum saving nothing but references to its inputs; the backward pass
    differentiates the recomputed sum (the same operations: bit for bit autograd's gradients
    of the plain product, as non-reentrant checkpointing would give)."""

    @staticmethod
    def forward(ctx, state, m, ablated, *writers):
        ctx.state = state
        return _masked_sum(m, ablated, *writers)

    @staticmethod
    def backward(ctx, grad):
        (leaves, x), ctx.state.graph = ctx.state.get(), None
        need = ctx.needs_input_grad[1:]
        wanted = [t for t, n in zip(leaves, need) if n]
        grads = iter(torch.autograd.grad(x, wanted, grad) if wanted else ())
        return (None, *(next(grads) if n else None for n in need))


class _SavedInput(torch.autograd.graph.saved_tensors_hooks):
    """While a block runs on a group input x made by _GroupInput, tensors autograd saves that
    are views of x (the norms' inputs) are kept as their place in x, and rebuilt in the backward
    pass from the recomputed sum. On any other x, a no-op."""

    def __init__(self, x, state):
        self.ptr, self.offset, self.stride = (x.untyped_storage().data_ptr(),
                                              x.storage_offset(), x.stride())
        self.state = state
        super().__init__(self.pack, self.unpack)

    @classmethod
    def of(cls, x):
        state = getattr(getattr(x, "grad_fn", None), "state", None)
        if not isinstance(state, _Recompute):
            from contextlib import nullcontext
            return nullcontext()
        return cls(x, state)

    def pack(self, t):
        if t.untyped_storage().data_ptr() != self.ptr:
            return t
        return _View(t.size(), t.stride(), t.storage_offset() - self.offset)

    def unpack(self, packed):
        if not isinstance(packed, _View):
            return packed
        x = self.state.get()[1].detach()
        if x.stride() != self.stride:
            raise AssertionError("recomputed group input laid out differently")
        return x.as_strided(packed.size, packed.stride, x.storage_offset() + packed.offset)


@dataclass
class _View:
    size: torch.Size
    stride: tuple
    offset: int


def _masked_sum(m: torch.Tensor, ablated: torch.Tensor | None, *clean) -> torch.Tensor:
    """sum_w m[., w, p] * clean_w + (1 - m[., w, p]) * ablated_w; `clean` is the writers'
    outputs, or one [W, B, S, D] tensor of them."""
    clean = clean[0] if len(clean) == 1 and clean[0].dim() == 4 else torch.stack(clean)
    x = _weighted_sum(m, clean)
    if ablated is not None:
        # with every mask at 1 this adds an exact zero
        x = x + _weighted_sum(1 - m, ablated[:len(clean)])
    return x


def _weighted_sum(m: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """sum_w m[., w, p] * values[w] -> [P, B, S, D]; m is shared ([1, W, P]) or per example."""
    if m.shape[0] == 1:
        return torch.einsum("wp,wbsd->pbsd", m[0], values)
    if values.shape[1] == 1:
        values = values.expand(-1, m.shape[0], -1, -1)
    return torch.einsum("bwp,wbsd->pbsd", m, values)


def writer_outputs(model, tokens: torch.Tensor,
                   attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Every writer's output on a plain run, stacked [W, B, S, D]."""
    rec = Recording()
    run_circuit(model, tokens, record=rec, attention_mask=attention_mask)
    return torch.stack(rec.writers)


def ablated_outputs(model, kind: str, tokens: torch.Tensor, corrupted: torch.Tensor | None = None,
                    reference: torch.Tensor | None = None) -> torch.Tensor | None:
    """What removed edges carry: None for zero ablation, the writers' outputs on the paired
    corrupted inputs for resample ablation, or their mean over a reference set for mean ablation.
    """
    if kind == "zero":
        return None
    if kind == "resample":
        if corrupted is None or corrupted.shape != tokens.shape:
            raise ValueError("resample ablation needs corrupted inputs paired with the clean ones "
                             f"(same shape {tuple(tokens.shape)})")
        return writer_outputs(model, corrupted)
    if kind == "mean":
        ref = reference if reference is not None else tokens
        return writer_outputs(model, ref).mean(dim=1, keepdim=True)
    raise ValueError(f"unknown ablation {kind!r}; known: {', '.join(ABLATIONS)}")
