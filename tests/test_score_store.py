"""The method protocol at scale: scores as a float64 vector in canonical order, stored beside the
JSON record as `.npy` (tied to it by sha256), node-level discoveries, the task's own objective."""
import json
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from benchmark.core.artifact import atomic_write_json
from benchmark.core.score_file import scores_path, write_scores
from benchmark.graph.graph import Graph
from benchmark.protocol import Discovery
from benchmark.scoring.stage import read_circuit


def _n_edges(n_layers: int, n_heads: int, n_inputs: int) -> int:
    """Edges of Graph(n_layers, n_heads, n_inputs writers), without building it."""
    total = 0
    for layer in range(n_layers):
        before = n_inputs + layer * (n_heads + 1)
        total += before * 3 * n_heads + before + n_heads  # q/k/v ports, then the MLP
    return total + n_inputs + n_layers * (n_heads + 1)    # the logits


def _record(n_edges: int, task: str = "big") -> dict:
    return dict(task=task, method="eap", params={}, seed=0, n_examples=10, ablation="zero",
                kind="scores", level="edge", status="ok", n_edges=n_edges, circuit=None)


def _write(path, record: dict, values) -> dict:
    """What the discover stage does: the scores file first, then the record."""
    record = dict(record, scores=write_scores(path, values))
    atomic_write_json(path, record)
    return record


def test_the_edge_count_formula_matches_the_graph():
    for shape in ((2, 3, ("input",)), (4, 4, ("tok_embeds", "pos_embeds"))):
        assert Graph(*shape).n_edges == _n_edges(shape[0], shape[1], len(shape[2]))


def test_a_3_9m_edge_scores_record_round_trips(tmp_path):
    """A 13B-shaped graph (40 layers x 40 heads: 3,877,661 edges): write then read gives the
    identical vector, in well under a second each way; the JSON stays small."""
    n = _n_edges(40, 40, 1)
    assert n == 3_877_661
    values = np.random.default_rng(0).standard_normal(n)  # float64: exact, no rounding
    path = tmp_path / "default.json"
    start = time.perf_counter()
    record = _write(path, _record(n), values)
    write_s = time.perf_counter() - start
    start = time.perf_counter()
    back = read_circuit(str(path), "big")  # no graph: the size check against n_edges
    read_s = time.perf_counter() - start
    assert back["scores"].dtype == np.float64 and np.array_equal(back["scores"], values)
    assert back["scores"].tobytes() == values.tobytes()  # bit for bit, signs of zero too
    npy, js = path.with_name("default.scores.npy").stat().st_size, path.stat().st_size
    assert record["scores"] == {"file": "default.scores.npy", "shape": [n], "dtype": "float64",
                                "sha256": record["scores"]["sha256"]}
    print(f"\n{n:,} edges: write {write_s:.3f} s, read {read_s:.3f} s, scores file "
          f"{npy / 2**20:.1f} MiB ({npy:,} bytes), record {js:,} bytes")
    assert npy == 8 * n + 128 and js < 2000
    assert write_s < 5 and read_s < 5


@pytest.fixture
def small(tmp_path):
    graph = Graph(2, 2)
    values = np.linspace(-1, 1, graph.n_edges)
    path = tmp_path / "c.json"
    record = _write(path, _record(graph.n_edges, "reverse"), values)
    return graph, path, record, values


def test_a_missing_truncated_or_swapped_scores_file_is_bad_output(small, tmp_path):
    graph, path, record, values = small
    side = tmp_path / "c.scores.npy"
    assert scores_path(path) == str(side)
    assert np.array_equal(read_circuit(str(path), "reverse", graph)["scores"], values)
    good = side.read_bytes()
    other = tmp_path / "other.json"
    _write(other, _record(graph.n_edges, "reverse"), values[::-1].copy())
    for damage, says in [
        (lambda: side.unlink(), "is missing or unreadable"),
        (lambda: side.write_bytes(good[:200]), "does not match the record's sha256"),
        (lambda: side.write_bytes((tmp_path / "other.scores.npy").read_bytes()),
         "does not match the record's sha256"),
    ]:
        side.write_bytes(good)
        damage()
        with pytest.raises(ValueError, match=f"circuit file {path} is an ok run with bad "
                                             f"output \\(scores file .*{says}"):
            read_circuit(str(path), "reverse", graph)
    side.write_bytes(good)
    record["scores"]["shape"] = [graph.n_edges + 1]
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match="holds float64"):
        read_circuit(str(path), "reverse", graph)


def test_quarantine_sets_both_files_aside(small, tmp_path):
    from benchmark.workflow.damaged import quarantine
    graph, path, _, _ = small
    side = tmp_path / "c.scores.npy"
    side.write_bytes(side.read_bytes()[:-8])
    moved = quarantine([(str(path), lambda: read_circuit(str(path), "reverse", graph),
                         [str(side)])])
    assert moved == [str(path)] and not path.exists() and not side.exists()
    assert (tmp_path / "c.json.damaged").exists()
    assert (tmp_path / "c.scores.npy.damaged").exists()


def test_a_record_of_the_all_json_format_still_reads(small, tmp_path):
    graph, _, _, values = small
    path = tmp_path / "old.json"
    path.write_text(json.dumps(dict(_record(graph.n_edges, "reverse"),
                                    scores=dict(zip(graph.edges, values.tolist())))))
    assert np.array_equal(read_circuit(str(path), "reverse", graph)["scores"], values)


def test_scores_in_any_form_become_one_vector():
    graph = Graph(2, 2)
    values = torch.arange(graph.n_edges, dtype=torch.float32) / 7  # float32: exact in float64
    forms = [values, values.numpy(), values.tolist(),
             dict(reversed(list(zip(graph.edges, values.tolist()))))]
    for form in forms:
        d = Discovery("scores", scores=form).check(graph)
        assert d.scores.dtype == np.float64
        assert d.scores.tobytes() == values.double().numpy().tobytes()
        assert list(d.score_dict()) == graph.edges
    for bad, says in [(values[:-1], "got a vector of shape"), (values.bool(), "real numbers"),
                      (["x"] * graph.n_edges, "real numbers"),
                      (torch.full((graph.n_edges,), float("inf")), "non-finite scores for")]:
        with pytest.raises(ValueError, match=says):
            Discovery("scores", scores=bad).check(graph)


def test_nodes_and_node_level_discoveries():
    graph = Graph(2, 2, ("input",))
    assert graph.nodes == ["input", "a0.h0", "a0.h1", "m0", "a1.h0", "a1.h1", "m1", "logits"]
    writers = {e.split("->")[0] for e in graph.edges}
    readers = {Graph.node_of(e.split("->")[1]) for e in graph.edges}
    assert set(graph.nodes) == writers | readers
    d = Discovery("scores", scores=np.arange(graph.n_nodes), level="node").check(graph)
    assert d.score_dict() == {n: float(i) for i, n in enumerate(graph.nodes)}
    assert Discovery("circuit", circuit=frozenset({"a0.h1", "logits"}), level="node").check(graph)
    with pytest.raises(ValueError, match="circuit nodes not in the graph"):
        Discovery("circuit", circuit=frozenset({"a0.h0<q>"}), level="node").check(graph)
    with pytest.raises(ValueError, match="level must be one of"):
        Discovery("circuit", circuit=frozenset(), level="head").check(graph)
    with pytest.raises(ValueError, match="8 nodes"):
        Discovery("scores", scores=np.zeros(graph.n_edges), level="node").check(graph)


def test_the_default_objective_is_the_task_loss_per_example(get_task):
    from benchmark.discovery import make_problem
    task = get_task("reverse")
    problem = make_problem(task, n=20, seed=0, ablation="zero", device=torch.device("cpu"))
    assert problem.task_objective is None  # a tracr task has no measure of its own
    full = problem.forward(problem.data.clean)
    mask = torch.ones(task.graph.n_edges)
    mask[::3] = 0
    out = problem.forward(problem.data.clean, mask)
    per = problem.objective(full, out, problem.data)
    assert per.shape == (20,)
    assert float(per.mean()) == pytest.approx(float(problem.task_loss(full, out)), rel=1e-6)


def test_a_prompt_task_objective_is_its_measure_lost():
    from benchmark.backends.lm.metrics import logit_diff, logit_diff_per_example
    from benchmark.backends.lm.task import LMTask
    from benchmark.graph.data import Split
    fake = SimpleNamespace(spec=SimpleNamespace(metric="logit_diff"))
    fake._measure = lambda outputs, split: LMTask._measure(fake, outputs, split)
    gen = torch.Generator().manual_seed(0)
    full, circuit = torch.randn(6, 2, 11, generator=gen), torch.randn(6, 2, 11, generator=gen)
    split = Split(torch.zeros(6, 3, dtype=torch.long), torch.zeros(6, 3, dtype=torch.long),
                  answer=torch.arange(6), rival=torch.arange(6) + 1)
    loss = LMTask.objective(fake, full, circuit, split)
    pos = torch.ones(6, dtype=torch.long)
    expected = (logit_diff_per_example(full, pos, split.answer, split.rival)
                - logit_diff_per_example(circuit, pos, split.answer, split.rival))
    assert torch.equal(loss, expected)
    assert float(LMTask.objective(fake, full, full, split).abs().max()) == 0.0
    assert LMTask.task_metric(fake, full, split) == float(logit_diff(full, pos, split.answer,
                                                                     split.rival))


def test_methods_import_only_the_protocol():
    """methods/ use the documented public API (benchmark.protocol's __all__), nothing behind it."""
    from test_layers import _imports, _module_name, _sources

    import benchmark.protocol as protocol
    private = [f"{_module_name(p)} imports {t}" for p in _sources("methods")
               for t in _imports(p) if t.startswith("benchmark") and t != "benchmark.protocol"]
    assert private == []
    assert all(hasattr(protocol, name) for name in protocol.__all__)
