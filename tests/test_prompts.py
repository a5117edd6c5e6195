"""Prompt tasks: seeded, distinct, disjoint splits; corrupted counterparts of the right kind;
tokenization checked (a piece that is not one token drops its prompt, counted)."""
import dataclasses

import pytest

from benchmark.backends.lm.prompts import draw_prompts, encode, local_tokenizer
from benchmark.core.registry import PROMPT_TASKS
from tasks.prompts.names import FEMALE, MALE

NAMES = ["gendered_pronoun", "greater_than", "ioi", "ioi_t1"]


def test_registered_with_their_sizes():
    assert PROMPT_TASKS.names() == NAMES
    spaces = {n: PROMPT_TASKS.get(n).space for n in NAMES}
    assert spaces == {"gendered_pronoun": 480, "greater_than": 27_160, "ioi": 12_234_240,
                      "ioi_t1": 1_019_520}


@pytest.mark.parametrize("name", NAMES)
def test_splits_are_seeded_distinct_and_disjoint(name):
    spec = PROMPT_TASKS.get(name)
    n, n_eval = (200, 100) if spec.space < 10_000 else (2000, 500)
    disc, ev = draw_prompts(spec, n, 3, n_eval)
    assert (len(disc), len(ev)) == (n, n_eval)
    clean = [p.clean for p in disc + ev]
    assert len(set(clean)) == len(clean)
    assert draw_prompts(spec, n, 3, n_eval) == (disc, ev)
    assert draw_prompts(spec, n, 4, n_eval)[0] != disc


def test_asking_for_more_prompts_than_exist_names_the_space():
    with pytest.raises(ValueError, match="has 480 distinct prompts"):
        draw_prompts(PROMPT_TASKS.get("gendered_pronoun"), 400, 0, 100)


def test_corrupted_prompts_remove_the_information():
    for p in draw_prompts(PROMPT_TASKS.get("ioi"), 300, 0, 1)[0]:
        assert p.answer in p.clean and p.rival in p.clean
        assert p.answer not in p.corrupted and p.rival not in p.corrupted
        assert p.clean.count(p.rival) == 2 and p.clean.count(p.answer) == 1
    for p in draw_prompts(PROMPT_TASKS.get("greater_than"), 300, 0, 1)[0]:
        assert f"year {p.clean.split()[-1]}01 " in p.corrupted
        assert int(p.answer) == min(int(p.rival) + 1, 99)
    for p in draw_prompts(PROMPT_TASKS.get("gendered_pronoun"), 300, 0, 1)[0]:
        name = next(w for w in p.clean.replace(",", " ").split() if w in MALE + FEMALE)
        swapped = next(w for w in p.corrupted.replace(",", " ").split() if w in MALE + FEMALE)
        assert (name in MALE) == (p.answer == " he") and (swapped in MALE) != (name in MALE)


def test_local_tokenizer_encodes_every_prompt_with_answers_at_the_last_token():
    specs = [PROMPT_TASKS.get(n) for n in NAMES]
    tok = local_tokenizer(*specs)
    for spec in specs:
        prompts = draw_prompts(spec, 100, 0, 1)[0]
        batch = encode(tok, prompts)
        assert batch.dropped == {} and len(batch) == 100
        for i, p in enumerate(prompts):
            last = batch.answer_pos[i]
            assert tok.decode(batch.input_ids[i, :last + 1]) == p.clean
            assert tok.decode(batch.corrupted_ids[i, :last + 1]) == p.corrupted
            assert batch.attention_mask[i].sum() == last + 1
            assert tok.decode([batch.answer[i]]) == p.answer


def test_a_name_the_tokenizer_lacks_drops_its_prompts_with_a_count():
    spec = PROMPT_TASKS.get("ioi_t1")
    tok = local_tokenizer(dataclasses.replace(
        spec, words=tuple(w for w in spec.words if w != " Kevin")))
    prompts = draw_prompts(spec, 500, 0, 1)[0]
    with_kevin = sum(" Kevin" in p.clean or " Kevin" in p.corrupted for p in prompts)
    assert with_kevin > 0
    batch = encode(tok, prompts)
    assert len(batch) == 500 - with_kevin
    assert sum(batch.dropped.values()) == with_kevin
