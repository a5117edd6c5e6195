"""Edge Attribution Patching (Syed et al. 2023): one gradient, every edge scored.

2 forward passes (clean, and the corrupted run for resample ablation) and 1 backward pass per
batch. Scores are the signed (ablated - clean) . dL/d(reader input): the first-order estimate of
what ablating the edge adds to the task loss (positive = the edge helps). The benchmark ranks by
|score| (ranking "abs"); the sign is kept for MIB's CPR.
"""
from dataclasses import dataclass

from benchmark.protocol import Adapter, Discovery, Problem, param
from methods.attribution import attribution_scores


class EAP(Adapter):
    name = "eap"
    version = "2"  # 2: signed scores, ranking "abs" (1 returned |score|: the same ranking)
    output = "scores"

    @dataclass(frozen=True)
    class Params:
        # examples per gradient; bounds memory, not the result
        batch_size: int = param(20_000, minimum=1)

    def discover(self, problem: Problem, params) -> Discovery:
        scores = attribution_scores(problem, [1.0], params.batch_size)
        return Discovery("scores", scores=scores, ranking="abs")  # canonical order


ADAPTER = EAP
