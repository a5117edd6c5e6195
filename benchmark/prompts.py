"""Prompt tasks as token tensors: distinct seeded splits, a local tokenizer, checked encoding.

Discovery and evaluation prompts come from independent streams of one seed and share no clean
prompt. A tokenizer is checked, never trusted: a prompt whose pieces are not one token each
(a name GPT-2 splits in two), or whose whole tokenization differs from its pieces' (a merge
across pieces), or whose corrupted prompt has another length, is dropped and counted, and the
counts are returned for the log. Prompts are right-padded; each example's answer position is
its last real token, so a metric reads the next-token distribution there.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tasks.prompt_spec import PromptTaskSpec, pieces

PAD, EOS = "[PAD]", "[EOS]"


def draw_prompts(spec: PromptTaskSpec, n: int, seed: int, n_eval: int) -> tuple[list, list]:
    """(discovery, evaluation) prompts, every clean prompt distinct, none in both splits."""
    if n + n_eval > spec.space:
        raise ValueError(f"prompt task {spec.name!r} has {spec.space:,} distinct prompts; "
                         f"{n:,} + {n_eval:,} asked for: lower the example count")
    seen: set = set()

    def draw(rng, count):
        out = []
        for _ in range(100 * count + 1000):
            if len(out) == count:
                return out
            p = spec.sample(rng)
            if p.clean not in seen:
                seen.add(p.clean)
                out.append(p)
        raise ValueError(f"prompt task {spec.name!r}: could not draw {count:,} distinct prompts "
                         f"(space {spec.space:,})")

    discovery = draw(np.random.default_rng([seed, 0]), n)
    return discovery, draw(np.random.default_rng([seed, 1]), n_eval)


def local_tokenizer(*specs: PromptTaskSpec):
    """A word-level tokenizer (the `tokenizers` library) whose tokens are the tasks' pieces."""
    from tokenizers import Regex, Tokenizer, decoders, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast
    words = sorted({w for s in specs for w in s.words})
    vocab = {w: i for i, w in enumerate([PAD, EOS, *words])}
    vocab["[UNK]"] = len(vocab)
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.decoder = decoders.Fuse()
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r" ?[A-Za-z]+| ?\d\d|[^\sA-Za-z\d]"),
                                             behavior="isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS,
                                   unk_token="[UNK]")


def _ids(tokenizer, text: str) -> list[int] | None:
    """Token ids of `text` if each piece is one token and they tokenize as a whole the same."""
    per_piece = [tokenizer(p, add_special_tokens=False).input_ids for p in pieces(text)]
    unknown = tokenizer.unk_token_id
    if any(len(i) != 1 or (unknown is not None and i[0] == unknown) for i in per_piece):
        return None
    ids = [i[0] for i in per_piece]
    return ids if tokenizer(text, add_special_tokens=False).input_ids == ids else None


@dataclass(frozen=True)
class PromptBatch:
    """Encoded prompt pairs. input_ids/corrupted_ids [N, S] right-padded; answer_pos [N]."""
    input_ids: torch.Tensor
    corrupted_ids: torch.Tensor
    attention_mask: torch.Tensor
    answer_pos: torch.Tensor
    answer: torch.Tensor          # [N] token id of the answer piece
    rival: torch.Tensor           # [N] token id of the rival piece
    dropped: dict                 # reason -> count

    def __len__(self):
        return len(self.input_ids)


def encode(tokenizer, prompts) -> PromptBatch:
    """Check and encode prompts; those that don't fit the tokenizer are dropped and counted."""
    rows, dropped = [], {}

    def drop(reason):
        dropped[reason] = dropped.get(reason, 0) + 1

    for p in prompts:
        clean, corrupted = _ids(tokenizer, p.clean), _ids(tokenizer, p.corrupted)
        answer, rival = _ids(tokenizer, p.answer), _ids(tokenizer, p.rival)
        if clean is None or corrupted is None:
            drop("a prompt's pieces are not one token each")
        elif answer is None or rival is None or len(answer) != 1 or len(rival) != 1:
            drop("the answer or rival is not one token")
        elif len(clean) != len(corrupted):
            drop("clean and corrupted prompts tokenize to different lengths")
        else:
            rows.append((clean, corrupted, answer[0], rival[0]))
    if not rows:
        raise ValueError(f"no prompt fits this tokenizer: {dropped}")
    width = max(len(r[0]) for r in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    cor, mask = ids.clone(), torch.zeros(len(rows), width, dtype=torch.long)
    for i, (c, k, _, _) in enumerate(rows):
        ids[i, :len(c)], cor[i, :len(k)], mask[i, :len(c)] = torch.tensor(c), torch.tensor(k), 1
    return PromptBatch(ids, cor, mask, mask.sum(1) - 1,
                       torch.tensor([r[2] for r in rows]), torch.tensor([r[3] for r in rows]),
                       dropped)
