# Runs of the benchmark, expanded from the validated config, and small path helpers.
import itertools
import os
import json
from urllib.parse import quote

# Nothing here imports torch: a cluster job parses this file twice (benchmark/workflow/plan_keys.py).
from benchmark.workflow.job_server import ENV as JOB_SERVER, start as start_job_server
from benchmark.workflow.plan_keys import (data_code_key, method_source_hash, report_code_key,
                                   scoring_code_key)
from benchmark.core.provenance import config_hash
from benchmark.workflow.results_folder import check_owner, check_writable_folder, claim, config_names
from benchmark.core.numerics import kernel_mode, use_portable_kernels
from benchmark.workflow.plan_keys import PlanKeys
from benchmark.core.registry import METHODS, TASKS
from benchmark.core.task_names import is_lm_task, model_of

if config.get("portable_kernels"):
    use_portable_kernels()  # before any job starts: its torch reads them at start-up
KERNELS = kernel_mode()  # a param of every job that computes numbers: changing it reruns them

RESULTS = config["results"]
CACHE = config["cache"]
# local copies of pretrained models, for every job (benchmark/backends/lm/task.py local_copies)
os.environ["CIRCUITBENCH_PRETRAINED"] = json.dumps(config.get("pretrained") or {}, sort_keys=True)
CONFIGS = config_names(workflow.configfiles, os.getcwd())
if workflow.is_main_process:
    # before anything is planned or written: a clear line, not a traceback in the first job
    check_writable_folder(RESULTS, "config results")
    check_writable_folder(CACHE, "config cache")
    check_owner(RESULTS, CONFIGS, config.get("share_results", False))


def _setting_id(values):
    """A readable, path-safe id of one hyper-parameter setting: `k=v+k=v`. Not commas: a
    cluster job's own Snakemake gets its wildcards as `--target-jobs rule:w=v,w=v` and cut a
    value at its commas (found on Slurm, tests/test_slurm.py)."""
    if not values:
        return "default"
    # a value is one path component: `/` (and `%`, `+`, `=`) percent-encoded; numbers unchanged
    return "+".join(f"{k}={quote(str(values[k]), safe='')}" for k in sorted(values))


def _expand_grid(grid):
    grid = grid or {}
    keys = sorted(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


# Provenance keys, params of the jobs: one computation per planning, not per job (re-reading
# every module per job made a dry run of the 130-job GPT-2 config take half a minute); a
# cluster job inherits the main process's.
KEYS = PlanKeys(inherit=not workflow.is_main_process)


def _task_key(task):
    from benchmark.tasks import task_key
    return task_key(task)


def _model_key(model):
    from benchmark.backends.lm.models import lm_model_key
    return lm_model_key(model)


def task_key(task):
    return KEYS.get("task", task, _task_key)


def model_key(model):
    return KEYS.get("model", model, _model_key)


def method_version(method):
    return KEYS.get("version", method, lambda m: METHODS.get(m).version)


def method_source(method):
    return KEYS.get("source", method, method_source_hash)


SCORING_KEY = KEYS.get("code", "scoring", lambda _: scoring_code_key())
REPORT_KEY = KEYS.get("code", "report", lambda _: report_code_key())
DATA_KEY = KEYS.get("code", "data", lambda _: data_code_key())

# Config keys a study may set for its own tasks (config/schema.yaml): a task's value is the
# top-level one, replaced by that of the studies that list the task. Resolved per task name, as
# the task's dataset file (data/<task>/n<N>_s<seed>.pt) is.
STUDY_SETTINGS = ("sparsities", "eval_examples")


def _task_settings():
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


TASK_SETTINGS = _task_settings()


def task_settings(task):
    """The task's `sparsities` and `eval_examples` (the top-level ones for a task of no study)."""
    return TASK_SETTINGS.get(task) or {key: config[key] for key in STUDY_SETTINGS}


def _scoring_config_hash(settings):
    # the config fields the score stage reads, and only those: another seed, task or method in
    # the config must not rescore the cells that were already there (score rows carry this hash)
    return config_hash({"sparsities": settings["sparsities"],
                        "eval_examples": settings["eval_examples"], "kernels": KERNELS})


# per task, computed once here: a study that sets neither key keeps the top-level hash
SCORING_CONFIG_HASHES = {task: _scoring_config_hash(s) for task, s in TASK_SETTINGS.items()}


def scoring_config_hash(task):
    return SCORING_CONFIG_HASHES.get(task) or _scoring_config_hash(task_settings(task))


def _hand_down_keys(runs):
    """Every key the config's jobs need, computed here once and put in the environment."""
    for run in runs.values():
        task_key(run["task"])
        method_version(run["method"])
        method_source(run["method"])
        if is_lm_task(run["task"]):
            model_key(model_of(run["task"]))
    KEYS.hand_down()


def _check_names(study, block):
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
        for values in _expand_grid(grid):
            try:
                cls.check_device(cls.params(**values), config["device"])
            except ValueError as err:
                raise ValueError(f"config studies.{study}.methods.{m}: {err}") from None


def _check_device(device):
    """Fail at config time, not in the first job, on a device this machine does not have.
    resolve_device asks NVML, so this process does not initialise CUDA (DESIGN.md §11)."""
    from benchmark.core.devices import resolve_device
    try:
        resolve_device(device)
    except ValueError as err:
        raise ValueError(f"config device: {err} (or set device: cpu in the config)") from None


def _runs():
    """Every run of the config, checked in the main process (a job's is the same config)."""
    if workflow.is_main_process:
        _check_device(config["device"])
    runs = {}
    for study, block in config["studies"].items():
        if workflow.is_main_process:
            _check_names(study, block)
        for task, n, seed, ablation in itertools.product(
                block["tasks"], block["examples"], block["seeds"], block["ablations"]):
            for method, grid in block["methods"].items():
                for values in _expand_grid(grid):
                    run = dict(task=task, n=n, seed=seed, ablation=ablation, method=method,
                               setting=_setting_id(values), values=values)
                    runs[circuit_path(**run)] = run
    return runs


def circuit_path(task, ablation, n, seed, method, setting, **_):
    return f"{RESULTS}/circuits/{task}/{ablation}/n{n}/s{seed}/{method}/{setting}.json"


def score_path(task, ablation, n, seed, **_):
    return f"{RESULTS}/scores/{task}/{ablation}/n{n}/s{seed}.csv"


def _set_damaged_aside():
    """Damaged circuit and score files become `.damaged`, and circuit files of runs stopped from
    outside (status `cancelled`) `.cancelled`, before planning, so that they rerun. In the main
    process only: a cluster job's own Snakemake must not move its inputs away."""
    from functools import lru_cache
    from benchmark.workflow.damaged import check_not_cancelled, check_scores, quarantine
    from benchmark.scoring.schema import COLUMNS
    from benchmark.scoring.stage import graph_of_summary, read_circuit
    graph = lru_cache(maxsize=None)(lambda t: graph_of_summary(f"{RESULTS}/tasks/{t}.json"))
    checks = [(path, lambda p=path, t=run["task"]:
               check_not_cancelled(read_circuit(p, t, graph(t)), p))
              for path, run in RUNS.items()]
    checks += [(score_path(*g), lambda p=score_path(*g): check_scores(p, COLUMNS))
               for g in GROUPS]
    quarantine(checks)


RUNS = _runs()
GROUPS = sorted({(r["task"], r["ablation"], r["n"], r["seed"]) for r in RUNS.values()})
DATASETS = sorted({(r["task"], r["n"], r["seed"]) for r in RUNS.values()})
if workflow.is_main_process:
    _hand_down_keys(RUNS)
    _set_damaged_aside()
    from benchmark.workflow.slurm_compat import patch_slurm_plugin
    patch_slurm_plugin()  # a cancelled cluster job must not be waited for forever


def model_of_task(wildcards):
    """The trained-model report an LM task (`ioi@tiny_gpt2`) needs first; none for tracr."""
    if not is_lm_task(wildcards.task):
        return []
    return [f"{RESULTS}/models/{model_of(wildcards.task)}.json"]


def run_of(wildcards):
    key = circuit_path(**wildcards)
    if key not in RUNS:
        raise ValueError(f"{key} is not a run of this config")
    return RUNS[key]


def circuits_of_group(wildcards):
    g = (wildcards.task, wildcards.ablation, int(wildcards.n), int(wildcards.seed))
    return sorted(p for p, r in RUNS.items()
                  if (r["task"], r["ablation"], r["n"], r["seed"]) == g)


LEADERBOARD = [f"{RESULTS}/leaderboard/{name}" for name in
               ("scores.csv", "summary.csv", "pairwise.csv", "scaling_table.csv", "leaderboard.csv",
                "leaderboard.md", "leaderboard.html")]
PLOTS = [f"{RESULTS}/leaderboard/{name}" for name in
         ("faithfulness_vs_sparsity.png", "roc.png", "runtime_vs_examples.png",
          "scaling_vs_examples.png", "kl_vs_sparsity.png")]


onstart:
    # A local run's jobs hand their stage to one warm process that forks a worker per job,
    # instead of each importing torch, scipy and transformers (benchmark/workflow/job_server.py).
    # CIRCUITBENCH_JOB_SERVER=off runs every job in its own process instead.
    if workflow.is_main_process:
        claim(RESULTS, CONFIGS)  # this results folder is this config's (benchmark/workflow/results_folder.py)
    if workflow.is_main_process and workflow.local_exec and os.environ.get(JOB_SERVER) != "off":
        start_job_server(f"{RESULTS}/logs/job_server.log")
