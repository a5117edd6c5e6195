"""The method protocol: what an adapter is given, what it returns, and how its cost is counted.

An adapter sees a `Problem` (the model with its graph, the discovery split, the ablation, the
task's losses, a seed and a device) and nothing else: no task object, no evaluation split and no
ground truth. It returns a `Discovery`: a score per edge or a binary circuit, plus counters.
Adapters run the model through `Problem.forward` and `Problem.backward` so that forward and
backward passes are counted the same way for every method.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch

from benchmark.graph.circuit import ablated_outputs, run_circuit
from benchmark.graph.data import Split
from benchmark.graph.graph import Graph
from benchmark.graph.metrics import answer_nll, faithfulness

OutputType = Literal["scores", "circuit"]


@dataclass
class Counters:
    forward_passes: int = 0        # calls of the model over a batch (partial re-runs included)
    forward_examples: int = 0      # examples through those calls
    backward_passes: int = 0
    wall_seconds: float = 0.0

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Problem:
    model: Any                     # a benchmark.graph.model.GraphModel
    graph: Graph
    data: Split                    # the discovery split only
    ablation: str                  # "zero", "resample" or "mean"
    output_kind: str               # "categorical" (KL metric) or "numerical" (MSE metric)
    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    batch_size: int = 100_000      # examples per forward; methods may split the data
    counters: Counters = field(default_factory=Counters)
    # True when the task's program is undefined at some positions: the losses skip them
    partial: bool = False

    # --- running the model -------------------------------------------------------------
    def forward(self, tokens, mask=None, ablated=None, **kwargs) -> torch.Tensor:
        self.counters.forward_passes += 1
        self.counters.forward_examples += int(tokens.shape[0])
        return run_circuit(self.model, tokens, mask, ablated, **kwargs)

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        self.counters.backward_passes += 1
        loss.backward(**kwargs)

    def grad(self, loss: torch.Tensor, inputs) -> tuple:
        """torch.autograd.grad of `loss`, counted as one backward pass."""
        self.counters.backward_passes += 1
        return torch.autograd.grad(loss, inputs)

    def count_forward(self, examples: int) -> None:
        """Count a forward that a method computes itself (e.g. ACDC's partial re-runs)."""
        self.counters.forward_passes += 1
        self.counters.forward_examples += int(examples)

    def ablated(self, split: Split) -> torch.Tensor | None:
        """What removed edges carry on this batch under the problem's ablation.

        Mean ablation averages over the whole discovery split, not the batch."""
        with torch.no_grad():
            if self.ablation == "mean":
                if getattr(self, "_mean", None) is None:
                    self.counters.forward_passes += 1
                    self.counters.forward_examples += len(self.data)
                    self._mean = ablated_outputs(self.model, "mean", self.data.clean)
                return self._mean
            if self.ablation == "resample":
                self.counters.forward_passes += 1
                self.counters.forward_examples += len(split)
            return ablated_outputs(self.model, self.ablation, split.clean, split.corrupted)

    # --- the task's losses ---------------------------------------------------------------
    def metric(self, full: torch.Tensor, circuit: torch.Tensor) -> torch.Tensor:
        """The faithfulness metric: KL(full || circuit) (categorical) or MSE (numerical)."""
        return faithfulness(full, circuit, self.output_kind, self.partial)

    def task_loss(self, full: torch.Tensor, circuit: torch.Tensor) -> torch.Tensor:
        """A loss with a non-zero gradient at the clean run, for gradient-attribution methods:
        the negative log-probability of the full model's answer (categorical), or the mean
        output value (numerical; its gradient is what an edge does to the output)."""
        if self.output_kind == "categorical":
            return answer_nll(full, circuit, self.partial)
        return circuit[:, 1:, 0].mean()

    def batches(self):
        return self.data.batches(self.batch_size)


@dataclass
class Discovery:
    """What an adapter returns. Exactly one of `scores` (every edge) or `circuit` is set."""

    kind: OutputType
    scores: dict[str, float] | None = None
    circuit: frozenset[str] | None = None
    counters: Counters = field(default_factory=Counters)
    info: dict = field(default_factory=dict)  # e.g. the sparsity Edge Pruning reached

    def check(self, graph: Graph) -> "Discovery":
        """Fail loudly on output that does not fit the graph."""
        if self.kind == "scores":
            if self.scores is None or set(self.scores) != set(graph.edges):
                missing = set(graph.edges) - set(self.scores or {})
                extra = set(self.scores or {}) - set(graph.edges)
                raise ValueError(f"scores must cover exactly the graph's {graph.n_edges} edges; "
                                 f"missing {sorted(missing)[:3]}, extra {sorted(extra)[:3]}")
            bad = [e for e, v in self.scores.items() if not _finite(v)]
            if bad:
                raise ValueError(f"non-finite scores for {len(bad)} edges, e.g. {bad[:3]}")
            self.scores = {e: float(v) for e, v in self.scores.items()}  # numpy floats too
        elif self.kind == "circuit":
            extra = set(self.circuit or ()) - set(graph.edges)
            if self.circuit is None or extra:
                raise ValueError(f"circuit edges not in the graph: {sorted(extra)[:3]}")
        else:
            raise ValueError(f"discovery kind must be 'scores' or 'circuit', got {self.kind!r}")
        return self


def _finite(v) -> bool:
    return (isinstance(v, numbers.Real) and not isinstance(v, bool)
            and math.isfinite(float(v)))


def param(default, *, minimum=None, exclusive_minimum=None, maximum=None, choices=None):
    """A hyper-parameter with its range, declared where it is defined, e.g.
    `threshold: float = param(0.01, minimum=0)`. Values are also checked for their type (that of
    the default; bools are not numbers, ints are floats) and, for numbers, for being finite."""
    limits = {"minimum": minimum, "exclusive_minimum": exclusive_minimum, "maximum": maximum,
              "choices": tuple(choices) if choices is not None else None}
    return field(default=default, metadata={"limits": limits})


def check_param(method: str, f: dataclasses.Field, value):
    """`value` for parameter `f`, or a ValueError that names the parameter and what it takes."""
    default = f.default
    where = f"method {method!r}: parameter {f.name}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{where} expects true or false, got {value!r}")
    elif isinstance(default, numbers.Real):
        want_int = isinstance(default, int)
        ok = isinstance(value, numbers.Integral) if want_int else isinstance(value, numbers.Real)
        if isinstance(value, bool) or not ok:
            raise ValueError(f"{where} expects {'an integer' if want_int else 'a number'}, "
                             f"got {value!r}")
        if not math.isfinite(float(value)):
            raise ValueError(f"{where} must be finite, got {value!r}")
        value = int(value) if want_int else float(value)
    elif isinstance(default, str) and not isinstance(value, str):
        raise ValueError(f"{where} expects a string, got {value!r}")
    lim = f.metadata.get("limits", {})
    if lim.get("minimum") is not None and value < lim["minimum"]:
        raise ValueError(f"{where} must be >= {lim['minimum']}, got {value!r}")
    if lim.get("exclusive_minimum") is not None and value <= lim["exclusive_minimum"]:
        raise ValueError(f"{where} must be > {lim['exclusive_minimum']}, got {value!r}")
    if lim.get("maximum") is not None and value > lim["maximum"]:
        raise ValueError(f"{where} must be <= {lim['maximum']}, got {value!r}")
    if lim.get("choices") is not None and value not in lim["choices"]:
        raise ValueError(f"{where} must be one of {list(lim['choices'])}, got {value!r}")
    return value


class Adapter:
    """Base class of method adapters.

    Subclasses set `name`, `version`, `output` ("scores" or "circuit"), a frozen dataclass
    `Params` of hyper-parameters (the sweep axes, with defaults), and implement `discover`.
    """

    name: ClassVar[str]
    version: ClassVar[str]
    output: ClassVar[OutputType]
    Params: ClassVar[type]
    # Per-task defaults where one setting does not fit every task (e.g. Edge Pruning's published
    # Tracr settings): {task name: {param: value}}. Explicit values override them.
    presets: ClassVar[dict] = {}

    def discover(self, problem: Problem, params) -> Discovery:
        raise NotImplementedError

    # -- helpers for callers --------------------------------------------------------------
    @classmethod
    def params(cls, task: str | None = None, **values):
        """Params from keyword values (strings are converted) over the task's preset; unknown
        keys, wrong types and values out of range raise ValueError naming the parameter."""
        values = {**cls.presets.get(task, {}), **values}
        fields = {f.name: f for f in dataclasses.fields(cls.Params)}
        unknown = set(values) - set(fields)
        if unknown:
            raise ValueError(f"method {cls.name!r} has no parameter(s) {sorted(unknown)}; "
                             f"known: {', '.join(fields) or '(none)'}")
        converted = {k: check_param(cls.name, fields[k], _convert(v, fields[k], cls.name))
                     for k, v in values.items()}
        return cls.Params(**converted)

    @classmethod
    def check_device(cls, params, device: str) -> None:
        """Raise ValueError when `params` cannot run on `device` (e.g. a dtype it lacks):
        called when a config is planned, before any job runs."""

    def run(self, problem: Problem, params) -> Discovery:
        """discover() with wall time measured and the output checked against the graph."""
        torch.manual_seed(problem.seed)
        start = time.perf_counter()
        result = self.discover(problem, params)
        problem.counters.wall_seconds = time.perf_counter() - start
        result.counters = problem.counters
        return result.check(problem.graph)


def _convert(value, f: dataclasses.Field, method: str):
    if not isinstance(value, str):
        return value
    default = f.default if f.default is not dataclasses.MISSING else None
    target = type(default) if default is not None else str
    try:
        if target is bool:
            if value.lower() in ("1", "true", "yes"):
                return True
            if value.lower() in ("0", "false", "no"):
                return False
            raise ValueError(value)
        return target(value)
    except ValueError:
        raise ValueError(f"method {method!r}: parameter {f.name} expects "
                         f"{target.__name__}, got {value!r}") from None
