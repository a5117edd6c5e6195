"""A distributed adapter for the tests of N-rank discoveries (tests/test_ranks.py), importable by
the ranks torchrun starts.

`rank_sum` sums a tensor of ones over the ranks (all_reduce, SUM) and returns it as every edge's
score: a record whose scores all equal N proves that N ranks ran and talked. Its `fault` makes
rank 1 misbehave instead while rank 0 waits in the collective: SIGKILL itself, hang, or raise.
Each rank appends "parent pid" to $RANK_PIDS (when set) before anything else.
"""
import os
import signal
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

from benchmark.protocol import Adapter, Discovery


class RankSum(Adapter):
    name = "rank_sum"
    version = "1"
    output = "scores"
    distributed = True

    @dataclass(frozen=True)
    class Params:
        fault: str = "none"  # none, sigkill, hang, raise: what rank 1 does

    def discover(self, problem, params):
        rank = dist.get_rank() if dist.is_initialized() else 0
        if os.environ.get("RANK_PIDS"):
            with open(os.environ["RANK_PIDS"], "a") as f:
                f.write(f"{os.getppid()} {os.getpid()}\n")
        if rank == 1 and params.fault == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        if rank == 1 and params.fault == "hang":
            while True:
                time.sleep(0.05)
        if rank == 1 and params.fault == "raise":
            raise RuntimeError("rank 1 broke")
        total = torch.ones(len(problem.graph.edges), dtype=torch.float64)
        if dist.is_initialized():
            dist.all_reduce(total)  # SUM: rank 0 waits here for every other rank
        return Discovery("scores", scores=dict(zip(problem.graph.edges, total.tolist())))


RANK_METHODS = [RankSum]
