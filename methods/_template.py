"""Template adapter: copy this file to methods/<your_method>.py and fill it in.

Modules in methods/ whose names do not start with "_" are registered automatically through
their module-level ADAPTER. A method in another package registers through an entry point:

    [project.entry-points."circuitbench.methods"]
    my_method = "my_package.my_module:MyMethod"
"""
from dataclasses import dataclass

import torch

from benchmark.protocol import Adapter, Discovery, Problem


class MyMethod(Adapter):
    name = "my_method"        # unique; `python -m benchmark list` shows it
    version = "1"             # bump when results change: the workflow reruns its jobs
    output = "scores"         # "scores" (one per edge, higher = more important) or "circuit"

    @dataclass(frozen=True)
    class Params:             # the sweep axes, with defaults; the config grids name these
        strength: float = 1.0

    def discover(self, problem: Problem, params) -> Discovery:
        graph, data = problem.graph, problem.data      # the discovery split only
        ablated = problem.ablated(data)                # what removed edges carry
        with torch.no_grad():
            full = problem.forward(data.clean)         # counted forward pass
            mask = torch.ones(graph.n_edges, device=problem.device)
            # one score per edge in canonical order (graph.edges); a dict {edge id: score}
            # is accepted too, but a vector is what scales to millions of edges
            scores = torch.zeros(graph.n_edges, dtype=torch.float64)
            for i in range(graph.n_edges):             # e.g. ablate each edge alone
                mask[i] = 0.0
                out = problem.forward(data.clean, mask, ablated)
                scores[i] = params.strength * float(problem.metric(full, out))
                mask[i] = 1.0
        return Discovery("scores", scores=scores)


ADAPTER = MyMethod
