"""Edge Pruning on 2 ranks (torch.distributed, gloo on the CPU) equals Edge Pruning on one, on a
small GPT-2 and a small Llama, through the discover stage a config's `processes: 2` runs.

The ranks draw the same batches and noise and split their rows, their mask gradients summed
(benchmark.graph.ranks), each loading only its share of the weights from the checkpoint's
safetensors files (benchmark.backends.lm.sharded): the same seed must give the same circuit,
and masks equal up to float rounding (stated tolerance: 1e-4 relative on their sums).

Rounding differs (a step's gradient is summed over the rows in another order), and the
hard-concrete clamp can turn it into a real difference: a sample that lands on one side of the
clamp in one run and the other in the other gets a zero gradient in one only, and Adam then
takes a full step. Measured on tiny_gpt2 (110 edges, 60 steps): the largest |log_alpha| gap
between 1 and 2 ranks was 3e-5 at these settings, 6e-4 after 20 steps at mask_lr 1.0, and 0.95
after 60 steps at mask_lr 1.0 (38 of 110 edges beyond 1e-3) with the circuit still the same; one
process with 1 or 2 threads gave identical masks."""
import json

import pytest

from benchmark.datasets import dataset_stage
from benchmark.workflow.discover_stage import discover_stage

# masks start in the hard-concrete's steep range (log_alpha 3, not the paper's 10), so that a
# short run prunes, at a learning rate at which rounding stays rounding (see test_ranks docs)
PARAMS = {"steps": 60, "batch_size": 4, "target_sparsity": 0.9, "mask_lr": 0.1,
          "init_log_alpha": 3.0, "warmup_steps": 20}


@pytest.fixture(scope="module")
def small_llama(tmp_path_factory):
    """A randomly initialised 2-layer Llama (4 query heads sharing 2 key/value heads), saved
    with save_pretrained and a tokenizer of the IOI prompts: TinyLlama's entry's local copy."""
    import torch
    import transformers

    from benchmark.backends.lm.prompts import local_tokenizer
    from benchmark.core.registry import LM_MODELS, PROMPT_TASKS
    tok = local_tokenizer(*(PROMPT_TASKS.get(t) for t in LM_MODELS.get("tinyllama_1b").tasks))
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                                   num_hidden_layers=2, num_attention_heads=4,
                                   num_key_value_heads=2, max_position_embeddings=64)
    path = tmp_path_factory.mktemp("small_llama") / "llama"
    transformers.LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _pair(task, cache, tmp_path, n=16, device="cpu", **extra):
    data = str(tmp_path / "data.pt")
    dataset_stage(task, cache, n, 0, n, data)
    records = []
    for processes in (1, 2):
        out = tmp_path / f"p{processes}.json"
        params = dict(PARAMS, **extra, **({"processes": 2} if processes > 1 else {}))
        records.append(discover_stage(task, cache, data, "edge_pruning", params, "resample", n,
                                      0, str(out), timeout_s=300, mem_mb=8000,
                                      eval_examples=n, device=device))
        assert json.loads(out.read_text()) == records[-1]
    return records


def _assert_same(one, two):
    assert one["status"] == two["status"] == "ok", (one["error"], two["error"])
    assert two["world_size"] == 2 and two["processes"] == 2
    assert len(two["rank_peak_mem_mb"]) == 2
    assert "world_size" not in one and one["processes"] == 1
    # score rows tell the two runs apart: N ranks is part of the setting
    assert two["params"] == {**one["params"], "processes": 2}
    assert two["circuit"] == one["circuit"]
    assert 0 < len(one["circuit"]) < one["n_edges"]  # something was pruned, not everything
    a, b = one["info"], two["info"]
    for key in ("log_alpha_sum", "log_alpha_abs_sum", "final_metric"):
        assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-7), key
    assert b["lambdas"] == pytest.approx(a["lambdas"], rel=1e-4, abs=1e-7)
    # every rank's backward passes count: 2 ranks x 60 steps
    assert two["counters"]["backward_passes"] == 2 * one["counters"]["backward_passes"] == 120


def test_two_ranks_equal_one_on_a_small_gpt2(task_cache, tmp_path):
    _assert_same(*_pair("ioi@tiny_gpt2", task_cache, tmp_path))


def test_two_ranks_equal_one_on_a_small_llama(small_llama, task_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("CIRCUITBENCH_PRETRAINED", json.dumps({"tinyllama_1b": str(small_llama)}))
    # with each block recomputed in the backward pass: under FSDP it gathers its weights again
    one, two = _pair("ioi@tinyllama_1b", task_cache, tmp_path, checkpoint_layers=True)
    _assert_same(one, two)


def _gpus() -> int:
    from benchmark.core.devices import cuda_device_count
    return cuda_device_count()


@pytest.mark.skipif(_gpus() < 2, reason="needs 2 CUDA devices (NCCL)")
def test_two_gpus_equal_one_gpu_on_a_small_gpt2(task_cache, tmp_path):
    """The same on CUDA: NCCL between 2 GPUs, one rank each (never run here: no GPU)."""
    one, two = _pair("ioi@tiny_gpt2", task_cache, tmp_path, device="cuda")
    _assert_same(one, two)
