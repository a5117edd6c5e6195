"""One layer's attention heads and its MLP as modules of their own, for the disentangled stream.

Each block owns (as submodules) the HF modules it computes with, the layer's pre-norm and its
attention or MLP, and reads their weights only inside its own `forward`. That is what lets a
weight-sharding engine make a block one unit: FSDP gathers a unit's parameters just around the
unit's forward (and again for its backward), so code outside a unit would see shards.

The maths is benchmark.backends.lm.model's (its docstring says what differs from the HF forward
and why): each head's q, k and v from its own normed input, with that head's rows of the
projections; each head's output through its columns of the output projection, plus bias / H.
"""
from __future__ import annotations

import sys

import torch
from torch import nn


class AttentionBlock(nn.Module):
    """Every head of one layer: q/k/v inputs [H, B, S, D] each -> outputs [H, B, S, D]."""

    def __init__(self, lm, layer: int):
        super().__init__()
        block = lm.layers[layer]
        self.gpt2 = lm.gpt2
        self.norm = block.ln_1 if lm.gpt2 else block.input_layernorm
        self.attn = block.attn if lm.gpt2 else block.self_attn
        self.n_heads, self.n_kv_heads, self.head_dim = lm.n_heads, lm.n_kv_heads, lm.head_dim
        self.window = lm.window(layer)
        # HF's rotary helper and the decoder's rotary embedding (buffers only, shared by every
        # layer: kept out of this module's tree, so no engine sees it twice)
        self._rope = None if lm.gpt2 else sys.modules[type(self.attn).__module__].apply_rotary_pos_emb
        self.__dict__["_rotary"] = None if lm.gpt2 else lm.base.rotary_emb

    def forward(self, q_in, k_in, v_in, attention_mask=None):
        q, k, v = self._qkv(self.norm(q_in), self.norm(k_in), self.norm(v_in))  # [H, B, S, hd]
        if self._rope is not None:
            positions = torch.arange(q.shape[2], device=q.device)[None]
            cos, sin = self._rotary(v, positions)  # [1, S, hd]
            q, k = self._rope(q, k, cos, sin, unsqueeze_dim=0)
        scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) * self.attn.scaling
        scores = scores + additive_mask(q.shape[2], attention_mask, q.device, self.window)
        pattern = torch.softmax(scores, dim=-1).to(v.dtype)
        return self._out(torch.matmul(pattern, v))

    def _qkv(self, xq, xk, xv):
        """Each head's projections of its own inputs, with that head's rows of the weights."""
        h, kv, hd, attn = self.n_heads, self.n_kv_heads, self.head_dim, self.attn
        if self.gpt2:  # Conv1D: weight [D, 3D] = [D, (q|k|v), H, hd]
            w = attn.c_attn.weight.view(-1, 3, h, hd)
            b = attn.c_attn.bias.view(3, h, 1, 1, hd)
            return tuple(torch.einsum("hbsd,dhk->hbsk", x, w[:, i]) + b[i]
                         for i, x in enumerate((xq, xk, xv)))
        q = _project(xq.unsqueeze(1), attn.q_proj, h).squeeze(1)
        # query head g * rep + r reads kv head g (HF's repeat_kv): group the ports, not weights
        k = _project(xk.unflatten(0, (kv, h // kv)), attn.k_proj, kv).flatten(0, 1)
        v = _project(xv.unflatten(0, (kv, h // kv)), attn.v_proj, kv).flatten(0, 1)
        return q, k, v

    def _out(self, z):
        """Head h's output: z_h times its slice of the output projection, plus bias / H."""
        h, hd = self.n_heads, self.head_dim
        if self.gpt2:  # Conv1D: weight [H * hd, D]
            proj = self.attn.c_proj
            out = torch.einsum("hbsk,hkd->hbsd", z, proj.weight.view(h, hd, -1))
        else:  # Linear: weight [D, H * hd]
            proj = self.attn.o_proj
            out = torch.einsum("hbsk,dhk->hbsd", z, proj.weight.view(-1, h, hd))
        return out if proj.bias is None else out + proj.bias / h


class MLPBlock(nn.Module):
    """One layer's MLP with its own pre-norm: [B, S, D] -> [B, S, D]."""

    def __init__(self, block, gpt2: bool):
        super().__init__()
        self.norm = block.ln_2 if gpt2 else block.post_attention_layernorm
        self.mlp = block.mlp

    def forward(self, x):
        return self.mlp(self.norm(x))


def additive_mask(s: int, attention_mask, device, window: int | None) -> torch.Tensor:
    """HF's eager mask [B or 1, S, S]: 0 where a query may attend, finfo(float32).min not."""
    i = torch.arange(s, device=device)
    allowed = i[None, :] <= i[:, None]  # key <= query
    if window is not None:
        allowed = allowed & (i[None, :] > i[:, None] - window)
    allowed = allowed[None]
    if attention_mask is not None:
        if attention_mask.dim() != 2:
            raise ValueError("attention_mask must be [batch, seq] (1 = token, 0 = padding)")
        allowed = allowed & attention_mask.to(device=device, dtype=torch.bool)[:, None, :]
    zero = torch.zeros((), device=device)
    return torch.where(allowed, zero, torch.finfo(torch.float32).min)


def _project(x: torch.Tensor, linear, n: int) -> torch.Tensor:
    """x [G, R, B, S, D] through group g's rows of `linear` (weight [G*hd, D]): [G, R, B, S, hd]."""
    w = linear.weight.view(n, -1, linear.weight.shape[-1])  # [G, hd, D]
    out = torch.einsum("grbsd,gkd->grbsk", x, w)
    if linear.bias is not None:
        out = out + linear.bias.view(n, 1, 1, 1, -1)
    return out
