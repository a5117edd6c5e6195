"""`load_lm`: a transformers causal LM (instance, local directory or hub name) as a graph model.

Errors are one line each and say what to do: a name that cannot be found (offline: nothing can
be downloaded here, so point at a local copy), a path that is not a model, or an architecture
this backend does not run (with the list of those it does).
"""
from __future__ import annotations

import os

import torch

from benchmark.backends.lm.model import (
    SUPPORTED,
    LMGraphModel,
    check_supported,
    unsupported_message,
)
from benchmark.core.devices import cuda_device_count


def load_lm(name_or_path_or_model, device: str = "auto",
            dtype: str | torch.dtype = "float32") -> LMGraphModel:
    """An `LMGraphModel` on `device` ("auto": cuda when available) in `dtype`.

    Accepts a loaded HF model (moved and cast in place; its weights are used, not copied), a
    local directory (as written by `save_pretrained`) or a hub name as `from_pretrained` takes
    it (e.g. "gpt2", from the local HF cache when offline).
    """
    torch_dtype = getattr(torch, dtype, None) if isinstance(dtype, str) else dtype
    if not isinstance(torch_dtype, torch.dtype):
        raise ValueError(f"load_lm: unknown dtype {dtype!r} (e.g. 'float32', 'bfloat16')")
    if isinstance(name_or_path_or_model, torch.nn.Module):
        hf = name_or_path_or_model
        check_supported(hf)
    else:
        hf = _from_pretrained(str(name_or_path_or_model), torch_dtype)
    device = ("cuda" if cuda_device_count() else "cpu") if device == "auto" else device
    return LMGraphModel(hf.to(device=device, dtype=torch_dtype))


def import_architectures() -> None:
    """Import the modeling code of every supported architecture (seconds of transformers
    imports), e.g. in a parent process whose forked children then load models at once."""
    import importlib
    for model_type in SUPPORTED:
        importlib.import_module(f"transformers.models.{model_type}.modeling_{model_type}")


def _from_pretrained(name: str, dtype: torch.dtype):
    """The config first (an unsupported architecture fails before any weights load)."""
    from transformers import AutoModelForCausalLM
    config = _config(name)
    if config.model_type not in SUPPORTED:
        archs = ", ".join(getattr(config, "architectures", None) or []) or "?"
        raise ValueError(unsupported_message(f"{name!r}: {archs} ({config.model_type})"))
    model = AutoModelForCausalLM.from_pretrained(name, config=config, dtype=dtype)
    check_supported(model)
    return model


def _config(name: str):
    from transformers import AutoConfig
    if os.path.exists(name) and not os.path.isfile(os.path.join(name, "config.json")):
        raise ValueError(f"load_lm: {name!r} is a path but not a model directory (no "
                         "config.json); point at a directory written by save_pretrained")
    try:
        return AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as e:
        if os.path.exists(name):  # a config.json transformers cannot read
            raise ValueError(f"load_lm: {name!r} holds no model transformers can read "
                             f"({_first_line(e)})") from None
        if _offline():
            raise ValueError(
                f"load_lm: {name!r} is not a local directory nor in the local Hugging Face "
                "cache, and nothing can be downloaded here (HF_HUB_OFFLINE); pass a directory "
                "written by model.save_pretrained(dir), or a loaded model") from None
        raise ValueError(f"load_lm: {name!r} is neither a local model directory nor a model "
                         f"on the Hugging Face hub ({_first_line(e)})") from None


def _offline() -> bool:
    from huggingface_hub import constants
    flags = (os.environ.get(v, "").lower() for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return bool(constants.HF_HUB_OFFLINE) or any(f in ("1", "true", "yes", "on") for f in flags)


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
