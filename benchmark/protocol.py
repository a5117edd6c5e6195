"""The method protocol: what an adapter is given, what it returns, and how its cost is counted.

An adapter sees a `Problem` (the model with its graph, the discovery split, the ablation, the
task's losses, a seed and a device) and nothing else: no task object, no evaluation split and no
ground truth. It returns a `Discovery`: a score per edge (or node) or a binary circuit, plus
counters. Adapters run the model through `Problem.forward` and `Problem.backward` so that forward
and backward passes are counted the same way for every method.

This module is the public API of methods (`__all__`; methods/README.md says what each name is
for): a plugin in methods/ imports from here, not from the modules behind it.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Literal

import numpy as np
import torch

from benchmark.core.params import check_param, convert_param, param
from benchmark.graph.circuit import Recording, ablated_outputs, run_circuit
from benchmark.graph.circuit_files import CircuitFile, circuit_file_format, read_circuit_file
from benchmark.graph.data import Split
from benchmark.graph.graph import LEVELS, QKV, Graph, ReaderGroup
from benchmark.graph.nodes import (
    edge_mask_of_nodes,
    edges_of_nodes,
    node_mask_from_nodes,
    node_scores_of_edges,
    nodes_of_edges,
    run_nodes,
)
from benchmark.graph.metrics import answer_nll, answer_nll_per_example, faithfulness
from benchmark.graph.ranks import gather_objects, rows_of_rank, sum_gradients, sum_over_ranks
from benchmark.graph.scores import score_vector

__all__ = [
    # what an adapter is, gets and returns
    "Adapter", "Problem", "Discovery", "Counters", "param", "OutputType", "Level", "LEVELS", "Ranking",
    "Objective",
    # the graph, the data and the masked forward
    "Graph", "ReaderGroup", "QKV", "Split", "Recording", "run_circuit",
    # node-level circuits: the node-masked forward and the edge <-> node projections
    "run_nodes", "nodes_of_edges", "edges_of_nodes", "node_scores_of_edges",
    "edge_mask_of_nodes", "node_mask_from_nodes",
    # circuit files of other tools (MIB's) or of this benchmark, for methods that read one
    "CircuitFile", "circuit_file_format", "read_circuit_file",
    # a method that runs as N ranks (`distributed = True`): its share, and the reductions
    "rows_of_rank", "sum_gradients", "sum_over_ranks", "gather_objects",
]

OutputType = Literal["scores", "circuit"]
# how scores rank units: "signed" (higher = more important, as given) or "abs" (scores are
# signed effects, positive = the unit helps the task; |score| ranks them, the sign feeds MIB's
# CPR, which ranks by the signed score)
Ranking = Literal["signed", "abs"]
Level = Literal["edge", "node"]
# (full outputs, circuit outputs, the batch they are of) -> a loss per example [B]; lower is better
Objective = Callable[[torch.Tensor, torch.Tensor, Split], torch.Tensor]


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
    # the task's own objective (see `objective`); None: the per-example task loss
    task_objective: Objective | None = field(default=None, repr=False)
    # this process's place among the ranks of a distributed discovery (`processes: N`, only for
    # adapters with `distributed = True`): rank 0 of 1 otherwise (benchmark.graph.ranks)
    rank: int = 0
    world_size: int = 1

    # --- running the model -------------------------------------------------------------
    def forward(self, tokens, mask=None, ablated=None, **kwargs) -> torch.Tensor:
        self.counters.forward_passes += 1
        self.counters.forward_examples += int(tokens.shape[0])
        return self.model(tokens, mask, ablated, **kwargs)  # the root module's forward

    def forward_nodes(self, tokens, node_mask=None, ablated=None, **kwargs) -> torch.Tensor:
        """The node-masked forward (benchmark.graph.nodes.run_nodes: each writer's output,
        weighted by its mask in graph.nodes order, enters the ordinary residual stream),
        counted like `forward`."""
        self.counters.forward_passes += 1
        self.counters.forward_examples += int(tokens.shape[0])
        return run_nodes(self.model, tokens, node_mask, ablated, **kwargs)

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        self.counters.backward_passes += 1
        loss.backward(**kwargs)

    def grad(self, loss: torch.Tensor, inputs) -> tuple:
        """torch.autograd.grad of `loss`, counted as one backward pass."""
        self.counters.backward_passes += 1
        return torch.autograd.grad(loss, inputs)

    def readout_positions(self, tokens: torch.Tensor) -> torch.Tensor:
        """The residual positions the outputs are read at, bool [B, S]: every position but BOS
        on Tracr models, each prompt's answer position on prompt LMs (the model's
        `readout_positions`; benchmark.graph.model.GraphModel has the default)."""
        return self.model.readout_positions(tokens)

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

    def objective(self, full: torch.Tensor, circuit: torch.Tensor, batch: Split) -> torch.Tensor:
        """A loss per example [B] (lower is better) for a method that optimises the task's own
        measure rather than, or as well as, `metric`: the task's objective where it has one
        (a prompt task: its measure on the full model minus that on the circuit, e.g. the loss of
        IOI logit difference, 0 at the full circuit), else the task loss per example (whose mean
        is `task_loss` where every position counts). `batch` is the Split the outputs are of
        (its answer and rival tokens). No method has to use it."""
        if self.task_objective is not None:
            return self.task_objective(full, circuit, batch)
        if self.output_kind == "categorical":
            return answer_nll_per_example(full, circuit, self.partial)
        return circuit[:, 1:, 0].mean(1)

    def batches(self):
        return self.data.batches(self.batch_size)


@dataclass
class Discovery:
    """What an adapter returns. Exactly one of `scores` or `circuit` is set.

    level: "edge" (the default; units are `graph.edges`) or "node" (units are `graph.nodes`).
    scores: one per unit, higher = more important: a 1-D tensor, array or list in canonical
        order (`graph.edges` / `graph.nodes`), or a dict {unit id: number}. `check` (run by
        `Adapter.run`) turns it into a float64 numpy vector in canonical order.
    circuit: the kept units' ids.
    ranking: "signed" (the default: scores rank as given) or "abs" (scores are signed effects,
        positive where the unit helps the task's measure; the benchmark ranks by |score| and
        MIB's CPR by the signed score).
    """

    kind: OutputType
    scores: Any = None
    circuit: frozenset[str] | None = None
    counters: Counters = field(default_factory=Counters)
    info: dict = field(default_factory=dict)  # e.g. the sparsity Edge Pruning reached
    level: Level = "edge"
    ranking: Ranking = "signed"
    _units: list | None = field(default=None, init=False, repr=False, compare=False)

    def check(self, graph: Graph) -> "Discovery":
        """Fail loudly on output that does not fit the graph; scores become a float64 vector."""
        if self.ranking not in ("signed", "abs"):
            raise ValueError(f"discovery ranking must be 'signed' or 'abs', got {self.ranking!r}")
        if self.level not in LEVELS:
            raise ValueError(f"discovery level must be one of {list(LEVELS)}, got {self.level!r}")
        units = graph.units(self.level)
        if self.kind == "scores":
            if self.scores is None:
                raise ValueError(f"scores must cover exactly the graph's {len(units)} "
                                 f"{self.level}s; got none")
            self.scores = score_vector(self.scores, graph, self.level)
        elif self.kind == "circuit":
            extra = set(self.circuit or ()) - set(units)
            if self.circuit is None or extra:
                raise ValueError(f"circuit {self.level}s not in the graph: {sorted(extra)[:3]}")
        else:
            raise ValueError(f"discovery kind must be 'scores' or 'circuit', got {self.kind!r}")
        self._units = units
        return self

    def score_dict(self, graph: Graph | None = None) -> dict[str, float]:
        """The scores as {unit id: float} in canonical order: a view for small graphs and tests
        (the graph of `check`, or `graph`)."""
        if graph is not None:
            values, units = score_vector(self.scores, graph, self.level), graph.units(self.level)
        elif self._units is not None and isinstance(self.scores, np.ndarray):
            values, units = self.scores, self._units
        else:
            raise ValueError("score_dict() needs the graph: pass it, or check(graph) first")
        return dict(zip(units, values.tolist()))


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
    # True: the adapter can run as N ranks of torch.distributed (`processes: N`): every rank runs
    # `discover` on the same Problem with its own `rank`, the model's weights sharded over them
    # (benchmark.graph.ranks); the adapter reduces what the ranks compute, and rank 0's Discovery
    # is the record. False: `processes` > 1 is a config error.
    distributed: ClassVar[bool] = False

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
        converted = {k: check_param(cls.name, fields[k], convert_param(v, fields[k], cls.name))
                     for k, v in values.items()}
        return cls.Params(**converted)

    @classmethod
    def check_device(cls, params, device: str) -> None:
        """Raise ValueError when `params` cannot run on `device` (e.g. a dtype it lacks):
        called when a config is planned, before any job runs."""

    @classmethod
    def input_files(cls, params) -> list[str]:
        """Files a run with `params` reads besides its task (from_file: the circuit file). The
        workflow keys the run's job on their sha256, so that new content reruns it, and calls
        this when a config is planned: raise ValueError naming the file and the formats it may
        have when one is missing or malformed."""
        return []

    def run(self, problem: Problem, params) -> Discovery:
        """discover() with wall time measured and the output checked against the graph."""
        torch.manual_seed(problem.seed)
        start = time.perf_counter()
        result = self.discover(problem, params)
        problem.counters.wall_seconds = time.perf_counter() - start
        result.counters = problem.counters
        return result.check(problem.graph)
