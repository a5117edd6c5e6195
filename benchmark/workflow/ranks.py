"""A discovery as N ranks of torch.distributed: the launcher and what each rank does.

`run_ranks` is the isolated child's target (benchmark.workflow.isolation.run_isolated, as for a
one-process run: its time limit, group kill and subreaper cover the ranks too). It starts
`torchrun --standalone --nproc-per-node N --max-restarts 0` on benchmark.workflow.rank_main,
which calls `rank` in each rank: the job travels pickled (a frozen dataclass of importable
Params), rank 0 writes its record as JSON, and a rank that dies or raises makes torchrun end the
others and exit non-zero; `run_ranks` then raises an error naming the failed ranks, with their
exit code or signal and the exception each raised: a `failed` (or `oom`) record naming them.

Memory: on the CPU the isolated child's address-space limit (RLIMIT_AS) is inherited by torchrun
and by every rank, so `mem_mb` caps each rank, not their sum (the Slurm rule asks for
mem_mb x N). On CUDA each rank computes on `cuda:LOCAL_RANK` (one device per rank: the job's
device index is not used) and caps its own share of that device's memory; the launcher touches
no CUDA device.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import tempfile
from collections import deque
from pathlib import Path

# one failure of torchrun's summary (ChildFailedError): "rank : 1 (local_rank: 1)" then
# "exitcode : -9 (pid: 123)"
_FAILURE = re.compile(r"rank\s*:\s*(\d+) \(local_rank: \d+\)\s*\n\s*exitcode\s*:\s*(-?\d+)")


def run_ranks(job, mem_mb: int | None = None) -> dict:
    """Rank 0's record of `job` (a DiscoveryJob with processes > 1) run as torchrun's ranks;
    RuntimeError naming the failed ranks when torchrun fails or rank 0 writes nothing. The
    ranks' output passes through (stderr echoed as it comes)."""
    with tempfile.TemporaryDirectory(prefix="circuitbench-ranks-") as tmp:
        job_file, result_file = Path(tmp, "job.pkl"), Path(tmp, "record.json")
        job_file.write_bytes(pickle.dumps({"job": job, "mem_mb": mem_mb}))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
               "--nproc-per-node", str(job.processes), "--max-restarts", "0",
               "-m", "benchmark.workflow.rank_main", str(job_file), str(result_file)]
        # the ranks import what this process can (a test's adapter module too), and use the
        # job's threads (torchrun would set 1)
        env = dict(os.environ, OMP_NUM_THREADS=str(max(1, job.threads)),
                   PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, env=env, text=True,
                                errors="replace")
        lines: deque = deque(maxlen=2000)  # the summary is at the end; a long log is not kept
        for line in proc.stderr:
            sys.stderr.write(line)
            lines.append(line)
        code = proc.wait()
        sys.stderr.flush()
        if code == 0 and result_file.exists():
            return json.loads(result_file.read_text())
        raise RuntimeError(failure_message("".join(lines), code, result_file, job.processes,
                                           mem_mb=mem_mb, device=job.device))


def failure_message(stderr: str, code: int, result_file: Path, processes: int, *,
                    mem_mb: int | None = None, device: str = "cpu") -> str:
    """What failed: the ranks of torchrun's failure summary, each with the exception it raised
    (`rank`) or else its exit code or signal, the cause first; torchrun's own exit code when it
    printed no summary.

    The cause is a rank that died by itself (a signal other than torchrun's SIGTERM), else the
    first to raise: torchrun's own "root cause" is often a victim (a rank whose collective
    broke when its peer died raised first by the clock, or in the same second)."""
    codes = dict(reversed([(int(r), int(c)) for r, c in _FAILURE.findall(stderr)]))
    errors = {r: e for r in range(processes) if (e := rank_error(result_file, r))}
    for r in errors:
        codes.setdefault(r, None)

    def order(r):
        c = codes[r]
        if c is not None and c < 0 and c != -signal.SIGTERM:
            return 0, 0.0, r
        if r in errors:
            return 1, Path(f"{result_file}.rank{r}.error").stat().st_mtime, r
        return 2, 0.0, r

    parts = []
    for r in sorted(codes, key=order):
        c = codes[r]
        # a rank that raised exits 1, or by torchrun's SIGTERM if a peer ended first
        parts.append(f"rank {r} raised {errors[r]}" if r in errors else
                     f"rank {r} was killed by {_signal(-c)}" if c < 0 else
                     f"rank {r} exited with code {c}")
    if not parts:
        parts = [f"torchrun exited with code {code}" if code > 0 else
                 f"torchrun was killed by {_signal(-code)}" if code < 0 else
                 "rank 0 returned no record"]
    text = f"distributed discovery on {processes} ranks failed: " + "; ".join(parts)
    if str(device).startswith("cuda") and mem_mb and "out of memory" in text.lower():
        text += (f" (GPU memory limit {mem_mb} MB per rank; raise mem_mb or lower the batch "
                 "size)")
    return text


def _signal(number: int) -> str:
    try:
        return f"signal {number} ({signal.Signals(number).name})"
    except ValueError:
        return f"signal {number}"


def rank_error(result_file: Path, rank: int) -> str:
    """The exception rank `rank` raised ('' if none was written)."""
    path = Path(f"{result_file}.rank{rank}.error")
    return path.read_text().strip() if path.exists() else ""


def rank(job_file: str, result_file: str) -> None:
    """One rank (torchrun's worker): join the group (gloo on the CPU, NCCL on CUDA), run the
    job, and on rank 0 write its record. An exception is written for the launcher, then
    re-raised (torchrun's summary and @record's error file carry its traceback too)."""
    import torch
    import torch.distributed as dist

    from benchmark.core.artifact import atomic_write_json
    from benchmark.core.processes import backend_of
    from benchmark.discovery import run_job
    from benchmark.workflow.isolation import _cap_memory
    with open(job_file, "rb") as f:
        sent = pickle.load(f)
    job, mem_mb = sent["job"], sent["mem_mb"]
    me, local = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    error_file = Path(f"{result_file}.rank{me}.error")
    torch.set_num_threads(max(1, job.threads))
    try:
        if job.device.startswith("cuda"):
            job = dataclasses.replace(job, device=f"cuda:{local}")
            torch.cuda.set_device(local)
            _cap_memory(mem_mb, job.device)
        dist.init_process_group(backend_of(job.device))
        try:
            record = run_job(job)
        except BaseException as err:  # written before the group ends: its peers' errors follow
            error_file.write_text(f"{type(err).__name__}: {err}")
            raise
        finally:
            dist.destroy_process_group()
    except BaseException as err:
        if not error_file.exists():
            error_file.write_text(f"{type(err).__name__}: {err}")
        raise
    if me == 0 and record is not None:
        atomic_write_json(result_file, record)
