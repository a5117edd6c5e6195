"""Load a language model sharded over the ranks of a distributed discovery, never whole.

A model that needs several devices cannot be loaded whole on any one of them and then sharded.
Here every rank builds the model on the meta device (no memory), makes its attention and MLP
blocks FSDP units (benchmark.graph.ranks.shard_model), and then reads from the checkpoint's
safetensors files only its own rows of each sharded weight (and all of the small rest: the
embeddings, norms and head), straight onto its device (benchmark.graph.ranks.materialize).
Buffers the checkpoint does not hold (rotary frequencies) are computed from the config.
"""
from __future__ import annotations

import glob
import os

import torch

from benchmark.backends.lm.load import _config, _offline
from benchmark.backends.lm.model import SUPPORTED, check_supported, unsupported_message
from benchmark.graph.ranks import materialize, shard_model


def load_sharded(source: str, device, dtype: str, wrap):
    """`wrap(hf_model)` (an LMGraphModel, e.g. a PromptLM) of the checkpoint at `source` (a
    directory or a hub name), its blocks sharded over the ranks, each rank's share on `device`."""
    from transformers import AutoModelForCausalLM
    config = _config(source)
    if config.model_type not in SUPPORTED:
        raise ValueError(unsupported_message(f"{source!r} ({config.model_type})"))
    with torch.device("meta"):
        hf = AutoModelForCausalLM.from_config(config).to(getattr(torch, dtype))
    check_supported(hf)
    model = wrap(hf)
    shard_model(model, device)
    materialize(model, device, _Checkpoint(source, model, config))
    return model


class _Checkpoint:
    """`materialize`'s fill: rows of a tensor from the safetensors files (read lazily, only
    the rows asked for), or a buffer computed from the config."""

    def __init__(self, source: str, model, config):
        from safetensors import safe_open
        files = sorted(glob.glob(os.path.join(_directory(source), "*.safetensors")))
        if not files:
            raise ValueError(f"load_sharded: {source!r} has no .safetensors files; a sharded "
                             "load reads each rank's rows from them (save the model with "
                             "save_pretrained(..., safe_serialization=True))")
        self.where = {}
        for path in files:
            with safe_open(path, framework="pt") as f:
                self.where.update({key: path for key in f.keys()})
        self.tied = bool(getattr(config, "tie_word_embeddings", False))
        self.buffers = computed_buffers(model, config)

    def __call__(self, name: str, shape: tuple, rows: slice) -> torch.Tensor:
        if name in self.buffers:
            return self.buffers[name][rows]
        key = self._key(name)
        from safetensors import safe_open
        with safe_open(self.where[key], framework="pt") as f:
            part = f.get_slice(key)
            if tuple(part.get_shape()) != shape:
                raise ValueError(f"load_sharded: {key} has shape {part.get_shape()} in the "
                                 f"checkpoint, the model expects {list(shape)}")
            return part[rows] if shape else f.get_tensor(key)

    def _key(self, name: str) -> str:
        """The checkpoint's key of a parameter: its HF name ('hf.' dropped), or without the
        base model's prefix (GPT-2's hub files say `h.0...`, not `transformer.h.0...`)."""
        hf_name = name.removeprefix("hf.")
        tails = [hf_name, hf_name.split(".", 1)[-1]]
        if self.tied and hf_name == "lm_head.weight":
            tails += ["model.embed_tokens.weight", "transformer.wte.weight", "wte.weight"]
        for key in tails:
            if key in self.where:
                return key
        raise ValueError(f"load_sharded: the checkpoint has no tensor for {hf_name}")


def computed_buffers(model, config) -> dict:
    """The model's buffers that checkpoints do not hold, computed on the CPU from the config:
    the rotary embedding's frequencies (Llama family)."""
    out = {}
    for name, module in model.named_modules():
        if name.endswith("rotary_emb"):
            real = type(module)(config=config)
            out.update({f"{name}.{k}": v for k, v in real.named_buffers()})
    return out


def _directory(source: str) -> str:
    if os.path.isdir(source):
        return source
    from huggingface_hub import snapshot_download  # a hub name: its files, cached or fetched
    return snapshot_download(source, allow_patterns=["*.safetensors", "*.json"],
                             local_files_only=_offline())
