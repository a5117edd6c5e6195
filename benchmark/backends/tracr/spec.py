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
