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

import torch

from benchmark.backends.lm.blocks import AttentionBlock, MLPBlock
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

    Each layer's heads and its MLP are modules of their own (`attn_blocks`, `mlp_blocks`,
    benchmark.backends.lm.blocks) that use the HF weights only inside their own `forward`, so
    that an engine that shards weights (FSDP gathers a unit's parameters around its forward)
    can make each of them a unit: `shard_units`. The embeddings, final norm and LM head are
    used by this root module itself.
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
        self.head_dim = self._attn(0).head_dim
        self.attn_blocks = torch.nn.ModuleList(
            AttentionBlock(self, layer) for layer in range(self.n_layers))
        self.mlp_blocks = torch.nn.ModuleList(
            MLPBlock(self.layers[layer], self.gpt2) for layer in range(self.n_layers))

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

    def shard_units(self) -> list:
        """The modules a weight-sharding engine makes units of: every layer's attention and
        MLP block (benchmark.graph.ranks.shard_model); the rest stays on every rank."""
        return [*self.attn_blocks, *self.mlp_blocks]

    # --- the graph's blocks ---------------------------------------------------------------

    def embed(self, tokens):
        if self.gpt2:  # HF: wte(ids) + wpe(arange(S)), whatever the attention mask
            positions = torch.arange(tokens.shape[1], device=tokens.device)[None]
            return (self.base.wte(tokens) + self.base.wpe(positions),)
        return (self.base.embed_tokens(tokens),)

    def attention(self, layer, q_in, k_in, v_in, attention_mask=None, **_):
        """Every head of one layer from its own q/k/v inputs [H, B, S, D]: outputs [H, B, S, D]."""
        return self.attn_blocks[layer](q_in, k_in, v_in, attention_mask=attention_mask)

    def mlp(self, layer, x):
        return self.mlp_blocks[layer](x)

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

    def _attn(self, layer):
        return self.layers[layer].attn if self.gpt2 else self.layers[layer].self_attn

    def window(self, layer) -> int | None:
        """The sliding window of a layer, as the HF model masks it (Mistral: every layer;
        Qwen2: the layers `layer_types` marks sliding)."""
        cfg = self.hf.config
        if self.model_type == "mistral":
            return cfg.sliding_window
        if self.model_type == "qwen2" and cfg.layer_types[layer] == "sliding_attention":
            return cfg.sliding_window
        return None


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
