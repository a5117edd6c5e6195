"""The declarative description of a language-model task: a seeded generator of prompt pairs.

A prompt task is data plus one sampling function: which templates and word lists, how a clean
prompt is paired with its corrupted counterpart, which next token answers it and which rival
its metric compares with. Tokenizing, batching and scoring are derived elsewhere
(benchmark/backends/lm/prompts.py). Prompts are plain strings; `PIECES` splits them the way the
locally built word-level tokenizer does, and a real tokenizer (GPT-2's) is checked against the
same split at run time.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np

# a word with its leading space, a pair of digits (years split as GPT-2 splits them: " 17",
# "32"), or one punctuation mark
PIECES = re.compile(r" ?[A-Za-z]+| ?\d\d|[^\sA-Za-z\d]")

Metric = Literal["logit_diff", "greater_than"]


@dataclass(frozen=True)
class Prompt:
    clean: str
    corrupted: str      # same template, the information that decides the answer replaced
    answer: str         # the next-token piece that answers the clean prompt, e.g. " Mary"
    rival: str          # the piece the metric compares with, e.g. the subject " John"


@dataclass(frozen=True)
class PromptTaskSpec:
    name: str
    sample: Callable[[np.random.Generator], Prompt]
    space: int          # number of distinct clean prompts the generator can make
    metric: Metric      # logit difference answer - rival, or Greater-Than's probability gap
    words: tuple        # every piece the generator can emit: the local tokenizer's vocabulary
    description: str = ""
    version: str = "1"

    def __post_init__(self):
        if self.metric not in ("logit_diff", "greater_than"):
            raise ValueError(f"prompt task {self.name!r}: metric must be 'logit_diff' or "
                             f"'greater_than', got {self.metric!r}")


def pieces(text: str) -> list[str]:
    """The pieces of a prompt; their concatenation is the prompt (checked)."""
    out = PIECES.findall(text)
    if "".join(out) != text:
        raise ValueError(f"prompt {text!r} has characters outside words, digit pairs and "
                         "punctuation (double spaces, a leading space, a lone digit?)")
    return out


def vocabulary(*texts: str) -> tuple:
    return tuple(sorted({p for t in texts for p in pieces(t)}))
