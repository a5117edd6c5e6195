"""Negative control: a uniformly random score per edge, so every table shows chance level."""
from dataclasses import dataclass

import torch

from benchmark.protocol import Adapter, Discovery, Problem


class RandomScores(Adapter):
    name = "random"
    version = "1"
    output = "scores"

    @dataclass(frozen=True)
    class Params:
        pass

    def discover(self, problem: Problem, params) -> Discovery:
        gen = torch.Generator().manual_seed(problem.seed)
        values = torch.rand(problem.graph.n_edges, generator=gen, dtype=torch.float64)
        return Discovery("scores", scores=values)  # a vector in canonical order


ADAPTER = RandomScores
