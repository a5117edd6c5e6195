"""A prompt task on a language model (`ioi@tiny_gpt2`), with the interface of a tracr Task.

The model is read at each prompt's answer position (benchmark.lm_model.PromptLM), so its
outputs are [B, 2, vocab] with the answer's next-token logits in row 1: the categorical
metrics every method and the scorer already use (KL(full || circuit), the full model's answer's
log-probability, agreement) then measure exactly the answer position. There is no ground-truth
circuit; where a paper reports one for the model (IOI on GPT-2 small), it is the `published`
convention, a set of heads (tasks/ioi_circuit.py). The task's own measure (IOI logit difference, Greater-Than
probability gap, gendered-pronoun logit difference) is reported as circuit / full.

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
from importlib.metadata import version as package_version
from pathlib import Path

import torch

from benchmark.artifact import ArtifactError
from benchmark.data import Split, TaskData
from benchmark.fingerprint import code_key
from benchmark.graph import Graph
from benchmark.lm_metrics import greater_than, logit_diff
from benchmark.prompts import draw_prompts, encode, prompt_checker
from benchmark.registry import LM_MODELS, PROMPT_TASKS
from benchmark.task_names import lm_task_name, parts

VERSIONS = ("torch", "transformers", "tokenizers")
PRETRAINED_ENV = "CIRCUITBENCH_PRETRAINED"


class SetupError(ValueError, SystemExit):
    """A model that cannot be had as set up (offline without a local copy, a wrong `pretrained`
    entry): a ValueError to callers; uncaught, as in a workflow job, it ends the process with
    its one line, no traceback."""

    def __init__(self, message: str):
        super().__init__(message)
        self.code = f"error: {message}"


def split_name(name: str):
    """(prompt task spec, model spec) of `<prompt task>@<model>`, or a ValueError naming the
    known ones."""
    prompt, model = parts(name)
    spec, lm = PROMPT_TASKS.get(prompt), LM_MODELS.get(model or "")  # unknown: lists the known
    if prompt not in lm.tasks:
        raise ValueError(f"task {name!r}: model {model!r} is benchmarked on "
                         f"{', '.join(lm.tasks)}, not {prompt!r}")
    return spec, lm


def list_lm_tasks() -> list[str]:
    return sorted(lm_task_name(t, m) for m in LM_MODELS.names() for t in LM_MODELS.get(m).tasks)


def _modules(registry, names) -> list[str]:
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
    it trains on, the package versions, the CPU kernels (benchmark/numerics.py); for a
    pretrained one, its local copy too."""
    return _lm_model_key(model, local_copies().get(model))


@lru_cache(maxsize=None)
def _lm_model_key(model: str, local_copy: str | None) -> str:
    from benchmark.numerics import kernel_mode
    lm = LM_MODELS.get(model)
    fields = {"spec": repr(lm), "versions": {p: package_version(p) for p in VERSIONS},
              "kernels": kernel_mode(),
              "code": code_key("benchmark.lm_train", *_modules(LM_MODELS, [model]),
                               *_modules(PROMPT_TASKS, sorted(set(lm.train_tasks))))}
    if local_copy is not None:
        fields["local_copy"] = local_copy
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


def lm_task_key(name: str) -> str:
    """The key of an LM task: the prompt task's code, this module's, the model's key (a
    pretrained model's spec and local copy: another copy reruns the task's chain)."""
    return _lm_task_key(name, local_copies().get(split_name(name)[1].name))


@lru_cache(maxsize=None)
def _lm_task_key(name: str, local_copy: str | None) -> str:
    spec, lm = split_name(name)
    fields = {"code": code_key("benchmark.lm_task", *_modules(PROMPT_TASKS, [spec.name])),
              "model": lm_model_key(lm.name) if lm.trained_here else [repr(lm), local_copy]}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


def model_dir(model: str, cache: str | Path | None = None) -> Path:
    from benchmark.task import cache_dir
    root = Path(cache) if cache else cache_dir()
    return root / "models" / f"{model}-{lm_model_key(model)}"


def train_model(model: str, cache: str | Path | None = None, log=print) -> dict:
    """Train a local model (one torch thread: the same bits on every run) and cache it whole;
    returns its report. A model whose held-out accuracy misses its bar fails loudly."""
    from benchmark.lm_train import save_trained, train
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
    from benchmark.lm_train import MANIFEST, file_hashes
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
    from benchmark.lm_load import _offline
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
    from benchmark.lm_load import load_lm
    return load_lm(source, device=device, dtype=lm.dtype).hf, _tokenizer(model, source), report


def _tokenizer(model: str, source: str):
    from transformers import AutoTokenizer
    try:
        return AutoTokenizer.from_pretrained(source)
    except OSError as err:
        raise ValueError(f"model {model!r}: no tokenizer at {source!r} ({err})") from None


def load_lm_task(name: str, *, cache: str | Path | None = None, device: str = "cpu") -> "LMTask":
    spec, lm = split_name(name)
    source, report = model_source(lm.name, cache)
    return LMTask(name, spec, lm, source, _tokenizer(lm.name, source), report, device)


class LMTask:
    """The Task interface (model, graph, dataset, conventions, summary) for a prompt task.

    The model's weights load on first use of `model`: making datasets needs the tokenizer only
    (and `transformers`' modelling code takes seconds to import in every job)."""

    output_kind = "categorical"
    partial = False
    numerical_atol = 0.0

    def __init__(self, name, spec, lm, source, tokenizer, report, device="cpu"):
        from transformers import AutoConfig
        self.name, self.spec, self.lm = name, spec, lm
        self.tokenizer, self.report = tokenizer, report
        self.source, self._device, self._model = source, torch.device(device), None
        self.version = f"{spec.version}.{lm.version}"
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else \
            tokenizer.eos_token_id
        if pad is None:
            raise ValueError(f"{name}: the tokenizer has neither a pad nor an eos token to pad "
                             "with")
        self.pad_id = pad
        cfg = AutoConfig.from_pretrained(source)
        self.graph = Graph(cfg.num_hidden_layers, cfg.num_attention_heads, ("input",))
        # prompts per forward of a method's whole-split passes (Edge Pruning's full outputs):
        # a masked run's memory grows with the edges, 2,000 prompts for the 110-edge tiny
        # models, 8 for GPT-2 small (about 17 MB a prompt there)
        self.forward_batch = max(8, min(2000, 220_000 // self.graph.n_edges))
        self.check = prompt_checker(tokenizer, pad)
        self._published = lm.published_circuit(spec.name)
        if self._published is not None:
            unknown = self._published - set(self.graph.writers)
            if unknown:
                raise ValueError(f"{name}: the published circuit names heads this model does "
                                 f"not have: {sorted(unknown)}")
        # no ground truth on a language model; a published circuit where one exists
        self.conventions: tuple = () if self._published is None else ("published",)

    def ground_truth(self, convention: str) -> frozenset[str]:
        """The published circuit's heads (node names such as `a9.h9`)."""
        if convention not in self.conventions:
            raise KeyError(f"{self.name} has no {convention!r} ground truth; it has: "
                           f"{', '.join(self.conventions) or 'none'}")
        return self._published

    @property
    def model(self):
        if self._model is None:
            from benchmark.lm_load import load_lm
            from benchmark.lm_model import PromptLM
            hf = load_lm(self.source, device=str(self._device), dtype=self.lm.dtype).hf
            self._model = PromptLM(hf, self.pad_id)
            self._model._graph = self.graph  # the one graph (same layers, heads, writers)
        return self._model

    @property
    def device(self) -> torch.device:
        return self._device

    def to(self, device) -> "LMTask":
        self._device = torch.device(device)
        if self._model is not None:
            self._model.hf.to(self._device)
        return self

    @property
    def input_space(self) -> int:
        return self.spec.space

    def dataset(self, n: int, seed: int = 0, n_eval: int | None = None) -> TaskData:
        """Seeded prompt pairs: n for discovery, n_eval (default n) for evaluation, all distinct,
        none in both; prompts this tokenizer cannot represent are skipped and counted
        (`self.last_dropped`)."""
        n_eval = n if n_eval is None else n_eval
        dropped: dict = {}
        disc, ev = draw_prompts(self.spec, n, seed, n_eval, fits=self.check, dropped=dropped)
        self.last_dropped = dropped
        splits = []
        for prompts in (disc, ev):
            b = encode(self.tokenizer, prompts, checker=self.check)
            splits.append(Split(b.input_ids, b.corrupted_ids, b.answer, b.rival).to(self.device))
        return TaskData(self.name, seed, *splits)

    def task_metric(self, outputs: torch.Tensor, split: Split) -> float:
        """The task's own measure on answer-position outputs [B, 2, V]."""
        pos = torch.ones(len(outputs), dtype=torch.long, device=outputs.device)
        if self.spec.metric == "greater_than":
            years = self.tokenizer.convert_tokens_to_ids([f"{y:02d}" for y in range(100)])
            return float(greater_than(outputs, pos, split.rival, torch.tensor(years)))
        return float(logit_diff(outputs, pos, split.answer, split.rival))

    def extra_metrics(self, full: torch.Tensor, circuit: torch.Tensor, split: Split) -> dict:
        f, c = self.task_metric(full, split), self.task_metric(circuit, split)
        return {"task_metric": self.spec.metric, "task_metric_full": f,
                "task_metric_circuit": c, "task_metric_ratio": c / f if f else float("nan")}

    def summary(self) -> dict:
        return {"task": self.name, "task_version": self.version, "n_edges": self.graph.n_edges,
                "output_kind": self.output_kind, "model": self.lm.name,
                "prompt_space": self.spec.space, "model_report": self.report,
                "ground_truth": {c: sorted(self.ground_truth(c)) for c in self.conventions}}

    def __repr__(self):
        return (f"LMTask({self.name!r}, {self.model.n_layers} layers x {self.model.n_heads} "
                f"heads, {self.graph.n_edges} edges)")

