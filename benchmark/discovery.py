"""Run one method on one task: build its Problem, run the adapter, make the circuit record.

The isolated run that writes the record as a file is benchmark.workflow.discover_stage."""
from __future__ import annotations

import dataclasses
import pkgutil
import platform
import resource
from typing import Any

import torch

from benchmark.core.devices import resolve_device
from benchmark.core.processes import check_processes
from benchmark.core.provenance import RECORD_PACKAGES, git_commit, package_versions
from benchmark.core.registry import METHODS
from benchmark.core.score_file import write_scores
from benchmark.graph.data import Split
from benchmark.protocol import Discovery, Problem


def list_methods() -> list[str]:
    return METHODS.names()


def make_problem(task, n: int, seed: int, ablation: str, device: torch.device,
                 batch_size: int = 100_000, discovery: Split | None = None) -> Problem:
    """The method's view of a task: model, graph, the discovery split (`discovery`, or drawn
    from n and seed), the ablation and the task's losses."""
    task.to(device)
    if discovery is None:
        discovery = task.dataset(n=n, seed=seed).discovery
    batch_size = min(batch_size, getattr(task, "forward_batch", batch_size))
    return Problem(model=task.model, graph=task.graph, data=discovery.to(device),
                   ablation=ablation, output_kind=task.output_kind, partial=task.partial,
                   seed=seed, device=device, batch_size=batch_size,
                   task_objective=getattr(task, "objective", None))


def discover(task, method: str, params: dict | None = None, *, n: int = 1000,
             seed: int = 0, ablation: str = "zero", device: str | None = "cpu") -> tuple:
    """(Discovery, the adapter, its Params) for `method` on `task`."""
    adapter_cls = METHODS.get(method)
    adapter = adapter_cls()
    p = adapter_cls.params(task.name, **(params or {}))
    problem = make_problem(task, n, seed, ablation, resolve_device(device))
    return adapter.run(problem, p), adapter, p


def circuit_record(task, result: Discovery, adapter, params, *, n: int, seed: int,
                   ablation: str, device: str) -> dict:
    """What a discover run leaves behind: output, cost and provenance. `scores` is the float64
    vector in canonical order here; the discover stage writes it beside the JSON record
    (benchmark.core.score_file) and keeps only its file's entry in the record."""
    order = (task.graph.edge_to_index if result.level == "edge" else
             task.graph.node_to_index)
    return {
        "task": task.name, "task_version": task.version, "method": adapter.name,
        "method_version": adapter.version, "params": dataclasses.asdict(params),
        "seed": seed, "n_examples": n, "ablation": ablation, "kind": result.kind,
        "level": result.level, "ranking": result.ranking, "n_edges": task.graph.n_edges,
        "scores": result.scores,
        "circuit": None if result.circuit is None else sorted(result.circuit, key=order.get),
        "counters": result.counters.as_dict(), "info": result.info,
        "device": str(device), "hardware": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "git_commit": git_commit(),
        "versions": package_versions(RECORD_PACKAGES),
    }


def adapter_ref(method: str) -> str:
    """'module:Class' of a registered adapter, so that a fresh process can import it."""
    cls = METHODS.get(method)
    return f"{cls.__module__}:{cls.__qualname__}"


@dataclasses.dataclass(frozen=True)
class DiscoveryJob:
    """One discovery, validated once in the parent (`prepare_job`): the adapter's Params object,
    the resolved device. The isolated child only loads the task and dataset and runs it
    (`run_job`); the workflow and the CLI make jobs the same way."""

    task: str
    method: str
    adapter: str  # 'module:Class', importable in a fresh (spawned) process
    params: Any  # the adapter's validated Params
    n: int
    seed: int
    ablation: str
    device: str  # resolved: cpu, cuda:N
    dataset: str
    cache: str | None
    threads: int
    out: str  # the record's path; scores are written beside it
    # ranks of torch.distributed (an adapter with `distributed = True`; 1: this one process):
    # launched by benchmark.workflow.ranks
    processes: int = 1


def prepare_job(task: str, method: str, params: dict, *, n: int, seed: int, ablation: str,
                device: str | None, dataset: str, cache: str | None, threads: int,
                out: str, processes: int = 1) -> DiscoveryJob:
    """The job, or the error a bad method, parameter, device or number of processes gives
    (before any work)."""
    adapter_cls = METHODS.get(method)
    check_processes(processes, device, method=method, key="processes",
                    distributed=getattr(adapter_cls, "distributed", False))
    return DiscoveryJob(task=task, method=method, adapter=adapter_ref(method),
                        params=adapter_cls.params(task, **params), n=n, seed=seed,
                        ablation=ablation, device=str(resolve_device(device)), dataset=dataset,
                        cache=cache, threads=threads, out=out, processes=processes)


def job_record(job: DiscoveryJob, task, result: Discovery) -> dict:
    """The circuit record of `job`, whatever its outcome (an empty Discovery for a failure)."""
    adapter = pkgutil.resolve_name(job.adapter)()
    return circuit_record(task, result, adapter, job.params, n=job.n, seed=job.seed,
                          ablation=job.ablation, device=job.device)


def run_job(job: DiscoveryJob) -> dict | None:
    """The part of a discovery that runs the method: in the isolated child process, or in each
    rank of a distributed one (benchmark.workflow.ranks starts them with torch.distributed
    initialised). Scores are written beside `job.out` here, so only the record crosses back.

    Among N ranks the model's weights are sharded (benchmark.graph.ranks.shard_model), every
    rank runs the adapter, the counters are summed over the ranks, and rank 0 alone returns
    the record (the others None), with `world_size` and each rank's peak memory."""
    from benchmark.datasets import load_dataset
    from benchmark.graph import ranks
    from benchmark.tasks import load_task
    torch.set_num_threads(max(1, job.threads))
    dev = torch.device(job.device)
    rank, world_size = ranks.world()
    task = load_task(job.task, cache=job.cache, device=job.device)  # straight onto the device
    if world_size > 1 and hasattr(task, "shard"):
        task.shard(dev)  # each rank loads only its share of the weights (a language model)
    discovery = load_dataset(job.dataset, job.task, job.n, job.seed).discovery
    problem = make_problem(task, job.n, job.seed, job.ablation, dev, discovery=discovery)
    if world_size > 1:  # a model without `shard` (Tracr's) is replicated on every rank
        problem.rank, problem.world_size = rank, world_size
    result = pkgutil.resolve_name(job.adapter)().run(problem, job.params)
    peak = (torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    peaks = [round(peak, 1)]
    if world_size > 1:
        c = result.counters
        c.forward_passes, c.forward_examples, c.backward_passes = (int(v) for v in ranks.sum_over_ranks(
            [c.forward_passes, c.forward_examples, c.backward_passes]))
        peaks = ranks.gather_objects(round(peak, 1))
        if rank != 0:
            return None
    record = job_record(job, task, result)
    if record["scores"] is not None:
        record["scores"] = write_scores(job.out, record["scores"])
    if dev.type == "cuda" or world_size > 1:
        record["peak_mem_mb"] = max(peaks)  # of one rank: GPU memory on CUDA
    if world_size > 1:
        record["world_size"] = world_size
        record["rank_peak_mem_mb"] = peaks
    return record
