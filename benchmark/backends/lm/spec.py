"""The declarative description of a language model that prompt tasks run on.

Either `pretrained`, a name or path that `from_pretrained` takes (GPT-2, a Llama-family model:
the weights come from the user's machine or the hub, never in tests or the default run), or a
small model trained here from a seed on the prompt tasks (`family`, size and schedule), so that
the default benchmark runs offline on a model that solves its tasks. A benchmark task on a
language model is named `<prompt task>@<model>`, e.g. `ioi@tiny_gpt2`.
"""
from __future__ import annotations

from dataclasses import dataclass

from benchmark.core.task_names import SEP, is_lm_task

DTYPES = ("float32", "bfloat16", "float16")  # what a model's weights may be loaded in


@dataclass(frozen=True)
class LMSpec:
    name: str
    tasks: tuple                  # the prompt tasks this model is benchmarked on
    pretrained: str | None = None  # from_pretrained name or path; None: trained here
    family: str = "gpt2"          # trained here: "gpt2" or "llama"
    train_tasks: tuple = ()       # the training mixture, one batch each in turn (repeat = more)
    steps: int = 3000
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.01    # AdamW's
    seed: int = 0
    n_layer: int = 2
    d_model: int = 64
    n_head: int = 4
    min_accuracy: float = 0.95    # held-out accuracy every trained task must reach
    # and the mean KL(clean || corrupted) at the answer on held-out prompts: a model that solves
    # a task by a shortcut blind to what the corruption changes (Greater-Than: always "99", later
    # than every start year 02-98; a 12-layer model did, KL 0.0002) leaves no circuit to find
    min_corruption_kl: float = 0.1
    # trained here: the dropout of embeddings, residual writes and attention while training;
    # None keeps the family's default (GPT-2's 0.1; Llama's 0)
    dropout: float | None = None
    init_std: float | None = None  # trained here: the initial weights' std (None: 0.02)
    dtype: str = "float32"
    # (prompt task, heads): a circuit a paper reports for this model, scored as the `published`
    # convention (tasks/prompts/ioi_circuit.py)
    published: tuple = ()
    description: str = ""
    version: str = "1"

    def __post_init__(self):
        if self.pretrained is None and not self.train_tasks:
            raise ValueError(f"language model {self.name!r}: give `pretrained` (a name or path) "
                             "or `train_tasks` to train it here")
        if is_lm_task(self.name):
            raise ValueError(f"language model {self.name!r}: '{SEP}' separates task and model")
        if self.dtype not in DTYPES:
            raise ValueError(f"language model {self.name!r}: unknown dtype {self.dtype!r}; "
                             f"known: {', '.join(DTYPES)}")
        for task, _ in self.published:
            if task not in self.tasks:
                raise ValueError(f"language model {self.name!r}: a published circuit for "
                                 f"{task!r}, which is not among its tasks {self.tasks}")

    def published_circuit(self, task: str) -> frozenset | None:
        """The heads a paper reports for `task` on this model, or None."""
        return next((frozenset(heads) for t, heads in self.published if t == task), None)

    @property
    def trained_here(self) -> bool:
        return self.pretrained is None
