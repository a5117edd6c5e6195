"""Stage 1, tracr -> torch: the port reproduces tracr's compiled model and the RASP program.

Every task is compiled once per session (see conftest); these tests reuse that compilation.
"""
import re

import numpy as np
import pytest
import torch
from task_lists import looped_tasks

from benchmark.backends.tracr.compile import (
    VerificationError,
    extract_artifact,
    stable_label,
    verify,
)
from benchmark.backends.tracr.model import TracrTransformer
from benchmark.core.artifact import Artifact
from benchmark.graph.inputs import verification_inputs

TASKS = looped_tasks()
RASP_CHECKS = 300  # rasp.evaluate is slow in Python: check every input up to this many


def _inputs(task):
    meta = task.meta
    return verification_inputs(meta["symbol_ids"], task.spec.length, task.spec.inputs,
                               meta["bos_id"], task.spec.max_verify_inputs)


def _skip_planted(task, why: str):
    if getattr(task.spec, "planted", None) is not None:
        pytest.skip(f"{task.name} is a planted (trained) model: {why}")


def _without_ids(labels):
    """`any_negative_59:True` -> `any_negative:True`: the id counts RASP expressions made earlier
    in the process."""
    return [re.sub(r"_\d+(?=:|$)", "", label) for label in labels]


@pytest.mark.parametrize("name", TASKS)
def test_torch_equals_haiku(get_task, get_compiled, name):
    import jax.numpy as jnp
    task = get_task(name)
    _skip_planted(task, "its weights are trained, not tracr's: test_planted.py compares its "
                  "answers with the compiled model's")
    if getattr(task.spec, "compression", None) is not None:
        pytest.skip(f"{name}'s residual stream is compressed by a learned W: it is not tracr's "
                    "model (test_compressed.py compares it with the compiled one)")
    program, model = get_compiled(name)
    artifact = extract_artifact(task.spec, program, model)
    tokens, exhaustive = _inputs(task)
    with torch.no_grad():
        ours = TracrTransformer(artifact)(torch.from_numpy(tokens)).numpy()
    out = model.forward(model.params, jnp.asarray(tokens))
    theirs = np.asarray(out.transformer_output.output)[..., artifact.meta["output_dims"]]
    assert ours.dtype == theirs.dtype == np.float32 and ours.shape == theirs.shape
    diff = float(np.abs(ours - theirs).max())
    print(f"{name}: {len(tokens)} inputs (exhaustive={exhaustive}), float32 max "
          f"|torch - haiku| = {diff:.3g}")
    assert diff < 1e-5
    decoded = np.asarray(out.unembedded_output)[:, 1:]
    if task.output_kind == "categorical":
        # tracr decodes by argmax over the output space, in the encoder's order
        assert (ours[:, 1:].argmax(-1) == decoded).all()
    else:
        assert np.abs(ours[:, 1:, 0] - decoded).max() < 1e-5
    # the session's cached artifact is the same compilation: same labels (up to tracr's
    # process-global expression ids, which differ when the other test worker compiled it),
    # same answers
    assert _without_ids(artifact.meta["residual_labels"]) == \
        _without_ids(task.meta["residual_labels"])
    assert artifact.meta["output_dims"] == task.meta["output_dims"]
    with torch.no_grad():
        cached = task.model(torch.from_numpy(tokens)).numpy()
    assert np.array_equal(cached, ours)


@pytest.mark.parametrize("name", TASKS)
def test_decoded_outputs_equal_rasp(get_task, get_compiled, name):
    from tracr.rasp import rasp
    task = get_task(name)
    program, _ = get_compiled(name)
    tokens, _ = _inputs(task)
    if len(tokens) > RASP_CHECKS:
        tokens = tokens[np.random.default_rng(0).choice(len(tokens), RASP_CHECKS, replace=False)]
    inputs = [[task._decoding[int(t)] for t in row[1:]] for row in tokens]
    predicted = task.predict(inputs)
    for values, got in zip(inputs, predicted):
        expected = rasp.evaluate(program, values)
        if task.output_kind == "categorical":
            assert got == list(expected), values
        else:
            assert None not in expected
            assert np.allclose(got, expected, atol=task.spec.numerical_atol, rtol=0), values


@pytest.mark.parametrize("name", TASKS)
def test_meta_records_verification(get_task, name):
    task = get_task(name)
    _skip_planted(task, "no haiku model to verify against: its verification is its accuracy "
                  "vs the compiled model (test_planted.py)")
    v = task.meta["verification"]
    tokens, exhaustive = _inputs(task)
    assert v["n_inputs"] == len(tokens) and v["exhaustive"] == exhaustive
    assert v["max_abs_diff_torch_vs_haiku"] < 1e-5
    assert task.meta["compile_seconds"] > 0 and task.meta["verify_seconds"] > 0


def test_reference_tasks_verified_exhaustively(get_task):
    for name, n in (("reverse", 3 ** 4), ("xproportion", 4 ** 4)):
        v = get_task(name).meta["verification"]
        assert v["exhaustive"] is True and v["n_inputs"] == n


def test_reverse_output_dims_are_labelled_outputs(get_task):
    meta = get_task("reverse").meta
    assert meta["d_model"] == len(meta["residual_labels"]) == 41
    assert meta["output_dims"] == [33, 34, 35]  # DESIGN.md: not the first dims
    assert [meta["residual_labels"][d] for d in meta["output_dims"]] == \
        ["reverse:1", "reverse:2", "reverse:3"]
    assert [meta["raw_residual_labels"][d] for d in meta["output_dims"]] == \
        [f"{meta['output_label']}:{v}" for v in (1, 2, 3)]
    assert meta["output_values"] == [1, 2, 3]


def test_broken_weights_fail_verification(get_task, get_compiled):
    task = get_task("reverse")
    program, model = get_compiled("reverse")
    verify(task.spec, program, model, task.artifact)  # the real artifact passes
    arrays = dict(task.artifact.arrays)
    arrays["l3_wv"] = -arrays["l3_wv"]  # the head that moves the tokens
    broken = Artifact(meta=dict(task.artifact.meta), arrays=arrays)
    with pytest.raises(VerificationError, match="disagrees"):
        verify(task.spec, program, model, broken)
    assert not np.array_equal(task.artifact.arrays["l3_wv"], arrays["l3_wv"])  # copy untouched


def test_numerical_mismatch_fails_verification(get_task, get_compiled):
    task = get_task("xproportion")
    program, model = get_compiled("xproportion")
    arrays = dict(task.artifact.arrays)
    arrays["l1_wo"] = arrays["l1_wo"] * 1.01  # 1% off: beyond numerical_atol on some input
    with pytest.raises(VerificationError, match="xproportion"):
        verify(task.spec, program, model, Artifact(meta=dict(task.artifact.meta), arrays=arrays))


def test_stable_labels():
    assert stable_label("length_5:3") == "length:3"
    assert stable_label("opp_idx-1_3:-5") == "opp_idx-1:-5"
    assert stable_label("length_5_selector_width_attn_output") == \
        "length_selector_width_attn_output"
    assert stable_label("one") == "one"
    assert stable_label("tokens:x") == "tokens:x"
    assert stable_label("indices:3") == "indices:3"  # a value, not a counter


def test_stable_labels_unique_and_counter_free(get_task):
    import re
    for name in ("reverse", "xproportion"):
        labels = get_task(name).meta["residual_labels"]
        assert len(set(labels)) == len(labels)
        assert not [x for x in labels if re.search(r"_\d+$", x.partition(":")[0])], labels


def test_no_jax_needed_to_load(get_task, tmp_path):
    """The saved artifact alone rebuilds the model (jax is only used at compile time)."""
    task = get_task("xproportion")
    path = tmp_path / "a.npz"
    task.artifact.save(path)
    loaded = Artifact.load(path)
    assert loaded.meta["ground_truth"] == task.meta["ground_truth"]
    model = TracrTransformer(loaded)
    tokens = task.dataset(n=20, seed=0).discovery.clean
    assert torch.equal(model(tokens), task.model(tokens))
