"""The discover stage: one discovery in an isolated child process, whatever it does, ends as a
circuit file. Shared by the workflow's discover rule and `python -m benchmark discover`."""
from __future__ import annotations

from benchmark.core.artifact import atomic_write_json
from benchmark.core.devices import resolve_device
from benchmark.core.registry import METHODS
from benchmark.discovery import _discover_child, adapter_ref, circuit_record
from benchmark.core.task_names import is_lm_task
from benchmark.workflow.isolation import run_isolated
from benchmark.workflow.plan_keys import method_source_hash


def discover_stage(task_name: str, cache: str, dataset: str, method: str, params: dict,
                   ablation: str, n: int, seed: int, out: str, *, device: str = "cpu",
                   timeout_s: float | None = None, mem_mb: int | None = None,
                   threads: int = 1, eval_examples: int = 1000, fork: bool = False) -> dict:
    """Run one discovery in an isolated child process and write its circuit file.

    Shared by the workflow and the CLI. Whatever the method does (return, raise, hang past
    `timeout_s`, exceed `mem_mb`, exit, get killed) ends as a circuit file with a status:
    `ok`, `failed`, `timeout` or `oom`, and the cause in `error`.
    fork: start the child as a copy of this process (benchmark.workflow.isolation), which must not have
    computed with torch before; the workflow's job processes haven't. Only on the CPU: a child
    that uses CUDA is always spawned (a forked one cannot initialise CUDA if this process has),
    and `device` is resolved here without initialising CUDA. mem_mb caps the child's address
    space on the CPU, its share of the GPU's memory on a CUDA device (run_isolated). The task
    is loaded by the child only, and here just when a failure record needs it."""
    from benchmark.tasks import load_task
    from benchmark.datasets import DatasetError, ensure_dataset, load_dataset
    from benchmark.protocol import Counters, Discovery
    adapter_cls = METHODS.get(method)
    p = adapter_cls.params(task_name, **params)     # bad parameters fail the job, loudly
    dev = resolve_device(device)
    fork = fork and dev.type == "cpu"
    try:
        load_dataset(dataset, task_name, n, seed)
    except DatasetError:  # rebuilt, which computes: the child can no longer be a fork
        ensure_dataset(dataset, task_name, cache, n, seed, eval_examples)
        fork = False
    if fork and is_lm_task(task_name):
        from benchmark.backends.lm.load import import_architectures
        import_architectures()  # once here, not in every child
    print(f"discovery: {method} on {task_name} (n={n}, seed={seed}, {ablation}) starts",
          flush=True)
    outcome = run_isolated(_discover_child, dict(
        task_name=task_name, cache=cache, dataset=dataset, adapter=adapter_ref(method),
        params=params, ablation=ablation, n=n, seed=seed, device=str(dev), threads=threads),
        timeout_s=timeout_s, mem_mb=mem_mb, start="fork" if fork else "spawn", device=str(dev))
    if outcome.value is not None:
        record = outcome.value
    else:
        empty = Discovery(adapter_cls.output, counters=Counters(wall_seconds=outcome.wall_seconds))
        record = circuit_record(load_task(task_name, cache=cache), empty, adapter_cls(), p, n=n,
                                seed=seed, ablation=ablation, device=str(dev))
    record.setdefault("peak_mem_mb", outcome.peak_mem_mb)
    error = outcome.error
    if outcome.status == "oom" and getattr(p, "batch_size", None):
        error += (f"; this run's batch_size is {p.batch_size}: try {max(1, p.batch_size // 4)} "
                  f"(a method parameter: studies.<study>.methods.{method}.batch_size, or "
                  f"--batch_size)")
        if getattr(p, "checkpoint_layers", True) is False:
            error += (f", or checkpoint_layers: true (each block recomputed in the backward "
                      f"pass: studies.<study>.methods.{method}.checkpoint_layers)")
    record.update(status=outcome.status, error=error, threads=threads,
                  source_hash=method_source_hash(method), timeout_s=timeout_s, mem_mb=mem_mb)
    atomic_write_json(out, record)
    print(f"discovery: status {record['status']} {record['error']}".rstrip(), flush=True)
    return record
