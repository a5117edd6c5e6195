"""The plan of a run: which jobs a config makes, their params and their files.

Planning is code here rather than in workflow/rules/common.smk so that it can be read, imported
and tested without Snakemake: common.smk builds one `Plan` and its rules read it, and the tests
check the plan itself instead of deriving it again or parsing a dry run's job table.

Torch-free (no torch, transformers or matplotlib at import): a cluster job plans twice
(benchmark/workflow/plan_keys.py). Every path, setting id and hash made here is part of a job's
output or params: changing one reruns every job of an existing results folder.
"""
from __future__ import annotations

import itertools
import sys
from typing import Callable
from urllib.parse import quote

from benchmark.core.numerics import kernel_mode
from benchmark.core.processes import check_processes
from benchmark.core.provenance import config_hash
from benchmark.core.registry import METHODS, TASKS
from benchmark.core.task_names import is_lm_task, model_of
from benchmark.report.outputs import PLOTS, TABLES

# Config keys a study may set for its own tasks (config/schema.yaml): a task's value is the
# top-level one, replaced by that of the studies that list the task. Resolved per task name, as
# the task's dataset file (data/<task>/n<N>_s<seed>.pt) is.
STUDY_SETTINGS = ("sparsities", "eval_examples")


def setting_id(values: dict) -> str:
    """A readable, path-safe id of one hyper-parameter setting: `k=v+k=v`. Not commas: a
    cluster job's own Snakemake gets its wildcards as `--target-jobs rule:w=v,w=v` and cut a
    value at its commas (found on Slurm, tests/test_slurm.py)."""
    if not values:
        return "default"
    # a value is one path component: `/` (and `%`, `+`, `=`) percent-encoded; numbers unchanged
    return "+".join(f"{k}={quote(str(values[k]), safe='')}" for k in sorted(values))


def expand_grid(grid: dict | None) -> list[dict]:
    """Every setting of a method's grid ({param: [values]}, or None for its defaults), in the
    order of the sorted param names."""
    grid = grid or {}
    keys = sorted(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def split_processes(values: dict, study_processes: int, distributed: Callable[[], bool]
                    ) -> tuple[dict, int]:
    """(the adapter's values, the run's processes) of one grid setting. `processes` is no
    adapter parameter: a grid's value, else the study's for a `distributed` adapter, else 1."""
    values = dict(values)
    if "processes" in values:
        return values, values.pop("processes")
    return values, study_processes if study_processes > 1 and distributed() else 1


def run_values(values: dict, processes: int) -> dict:
    """A run's values: the adapter's, and `processes` when above 1 (then in its setting id,
    path and params); at 1 exactly the adapter's, so that no existing run's id changes."""
    return {**values, "processes": processes} if processes > 1 else values


def adapter_values(values: dict) -> dict:
    """A run's values without `processes`: what the adapter's Params take."""
    return {k: v for k, v in values.items() if k != "processes"}


def is_distributed(method: str) -> bool:
    """Whether `method`'s adapter runs as ranks (`distributed = True`); False for an unknown
    name (`Plan.check` names it). Imports the plugins, hence torch."""
    return method in METHODS.names() and bool(METHODS.get(method).distributed)


def processes_of(run: dict) -> int:
    """How many ranks of torch.distributed a run of the plan starts (1: one process)."""
    return run["values"].get("processes", 1)


def study_task_settings(config: dict) -> dict[str, dict]:
    """{task: {key: value}} of every task the studies list; two studies that list one task and
    mean different values for a key (set, or the top-level one) are a config error."""
    settings, origin = {}, {}
    for study, block in config["studies"].items():
        for task in block["tasks"]:
            for key in STUDY_SETTINGS:
                value, own = block.get(key, config[key]), key in block
                known = settings.setdefault(task, {})
                if key not in known:
                    known[key], origin[task, key] = value, (study, own)
                    continue
                if known[key] == value:
                    continue
                first, second = (*origin[task, key], known[key]), (study, own, value)
                if not first[1]:  # name first the study that sets the key
                    first, second = second, first
                (a, _, va), (b, b_own, vb) = first, second
                other = f"studies.{b}.{key} ({vb})" if b_own else f"studies.{b} (top-level {vb})"
                raise ValueError(f"config studies.{a}.{key} ({va}) and {other} both list task "
                                 f"{task}: give them the same value or move the task to one study")
    return settings


def check_names(config: dict, study: str, block: dict) -> None:
    """Every task and method a study names exists, and every setting of its grids is valid on
    the config's device with the files it reads: a config error at planning, not a failed
    job."""
    from benchmark.backends.lm.task import list_lm_tasks
    known = set(TASKS.names()) | set(list_lm_tasks())
    for t in block["tasks"]:
        if t not in known:
            raise ValueError(f"config studies.{study}.tasks: unknown task {t!r}; known tasks: "
                             f"{', '.join(sorted(known))}")
    for m, grid in block["methods"].items():
        cls = METHODS.get(m) if m in METHODS.names() else None
        if cls is None:
            raise ValueError(f"config studies.{study}.methods: unknown method {m!r}; known "
                             f"methods: {', '.join(METHODS.names())}")
        for values in expand_grid(grid):
            key = (f"studies.{study}.methods.{m}.processes" if "processes" in values else
                   f"studies.{study}.processes")
            values, processes = split_processes(values, block.get("processes", 1),
                                                lambda: cls.distributed)
            try:
                check_processes(processes, config["device"], method=m, key=key,
                                distributed=cls.distributed)
                params = cls.params(**values)
                cls.check_device(params, config["device"])
                cls.input_files(params)  # a missing or malformed input file: now, not in a job
            except ValueError as err:
                raise ValueError(f"config studies.{study}.methods.{m}: {err}") from None


def check_device(device: str) -> None:
    """Fail at config time, not in the first job, on a device this machine does not have.
    resolve_device asks NVML, so this process does not initialise CUDA (DESIGN.md §11)."""
    from benchmark.core.devices import resolve_device
    try:
        resolve_device(device)
    except ValueError as err:
        raise ValueError(f"config device: {err} (or set device: cpu in the config)") from None


class Plan:
    """Every job of a validated config (schema defaults filled in, as Snakemake's `validate`
    does), as data: runs, score groups, datasets, models and the leaderboard's files.

    Made in every Snakemake process, a cluster job's included, so it reads no file and loads no
    plugin; `check` (names, device) is the main process's, before any job starts.
    """

    def __init__(self, config: dict, kernels: str | None = None,
                 distributed: Callable[[str], bool] | None = None):
        self.config = config
        # whether a method's adapter runs as ranks (asked only of the methods of a study that
        # sets processes > 1: it imports the plugins); common.smk hands the answers down
        self.distributed = distributed or is_distributed
        self.notes: list[str] = []  # printed by `check`: methods a study's processes skip
        self.results = config["results"]
        # a param of every job that computes numbers, and part of the scoring hash
        self.kernels = kernel_mode() if kernels is None else kernels
        self.settings = study_task_settings(config)
        # per task, computed once: a study that sets neither key keeps the top-level hash
        self.hashes = {task: self._scoring_hash(s) for task, s in self.settings.items()}
        self.runs = self._runs()
        self._by_group: dict[tuple, list[str]] = {}
        for path, r in self.runs.items():
            self._by_group.setdefault(self.group_of(r), []).append(path)
        self.groups = sorted(self._by_group)
        self.datasets = sorted({(r["task"], r["n"], r["seed"]) for r in self.runs.values()})
        self.tasks = sorted({r["task"] for r in self.runs.values()})
        self.methods = sorted({r["method"] for r in self.runs.values()})
        # the language models the LM tasks (`ioi@tiny_gpt2`) run on: one train_model job each
        self.models = sorted({model_of(t) for t in self.tasks if is_lm_task(t)})
        self.leaderboard = [f"{self.results}/leaderboard/{name}" for name in TABLES]
        self.plots = [f"{self.results}/leaderboard/{name}" for name in PLOTS]

    def check(self) -> None:
        """The config errors that need the machine or the plugins: its device, then each
        study's task and method names and grid values."""
        check_device(self.config["device"])
        for study, block in self.config["studies"].items():
            check_names(self.config, study, block)
        for note in self.notes:
            print(note, file=sys.stderr)

    def _runs(self) -> dict[str, dict]:
        """circuit path -> run: the product of each study's lists and method grids, a run
        that two studies ask for planned once."""
        runs = {}
        for study, block in self.config["studies"].items():
            settings = {m: [self._values(study, block, m, v) for v in expand_grid(grid)]
                        for m, grid in block["methods"].items()}
            for task, n, seed, ablation in itertools.product(
                    block["tasks"], block["examples"], block["seeds"], block["ablations"]):
                for method, grid in settings.items():
                    for values in grid:
                        run = dict(task=task, n=n, seed=seed, ablation=ablation, method=method,
                                   setting=setting_id(values), values=values)
                        runs[self.circuit_path(**run)] = run
        return runs

    def _values(self, study: str, block: dict, method: str, values: dict) -> dict:
        """A run's values (run_values); a study's processes > 1 that `method` cannot use is
        noted once (one process for it)."""
        study_processes, from_grid = block.get("processes", 1), "processes" in values
        values, processes = split_processes(values, study_processes,
                                            lambda: self.distributed(method))
        note = (f"config studies.{study}.processes = {study_processes}: method {method} runs "
                "on one process (its adapter does not set distributed = True)")
        if study_processes > 1 and not from_grid and processes == 1 and note not in self.notes:
            self.notes.append(note)
        return run_values(values, processes)

    def task_settings(self, task: str) -> dict:
        """The task's `sparsities` and `eval_examples` (the top-level ones for a task of no
        study)."""
        return self.settings.get(task) or {key: self.config[key] for key in STUDY_SETTINGS}

    def _scoring_hash(self, settings: dict) -> str:
        # the config fields the score stage reads, and only those: another seed, task or method
        # in the config must not rescore the cells that were already there (score rows carry it)
        return config_hash({"sparsities": settings["sparsities"],
                            "eval_examples": settings["eval_examples"], "kernels": self.kernels})

    def scoring_config_hash(self, task: str) -> str:
        return self.hashes.get(task) or self._scoring_hash(self.task_settings(task))

    def circuit_path(self, task, ablation, n, seed, method, setting, **_) -> str:
        return f"{self.results}/circuits/{task}/{ablation}/n{n}/s{seed}/{method}/{setting}.json"

    def score_path(self, task, ablation, n, seed, **_) -> str:
        return f"{self.results}/scores/{task}/{ablation}/n{n}/s{seed}.csv"

    @staticmethod
    def group_of(run: dict) -> tuple:
        """The score job a run belongs to: (task, ablation, n, seed)."""
        return run["task"], run["ablation"], run["n"], run["seed"]

    def run_of(self, path: str) -> dict:
        """The run whose circuit file is `path`; a path of no run is an error, not a job."""
        if path not in self.runs:
            raise ValueError(f"{path} is not a run of this config")
        return self.runs[path]

    def circuits_of(self, group: tuple) -> list[str]:
        """The circuit files one score job reads, sorted."""
        return sorted(self._by_group.get(tuple(group), []))
