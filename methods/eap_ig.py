"""EAP with integrated gradients (Hanna et al. 2024).

The gradient is averaged over `steps` runs whose embeddings go from the ablated ones to the clean
ones (alpha = k / steps, k = 1..steps), which fixes EAP's blind spot where the loss is flat at
the clean run. Cost: steps forward and backward passes per batch, plus the clean run.
"""
from dataclasses import dataclass

from benchmark.protocol import Adapter, Discovery, Problem, param
from methods.attribution import attribution_scores


class EAPIG(Adapter):
    name = "eap_ig"
    version = "1"
    output = "scores"

    @dataclass(frozen=True)
    class Params:
        steps: int = param(5, minimum=1)
        batch_size: int = param(20_000, minimum=1)

    def discover(self, problem: Problem, params) -> Discovery:
        alphas = [k / params.steps for k in range(1, params.steps + 1)]
        scores = attribution_scores(problem, alphas, params.batch_size).abs()
        return Discovery("scores", scores=scores)  # a vector in canonical order


ADAPTER = EAPIG
