"""The discover stage: one discovery in an isolated child process, whatever it does, ends as a
circuit file. Shared by the workflow's discover rule and `python -m benchmark discover`."""
from __future__ import annotations

import pkgutil

from benchmark.core.artifact import atomic_write_json
from benchmark.core.task_names import is_lm_task
from benchmark.discovery import DiscoveryJob, job_record, prepare_job, run_job
from benchmark.workflow.isolation import run_isolated
from benchmark.workflow.plan_keys import method_source_hash
from benchmark.workflow.ranks import run_ranks


def discover_stage(task_name: str, cache: str, dataset: str, method: str, params: dict,
                   ablation: str, n: int, seed: int, out: str, *, device: str = "cpu",
                   timeout_s: float | None = None, mem_mb: int | None = None,
                   threads: int = 1, eval_examples: int = 1000, fork: bool = False) -> dict:
    """Run one discovery in an isolated child process and write its circuit file (the
    workflow's discover rule): bad parameters or device fail the job, loudly, before any work.
    `params` are the run's values: the adapter's, and `processes` (benchmark.workflow.plan)
    for a run of N ranks."""
    params = dict(params)
    processes = params.pop("processes", 1)
    job = prepare_job(task_name, method, params, n=n, seed=seed, ablation=ablation,
                      device=device, dataset=dataset, cache=cache, threads=threads, out=out,
                      processes=processes)
    return run_discovery(job, timeout_s=timeout_s, mem_mb=mem_mb, eval_examples=eval_examples,
                         fork=fork)


def run_discovery(job: DiscoveryJob, *, timeout_s: float | None = None,
                  mem_mb: int | None = None, eval_examples: int = 1000,
                  fork: bool = False) -> dict:
    """Run a prepared job in an isolated child process and write its circuit file.

    Shared by the workflow and the CLI. Whatever the method does (return, raise, hang past
    `timeout_s`, exceed `mem_mb`, exit, get killed) ends as a circuit file with a status:
    `ok`, `failed`, `timeout` or `oom`, and the cause in `error`.
    fork: start the child as a copy of this process (benchmark.workflow.isolation), which must
    not have computed with torch before; the workflow's job processes haven't. Only on the CPU:
    a child that uses CUDA is always spawned (a forked one cannot initialise CUDA if this
    process has), and the job's device was resolved without initialising CUDA. mem_mb caps the
    child's address space on the CPU, its share of the GPU's memory on a CUDA device
    (run_isolated). The task is loaded by the child only, and here just when a failure record
    needs it.
    A job with processes > 1 runs as that many ranks of torch.distributed, started by torchrun
    in the isolated child (benchmark.workflow.ranks: mem_mb then caps each rank)."""
    from benchmark.datasets import DatasetError, ensure_dataset, load_dataset
    from benchmark.protocol import Counters, Discovery
    from benchmark.tasks import load_task
    fork = fork and job.device == "cpu"
    try:
        load_dataset(job.dataset, job.task, job.n, job.seed)
    except DatasetError:  # rebuilt, which computes: the child can no longer be a fork
        ensure_dataset(job.dataset, job.task, job.cache, job.n, job.seed, eval_examples)
        fork = False
    if fork and is_lm_task(job.task):
        from benchmark.backends.lm.load import import_architectures
        import_architectures()  # once here, not in every child
    ranks = f", {job.processes} ranks" if job.processes > 1 else ""
    print(f"discovery: {job.method} on {job.task} (n={job.n}, seed={job.seed}, "
          f"{job.ablation}{ranks}) starts", flush=True)
    if job.processes > 1:  # the ranks cap their GPU memory: the launcher must not touch CUDA
        outcome = run_isolated(run_ranks, dict(job=job, mem_mb=mem_mb), timeout_s=timeout_s,
                               mem_mb=None if job.device.startswith("cuda") else mem_mb,
                               start="fork" if fork else "spawn", device=job.device)
    else:
        outcome = run_isolated(run_job, dict(job=job), timeout_s=timeout_s, mem_mb=mem_mb,
                               start="fork" if fork else "spawn", device=job.device)
    if outcome.value is not None:
        record = outcome.value
    else:
        output = pkgutil.resolve_name(job.adapter).output
        empty = Discovery(output, counters=Counters(wall_seconds=outcome.wall_seconds))
        record = job_record(job, load_task(job.task, cache=job.cache), empty)
    record.setdefault("peak_mem_mb", outcome.peak_mem_mb)
    if job.processes > 1:  # part of the run's identity in score rows: N ranks is a setting
        record["params"] = {**record["params"], "processes": job.processes}
    record.update(status=outcome.status, error=_error(outcome, job), threads=job.threads,
                  source_hash=method_source_hash(job.method), timeout_s=timeout_s,
                  mem_mb=mem_mb, processes=job.processes)
    atomic_write_json(job.out, record)  # after the scores file the child wrote (score_file)
    print(f"discovery: status {record['status']} {record['error']}".rstrip(), flush=True)
    return record


def _error(outcome, job: DiscoveryJob) -> str:
    """The outcome's error; out of memory with a batch size says which smaller one to try."""
    error, p, method = outcome.error, job.params, job.method
    if outcome.status == "oom" and getattr(p, "batch_size", None):
        error += (f"; this run's batch_size is {p.batch_size}: try {max(1, p.batch_size // 4)} "
                  f"(a method parameter: studies.<study>.methods.{method}.batch_size, or "
                  f"--batch_size)")
        if getattr(p, "checkpoint_layers", True) is False:
            error += (f", or checkpoint_layers: true (each block recomputed in the backward "
                      f"pass: studies.<study>.methods.{method}.checkpoint_layers)")
    return error
