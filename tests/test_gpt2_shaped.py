"""The GPT-2-small-shaped model trained here (tasks/models/narrow_gpt2.py): 12 layers x 12 heads at a
narrow width, so its graph is GPT-2 small's, 32,491 edges. Checked on the untrained model built
from the spec (training it takes minutes: the benchmark's run does that, not the tests)."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may come from the hub

import torch

from benchmark.backends.lm.model import LMGraphModel
from benchmark.backends.lm.prompts import local_tokenizer
from benchmark.backends.lm.train import build_model
from benchmark.core.registry import LM_MODELS, PROMPT_TASKS
from benchmark.graph.circuit import graph_of
from benchmark.graph.graph import Graph

NAME = "narrow_gpt2"
GPT2_SMALL_EDGES = 32_491


def test_the_spec_is_gpt2_small_shaped():
    lm = LM_MODELS.get(NAME)
    assert lm.trained_here and lm.family == "gpt2"
    assert (lm.n_layer, lm.n_head) == (12, 12)  # GPT-2 small's
    assert lm.d_model % lm.n_head == 0 and lm.d_model < 768
    assert set(lm.train_tasks) <= set(lm.tasks)
    assert set(lm.tasks) == {"ioi", "ioi_t1", "greater_than", "gendered_pronoun"}
    assert lm.min_accuracy >= 0.95


def test_its_graph_has_gpt2_smalls_edges():
    lm = LM_MODELS.get(NAME)
    tok = local_tokenizer(*(PROMPT_TASKS.get(t) for t in lm.train_tasks))
    hf = build_model(lm.family, len(tok), n_layer=lm.n_layer, d_model=lm.d_model,
                     n_head=lm.n_head, seed=lm.seed, dropout=lm.dropout,
                     init_std=lm.init_std)
    model = LMGraphModel(hf)
    assert (model.n_layers, model.n_heads, model.head_dim) == (12, 12, lm.d_model // 12)
    graph = graph_of(model)
    assert graph.n_edges == GPT2_SMALL_EDGES
    # the same graph LMTask builds from the saved config (one `input` writer)
    assert graph.edges == Graph(12, 12, ("input",)).edges


def test_dropout_and_init_std_are_opt_in():
    """The spec's `dropout` and `init_std` reach the transformers config; left at None they
    leave the family's defaults, so the other trained models build exactly as before."""
    plain = build_model("gpt2", 50, n_layer=1, d_model=24, n_head=2)
    assert torch.equal(plain.transformer.wte.weight,
                       build_model("gpt2", 50, n_layer=1, d_model=24, n_head=2,
                                   dropout=None, init_std=None).transformer.wte.weight)
    assert (plain.config.resid_pdrop, plain.config.initializer_range) == (0.1, 0.02)
    tuned = build_model("gpt2", 50, n_layer=1, d_model=24, n_head=2, dropout=0.0,
                        init_std=0.15)
    cfg = tuned.config
    assert (cfg.embd_pdrop, cfg.resid_pdrop, cfg.attn_pdrop) == (0.0, 0.0, 0.0)
    assert cfg.initializer_range == 0.15
    assert 0.12 < float(tuned.transformer.wte.weight.detach().std()) < 0.18
    llama = build_model("llama", 50, n_layer=1, d_model=24, n_head=2, dropout=0.0,
                        init_std=0.15)
    assert (llama.config.attention_dropout, llama.config.initializer_range) == (0.0, 0.15)
