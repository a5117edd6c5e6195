"""The GPU path, pinned on the CPU (DESIGN.md §11): a discovery's child is spawned, never
forked, for a CUDA device, and capped on the GPU instead of by RLIMIT_AS; the parent's device
check does not initialise CUDA; scoring in batches equals scoring in one forward. The tests
marked `cuda` run the same stages on a GPU and skip elsewhere."""
import json
import os
import resource
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from benchmark.core.devices import resolve_device  # noqa: E402
from benchmark.workflow import isolation  # noqa: E402
from benchmark.workflow.discover_stage import discover_stage  # noqa: E402

NVML = "PYTORCH_NVML_BASED_CUDA_CHECK"
cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                          reason="needs a CUDA GPU: the discover and score stages on device cuda")




@pytest.fixture
def fake_gpu(monkeypatch):
    """This machine sees one CUDA device (as NVML would say), and run_isolated only records
    how it was asked to run the child: a failed child, whose record the stage still writes."""
    import benchmark.core.devices
    import benchmark.workflow.discover_stage
    monkeypatch.setattr(benchmark.core.devices, "cuda_device_count", lambda: 1)
    calls = []

    def run_isolated(target, kwargs, **how):
        calls.append(dict(how, kwargs=kwargs))
        return isolation.Outcome("failed", "not run", None, 0.0, 0.0)

    monkeypatch.setattr(benchmark.workflow.discover_stage, "run_isolated", run_isolated)
    return calls


def _stage(dataset, task_cache, tmp_path, device, fork):
    return discover_stage("xproportion", task_cache, dataset, "eap", {}, "zero", 50, 0,
                          str(tmp_path / "c.json"), device=device, timeout_s=60, mem_mb=4000,
                          eval_examples=50, fork=fork)


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "auto"])
def test_a_cuda_child_is_spawned_and_capped_on_the_gpu(fake_gpu, dataset, task_cache, tmp_path,
                                                       device):
    """The workflow asks for a fork; a CUDA child gets spawn, and its mem_mb goes with the
    device, which the child turns into a GPU fraction, not RLIMIT_AS (test below)."""
    record = _stage(dataset, task_cache, tmp_path, device, fork=True)
    (how,) = fake_gpu
    assert how["start"] == "spawn"
    assert how["device"].startswith("cuda") and how["kwargs"]["job"].device == how["device"]
    assert how["mem_mb"] == 4000 and record["status"] == "failed"


def test_a_cpu_child_forks_under_rlimit_as(fake_gpu, dataset, task_cache, tmp_path):
    _stage(dataset, task_cache, tmp_path, "cpu", fork=True)
    _stage(dataset, task_cache, tmp_path, "cpu", fork=False)
    assert [(h["start"], h["device"], h["mem_mb"]) for h in fake_gpu] == [
        ("fork", "cpu", 4000), ("spawn", "cpu", 4000)]


def test_the_child_caps_gpu_memory_by_fraction_not_address_space(monkeypatch):
    limits, fractions = [], []
    monkeypatch.setattr(resource, "setrlimit", lambda *a: limits.append(a))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda i: SimpleNamespace(total_memory=80 * 2**30))
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction",
                        lambda f, i: fractions.append((f, i)))
    isolation._cap_memory(20 * 1024, "cuda")
    isolation._cap_memory(200 * 1024, "cuda:1")  # more than the device has: all of it
    assert fractions == [(0.25, 0), (1.0, 1)] and limits == []
    isolation._cap_memory(4000, "cpu")
    isolation._cap_memory(None, "cpu")
    assert limits == [(resource.RLIMIT_AS, (4000 * 2**20, 4000 * 2**20))]
    assert len(fractions) == 2


def _address_space_limit() -> dict:
    return {"limit": resource.getrlimit(resource.RLIMIT_AS)[0]}


def test_a_real_cpu_child_runs_under_rlimit_as():
    outcome = isolation.run_isolated(_address_space_limit, {}, timeout_s=120, mem_mb=2**16,
                                     start="spawn", device="cpu")
    assert outcome.status == "ok" and outcome.value == {"limit": 2**36}


def test_run_isolated_refuses_to_fork_a_cuda_child():
    with pytest.raises(ValueError, match="must be spawned"):
        isolation.run_isolated(_address_space_limit, {}, timeout_s=1, start="fork",
                               device="cuda")


def test_cuda_out_of_memory_reads_oom():
    err = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 "
                                      "has a total capacity of 139.80 GiB")
    assert isolation.is_oom(err)
    assert isolation.is_oom(RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling "
                                         "cublasCreate(handle)"))
    assert not isolation.is_oom(RuntimeError("CUDA error: device-side assert triggered"))


def test_the_device_check_asks_nvml_and_does_not_initialise_cuda(monkeypatch):
    """resolve_device (the discover stage's parent, the CLI, the workflow's config check) asks
    torch under PYTORCH_NVML_BASED_CUDA_CHECK=1, which torch answers through NVML."""
    monkeypatch.setenv(NVML, "0")  # restored after the test
    before, seen = torch.cuda.is_initialized(), []

    def asked(answer):
        def call():
            seen.append(os.environ.get(NVML))
            return answer
        return call

    monkeypatch.setattr(torch.cuda, "is_available", asked(True))
    monkeypatch.setattr(torch.cuda, "device_count", asked(2))
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(ValueError, match="sees 2 CUDA device"):
        resolve_device("cuda:2")
    assert seen and set(seen) == {"1"}
    assert torch.cuda.is_initialized() == before


def test_the_real_device_check_leaves_cuda_uninitialised(monkeypatch):
    """Unpatched: on a GPU machine this asks NVML for real."""
    monkeypatch.setenv(NVML, "0")  # restored after the test
    if torch.cuda.is_initialized():
        pytest.skip("another test of this process initialised CUDA already")
    device = resolve_device("auto")
    assert device.type == ("cuda" if torch.cuda.device_count() else "cpu")
    assert not torch.cuda.is_initialized() and os.environ[NVML] == "1"


# --- scoring in batches ---------------------------------------------------------------------

SCORED = ("faithfulness", "faithfulness_ci_low", "faithfulness_ci_high", "faithfulness_empty",
          "agreement", "task_metric_full", "task_metric_circuit")


def _rows(task, record, batch_size):
    from benchmark.scoring.evaluate import score_record
    return score_record(task, record, sparsities=(0.5, 0.9), eval_examples=200,
                        batch_size=batch_size)


def _assert_same(a, b, exact: bool):
    """The rows' measures bit for bit (`exact`) or to 1e-6; None and NaN where the other's are."""
    assert [x["circuit"] for x in a] == [y["circuit"] for y in b]
    for x, y in zip(a, b):
        for k in SCORED:
            if exact or x[k] is None or x[k] != x[k]:
                assert y[k] == x[k] or (x[k] != x[k] and y[k] != y[k]), (x["circuit"], k)
            else:
                assert y[k] == pytest.approx(x[k], rel=1e-6, abs=1e-9), (x["circuit"], k)


def _record(task, method, ablation):
    from benchmark.discovery import circuit_record, discover
    result, adapter, params = discover(task, method, {}, n=50, seed=0, ablation=ablation)
    return dict(circuit_record(task, result, adapter, params, n=50, seed=0, ablation=ablation,
                               device="cpu"), status="ok")


@pytest.mark.parametrize("ablation", ["zero", "resample", "mean"])
def test_batched_scores_equal_one_forward_on_tracr(get_task, ablation):
    """200 evaluation examples in batches of 7 against one forward: per-example outputs do not
    depend on the batch (bit for bit here), and the means and bootstrap are over examples.
    Mean ablation's mean over several batches is summed in float64: equal to 1e-6."""
    task = get_task("xproportion")
    record = _record(task, "eap", ablation)
    one, batched = _rows(task, record, 1000), _rows(task, record, 7)
    _assert_same(one, batched, exact=ablation != "mean")


def test_the_score_stage_in_batches_writes_the_same_scores(get_task, task_cache, tmp_path):
    """The workflow's score stage (device "auto": the CPU here): same CSV in batches of 7."""
    import pandas as pd

    from benchmark.scoring.stage import score_stage
    task = get_task("xproportion")
    paths = []
    from benchmark.core.score_file import write_scores
    for method in ("eap", "acdc"):
        paths.append(tmp_path / f"{method}.json")
        record = _record(task, method, "resample")
        if record["scores"] is not None:  # as the discover stage writes it: .npy, then JSON
            record["scores"] = write_scores(paths[-1], record["scores"])
        paths[-1].write_text(json.dumps(record))
    frames = []
    for batch_size in (1000, 7):
        out = tmp_path / f"scores_{batch_size}.csv"
        score_stage("xproportion", task_cache, [str(p) for p in paths], str(out),
                    sparsities=[0.5, 0.9], eval_examples=100, device="auto",
                    batch_size=batch_size)
        frames.append(pd.read_csv(out))
    pd.testing.assert_frame_equal(frames[0], frames[1], check_exact=True)
    assert set(frames[0]["method"]) == {"eap", "acdc"} and (frames[0]["status"] == "ok").all()


@pytest.fixture(scope="module")
def lm_task(task_cache):
    """ioi on a GPT-2 trained for a few steps (registered for this module)."""
    from benchmark import load_task
    from benchmark.backends.lm.spec import LMSpec
    from benchmark.core.registry import LM_MODELS
    LM_MODELS.register(LMSpec(name="gpu_policy_gpt2", family="gpt2", tasks=("ioi",),
                              train_tasks=("ioi",), steps=5, batch_size=8, min_accuracy=0.0,
                              min_corruption_kl=0.0))
    yield load_task("ioi@gpu_policy_gpt2")
    LM_MODELS.reset()


@pytest.mark.parametrize("ablation", ["resample", "mean"])
def test_batched_scores_equal_one_forward_on_a_language_model(lm_task, ablation):
    record = _record(lm_task, "eap", ablation)
    one, batched = _rows(lm_task, record, 1000), _rows(lm_task, record, 16)
    _assert_same(one, batched, exact=False)


# --- on a GPU -------------------------------------------------------------------------------

@cuda
def test_discover_and_score_stages_on_cuda(dataset, task_cache, tmp_path):
    """The workflow's way, on device cuda: the parent asks for a fork, the child is spawned,
    capped by a GPU fraction (a tiny cap reads `oom`), EAP and a few Edge Pruning steps give
    circuit files, and the score stage scores them on the GPU as on the CPU."""
    import pandas as pd

    from benchmark.scoring.stage import score_stage
    fresh = not torch.cuda.is_initialized()
    paths = []
    for method, params in (("eap", {}), ("edge_pruning", {"steps": 20})):
        out = str(tmp_path / f"{method}.json")
        record = discover_stage("xproportion", task_cache, dataset, method, params, "zero", 50,
                                0, out, device="cuda", timeout_s=300, mem_mb=8000,
                                eval_examples=50, fork=True)
        assert record["status"] == "ok", record["error"]
        assert record["device"].startswith("cuda") and record["mem_mb"] == 8000
        paths.append(out)
    tiny = discover_stage("xproportion", task_cache, dataset, "edge_pruning", {"steps": 20},
                          "zero", 50, 0, str(tmp_path / "tiny.json"), device="cuda",
                          timeout_s=300, mem_mb=1, eval_examples=50, fork=True)
    assert tiny["status"] == "oom" and "GPU memory limit 1 MB" in tiny["error"]
    if fresh:  # the parent never initialised CUDA: only its spawned children did
        assert not torch.cuda.is_initialized()
    scores = {}
    for device in ("cuda", "cpu"):
        csv = tmp_path / f"scores_{device}.csv"
        score_stage("xproportion", task_cache, paths, str(csv), sparsities=[0.5, 0.9],
                    eval_examples=50, device=device, batch_size=16)
        scores[device] = pd.read_csv(csv)
    gpu, cpu = scores["cuda"], scores["cpu"]
    assert (gpu["status"] == "ok").all() and list(gpu["circuit"]) == list(cpu["circuit"])
    for column in ("faithfulness", "agreement", "faithfulness_empty"):
        assert gpu[column].to_numpy() == pytest.approx(cpu[column].to_numpy(), rel=1e-4,
                                                      abs=1e-6)
    assert json.loads(Path(paths[0]).read_text())["device"].startswith("cuda")
