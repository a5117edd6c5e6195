"""Node attribution patching, NAP (attribution patching at the node level, as MIB calls the
node version of EAP: Syed et al. 2023; Nanda 2023): the first-order effect on the loss of
ablating each node.

Node n scores mean over examples x of (ablated_n - clean_n) . dL_x/d(residual at n's output),
summed over positions: minus the mean gradient w.r.t. the node mask at m = 1
(methods/node_gradients.py), L_x the example's task loss (`problem.objective`). Signed: positive
when ablating the node raises the loss, i.e. the node helps the task; the discovery says
ranking="abs", so the benchmark ranks by |score| and MIB's CPR by the signed score. Under zero
ablation ablated_n is 0, so the score is -clean_n . dL/d(residual).

On a numerical task `objective` is the mean output itself (no loss to lower), so there the sign
says which way removing the node moves the output (positive: removal raises it); the ranking by
|score| is the same. A first-order score: where removing a node is far from linear (a language
model's `input` under resample) its sign can be wrong (measured on ioi@tiny_gpt2: -1.19 while
the full removal raises the loss by 11.2); tests/test_node_methods.py checks the score against
finite differences.

Cost class: one forward and one backward per batch (plus the corrupted run for resample
ablation), like EAP.
"""
from __future__ import annotations

from dataclasses import dataclass

from benchmark.protocol import Adapter, Discovery, Problem, param
from methods.node_gradients import node_gradient_sums, with_output_node


class NAP(Adapter):
    name = "nap"
    version = "1"
    output = "scores"

    @dataclass(frozen=True)
    class Params:
        # examples per gradient; bounds memory, not the result
        batch_size: int = param(20_000, minimum=1)

    def discover(self, problem: Problem, params) -> Discovery:
        signed, _ = node_gradient_sums(problem, params.batch_size)
        scores = -signed / len(problem.data)
        return Discovery("scores", scores=with_output_node(scores), level="node",
                         ranking="abs")


ADAPTER = NAP
