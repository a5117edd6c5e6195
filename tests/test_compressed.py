"""Compressed Tracr tasks (superposition): a learned W (D -> d) folded into compiled weights."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from benchmark.backends.tracr.build import ground_truth_inputs
from benchmark.backends.tracr.compress import CompressionError, train_compression, with_compression
from benchmark.backends.tracr.compressed_build import compress_task_artifact
from benchmark.backends.tracr.ground_truth import Readout, validate
from benchmark.backends.tracr.model import TracrTransformer
from benchmark.backends.tracr.spec import Compression, compressed
from benchmark.core.registry import TASKS
from benchmark.graph.circuit import ablated_outputs, graph_of, run_circuit
from benchmark.graph.metrics import agreement

SMALLEST = "reverse_c8"  # 81 inputs, 94 edges


def _tokens(task):
    return ground_truth_inputs(task.spec, task.meta)


def test_identity_compression_is_the_compiled_model_bit_for_bit(get_task):
    task = get_task("reverse")
    d = task.model.d_model
    model = TracrTransformer(with_compression(task.artifact, np.eye(d, dtype=np.float32)))
    assert model.d_model == d and model.unembedding is not None
    tokens, clean, corrupted = _tokens(task)
    graph = graph_of(task.model)
    mask = (torch.rand(graph.n_edges, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    with torch.no_grad():
        assert torch.equal(model(tokens), task.model(tokens))
        for kind in ("zero", "resample"):
            ab, ab_c = (ablated_outputs(m, kind, clean, corrupted) for m in (task.model, model))
            assert torch.equal(run_circuit(model, clean, mask, ab_c),
                               run_circuit(task.model, clean, mask, ab))
    for w in graph.writers:
        assert model.write_dims(w) == task.model.write_dims(w)


def test_compressed_task_reaches_accuracy_and_its_ground_truth_validates(get_task):
    task, base = get_task(SMALLEST), get_task("reverse")
    assert task.model.d_model == 8 < base.model.d_model == 41
    assert task.spec.family == "compressed" and task.meta["compression"]["accuracy"] >= 0.99
    tokens, clean, corrupted = _tokens(base)
    with torch.no_grad():
        assert agreement(base.model(tokens), task.model(tokens), "categorical") >= 0.99
        resampled = ablated_outputs(task.model, "resample", clean, corrupted)
    readout = Readout(task.output_kind, task.numerical_atol, task.partial)
    for name, inputs, ablated in (("structural", tokens, None), ("zero", tokens, None),
                                  ("resample", clean, resampled)):
        validate(task.model, task.ground_truth(name), inputs, ablated, readout, name,
                 check_necessary=name != "structural")
    relation = task.meta["ground_truth_compression"]["relation"]
    assert relation["structural"]["relation"] in ("equal", "superset")
    assert "ground_truth_compression" not in task.model.meta  # methods never see it


def test_same_seed_same_w_bits(get_task):
    task = get_task("reverse")
    tokens = _tokens(task)[0]
    runs = [train_compression(task.artifact, tokens, Compression(8, seed=s, steps=30), 1e-3)[0]
            for s in (0, 0, 1)]
    assert runs[0].tobytes() == runs[1].tobytes()
    assert runs[0].tobytes() != runs[2].tobytes()


def test_too_narrow_fails_loudly(get_task):
    task = get_task("hist")
    spec = compressed(task.spec, width=6, steps=20)
    tokens, clean, corrupted = _tokens(task)
    with pytest.raises(CompressionError, match="agrees with the compiled one"):
        compress_task_artifact(spec, task.artifact, tokens, clean, corrupted)


def test_compressed_variants_are_registered():
    names = [n for n in TASKS.names() if getattr(TASKS.get(n), "compression", None)]
    assert len(names) >= 6 and len({TASKS.get(n).base for n in names}) >= 3
    out = subprocess.run([sys.executable, "-m", "benchmark", "list"], capture_output=True,
                         text=True, check=True).stdout
    assert all(n in out for n in names)
