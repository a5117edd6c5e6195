"""EAP with integrated gradients (Hanna et al. 2024).

The gradient is averaged over `steps` runs whose embeddings go from the ablated ones to the clean
ones, which fixes EAP's blind spot where the loss is flat at the clean run. Cost: steps forward
and backward passes per batch, plus the clean run. Scores are signed like EAP's (positive =
ablating the edge raises the task loss), ranked by |score| (ranking "abs").

points: where the path is sampled, alpha = k / steps with
- "ours" (the default): k = 1..steps, the clean end included (steps=1 is EAP);
- "mib": k = 0..steps-1, the ablated end included and the clean one not, as MIB's
  "EAP-IG-inputs" does (hannamw/EAP-IG `get_scores_eap_ig`, `range(0, steps)`).
"""
from dataclasses import dataclass

from benchmark.protocol import Adapter, Discovery, Problem, param
from methods.attribution import attribution_scores

FIRST_K = {"ours": 1, "mib": 0}  # the points' first k of alpha = k / steps


def alphas(steps: int, points: str) -> list[float]:
    """The interpolation points alpha = k / steps of `points` ("ours" or "mib")."""
    return [k / steps for k in range(FIRST_K[points], FIRST_K[points] + steps)]


class EAPIG(Adapter):
    name = "eap_ig"
    version = "2"  # 2: signed scores, ranking "abs" (1 returned |score|); `points`
    output = "scores"

    @dataclass(frozen=True)
    class Params:
        steps: int = param(5, minimum=1)
        batch_size: int = param(20_000, minimum=1)
        points: str = param("ours", choices=tuple(FIRST_K))

    def discover(self, problem: Problem, params) -> Discovery:
        scores = attribution_scores(problem, alphas(params.steps, params.points),
                                    params.batch_size)
        return Discovery("scores", scores=scores, ranking="abs")  # canonical order


ADAPTER = EAPIG
