"""Where a language model comes from: trained here and cached, or pretrained.

Models trained here are cached under `<cache>/models/<name>-<key>`: the key covers the model's
spec, the training code, the prompt tasks it trains on and the torch/transformers versions, so
a change retrains it, and nothing else does. Every load checks the saved files against the
manifest of their hashes written with them: a damaged or edited model is trained again, never
used. A pretrained model loads from its local copy when the config's `pretrained` field names
one (handed to every job as $CIRCUITBENCH_PRETRAINED), else from the Hugging Face cache or hub.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from functools import lru_cache
from pathlib import Path

import torch

from benchmark.core.artifact import ArtifactError
from benchmark.core.fingerprint import code_key
from benchmark.core.provenance import MODEL_PACKAGES, package_versions
from benchmark.core.registry import LM_MODELS, PROMPT_TASKS

PRETRAINED_ENV = "CIRCUITBENCH_PRETRAINED"


class SetupError(ValueError, SystemExit):
    """A model that cannot be had as set up (offline without a local copy, a wrong `pretrained`
    entry): a ValueError to callers; uncaught, as in a workflow job, it ends the process with
    its one line, no traceback."""

    def __init__(self, message: str):
        super().__init__(message)
        self.code = f"error: {message}"


def declaring_modules(registry, names) -> list[str]:
    """The modules declaring `names` (and the module of each one's sampler)."""
    out = []
    for n in names:
        obj = registry.get(n)
        out += [m for m in (registry.module_of(n), getattr(obj, "sample", None) and
                            obj.sample.__module__) if m]
    return out


def local_copies() -> dict:
    """{pretrained model: directory} from $CIRCUITBENCH_PRETRAINED (the config's `pretrained`
    field): local copies loaded instead of the hub name. Unknown names list the known ones."""
    text = os.environ.get(PRETRAINED_ENV, "").strip()
    try:
        copies = json.loads(text) if text else {}
    except ValueError as err:
        raise SetupError(f"${PRETRAINED_ENV} is not JSON ({err})") from None
    if not isinstance(copies, dict) or not all(isinstance(v, str) for v in copies.values()):
        raise SetupError("config field `pretrained`: expected {model name: directory}, got "
                         f"{copies!r}")
    known = [m for m in LM_MODELS.names() if not LM_MODELS.get(m).trained_here]
    for name in copies:
        if name not in known:
            raise SetupError(f"config field `pretrained`: {name!r} is not a pretrained model; "
                             f"known: {', '.join(known)}")
    return copies


def lm_model_key(model: str) -> str:
    """What decides a trained model: its spec, the training code, the code of the prompt tasks
    it trains on, the package versions, the CPU kernels (benchmark/core/numerics.py); for a
    pretrained one, its local copy too."""
    return _lm_model_key(model, local_copies().get(model))


@lru_cache(maxsize=None)
def _lm_model_key(model: str, local_copy: str | None) -> str:
    from benchmark.core.numerics import kernel_mode
    lm = LM_MODELS.get(model)
    fields = {"spec": repr(lm), "versions": package_versions(MODEL_PACKAGES),
              "kernels": kernel_mode(),
              "code": code_key("benchmark.backends.lm.train", *declaring_modules(LM_MODELS, [model]),
                               *declaring_modules(PROMPT_TASKS, sorted(set(lm.train_tasks))))}
    if local_copy is not None:
        fields["local_copy"] = local_copy
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


def model_dir(model: str, cache: str | Path | None = None) -> Path:
    from benchmark.core.paths import cache_dir
    root = Path(cache) if cache else cache_dir()
    return root / "models" / f"{model}-{lm_model_key(model)}"


def train_model(model: str, cache: str | Path | None = None, log=print) -> dict:
    """Train a local model (one torch thread: the same bits on every run) and cache it whole;
    returns its report. A model whose held-out accuracy misses its bar fails loudly."""
    from benchmark.backends.lm.train import save_trained, train
    lm = LM_MODELS.get(model)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        hf, tok, report = train([PROMPT_TASKS.get(t) for t in lm.train_tasks], lm.family,
                                steps=lm.steps, batch_size=lm.batch_size, lr=lm.lr,
                                seed=lm.seed, min_accuracy=lm.min_accuracy,
                                min_corruption_kl=lm.min_corruption_kl,
                                weight_decay=lm.weight_decay, log=log,
                                n_layer=lm.n_layer, d_model=lm.d_model, n_head=lm.n_head,
                                dropout=lm.dropout, init_std=lm.init_std)
    finally:
        torch.set_num_threads(threads)
    report.update(model=model, key=lm_model_key(model))
    save_trained(hf, tok, report, str(model_dir(model, cache)))
    return report


def verified_report(path: Path) -> dict:
    """The report of a model saved by save_trained whose every file still has the hash its
    manifest recorded (one hashing pass, no model load); an ArtifactError naming the file
    otherwise."""
    from benchmark.backends.lm.train import MANIFEST, file_hashes
    try:
        expected = json.loads((path / MANIFEST).read_text())["files"]
        found = file_hashes(str(path))
        if not isinstance(expected, dict) or "report.json" not in expected:
            raise ValueError("lists no report.json")
    except (OSError, ValueError, KeyError, TypeError) as err:
        name = Path(getattr(err, "filename", None) or MANIFEST).name
        raise ArtifactError(f"model cache {path}: {name} is missing or unreadable "
                            f"({type(err).__name__})") from None
    for name in sorted(set(expected) | set(found)):
        if found.get(name) != expected.get(name):
            why = ("is missing" if name not in found else "was not saved with the model"
                   if name not in expected else "does not match its fingerprint (edited or "
                   "damaged after it was saved)")
            raise ArtifactError(f"model cache {path}: {name} {why}")
    return json.loads((path / "report.json").read_text())


def _in_hf_cache(name: str) -> bool:
    from huggingface_hub import try_to_load_from_cache
    try:
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except ValueError:  # not a hub name (e.g. a path that does not exist)
        return False


def pretrained_source(lm) -> str:
    """What from_pretrained loads for a pretrained model: its local copy, else its name; one
    line saying what to do when there is neither a copy nor a way to download."""
    from benchmark.backends.lm.load import _offline
    copy = local_copies().get(lm.name)
    if copy is not None:
        if not os.path.isfile(os.path.join(copy, "config.json")):
            raise SetupError(f"model {lm.name!r}: config field `pretrained` points at {copy!r}, "
                             "which is not a directory written by save_pretrained (no "
                             "config.json); correct the path or remove the entry")
        return copy
    if os.path.isdir(lm.pretrained) or not _offline() or _in_hf_cache(lm.pretrained):
        return lm.pretrained
    raise SetupError(f"model {lm.name!r}: {lm.pretrained!r} is not in the local Hugging Face "
                     "cache and nothing downloads here (HF_HUB_OFFLINE); point the config field "
                     f"`pretrained: {{{lm.name}: <dir>}}` at a directory written by "
                     f"save_pretrained (outside the workflow: ${PRETRAINED_ENV}='{{\"{lm.name}\""
                     ": \"<dir>\"}'), or download it into the Hugging Face cache first")


def model_source(model: str, cache: str | Path | None = None) -> tuple[str, dict]:
    """(what from_pretrained loads, report) of `model`; a local model is trained first when
    the cache lacks it or holds it damaged (a warning naming the file: never used)."""
    lm = LM_MODELS.get(model)
    if not lm.trained_here:
        source = pretrained_source(lm)
        report = {"model": model, "pretrained": lm.pretrained}
        return source, report if source == lm.pretrained else dict(report, local_copy=source)
    path = model_dir(model, cache)
    if path.exists():
        try:
            return str(path), verified_report(path)
        except ArtifactError as err:  # damaged or edited: never used, trained again
            print(f"warning: {err}; training it again", file=sys.stderr)
    train_model(model, cache)
    return str(path), json.loads((path / "report.json").read_text())


def load_model(model: str, cache: str | Path | None = None, device: str = "cpu"):
    """(HF model, tokenizer, report) of `model`: trained here and cached, or from_pretrained."""
    source, report = model_source(model, cache)
    lm = LM_MODELS.get(model)
    from benchmark.backends.lm.load import load_lm
    return load_lm(source, device=device, dtype=lm.dtype).hf, load_tokenizer(model, source), report


def load_tokenizer(model: str, source: str):
    from transformers import AutoTokenizer
    try:
        return AutoTokenizer.from_pretrained(source)
    except OSError as err:
        raise ValueError(f"model {model!r}: no tokenizer at {source!r} ({err})") from None
