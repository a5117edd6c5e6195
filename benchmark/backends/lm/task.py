"""A prompt task on a language model (`ioi@tiny_gpt2`), with the interface of a tracr Task.

The model is read at each prompt's answer position (benchmark.backends.lm.model.PromptLM), so its
outputs are [B, 2, vocab] with the answer's next-token logits in row 1: the categorical
metrics every method and the scorer already use (KL(full || circuit), the full model's answer's
log-probability, agreement) then measure exactly the answer position. There is no ground-truth
circuit; where a paper reports one for the model (IOI on GPT-2 small), it is the `published`
convention, a set of heads (tasks/prompts/ioi_circuit.py). The task's own measure (IOI logit difference, Greater-Than
probability gap, gendered-pronoun logit difference) is reported as circuit / full.

Where the model comes from (trained here and cached, or pretrained): benchmark.backends.lm.models.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import torch

from benchmark.backends.lm.metrics import greater_than_per_example, logit_diff_per_example
from benchmark.backends.lm.models import (
    declaring_modules,
    lm_model_key,
    load_tokenizer,
    local_copies,
    model_source,
)
from benchmark.backends.lm.prompts import draw_prompts, encode, prompt_checker
from benchmark.core.fingerprint import code_key
from benchmark.core.registry import LM_MODELS, PROMPT_TASKS
from benchmark.graph.data import Split, TaskData
from benchmark.graph.graph import Graph
from benchmark.core.task_names import lm_task_name, parts


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


def lm_task_key(name: str) -> str:
    """The key of an LM task: the prompt task's code, this module's, the model's key (a
    pretrained model's spec and local copy: another copy reruns the task's chain)."""
    return _lm_task_key(name, local_copies().get(split_name(name)[1].name))


@lru_cache(maxsize=None)
def _lm_task_key(name: str, local_copy: str | None) -> str:
    spec, lm = split_name(name)
    fields = {"code": code_key("benchmark.backends.lm.task", *declaring_modules(PROMPT_TASKS, [spec.name])),
              "model": lm_model_key(lm.name) if lm.trained_here else [repr(lm), local_copy]}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


def load_lm_task(name: str, *, cache: str | Path | None = None, device: str = "cpu") -> "LMTask":
    spec, lm = split_name(name)
    source, report = model_source(lm.name, cache)
    return LMTask(name, spec, lm, source, load_tokenizer(lm.name, source), report, device)


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

    node_conventions: tuple = ()  # no node-level ground truth on a language model

    def node_ground_truth(self, convention: str) -> frozenset[str]:
        raise KeyError(f"{self.name} has no node-level ground truth (a language model)")

    def ground_truth(self, convention: str) -> frozenset[str]:
        """The published circuit's heads (node names such as `a9.h9`)."""
        if convention not in self.conventions:
            raise KeyError(f"{self.name} has no {convention!r} ground truth; it has: "
                           f"{', '.join(self.conventions) or 'none'}")
        return self._published

    @property
    def model(self):
        if self._model is None:
            from benchmark.backends.lm.load import load_lm
            from benchmark.backends.lm.model import PromptLM
            hf = load_lm(self.source, device=str(self._device), dtype=self.lm.dtype).hf
            self._model = PromptLM(hf, self.pad_id)
            self._model._graph = self.graph  # the one graph (same layers, heads, writers)
        return self._model

    def shard(self, device) -> None:
        """Load the model sharded over the ranks of a distributed discovery, each rank reading
        only its share of the weights onto `device` (benchmark.backends.lm.sharded)."""
        from benchmark.backends.lm.model import PromptLM
        from benchmark.backends.lm.sharded import load_sharded
        self._device = torch.device(device)
        self._model = load_sharded(self.source, self._device, self.lm.dtype,
                                   lambda hf: PromptLM(hf, self.pad_id))
        self._model._graph = self.graph

    @property
    def device(self) -> torch.device:
        return self._device

    def to(self, device) -> "LMTask":
        self._device = torch.device(device)
        if self._model is not None:
            self._model.hf.to(self._device)
        return self

    family = "language model"  # no ground truth: faithfulness and cost only

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
        return float(self._measure(outputs, split).mean())

    def objective(self, full: torch.Tensor, circuit: torch.Tensor, split: Split) -> torch.Tensor:
        """The task's own measure as a loss per example [B] for methods (benchmark.protocol's
        Problem.objective): its value on the full model minus that on the circuit, 0 for the
        full circuit, lower when the circuit keeps more of the measure."""
        return self._measure(full, split) - self._measure(circuit, split)

    def _measure(self, outputs: torch.Tensor, split: Split) -> torch.Tensor:
        """The task's own measure per example [B] (float64)."""
        pos = torch.ones(len(outputs), dtype=torch.long, device=outputs.device)
        if self.spec.metric == "greater_than":
            years = self.tokenizer.convert_tokens_to_ids([f"{y:02d}" for y in range(100)])
            return greater_than_per_example(outputs, pos, split.rival, torch.tensor(years))
        return logit_diff_per_example(outputs, pos, split.answer, split.rival)

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

