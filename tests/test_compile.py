"""The torch port reproduces tracr's compiled model and the RASP program on every input."""
import numpy as np
import pytest
import torch

from benchmark import list_tasks
from benchmark.inputs import verification_inputs
from benchmark.model import TracrTransformer
from tasks.tracr_compile import VerificationError, stable_label, verify

TASKS = list_tasks()


@pytest.fixture(scope="module")
def compiled():
    """tracr compilations, one per task (the haiku model is not cached on disk)."""
    from tasks.tracr_compile import compile_program
    cache = {}

    def get(spec):
        if spec.name not in cache:
            cache[spec.name] = compile_program(spec)
        return cache[spec.name]

    return get


@pytest.mark.parametrize("name", TASKS)
def test_torch_equals_haiku_and_rasp(get_task, compiled, name):
    import jax.numpy as jnp
    from tracr.rasp import rasp
    task = get_task(name)
    program, model = compiled(task.spec)
    meta = task.meta
    tokens, exhaustive = verification_inputs(meta["symbol_ids"], task.spec.length,
                                             task.spec.inputs, meta["bos_id"],
                                             task.spec.max_verify_inputs)
    with torch.no_grad():
        ours = task.model(torch.from_numpy(tokens)).numpy()
    out = model.forward(model.params, jnp.asarray(tokens))
    theirs = np.asarray(out.transformer_output.output)[..., meta["output_dims"]]
    diff = float(np.abs(ours - theirs).max())
    print(f"{name}: {len(tokens)} inputs (exhaustive={exhaustive}), max |torch - haiku| = "
          f"{diff:.3g}")
    assert diff < 1e-5
    if task.output_kind == "categorical":
        assert (ours[:, 1:].argmax(-1) == np.asarray(out.unembedded_output)[:, 1:]).all()
    decoded = task.predict([[task._decoding[int(t)] for t in row] for row in tokens[:50]])
    for row, got in zip(tokens[:50], decoded):
        expected = rasp.evaluate(program, [task._decoding[int(t)] for t in row[1:]])
        if task.output_kind == "categorical":
            assert got == expected
        else:
            assert np.allclose(got, expected, atol=task.spec.numerical_atol)
    assert meta["verification"]["n_inputs"] == len(tokens)


def test_reference_tasks_verified_exhaustively(get_task):
    for name, n in (("reverse", 81), ("xproportion", 256)):
        v = get_task(name).meta["verification"]
        assert v["exhaustive"] and v["n_inputs"] == n


def test_broken_weights_fail_verification(get_task, compiled):
    task = get_task("reverse")
    program, model = compiled(task.spec)
    broken = type(task.artifact)(meta=dict(task.artifact.meta),
                                 arrays=dict(task.artifact.arrays))
    broken.arrays["l3_wv"] = -broken.arrays["l3_wv"]
    with pytest.raises(VerificationError, match="disagrees"):
        verify(task.spec, program, model, broken)


def test_stable_labels():
    assert stable_label("length_5:3") == "length:3"
    assert stable_label("opp_idx-1_3:-5") == "opp_idx-1:-5"
    assert stable_label("length_5_selector_width_attn_output") == \
        "length_selector_width_attn_output"
    assert stable_label("one") == "one"


def test_no_jax_needed_to_load(get_task, tmp_path):
    """The cached artifact alone rebuilds the model (jax is only used at compile time)."""
    task = get_task("xproportion")
    path = tmp_path / "a.npz"
    task.artifact.save(path)
    model = TracrTransformer(type(task.artifact).load(path))
    tokens = task.dataset(n=20, seed=0).discovery.clean
    assert torch.equal(model(tokens), task.model(tokens))
