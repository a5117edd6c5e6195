# The Snakemake side of planning: the plan itself (runs, groups, paths, settings, checks) is
# benchmark/workflow/plan.py; here are what needs the workflow object (main process or cluster
# job), the provenance keys handed down, damaged-file quarantine and the rules' input functions.
import os
import json

# Nothing here imports torch: a cluster job parses this file twice (benchmark/workflow/plan_keys.py).
from benchmark.workflow.job_server import ENV as JOB_SERVER, start as start_job_server
from benchmark.workflow.plan_keys import (data_code_key, input_files_key, method_source_hash,
                                   report_code_key, scoring_code_key)
from benchmark.workflow.results_folder import check_owner, check_writable_folder, claim, config_names
from benchmark.core.numerics import kernel_mode, use_portable_kernels
from benchmark.workflow.plan import Plan, adapter_values, is_distributed, processes_of
from benchmark.workflow.plan_keys import PlanKeys
from benchmark.core.registry import METHODS
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


def chain_priority(task):
    """Scheduling bonus of a task's jobs: a language model's (training, discoveries and the
    scoring of the largest graphs: the run's longest chain) go before a Tracr task's."""
    return 10 if is_lm_task(task) else 0


def method_version(method):
    return KEYS.get("version", method, lambda m: METHODS.get(m).version)


def method_source(method):
    return KEYS.get("source", method, method_source_hash)


def input_key(run):
    """The sha256 of the files a run reads besides its task (Adapter.input_files: from_file's
    circuit file), '' for most runs: part of its job's `source` param, so new content reruns it."""
    return KEYS.get_sparse("inputs", f"{run['method']}/{run['setting']}",
                           lambda _: input_files_key(run["method"], adapter_values(run["values"])))


SCORING_KEY = KEYS.get("code", "scoring", lambda _: scoring_code_key())
REPORT_KEY = KEYS.get("code", "report", lambda _: report_code_key())
DATA_KEY = KEYS.get("code", "data", lambda _: data_code_key())

# The plan (benchmark/workflow/plan.py): every run, score group and dataset of the config, their
# paths and settings; the config's errors (conflicting study settings) before anything else.
# which methods run as ranks: asked only for a study that sets processes > 1 (it imports the
# plugins), once, and handed down with the keys
PLAN = Plan(config, kernels=KERNELS, distributed=lambda m: KEYS.get("distributed", m, is_distributed))
task_settings = PLAN.task_settings
scoring_config_hash = PLAN.scoring_config_hash
circuit_path = PLAN.circuit_path
score_path = PLAN.score_path


def _hand_down_keys(runs):
    """Every key the config's jobs need, computed here once and put in the environment."""
    for run in runs.values():
        task_key(run["task"])
        method_version(run["method"])
        method_source(run["method"])
        input_key(run)
        if is_lm_task(run["task"]):
            model_key(model_of(run["task"]))
    KEYS.add_provenance()  # the git commit and package versions the jobs record
    KEYS.hand_down()


def _set_damaged_aside():
    """Damaged circuit and score files become `.damaged`, and circuit files of runs stopped from
    outside (status `cancelled`) `.cancelled`, before planning, so that they rerun. In the main
    process only: a cluster job's own Snakemake must not move its inputs away."""
    from functools import lru_cache
    from benchmark.workflow.damaged import check_not_cancelled, check_scores, quarantine
    from benchmark.scoring.schema import COLUMNS
    from benchmark.scoring.stage import graph_of_summary, read_circuit
    from benchmark.core.score_file import scores_path
    graph = lru_cache(maxsize=None)(lambda t: graph_of_summary(f"{RESULTS}/tasks/{t}.json"))
    checks = [(path, lambda p=path, t=run["task"]:
               check_not_cancelled(read_circuit(p, t, graph(t)), p), [scores_path(path)])
              for path, run in RUNS.items()]
    checks += [(score_path(*g), lambda p=score_path(*g): check_scores(p, COLUMNS))
               for g in GROUPS]
    quarantine(checks)


if workflow.is_main_process:
    PLAN.check()  # the device, then every study's names and grids (a job's config is the same)
RUNS, GROUPS, DATASETS = PLAN.runs, PLAN.groups, PLAN.datasets
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
    return PLAN.run_of(circuit_path(**wildcards))


def circuits_of_group(wildcards):
    return PLAN.circuits_of((wildcards.task, wildcards.ablation, int(wildcards.n),
                             int(wildcards.seed)))


LEADERBOARD, PLOTS = PLAN.leaderboard, PLAN.plots


onstart:
    # A local run's jobs hand their stage to one warm process that forks a worker per job,
    # instead of each importing torch, scipy and transformers (benchmark/workflow/job_server.py).
    # CIRCUITBENCH_JOB_SERVER=off runs every job in its own process instead.
    if workflow.is_main_process:
        claim(RESULTS, CONFIGS)  # this results folder is this config's (benchmark/workflow/results_folder.py)
    if workflow.is_main_process and workflow.local_exec and os.environ.get(JOB_SERVER) != "off":
        start_job_server(f"{RESULTS}/logs/job_server.log")
