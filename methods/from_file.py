"""A circuit or score file made elsewhere, scored like any discovery: MIB's circuit files (.json
or .pt, as hannamw/EAP-IG writes them; any tool that exports them) or this benchmark's own
circuit records. It gives a circuit from another tool a leaderboard row.

No model is run: the file's scores or its in_graph circuit are returned as they are, at edge or
node level. MIB's scores are signed effects that MIB ranks by |score|, so they come back with
ranking="abs" (a file this benchmark exported keeps its record's ranking). The workflow keys
the run on the file's sha256 (`input_files`): new content reruns it, whatever the path.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.protocol import (
    Adapter,
    Discovery,
    Problem,
    circuit_file_format,
    edges_of_nodes,
    nodes_of_edges,
    param,
    read_circuit_file,
)

NO_PATH = ("from_file needs a path: the circuit file to score (a config: methods: {from_file: "
           "{path: [circuits/ioi.json]}}; the CLI: --path circuits/ioi.json)")


class FromFile(Adapter):
    name = "from_file"
    version = "1"
    output = "scores"  # or "circuit": whichever the file holds (`use`)

    @dataclass(frozen=True)
    class Params:
        # the circuit file: relative paths are read from the folder snakemake (or the CLI) runs in
        path: str = ""
        # "scores" (the file's scores), "circuit" (its in_graph units), or "auto": its scores
        # when it has any at `level`, else its circuit
        use: str = param("auto", choices=("auto", "scores", "circuit"))
        # "edge", "node", or "auto": the level the file was made at (node when it has node
        # scores and no edge scores, or a node-level record)
        level: str = param("auto", choices=("auto", "edge", "node"))

    @classmethod
    def input_files(cls, params) -> list[str]:
        if not params.path:
            raise ValueError(NO_PATH)
        circuit_file_format(params.path)  # missing or malformed: an error now, not in the job
        return [params.path]

    def discover(self, problem: Problem, params) -> Discovery:
        if not params.path:
            raise ValueError(NO_PATH)
        graph = problem.graph
        f = read_circuit_file(params.path, graph)
        level = f.level if params.level == "auto" else params.level
        c = f.content
        values = c.edge_scores if level == "edge" else c.node_scores
        use = params.use if params.use != "auto" else (
            "scores" if values is not None else "circuit")
        info = {"file": f.path, "sha256": f.sha256, "format": f.format, "file_level": f.level}
        if use == "scores":
            if values is None:
                raise ValueError(f"circuit file {f.path} has no {level} scores; use: circuit "
                                 f"(its in_graph {level}s)" +
                                 ("" if params.level == "auto" else " or level: auto"))
            if level == "node":
                if np.isnan(values).any():
                    unscored = [w for w, v in zip(graph.writers, values) if np.isnan(v)]
                    raise ValueError(f"circuit file {f.path} leaves {len(unscored)} nodes "
                                     f"unscored (NaN), e.g. {unscored[:3]}: give every node "
                                     "a score, or use: circuit")
                values = np.append(values, 0.0)  # logits: always kept, its score ignored
            return Discovery("scores", scores=values, level=level, ranking=f.ranking,
                             info=info)
        if level == "edge":
            kept = c.edges if f.level == "edge" else edges_of_nodes(graph, c.nodes)
        else:
            kept = c.nodes if f.level == "node" else nodes_of_edges(graph, c.edges)
        return Discovery("circuit", circuit=frozenset(kept), level=level, info=info)


ADAPTER = FromFile
