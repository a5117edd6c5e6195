"""Small LMs trained locally: seeded, held-out prompts never trained on, saved whole, and a
model that does not solve its tasks is refused."""
import json

import numpy as np
import pytest
import torch

from benchmark.lm_train import _sample, accuracy, build_model, save_trained, train
from benchmark.prompts import encode
from benchmark.registry import PROMPT_TASKS

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
