"""Causal LMs loaded with `transformers`, seen as a graph model (Edge Pruning's residual stream).

`LMGraphModel` wraps the HF module itself: every block calls the model's own submodules (norms,
MLPs, rotary embedding, lm_head) or slices of its own weights (per-head rows of the q/k/v
projections, per-head columns of the output projection); nothing is converted or copied.

What differs from the HF forward is only what the disentangled residual stream needs:
- each reader port applies its block's pre-norm to its own input: every head's q, k and v input
  separately (a GQA query head's k and v ports use its shared kv head's weights), every MLP input,
  and the final norm inside `unembed`;
- each head's output is its slice of the output projection. The projection's bias (GPT-2's
  c_proj, an o_proj bias) is split evenly over the layer's heads, bias / n_heads each, as Edge
  Pruning does: the heads are the only writers between the layer's attention and its MLP, so this
  adds it exactly once before any reader that sees it in the plain model, and no head is singled
  out. (A zero-ablated head thus also drops its share; under resample/mean ablation it cancels.)

Attention is HF's eager maths in float32: scores * `attn.scaling` plus the additive mask HF's
`eager_mask` builds (0 where allowed, finfo.min elsewhere: causal, padding, sliding window),
softmax, values. Position ids are `arange(S)` for every row, padded or not, as `model(input_ids,
attention_mask=...)` does in transformers 5.x (only `generate` derives them from the mask): with
left padding the real tokens of a row do not start at position 0. Fully masked rows (left-pad
query positions) come out as eager attention makes them (uniform over every key): garbage, as in
HF, and never read by a real position.
"""
from __future__ import annotations

import sys

import torch

from benchmark.graph.model import GraphModel

# model_type -> the causal-LM class this backend runs (one code path for the Llama family)
SUPPORTED = {"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM",
             "qwen2": "Qwen2ForCausalLM", "mistral": "MistralForCausalLM"}


def unsupported_message(what: str) -> str:
    return (f"load_lm: {what} is not supported; supported architectures: "
            f"{', '.join(SUPPORTED.values())}")


def check_supported(hf_model) -> str:
    """The model's `model_type`, or a ValueError naming the supported architectures."""
    model_type = getattr(getattr(hf_model, "config", None), "model_type", None)
    names = {c.__name__ for c in type(hf_model).__mro__}
    if model_type not in SUPPORTED or SUPPORTED[model_type] not in names:
        raise ValueError(unsupported_message(f"{type(hf_model).__name__} ({model_type})"))
    return model_type


class LMGraphModel(GraphModel):
    """A transformers causal LM (GPT-2, Llama, Qwen2, Mistral) as blocks of the graph.

    Its weights are frozen (`requires_grad_(False)`) and it is put in eval mode: methods
    differentiate with respect to masks, never weights, and dropout would break exactness.
    """

    input_writers = ("input",)  # token (+ position, GPT-2) embeddings: one writer

    def __init__(self, hf_model):
        super().__init__()
        self.model_type = check_supported(hf_model)
        self.hf = hf_model.eval().requires_grad_(False)
        cfg = hf_model.config
        self.gpt2 = self.model_type == "gpt2"
        self.n_layers = cfg.num_hidden_layers
        self.n_heads = cfg.num_attention_heads
        self.n_kv_heads = getattr(cfg, "num_key_value_heads", None) or self.n_heads
        self.d_model = cfg.hidden_size
        attn = self._attn(0)
        self.head_dim = attn.head_dim
        # HF's rotary helper, from the module that defines this model's attention
        self._rope = None if self.gpt2 else sys.modules[type(attn).__module__].apply_rotary_pos_emb

    @property
    def base(self):
        """The HF decoder (GPT2Model, LlamaModel, ...); a property, so not a second submodule."""
        return self.hf.transformer if self.gpt2 else self.hf.model

    @property
    def layers(self):
        return self.base.h if self.gpt2 else self.base.layers

    @property
    def device(self) -> torch.device:
        return self.hf.lm_head.weight.device

    def forward(self, tokens, attention_mask=None):
        from benchmark.graph.circuit import run_circuit
        return run_circuit(self, tokens, attention_mask=attention_mask)

    # --- the graph's blocks ---------------------------------------------------------------

    def embed(self, tokens):
        if self.gpt2:  # HF: wte(ids) + wpe(arange(S)), whatever the attention mask
            positions = torch.arange(tokens.shape[1], device=tokens.device)[None]
            return (self.base.wte(tokens) + self.base.wpe(positions),)
        return (self.base.embed_tokens(tokens),)

    def attention(self, layer, q_in, k_in, v_in, attention_mask=None, **_):
        """Every head of one layer from its own q/k/v inputs [H, B, S, D]: outputs [H, B, S, D]."""
        block, attn = self.layers[layer], self._attn(layer)
        norm = block.ln_1 if self.gpt2 else block.input_layernorm
        q, k, v = self._qkv(attn, norm(q_in), norm(k_in), norm(v_in))  # [H, B, S, hd]
        if self._rope is not None:
            positions = torch.arange(q.shape[2], device=q.device)[None]
            cos, sin = self.base.rotary_emb(v, positions)  # [1, S, hd]
            q, k = self._rope(q, k, cos, sin, unsqueeze_dim=0)
        scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) * attn.scaling
        scores = scores + self._additive_mask(layer, q.shape[2], attention_mask, q.device)
        pattern = torch.softmax(scores, dim=-1).to(v.dtype)
        return self._out(attn, torch.matmul(pattern, v))

    def mlp(self, layer, x):
        block = self.layers[layer]
        if self.gpt2:
            return block.mlp(block.ln_2(x))
        return block.mlp(block.post_attention_layernorm(x))

    def unembed(self, x, answer_pos=None, **_):
        """Final norm, then the LM head: logits [B, S, vocab]; with `answer_pos` [B] only each
        example's answer position, as outputs [B, 2, vocab] whose row 0 is a zero stand-in for
        BOS (every metric skips position 0), so tracr's metrics read exactly the answer."""
        norm = self.base.ln_f if self.gpt2 else self.base.norm
        if answer_pos is None:
            return self.hf.lm_head(norm(x))
        last = x[torch.arange(len(x), device=x.device), answer_pos.to(x.device)]
        logits = self.hf.lm_head(norm(last))
        return torch.stack([torch.zeros_like(logits), logits], dim=1)

    # --- pieces -----------------------------------------------------------------------------

    def _attn(self, layer):
        return self.layers[layer].attn if self.gpt2 else self.layers[layer].self_attn

    def _qkv(self, attn, xq, xk, xv):
        """Each head's projections of its own inputs, with that head's rows of the weights."""
        h, kv, hd = self.n_heads, self.n_kv_heads, self.head_dim
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

    def _out(self, attn, z):
        """Head h's output: z_h times its slice of the output projection, plus bias / H."""
        h, hd = self.n_heads, self.head_dim
        if self.gpt2:  # Conv1D: weight [H * hd, D]
            proj = attn.c_proj
            out = torch.einsum("hbsk,hkd->hbsd", z, proj.weight.view(h, hd, -1))
        else:  # Linear: weight [D, H * hd]
            proj = attn.o_proj
            out = torch.einsum("hbsk,dhk->hbsd", z, proj.weight.view(-1, h, hd))
        return out if proj.bias is None else out + proj.bias / h

    def _window(self, layer) -> int | None:
        """The sliding window of a layer, as the HF model masks it (Mistral: every layer;
        Qwen2: the layers `layer_types` marks sliding)."""
        cfg = self.hf.config
        if self.model_type == "mistral":
            return cfg.sliding_window
        if self.model_type == "qwen2" and cfg.layer_types[layer] == "sliding_attention":
            return cfg.sliding_window
        return None

    def _additive_mask(self, layer, s, attention_mask, device) -> torch.Tensor:
        """HF's eager mask [B or 1, S, S]: 0 where a query may attend, finfo(float32).min not."""
        i = torch.arange(s, device=device)
        allowed = i[None, :] <= i[:, None]  # key <= query
        window = self._window(layer)
        if window is not None:
            allowed = allowed & (i[None, :] > i[:, None] - window)
        allowed = allowed[None]
        if attention_mask is not None:
            if attention_mask.dim() != 2:
                raise ValueError("attention_mask must be [batch, seq] (1 = token, 0 = padding)")
            allowed = allowed & attention_mask.to(device=device, dtype=torch.bool)[:, None, :]
        zero = torch.zeros((), device=device)
        return torch.where(allowed, zero, torch.finfo(torch.float32).min)


class PromptLM(LMGraphModel):
    """An LM read at each prompt's answer position: right-padded prompts, one pad id.

    The padding and the answer position (the last real token) are functions of the tokens, so
    every run of a batch, a method's partial re-runs included, derives the same context from
    them (`context`). Right padding keeps HF's positions (arange) and, under the causal mask, no
    real token sees a pad: the answer's logits equal `model(ids, attention_mask).logits` there.
    """

    def __init__(self, hf_model, pad_id: int):
        super().__init__(hf_model)
        self.pad_id = int(pad_id)

    def context(self, tokens: torch.Tensor) -> dict:
        real = (tokens != self.pad_id).long()
        return {"attention_mask": real, "answer_pos": real.sum(1) - 1}

    def readout_positions(self, tokens: torch.Tensor) -> torch.Tensor:
        """Only each prompt's answer position is read (`unembed` with `answer_pos`)."""
        read = torch.zeros(tokens.shape, dtype=torch.bool, device=tokens.device)
        rows = torch.arange(len(tokens), device=tokens.device)
        read[rows, self.context(tokens)["answer_pos"].to(tokens.device)] = True
        return read


def _project(x: torch.Tensor, linear, n: int) -> torch.Tensor:
    """x [G, R, B, S, D] through group g's rows of `linear` (weight [G*hd, D]): [G, R, B, S, hd]."""
    w = linear.weight.view(n, -1, linear.weight.shape[-1])  # [G, hd, D]
    out = torch.einsum("grbsd,gkd->grbsk", x, w)
    if linear.bias is not None:
        out = out + linear.bias.view(n, 1, 1, 1, -1)
    return out
