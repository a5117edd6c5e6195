"""The transformers backend: the masked forward on HF causal LMs equals the HF model.

Models are randomly initialised from tiny configs built here (nothing is downloaded), with every
weight perturbed so that biases and norm weights are non-trivial. With every mask at 1 the masked
run must equal `hf(input_ids, attention_mask=...).logits` within 1e-4 (float32): at every
position against eager attention, which this backend reproduces (left-pad query rows are fully
masked; eager makes them uniform over all keys, sdpa differently, so against sdpa, the default,
only real-token positions are compared).
"""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may come from the hub

import pytest  # noqa: E402
import torch  # noqa: E402
import transformers as tf  # noqa: E402

from benchmark import load_lm  # noqa: E402
from benchmark.backends.lm.model import LMGraphModel  # noqa: E402
from benchmark.graph.circuit import ablated_outputs, graph_of, run_circuit  # noqa: E402

SIZES = {"small": dict(layers=2, d=32, heads=4, kv=2, vocab=100),
         "medium": dict(layers=3, d=64, heads=8, kv=2, vocab=300)}
FAMILIES = ("gpt2", "llama", "qwen2", "mistral")
B, S = 4, 9


def _config(family, size):
    z = SIZES[size]
    common = dict(vocab_size=z["vocab"], bos_token_id=0, eos_token_id=0, pad_token_id=0)
    medium = size == "medium"
    if family == "gpt2":  # the medium size also scales scores by 1 / (layer + 1), upcast
        return tf.GPT2Config(n_layer=z["layers"], n_embd=z["d"], n_head=z["heads"],
                             n_positions=32, scale_attn_by_inverse_layer_idx=medium,
                             reorder_and_upcast_attn=medium, **common)
    llama_like = dict(num_hidden_layers=z["layers"], hidden_size=z["d"],
                      num_attention_heads=z["heads"], num_key_value_heads=z["kv"],
                      intermediate_size=2 * z["d"], max_position_embeddings=32, **common)
    if family == "llama":  # medium: biases everywhere (o_proj's is split), head_dim != d / H
        extra = dict(attention_bias=True, mlp_bias=True, head_dim=16) if medium else {}
        return tf.LlamaConfig(**extra, **llama_like)
    if family == "qwen2":  # q/k/v biases; a sliding window on the layers after the first
        return tf.Qwen2Config(use_sliding_window=True, sliding_window=4, max_window_layers=1,
                              **llama_like)
    return tf.MistralConfig(sliding_window=5, **llama_like)


_CLASSES = {"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM",
            "qwen2": "Qwen2ForCausalLM", "mistral": "MistralForCausalLM"}


def _hf(family, size, seed=0):
    torch.manual_seed(seed)
    hf = getattr(tf, _CLASSES[family])(_config(family, size)).eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return hf


def _inputs(vocab, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (B, S), generator=g)
    left, right = torch.ones(B, S, dtype=torch.long), torch.ones(B, S, dtype=torch.long)
    left[0, :3], left[2, :1] = 0, 0
    right[1, 5:], right[3, 7:] = 0, 0
    return ids, {"none": None, "left": left, "right": right}


@pytest.fixture(scope="module")
def models():
    """(family, size) -> (hf model, its LMGraphModel); built once per module."""
    cache = {}

    def get(family, size):
        if (family, size) not in cache:
            hf = _hf(family, size)
            cache[family, size] = hf, LMGraphModel(hf)
        return cache[family, size]

    return get


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("family", FAMILIES)
def test_full_circuit_equals_hf_model(models, family, size):
    hf, model = models(family, size)
    n = graph_of(model).n_edges
    ids, paddings = _inputs(SIZES[size]["vocab"])
    worst = {}
    with torch.no_grad():
        for pad_name, am in paddings.items():
            hf.set_attn_implementation("eager")
            eager = hf(ids, attention_mask=am).logits
            hf.set_attn_implementation("sdpa")
            sdpa = hf(ids, attention_mask=am).logits
            real = torch.ones(B, S, dtype=torch.bool) if am is None else am.bool()
            for mask in (None, torch.ones(n), torch.ones(B, n)):
                out = run_circuit(model, ids, mask, attention_mask=am)
                assert out.shape == (B, S, SIZES[size]["vocab"])
                d_eager = (out - eager).abs().max().item()
                d_sdpa = (out - sdpa)[real].abs().max().item()
                worst[pad_name] = max(worst.get(pad_name, 0.0), d_eager, d_sdpa)
                assert d_eager <= 1e-4 and d_sdpa <= 1e-4, (pad_name, mask, d_eager, d_sdpa)
    print(family, size, {k: f"{v:.1e}" for k, v in worst.items()})


@pytest.mark.parametrize("family", FAMILIES)
def test_ablated_edges_change_the_output(models, family):
    hf, model = models(family, "small")
    g = graph_of(model)
    ids, paddings = _inputs(SIZES["small"]["vocab"])
    am = paddings["left"]
    with torch.no_grad():
        full = run_circuit(model, ids, torch.ones(g.n_edges), attention_mask=am)
        for edge in ("input->a1.h0<k>", "a0.h1->m0", "m0->logits", "a1.h3->logits"):
            mask = torch.ones(g.n_edges)
            mask[g.edge_to_index[edge]] = 0
            out = run_circuit(model, ids, mask, attention_mask=am)
            assert (out - full)[am.bool()].abs().max() > 1e-3, edge


@pytest.mark.parametrize("family", FAMILIES)
def test_each_port_feeds_only_its_own_head(models, family):
    """Changing head h's q, k or v input changes head h's output only (GQA heads share kv
    weights, not inputs)."""
    _, model = models(family, "medium")
    g = torch.Generator().manual_seed(3)
    x = torch.randn(model.n_heads, B, S, model.d_model, generator=g)
    with torch.no_grad():
        base = model.attention(1, x, x, x)
        for port in range(3):
            for head in (0, 5):
                inputs = [x, x, x]
                inputs[port] = x.clone()
                inputs[port][head] += torch.randn(B, S, model.d_model, generator=g)
                changed = (model.attention(1, *inputs) - base).abs().amax(dim=(1, 2, 3)) > 1e-6
                assert changed.tolist() == [h == head for h in range(model.n_heads)], (port, head)


def _resample_batch(model):
    """Right-padded ids, their attention mask, resample-ablated outputs, and fixed weights of
    a linear loss on the logits."""
    ids, paddings = _inputs(SIZES["small"]["vocab"])
    corrupted = torch.randint(1, SIZES["small"]["vocab"], ids.shape,
                              generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ablated = ablated_outputs(model, "resample", ids, corrupted)
    weights = torch.randn(B, S, SIZES["small"]["vocab"], generator=torch.Generator().manual_seed(0))
    return ids, paddings["right"], ablated, weights


@pytest.mark.parametrize("family", FAMILIES)
def test_gradients_reach_a_continuous_mask(models, family):
    hf, model = models(family, "small")
    g = graph_of(model)
    ids, am, ablated, weights = _resample_batch(model)
    for abl, mask in ((None, torch.full((g.n_edges,), 0.7)), (ablated, torch.ones(B, g.n_edges))):
        mask.requires_grad_()
        out = run_circuit(model, ids, mask, abl, attention_mask=am)
        (out * weights * am[..., None]).sum().backward()
        grad = mask.grad
        assert grad is not None and grad.shape == mask.shape and torch.isfinite(grad).all()
        assert (grad != 0).float().mean() > 0.9  # nearly every edge matters somewhere
    assert all(p.grad is None for p in hf.parameters())  # weights are frozen


def test_load_lm_from_a_saved_directory(models, tmp_path):
    hf, _ = models("llama", "small")
    hf.save_pretrained(tmp_path / "llama")
    loaded = load_lm(str(tmp_path / "llama"), device="cpu")
    assert isinstance(loaded, LMGraphModel) and loaded.hf is not hf
    ids, paddings = _inputs(SIZES["small"]["vocab"])
    with torch.no_grad():
        out = run_circuit(loaded, ids, attention_mask=paddings["right"])
        ref = hf(ids, attention_mask=paddings["right"]).logits
    assert (out - ref)[paddings["right"].bool()].abs().max() <= 1e-4
    assert load_lm(hf, device="cpu").hf is hf  # an instance is wrapped, not copied


def test_gpt2_small_graph_has_32491_edges():
    model = load_lm(tf.GPT2LMHeadModel(tf.GPT2Config()), device="cpu")
    g = graph_of(model)
    assert (g.n_layers, g.n_heads, g.input_writers) == (12, 12, ("input",))
    assert g.n_edges == 32491
    assert g.edges[0] == "input->a0.h0<q>" and g.edges[-1] == "m11->logits"


def _error(arg) -> str:
    """load_lm's error on `arg`: a ValueError of one line."""
    with pytest.raises(ValueError) as info:
        load_lm(arg, device="cpu")
    message = str(info.value)
    assert "\n" not in message and message.startswith("load_lm: ")
    return message


def test_load_lm_errors(tmp_path, monkeypatch):
    from huggingface_hub import constants
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    offline = "nothing can be downloaded here (HF_HUB_OFFLINE); pass a directory written by"
    assert offline in _error("no-such-org/no-such-model-xyz")
    assert offline in _error(str(tmp_path / "missing"))
    assert "is a path but not a model directory (no config.json)" in _error(str(tmp_path))
    with pytest.raises(ValueError, match="unknown dtype 'float33'"):
        load_lm(str(tmp_path), dtype="float33")
    supported = ("supported architectures: GPT2LMHeadModel, LlamaForCausalLM, "
                 "Qwen2ForCausalLM, MistralForCausalLM")
    bert = tf.BertForMaskedLM(tf.BertConfig(hidden_size=32, num_hidden_layers=1,
                                            num_attention_heads=2, intermediate_size=64,
                                            vocab_size=50))
    message = _error(bert)
    assert "BertForMaskedLM (bert) is not supported" in message and supported in message
    tf.T5Config(d_model=32, num_layers=1, num_heads=2).save_pretrained(tmp_path / "t5")
    message = _error(str(tmp_path / "t5"))
    assert "(t5) is not supported" in message and supported in message
    message = _error(tf.GPT2Model(_config("gpt2", "small")))  # no LM head
    assert "GPT2Model (gpt2) is not supported" in message and supported in message


def _mask_grads(model, ids, mask, abl, am, weights, **kwargs):
    mask = mask.clone().requires_grad_()
    out = run_circuit(model, ids, mask, abl, attention_mask=am, **kwargs)
    (out * weights * am[..., None]).sum().backward()
    return out.detach(), mask.grad


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_memory_saving_paths_give_the_same_gradients(models, family, monkeypatch):
    """The masked sum keeps no stacked copy of the writers for the backward pass (it is
    recomputed there): the gradients are bit for bit those of the plain product; per-block
    checkpointing recomputes whole blocks and agrees to float rounding."""
    from benchmark.graph import circuit
    hf, model = models(family, "small")
    g = graph_of(model)
    ids, am, ablated, weights = _resample_batch(model)
    masks = torch.rand(B, g.n_edges, generator=torch.Generator().manual_seed(1))
    for abl, mask in ((None, masks[0]), (ablated, masks)):
        out, grad = _mask_grads(model, ids, mask, abl, am, weights)
        out_ckpt, grad_ckpt = _mask_grads(model, ids, mask, abl, am, weights,
                                          checkpoint_layers=True)
        with monkeypatch.context() as m:  # the product kept whole by autograd, as before
            m.setattr(circuit, "group_input", lambda group, writers, mask_rows, abl_, _=None:
                      circuit._masked_sum(circuit._group_mask(group, mask_rows, writers[0]),
                                          abl_, *writers[:group.n_writers_before]))
            out_ref, grad_ref = _mask_grads(model, ids, mask, abl, am, weights)
        assert torch.equal(out, out_ref) and torch.equal(grad, grad_ref)
        assert torch.equal(out_ckpt, out)
        torch.testing.assert_close(grad_ckpt, grad, rtol=1e-5, atol=1e-6)


def test_checkpointed_blocks_record_no_inputs(models):
    from benchmark.graph.circuit import Recording
    _, model = models("gpt2", "small")
    ids, _ = _inputs(SIZES["small"]["vocab"])
    mask = torch.ones(graph_of(model).n_edges, requires_grad=True)
    with pytest.raises(ValueError, match="keeps no group inputs"):
        run_circuit(model, ids, mask, record=Recording(), checkpoint_layers=True)
    rec = Recording(keep_inputs=False)
    run_circuit(model, ids, mask, record=rec, checkpoint_layers=True)
    assert len(rec.writers) == len(graph_of(model).writers)


@pytest.mark.parametrize("ablation", ["zero", "resample"])
@pytest.mark.parametrize("checkpoint_layers", [False, True])
def test_mask_gradients_match_a_plain_autograd_reference(ablation, checkpoint_layers,
                                                         monkeypatch):
    """The memory-saving backward (the masked sum and the norms' saved inputs recomputed;
    whole blocks with checkpoint_layers) against autograd through the plain product, nothing
    recomputed, in float64 (attention scores stay float32 in both, as in HF's eager maths):
    shared and per-example masks."""
    from benchmark.graph import circuit
    hf = _hf("gpt2", "small").double()
    model = LMGraphModel(hf)
    n = graph_of(model).n_edges
    ids, _ = _inputs(SIZES["small"]["vocab"])
    with torch.no_grad():
        abl = ablated_outputs(model, ablation, ids, torch.roll(ids, 1, 0))
    g = torch.Generator().manual_seed(2)
    masks = torch.rand(B, n, generator=g, dtype=torch.float64)
    weights = torch.randn(B, S, SIZES["small"]["vocab"], generator=g, dtype=torch.float64)

    def grads(mask, **kwargs):
        mask = mask.clone().requires_grad_()
        (run_circuit(model, ids, mask, abl, **kwargs) * weights).sum().backward()
        return mask.grad

    for mask in (masks[0], masks):
        got = grads(mask, checkpoint_layers=checkpoint_layers)
        with monkeypatch.context() as m:  # autograd keeps the product and its input whole
            m.setattr(circuit, "group_input", lambda group, writers, mask_rows, abl_, _=None:
                      circuit._masked_sum(circuit._group_mask(group, mask_rows, writers[0]),
                                          abl_, *writers[:group.n_writers_before]))
            want = grads(mask)
        assert got.abs().sum() > 0
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_default_backward_keeps_no_group_input():
    """Nothing the backward pass keeps shares storage with a reader group's input [P, B, S, D]
    (the norms' views of it are rebuilt from the writers): only the writers' outputs and the
    blocks' own intermediates stay."""
    from benchmark.graph import circuit
    model = LMGraphModel(_hf("gpt2", "small"))
    ids, _ = _inputs(SIZES["small"]["vocab"])
    inputs, kept = [], []
    real = circuit._SavedInput.pack

    def pack(self, t):
        out = real(self, t)
        kept.append(out)
        return out

    rec = circuit.Recording(keep_inputs=False)
    original_group_input = circuit.group_input

    def spy(*args, **kwargs):
        x = original_group_input(*args, **kwargs)
        inputs.append(x)  # held, so that no later tensor can reuse its memory
        return x
    with pytest.MonkeyPatch.context() as m:
        m.setattr(circuit, "group_input", spy)
        m.setattr(circuit._SavedInput, "pack", pack)
        mask = torch.ones(graph_of(model).n_edges, requires_grad=True)
        run_circuit(model, ids, mask, record=rec).sum().backward()
    assert len(inputs) == len(graph_of(model).groups)
    kept_ptrs = {t.untyped_storage().data_ptr() for t in kept if isinstance(t, torch.Tensor)}
    assert not kept_ptrs & {x.untyped_storage().data_ptr() for x in inputs}
    assert any(isinstance(t, circuit._View) for t in kept)
    assert mask.grad is not None and mask.grad.abs().sum() > 0
