"""The declarative description of one benchmark task.

A task is data, not code: which RASP program, which vocabulary, how long the inputs are, how
corrupted inputs are drawn and whether the output is categorical or numerical. Everything else
(compilation, verification, graph, ground truth, datasets) is derived from it elsewhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

OutputKind = Literal["categorical", "numerical"]
InputKind = Literal["product", "distinct"]


@dataclass(frozen=True)
class TaskSpec:
    """One RASP program compiled by tracr into a transformer whose circuit is known.

    `program` builds the RASP expression lazily so that listing tasks never imports tracr.
    `length` is the number of non-BOS tokens of every input: tracr models have no pad mask, so
    inputs of one task all share one length. `inputs` says which token sequences are valid:
    any sequence over the vocabulary ("product") or sequences without repeated tokens
    ("distinct", for programs such as sort_unique whose keys must be unique).
    """

    name: str
    program: Callable[[], Any]
    vocab: tuple
    max_seq_len: int
    length: int
    output: OutputKind
    inputs: InputKind = "product"
    description: str = ""
    version: str = "1"
    # Numerical outputs count as changed when they move by more than this.
    numerical_atol: float = 1e-3
    # Verification enumerates every input up to this many, else checks a seeded sample.
    max_verify_inputs: int = 4096
    # Large input spaces: after the ground truth is derived on a sample, every convention is
    # checked again (keeping only its edges changes no answer) on this many fresh inputs.
    validation_inputs: int = 0
    # A program whose answer is the same for every valid input (length, on inputs of one
    # length) is refused unless it says so here; its resample ground truth is then empty.
    constant_output: bool = False
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.output not in ("categorical", "numerical"):
            raise ValueError(f"task {self.name!r}: output must be 'categorical' or "
                             f"'numerical', got {self.output!r}")
        if self.inputs not in ("product", "distinct"):
            raise ValueError(f"task {self.name!r}: inputs must be 'product' or 'distinct', "
                             f"got {self.inputs!r}")
        if not 1 <= self.length <= self.max_seq_len:
            raise ValueError(f"task {self.name!r}: length {self.length} must be between 1 and "
                             f"max_seq_len {self.max_seq_len}")
        if self.inputs == "distinct" and self.length > len(self.vocab):
            raise ValueError(f"task {self.name!r}: {self.length} distinct tokens need a "
                             f"vocabulary of at least that size, got {len(self.vocab)}")
        if "BOS" in self.vocab:
            raise ValueError(f"task {self.name!r}: 'BOS' is reserved for the compiler")


@dataclass(frozen=True)
class Compression:
    """How a compressed variant squeezes the residual stream: a learned W (D -> width), trained
    from `seed` for `steps` full-batch Adam steps at `lr` to reproduce the compiled model's
    answers (cross-entropy of the outputs scaled by `logit_scale` for categorical tasks, squared
    error for numerical ones) plus, weighted by `intermediate_weight`, the squared error of every
    block's output and every reader's input read back through W^T. The build fails unless the
    compressed model agrees with the compiled one on at least `min_accuracy` of the answers
    (all inputs)."""

    width: int
    seed: int = 0
    steps: int = 1000
    lr: float = 0.01
    intermediate_weight: float = 0.1
    # categorical outputs: cross-entropy of the outputs times this (tracr's one-hot answers
    # have a margin of 1, too small for a softmax to tell a right answer from a wrong one)
    logit_scale: float = 10.0
    min_accuracy: float = 0.99

    def __post_init__(self):
        if self.width < 1 or self.steps < 0 or self.lr <= 0:
            raise ValueError(f"compression needs width >= 1, steps >= 0 and lr > 0: {self}")


@dataclass(frozen=True)
class CompressedTaskSpec(TaskSpec):
    """A compiled task run in superposition (Tracr paper, sec. 5): its residual stream is
    compressed by a learned projection, so components no longer write to orthogonal subspaces.
    A subclass, so that the keys of the compiled tasks do not change."""

    compression: Compression | None = None
    base: str = ""
    family = "compressed"  # a class attribute, not a field: what the report groups by

    def __post_init__(self):
        super().__post_init__()
        if self.compression is None:
            raise ValueError(f"task {self.name!r}: a compressed task needs its compression")


def compressed(base: TaskSpec, width: int, *, name: str | None = None, **settings
               ) -> CompressedTaskSpec:
    """`base` with its residual stream compressed to `width` dims; `settings` are the other
    fields of `Compression` (seed, steps, lr, ...). The name defaults to `<base>_c<width>`."""
    from dataclasses import fields
    same = {f.name: getattr(base, f.name) for f in fields(TaskSpec)}
    return CompressedTaskSpec(**dict(
        same, name=name or f"{base.name}_c{width}", base=base.name,
        compression=Compression(width, **settings),
        description=f"{base.description}, residual stream compressed to {width} dims"))


@dataclass(frozen=True)
class Planted:
    """A planted circuit: an ordinary transformer (`n_layers` x `n_heads`, residual width
    `d_model`) trained from `seed` so that the components in `align` (compiled node -> trained
    node, e.g. ("a0.h0", "a0.h1")) implement the compiled program, and no other component
    matters under resample ablation (strict interchange-intervention training, InterpBench).
    `steps` Adam steps of `batch` clean/corrupted pairs at `lr`; the build fails below
    `min_accuracy` agreement with the compiled model."""

    n_layers: int
    n_heads: int
    d_model: int
    align: tuple
    key_size: int = 4
    mlp_hidden: int = 16
    seed: int = 0
    steps: int = 600
    batch: int = 128
    lr: float = 0.01
    min_accuracy: float = 0.99

    def __post_init__(self):
        if min(self.n_layers, self.n_heads, self.d_model, self.steps, self.batch) < 1:
            raise ValueError(f"planted model needs positive sizes and steps: {self}")


@dataclass(frozen=True)
class PlantedTaskSpec(TaskSpec):
    """A compiled task (`base`, the high-level model) whose algorithm is planted into a trained
    model: the circuit is known by construction and validated by ablation, but the model is not
    tracr-clean (components share the residual stream, extra components exist)."""

    planted: Planted | None = None
    base: str = ""
    family = "planted"

    def __post_init__(self):
        super().__post_init__()
        if self.planted is None:
            raise ValueError(f"task {self.name!r}: a planted task needs its Planted settings")


def planted(base: TaskSpec, *, name: str | None = None, **settings) -> PlantedTaskSpec:
    """`base`'s program planted into a trained model; `settings` are `Planted`'s fields."""
    from dataclasses import fields
    same = {f.name: getattr(base, f.name) for f in fields(TaskSpec)}
    return PlantedTaskSpec(**dict(
        same, name=name or f"{base.name}_planted", base=base.name,
        planted=Planted(**settings),
        description=f"{base.description}, planted in a trained transformer (SIIT)"))
