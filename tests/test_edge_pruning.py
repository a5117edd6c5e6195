"""Edge Pruning: the per-task presets recover the zero-ablation ground truth, deterministically.

Fast by design (about 30 s): xproportion runs its preset (720 steps); the reverse preset (6000
steps, ~45 s) runs only with CIRCUITBENCH_SLOW=1. Recovery rates over many seeds come from
scripts/edge_pruning_rates.py.
"""
import os

import pytest
import torch

from benchmark.discovery import discover, make_problem
from methods import edge_pruning_parts
from methods.edge_pruning import PRESETS, EdgePruning, params_for_task

TIMING = ("train_seconds", "train_cpu_seconds")


def untimed(info: dict) -> dict:
    """A run's info without its wall/CPU timings, which differ between identical runs."""
    return {k: v for k, v in info.items() if k not in TIMING}


slow = pytest.mark.skipif(not os.environ.get("CIRCUITBENCH_SLOW"),
                          reason="slow: set CIRCUITBENCH_SLOW=1")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One thread, as the workflow's discover jobs run: the model is tiny and overhead-bound,
    and a second thread only adds contention (10x slower on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def xprop_runs(get_task):
    """The xproportion preset (per-example sampling, zero ablation) on seeds 0 and 1."""
    task = get_task("xproportion")
    return task, [discover(task, "edge_pruning", n=1000, seed=s, ablation="zero")
                  for s in (0, 1)]


def test_xproportion_preset_recovers_zero_ground_truth(xprop_runs):
    task, runs = xprop_runs
    for result, _, p in runs:
        assert p == PRESETS["xproportion"] and p.sample_per_example
        assert result.circuit == task.ground_truth("zero")
        assert result.info["binary_fraction"] == 1.0
        assert result.info["final_metric"] < 1e-6


def test_reported_sparsity_is_the_circuit_size(xprop_runs):
    task, runs = xprop_runs
    for result, _, p in runs:
        info = result.info
        assert info["sparsity_reached"] == 1 - len(result.circuit) / task.graph.n_edges
        assert info["edges_kept"] == len(result.circuit)
        assert info["target_sparsity"] == p.target_sparsity
        c = result.counters
        # full outputs + one per step + the final circuit's metric; one backward per step
        assert c.backward_passes == p.steps
        assert c.forward_passes == p.steps + 2


def test_same_seed_same_circuit(get_task, xprop_runs):
    task, runs = xprop_runs
    again, _, _ = discover(task, "edge_pruning", n=1000, seed=0, ablation="zero")
    assert again.circuit == runs[0][0].circuit and untimed(again.info) == untimed(runs[0][0].info)


def test_short_runs_are_deterministic_and_seed_dependent(get_task):
    task = get_task("xproportion")
    a = [discover(task, "edge_pruning", {"steps": 40}, n=200, seed=s)[0] for s in (3, 3, 4)]
    assert untimed(a[0].info) == untimed(a[1].info) and a[0].circuit == a[1].circuit
    assert a[0].info["train_metric_last"] != a[2].info["train_metric_last"]


def test_per_batch_sampling_runs(get_task):
    task = get_task("xproportion")
    result, _, p = discover(task, "edge_pruning", {"sample_per_example": False, "steps": 200},
                            n=500, seed=0)
    assert not p.sample_per_example and result.info["sampling"] == "per_batch"
    assert result.kind == "circuit" and result.circuit <= set(task.graph.edges)
    assert 0 <= result.info["sparsity_reached"] <= 1


def test_resample_cache_matches_per_batch_ablation(get_task, monkeypatch):
    """Precomputed resample-ablated outputs give the same run as computing them per batch."""
    task = get_task("xproportion")
    params = {"steps": 30}
    cached, _, _ = discover(task, "edge_pruning", params, n=200, seed=2, ablation="resample")
    monkeypatch.setattr(edge_pruning_parts, "CACHE_BYTES", 0)
    fresh, _, _ = discover(task, "edge_pruning", params, n=200, seed=2, ablation="resample")
    assert fresh.circuit == cached.circuit
    assert fresh.info["train_metric_last"] == pytest.approx(cached.info["train_metric_last"],
                                                            rel=1e-5, abs=1e-12)
    assert fresh.counters.forward_passes > cached.counters.forward_passes  # one per step more


@pytest.mark.parametrize("ablation", ["mean", "resample"])
def test_node_masks_and_other_ablations_run(get_task, ablation):
    task = get_task("reverse")
    result, _, _ = discover(task, "edge_pruning", {"node_masks": True, "steps": 30}, n=100,
                            seed=0, ablation=ablation)
    assert result.circuit <= set(task.graph.edges)
    assert "nodes_kept" in result.info and 0 <= result.info["nodes_kept"] <= len(task.graph.writers)


def test_presets_and_overrides():
    assert PRESETS["reverse"] == EdgePruning.Params()  # the defaults are the reverse settings
    x = params_for_task("xproportion")
    assert (x.steps, x.mask_lr, x.lambda_lr, x.batch_size) == (720, 1.0, 1e-4, 16)
    assert params_for_task("xproportion", steps="100").steps == 100  # strings converted
    assert params_for_task("some_new_task") == EdgePruning.Params()
    assert params_for_task("reverse") == EdgePruning.params("reverse")
    d = EdgePruning.Params()
    assert (d.steps, d.batch_size, d.mask_lr, d.lambda_lr, d.target_sparsity) == \
        (6000, 16, 0.03, 1e-3, 1.02)
    assert (d.init_log_alpha, d.init_std, d.stretch_left, d.stretch_right, d.threshold) == \
        (10.0, 0.01, -0.1, 1.1, 0.005)
    assert d.sample_per_example and not d.node_masks and not d.progress
    with pytest.raises(ValueError, match="no parameter"):
        params_for_task("reverse", tau=1.0)


def test_runs_on_the_problem_device(get_task):
    """Tensors follow problem.device (CPU here; the same code path serves CUDA)."""
    task = get_task("xproportion")
    problem = make_problem(task, n=50, seed=0, ablation="zero", device=torch.device("cpu"))
    result = EdgePruning().run(problem, params_for_task("xproportion", steps=5))
    assert result.circuit <= set(task.graph.edges)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_circuit_kind(get_task):
    task = get_task("xproportion")
    result, _, _ = discover(task, "edge_pruning", {"steps": 50}, n=100, seed=0, device="cuda")
    assert result.circuit <= set(task.graph.edges)
    task.to(torch.device("cpu"))


@slow
def test_reverse_preset_recovers_zero_ground_truth(get_task):
    task = get_task("reverse")
    result, _, _ = discover(task, "edge_pruning", n=1000, seed=0, ablation="zero")
    assert result.circuit == task.ground_truth("zero")
    assert result.info["binary_fraction"] == 1.0


def test_checkpointing_and_autocast_options(get_task):
    """checkpoint_layers recomputes blocks (the same circuit as without); bf16 autocast runs
    with float32 masks where the CPU has bf16 instructions, and is refused clearly elsewhere."""
    import torch

    from benchmark.discovery import discover
    from methods.edge_pruning import EdgePruning, check_autocast
    task = get_task("xproportion")
    base = dict(steps=60, batch_size=8)
    plain, _, _ = discover(task, "edge_pruning", base, n=64, seed=0)
    ckpt, _, _ = discover(task, "edge_pruning", dict(base, checkpoint_layers=True), n=64, seed=0)
    assert ckpt.circuit == plain.circuit
    assert ckpt.info["train_metric_last"] == pytest.approx(plain.info["train_metric_last"],
                                                           rel=1e-5, abs=1e-7)
    params = EdgePruning.params(autocast="bf16")
    if torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported():
        check_autocast(params, "cpu")
        half, _, _ = discover(task, "edge_pruning", dict(base, autocast="bf16"), n=64, seed=0)
        assert half.info["edges_kept"] >= 1
    else:
        with pytest.raises(ValueError, match="autocast bf16 on a CPU without bf16"):
            check_autocast(params, "cpu")
    with pytest.raises(ValueError, match="autocast"):
        EdgePruning.params(autocast="fp8")
