"""Prompt tasks on language models (`ioi@<model>`): the answer-position model equals the HF
model there, datasets are seeded and disjoint, every method runs through the same protocol
(ACDC's partial re-runs keep each prompt's padding), and scoring reports faithfulness and the
task's own measure with no ground truth. Models here are trained for a few steps only: these
tests check the plumbing; the workflow's models are trained until they solve their tasks."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from benchmark.backends.lm.spec import LMSpec  # noqa: E402
from benchmark.core.registry import LM_MODELS  # noqa: E402
from benchmark.graph.circuit import run_circuit  # noqa: E402

TASKS = ("ioi", "greater_than")
PUBLISHED = ("a0.h1", "a1.h3")


@pytest.fixture(scope="module")
def lm_tasks(task_cache):
    """ioi and greater_than on a few-step GPT-2 and Llama (registered for this module)."""
    from benchmark import load_task
    for family in ("gpt2", "llama"):
        # the GPT-2 declares a published IOI circuit of two heads (tests of that convention)
        published = (("ioi", PUBLISHED),) if family == "gpt2" else ()
        LM_MODELS.register(LMSpec(name=f"test_{family}", family=family, tasks=TASKS,
                                  train_tasks=TASKS, steps=40, batch_size=16,
                                  min_accuracy=0.0, min_corruption_kl=0.0,
                                  published=published))
    yield {(t, f): load_task(f"{t}@test_{f}") for t in TASKS for f in ("gpt2", "llama")}
    LM_MODELS.reset()


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_answer_position_equals_the_hf_model(lm_tasks, family):
    task = lm_tasks[("ioi", family)]
    split = task.dataset(64, seed=0, n_eval=1).discovery
    tokens = split.clean
    real = (tokens != task.model.pad_id).long()
    assert len(set(real.sum(1).tolist())) > 1  # templates of several lengths, right-padded
    with torch.no_grad():
        hf = task.model.hf(tokens, attention_mask=real).logits
        out = task.model(tokens)
    pos = real.sum(1) - 1
    assert out.shape == (64, 2, hf.shape[-1])
    assert torch.equal(out[:, 0], torch.zeros_like(out[:, 0]))
    assert (out[:, 1] - hf[torch.arange(64), pos]).abs().max() < 1e-4


def test_datasets_are_seeded_disjoint_and_carry_answers(lm_tasks):
    task = lm_tasks[("ioi", "gpt2")]
    a, b = task.dataset(300, seed=1, n_eval=200), task.dataset(300, seed=1, n_eval=200)
    for x, y in zip(a.discovery.tensors() + a.evaluation.tensors(),
                    b.discovery.tensors() + b.evaluation.tensors()):
        assert torch.equal(x, y)
    rows = lambda t: {tuple(r[r != task.model.pad_id].tolist()) for r in t}  # noqa: E731
    assert not rows(a.discovery.clean) & rows(a.evaluation.clean)
    assert len(rows(a.discovery.clean)) == 300
    assert a.discovery.answer.shape == a.discovery.rival.shape == (300,)
    assert task.last_dropped == {}
    assert not torch.equal(task.dataset(300, seed=2).discovery.clean[:5], a.discovery.clean[:5])


def test_acdc_partial_reruns_keep_each_prompts_padding(lm_tasks):
    """ACDC recomputes only what an ablated edge changes, from its cached run: its final metric
    must be the metric of its circuit run from scratch, which reads each prompt's own answer."""
    from benchmark.discovery import discover
    from benchmark.graph.circuit import ablated_outputs
    task = lm_tasks[("ioi", "llama")]
    result, _, _ = discover(task, "acdc", {"threshold": 1e-5}, n=100, seed=0,
                            ablation="resample")
    data = task.dataset(100, seed=0).discovery
    with torch.no_grad():
        full = task.model(data.clean)
        ablated = ablated_outputs(task.model, "resample", data.clean, data.corrupted)
        out = run_circuit(task.model, data.clean, task.graph.mask_from_edges(result.circuit),
                          ablated)
        from benchmark.graph.metrics import faithfulness
        again = float(faithfulness(full, out, "categorical"))
    assert 0 < len(result.circuit) < task.graph.n_edges
    assert again == pytest.approx(result.info["final_metric"], rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("method", ["eap", "eap_ig", "random"])
def test_score_methods_and_scoring_on_a_language_model(lm_tasks, method):
    from benchmark.discovery import circuit_record, discover
    from benchmark.scoring.evaluate import score_record
    from benchmark.scoring.recovery import ranking_counts
    task = lm_tasks[("greater_than", "gpt2")]
    result, adapter, params = discover(task, method, {}, n=100, seed=0, ablation="resample")
    record = dict(circuit_record(task, result, adapter, params, n=100, seed=0,
                                 ablation="resample", device="cpu"), status="ok")
    rows = score_record(task, record, sparsities=(0.0, 0.9), eval_examples=50)
    full, sparse = rows[:2]
    ranking = [r for r in rows[2:] if r["circuit"].startswith("top=")]
    assert [r["edges_kept"] for r in ranking] == ranking_counts(task.graph.n_edges)
    assert ranking[0]["faithfulness"] == pytest.approx(full["faithfulness_empty"])
    assert ranking[-1]["faithfulness"] == 0
    assert full["edges_kept"] == task.graph.n_edges and full["faithfulness"] == 0
    assert full["task_metric_ratio"] == pytest.approx(1.0)
    assert full["task_metric"] == "greater_than" and full["input_space"] == 27_160
    assert sparse["faithfulness"] > 0 and sparse["eval_seen_in_discovery"] == 0
    assert all(full[f"{m}_zero"] is None for m in ("precision", "recall", "auroc"))


def test_a_published_circuit_is_scored_at_head_level(lm_tasks):
    """Heads that write into a circuit against the published heads; a ranking's head score is
    its best outgoing edge's."""
    from benchmark.scoring.evaluate import score_record
    task = lm_tasks[("ioi", "gpt2")]
    assert task.conventions == ("published",)
    assert task.ground_truth("published") == frozenset(PUBLISHED)
    assert task.summary()["ground_truth"] == {"published": list(PUBLISHED)}
    assert lm_tasks[("greater_than", "gpt2")].conventions == ()
    assert lm_tasks[("ioi", "llama")].conventions == ()
    graph = task.graph
    base = dict(method="hand", params={}, seed=0, n_examples=50, ablation="resample",
                status="ok")
    # a circuit with a0.h1's and a1.h0's outputs, and an input into a1.h3 (a head that is only
    # read into does not write into the circuit): heads {a0.h1, a1.h0} of the 8
    circuit = [graph.edges[i] for w in ("a0.h1", "a1.h0") for i in graph.outgoing(w)]
    circuit.append("input->a1.h3<q>")
    row = score_record(task, dict(base, kind="circuit", circuit=circuit), eval_examples=20)[0]
    assert (row["precision_published"], row["recall_published"]) == (0.5, 0.5)
    assert row["exact_published"] is False
    assert (row["fpr_published"], row["tpr_published"]) == (pytest.approx(1 / 6), 0.5)
    assert row["f1_zero"] is None  # no edge-level truth on a language model
    # head scores a0.h1 8 > a1.h0 7 > a1.h3 6 > the other heads 1: one of the 12
    # (published, other) pairs is out of order
    value = {"a0.h1": 8.0, "a1.h0": 7.0, "a1.h3": 6.0}
    scores = {e: (value.get(e.split("->")[0], 1.0) if e.startswith("a") else 0.0)
              for e in graph.edges}
    rows = score_record(task, dict(base, kind="scores", scores=scores),
                        sparsities=(0.9,), eval_examples=20)
    assert rows[0]["auroc_published"] == pytest.approx(11 / 12)


def test_edge_pruning_on_a_language_model(lm_tasks):
    from benchmark.discovery import discover
    task = lm_tasks[("ioi", "gpt2")]
    result, _, _ = discover(task, "edge_pruning", {"steps": 100, "target_sparsity": 0.5,
                                                   "warmup_steps": 10, "mask_lr": 1.0,
                                                   "lambda_lr": 0.1}, n=64, seed=0,
                            ablation="resample")
    assert result.info["edges_kept"] < task.graph.n_edges
    assert torch.isfinite(torch.tensor(result.info["final_metric"]))


def test_bad_names_say_what_exists(lm_tasks):
    from benchmark import load_task
    with pytest.raises(KeyError, match="known language models: .*test_gpt2"):
        load_task("ioi@no_such_model")
    with pytest.raises(KeyError, match="known prompt tasks: .*greater_than"):
        load_task("no_such_task@test_gpt2")
    with pytest.raises(ValueError, match="benchmarked on ioi, greater_than, not 'ioi_t1'"):
        load_task("ioi_t1@test_gpt2")


def test_a_tokenizer_with_a_start_token_gets_it_in_front(lm_tasks):
    """Llama tokenizers add BOS: every prompt starts with it, answers stay at the last token."""
    from tokenizers.processors import TemplateProcessing

    from benchmark.backends.lm.prompts import draw_prompts, encode, local_tokenizer
    from benchmark.core.registry import PROMPT_TASKS
    spec = PROMPT_TASKS.get("greater_than")
    tok = local_tokenizer(spec)
    bos = tok.convert_tokens_to_ids("[EOS]")
    tok.backend_tokenizer.post_processor = TemplateProcessing(
        single="[EOS] $A", special_tokens=[("[EOS]", bos)])
    prompts = draw_prompts(spec, 20, 0, 1)[0]
    batch = encode(tok, prompts)
    assert (batch.input_ids[:, 0] == bos).all() and (batch.corrupted_ids[:, 0] == bos).all()
    for i, p in enumerate(prompts):
        assert tok.decode(batch.input_ids[i, 1:batch.answer_pos[i] + 1]) == p.clean
