"""A loaded task: the torch model with its graph, ground truth, encoders and datasets.

`load_task(name)` compiles a task once (tracr, jax) and caches the verified artifact, ground
truth included; later calls load it with torch alone. The cache key covers the task spec, its
program's source and the tracr version, so editing a task recompiles it.
"""
from __future__ import annotations

import hashlib
import json
import sys
from importlib.metadata import version as package_version
from pathlib import Path

import torch

from benchmark.backends.tracr.model import TracrTransformer
from benchmark.core.artifact import FORMAT_VERSION, Artifact, ArtifactError
from benchmark.core.conventions import EDGE_CONVENTIONS
from benchmark.core.fingerprint import code_key
from benchmark.core.paths import cache_dir
from benchmark.core.registry import TASKS
from benchmark.graph.circuit import graph_of
from benchmark.graph.data import TaskData, make_dataset
from benchmark.graph.metrics import defined_positions


def spec_key(spec) -> str:
    """Hash of everything that decides the compiled model and its ground truth."""
    fields = {k: repr(getattr(spec, k)) for k in spec.__dataclass_fields__ if k != "program"}
    # the task's module and everything it and the compile bridge can execute (fingerprint.py)
    fields["code"] = code_key(spec.program.__module__, "benchmark.backends.tracr.build",
                              "benchmark.backends.tracr.task")
    fields["tracr"] = package_version("tracr-pypi")
    if getattr(spec, "planted", None) is not None:  # trained weights: torch's numerics decide
        fields["torch"] = package_version("torch")
    fields["format"] = FORMAT_VERSION
    fields["ground_truth_code"] = _GT_VERSION
    blob = json.dumps(fields, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


_GT_VERSION = "3"  # 3: node-level ground truth (node_truth.py)


def artifact_path(spec, directory: Path | None = None) -> Path:
    return (directory or cache_dir() / "tasks") / f"{spec.name}-{spec_key(spec)}.npz"


def load_tracr_task(name: str, *, cache: str | Path | None = None, device: str = "cpu") -> "Task":
    """The Tracr task `name`, compiled and verified on first use (benchmark.tasks.load_task
    dispatches here); unknown names list the known ones."""
    spec = TASKS.get(name)
    path = artifact_path(spec, Path(cache) if cache else None)
    artifact = None
    if path.exists():
        try:
            artifact = Artifact.load(path)
        except ArtifactError as err:  # corrupt or edited: never used, rebuilt
            print(f"warning: {err}; compiling it again", file=sys.stderr)
    if artifact is None:
        from benchmark.backends.tracr.build import build_task_artifact  # jax only here
        build_task_artifact(spec).save(path)
        artifact = Artifact.load(path)
    return Task(spec, artifact, device=device)


def tracr_task_key(name: str) -> str:
    """The key of Tracr task `name`'s compiled artifact: changes when anything that decides it
    does."""
    return spec_key(TASKS.get(name))


class Task:
    conventions = EDGE_CONVENTIONS  # every edge-level convention is derived for a tracr task

    def __init__(self, spec, artifact: Artifact, device: str = "cpu"):
        self.spec, self.artifact, self.meta = spec, artifact, artifact.meta
        if "conventions" in self.meta:  # a planted model has only those that validated
            self.conventions = tuple(self.meta["conventions"])
        self.name = spec.name
        self.version = spec.version
        self.output_kind = spec.output
        self.model = TracrTransformer(artifact).to(device)
        self.partial = self.model.partial  # positions where the program is None are skipped
        self.graph = graph_of(self.model)
        self._encoding = {self._key(v): i for v, i in self.meta["input_encoding"]}
        self._decoding = {i: v for v, i in self.meta["input_encoding"]}

    @property
    def device(self) -> torch.device:
        return self.model.output_dims.device

    def to(self, device) -> "Task":
        self.model.to(device)
        return self

    @property
    def family(self) -> str:
        """What kind of ground truth the task has: `compiled` (tracr's weights as compiled),
        or the spec's own family (`compressed`, `planted`): the report compares methods'
        recovery per family."""
        return getattr(self.spec, "family", "compiled")

    @property
    def input_space(self) -> int:
        """How many distinct inputs the task has."""
        from benchmark.graph.inputs import space_size
        return space_size(len(self.meta["symbol_ids"]), self.spec.length, self.spec.inputs)

    @property
    def numerical_atol(self) -> float:
        return self.spec.numerical_atol

    def extra_metrics(self, full, circuit, split) -> dict:
        """Task-specific measures beyond faithfulness (language-model tasks have some)."""
        return {}

    def summary(self) -> dict:
        """What `compile` prints and the workflow's task report holds."""
        m = self.meta
        return {"task": self.name, "task_version": self.version, "n_edges": self.graph.n_edges,
                "output_kind": self.output_kind, "verification": m["verification"],
                "compile_seconds": m["compile_seconds"], "verify_seconds": m["verify_seconds"],
                "ground_truth": {k: sorted(self.ground_truth(k), key=self.graph.edge_to_index.get)
                                 for k in self.conventions},
                "pruned_as_redundant": m["ground_truth"].get("pruned_as_redundant", {}),
                "node_ground_truth": {k: list(m["node_ground_truth"][k])
                                      for k in self.node_conventions},
                "node_ground_truth_relation": m.get("node_ground_truth_relation", {})} | (
                    {k: m[k] for k in ("planted", "ground_truth_validation", "off_circuit")}
                    if "planted" in m else {})

    def ground_truth(self, convention: str) -> frozenset[str]:
        if convention not in self.conventions:
            raise KeyError(f"{self.name} has no {convention!r} ground truth; it has: "
                           f"{', '.join(self.conventions)}")
        return frozenset(self.meta["ground_truth"][convention])

    @property
    def node_conventions(self) -> tuple:
        """The node-level ground truths this task has (benchmark.graph.nodes): writers kept."""
        return tuple(self.meta.get("node_ground_truth", {}))

    def node_ground_truth(self, convention: str) -> frozenset[str]:
        if convention not in self.node_conventions:
            raise KeyError(f"{self.name} has no node-level {convention!r} ground truth; it has: "
                           f"{', '.join(self.node_conventions) or 'none'}")
        return frozenset(self.meta["node_ground_truth"][convention])

    @staticmethod
    def _key(value):
        return ("s", value) if isinstance(value, str) else ("n", value)

    def encode(self, inputs) -> torch.Tensor:
        """Token ids [B, S] for sequences of vocabulary values (BOS added when missing)."""
        rows = []
        for seq in inputs:
            seq = list(seq)
            if not seq or seq[0] != "BOS":
                seq = ["BOS"] + seq
            if len(seq) - 1 > self.spec.max_seq_len:
                raise ValueError(f"{self.name}: inputs hold at most {self.spec.max_seq_len} "
                                 f"tokens, got {len(seq) - 1}")
            try:
                rows.append([self._encoding[self._key(v)] for v in seq])
            except KeyError as err:
                raise ValueError(f"{self.name}: token {err.args[0][1]!r} is not in the "
                                 f"vocabulary {list(self.spec.vocab)}") from None
        if len({len(r) for r in rows}) > 1:
            raise ValueError("tracr models have no pad mask: encode inputs of one length per "
                             "batch (predict() groups them for you)")
        return torch.tensor(rows, dtype=torch.long, device=self.device)

    def decode_outputs(self, outputs: torch.Tensor) -> list[list]:
        """Answers at non-BOS positions: output values, or floats for numerical tasks."""
        body = outputs[:, 1:]
        if self.output_kind == "numerical":
            return body[..., 0].tolist()
        values = self.meta["output_values"]
        defined = defined_positions(outputs, self.partial)
        rows = body.argmax(-1).tolist()
        if defined is None:
            return [[values[j] for j in row] for row in rows]
        return [[values[j] if d else None for j, d in zip(row, ok)]
                for row, ok in zip(rows, defined.tolist())]

    @torch.no_grad()
    def predict(self, inputs) -> list[list]:
        """Decoded outputs of the torch model at non-BOS positions, one list per input."""
        inputs = [list(x) for x in inputs]
        result: list = [None] * len(inputs)
        by_len: dict[int, list[int]] = {}
        for i, seq in enumerate(inputs):
            by_len.setdefault(len(seq) - (1 if seq and seq[0] == "BOS" else 0), []).append(i)
        for idx in by_len.values():
            decoded = self.decode_outputs(self.model(self.encode([inputs[i] for i in idx])))
            for i, d in zip(idx, decoded):
                result[i] = d
        return result

    def dataset(self, n: int, seed: int = 0, n_eval: int | None = None) -> TaskData:
        """Clean and corrupted inputs: a discovery split of n and an evaluation split of n_eval
        (default n), from independent streams of `seed`."""
        data = make_dataset(self.name, self.meta["symbol_ids"], self.spec.length,
                            self.spec.inputs, self.meta["bos_id"], n, seed, n_eval)
        if self.device.type != "cpu":
            data = TaskData(data.task, data.seed, data.discovery.to(self.device),
                            data.evaluation.to(self.device))
        return data

    def __repr__(self):
        return (f"Task({self.name!r}, {self.spec.output}, {self.model.n_layers} layers x "
                f"{self.model.n_heads} heads, {self.graph.n_edges} edges)")
