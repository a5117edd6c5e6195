"""Small LMs trained locally: seeded, held-out prompts never trained on, saved whole, and a
model that does not solve its tasks is refused."""
import json

import numpy as np
import pytest
import torch

from benchmark.backends.lm.prompts import encode
from benchmark.backends.lm.train import _sample, accuracy, build_model, save_trained, train
from benchmark.core.registry import PROMPT_TASKS

SPECS = [PROMPT_TASKS.get("ioi_t1"), PROMPT_TASKS.get("gendered_pronoun")]
TINY = dict(steps=30, batch_size=16, d_model=32, n_head=2, log=lambda *_: None)


def test_unknown_family_lists_the_known_ones():
    with pytest.raises(ValueError, match="known: gpt2, llama"):
        build_model("bert", 10)


def test_training_is_seeded_and_saved_whole(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    model, tok, report = train(SPECS, "llama", seed=1, **TINY)
    again, _, _ = train(SPECS, "llama", seed=1, **TINY)
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    assert set(report["accuracy"]) == {"ioi_t1", "gendered_pronoun"}
    assert report["held_out"] == {"ioi_t1": 500, "gendered_pronoun": 96}
    out = tmp_path / "model"
    save_trained(model, tok, report, str(out))
    assert json.loads((out / "report.json").read_text()) == report
    loaded = AutoModelForCausalLM.from_pretrained(out, local_files_only=True)
    loaded_tok = AutoTokenizer.from_pretrained(out, local_files_only=True)
    batch = encode(loaded_tok, _sample(SPECS[0], np.random.default_rng(0), 8))
    with torch.no_grad():
        assert torch.equal(loaded(batch.input_ids, attention_mask=batch.attention_mask).logits,
                           model(batch.input_ids, attention_mask=batch.attention_mask).logits)
    assert accuracy(loaded, loaded_tok, SPECS[1], _sample(SPECS[1], np.random.default_rng(0),
                                                          20)) >= 0


def test_held_out_prompts_are_excluded_from_training_draws():
    rng = np.random.default_rng(0)
    held = {p.clean for p in _sample(SPECS[1], rng, 50)}
    drawn = _sample(SPECS[1], np.random.default_rng(1), 500, frozenset(held))
    assert not held & {p.clean for p in drawn}


def test_an_untrained_model_is_refused():
    with pytest.raises(ValueError, match="solves too little"):
        train(SPECS, "gpt2", min_accuracy=0.99, **TINY)


def test_the_corruption_kl_measures_how_much_the_answer_depends_on_the_corruption():
    """0 for a model that answers every prompt alike (all weights zero: uniform logits), > 0
    for one that reads the prompt; a prompt whose corruption is itself gives 0 too."""
    import dataclasses

    from benchmark.backends.lm.prompts import local_tokenizer
    from benchmark.backends.lm.train import corruption_kl
    tok = local_tokenizer(*SPECS)
    prompts = _sample(SPECS[1], np.random.default_rng(0), 16)
    model = build_model("gpt2", len(tok), n_layer=1, d_model=32, n_head=2).eval()
    assert corruption_kl(model, tok, prompts) > 1e-6
    same = [dataclasses.replace(p, corrupted=p.clean) for p in prompts]
    assert corruption_kl(model, tok, same) == pytest.approx(0, abs=1e-7)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    assert corruption_kl(model, tok, prompts) == pytest.approx(0, abs=1e-7)


def test_a_model_blind_to_the_corruption_is_refused(monkeypatch):
    """A shortcut that passes the accuracy bar (Greater-Than: always "99") is still refused."""
    import benchmark.backends.lm.train as lm_train
    monkeypatch.setattr(lm_train, "corruption_kl", lambda *_: 0.0002)
    with pytest.raises(ValueError, match="answers without what the corrupted prompts change"):
        train(SPECS, "gpt2", min_accuracy=0.0, min_corruption_kl=0.1, **TINY)
