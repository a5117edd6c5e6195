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

from benchmark.backends.lm.prompt_spec import PromptTaskSpec, pieces

PAD, EOS = "[PAD]", "[EOS]"


def draw_prompts(spec: PromptTaskSpec, n: int, seed: int, n_eval: int, *, fits=None,
                 dropped: dict | None = None) -> tuple[list, list]:
    """(discovery, evaluation) prompts, every clean prompt distinct, none in both splits.

    `fits(prompt)` -> None or the reason a prompt cannot be used (a tokenizer that splits a
    name): such prompts are skipped, so each split still has its size, and counted in
    `dropped` (reason -> count) for the log."""
    if n + n_eval > spec.space:
        raise ValueError(f"prompt task {spec.name!r} has {spec.space:,} distinct prompts; "
                         f"{n:,} + {n_eval:,} asked for: lower the example count")
    seen: set = set()
    dropped = {} if dropped is None else dropped

    def draw(rng, count):
        out = []
        for _ in range(100 * count + 1000):
            if len(out) == count:
                return out
            p = spec.sample(rng)
            if p.clean in seen:
                continue
            seen.add(p.clean)
            reason = fits(p) if fits is not None else None
            if reason is None:
                out.append(p)
            else:
                dropped[reason] = dropped.get(reason, 0) + 1
        raise ValueError(f"prompt task {spec.name!r}: could not draw {count:,} usable distinct "
                         f"prompts (space {spec.space:,}; skipped: {dropped})")

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


class PromptChecker:
    """Token ids of prompts, checked: each piece one token (not unknown, not the pad id) and
    the whole text tokenizing to exactly those pieces. Pieces are looked up once each, texts
    through the fast (Rust) tokenizer when there is one: 100,000 prompts take seconds.

    A tokenizer that adds a start token (Llama's BOS) gets it in front of every prompt."""

    def __init__(self, tokenizer, pad_id: int | None = None):
        self.tokenizer = tokenizer
        self.fast = getattr(tokenizer, "backend_tokenizer", None)
        self.prefix = list(tokenizer("", add_special_tokens=True).input_ids)
        self.bad = {i for i in (tokenizer.unk_token_id, pad_id) if i is not None}
        self._pieces: dict = {}

    def _tokenize(self, text: str) -> list[int]:
        if self.fast is not None:
            return self.fast.encode(text, add_special_tokens=False).ids
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def ids(self, text: str) -> list[int] | None:
        out = []
        for p in pieces(text):
            if p not in self._pieces:
                self._pieces[p] = self._tokenize(p)
            i = self._pieces[p]
            if len(i) != 1 or i[0] in self.bad:
                return None
            out.append(i[0])
        return out if len(out) == 1 or self._tokenize(text) == out else None

    def row(self, p):
        """(clean, corrupted, answer, rival) ids of a prompt, or the reason it can't be used."""
        clean, corrupted = self.ids(p.clean), self.ids(p.corrupted)
        answer, rival = self.ids(p.answer), self.ids(p.rival)
        if clean is None or corrupted is None:
            return "a prompt's pieces are not one token each"
        if answer is None or rival is None or len(answer) != 1 or len(rival) != 1:
            return "the answer or rival is not one token"
        if len(clean) != len(corrupted):
            return "clean and corrupted prompts tokenize to different lengths"
        return self.prefix + clean, self.prefix + corrupted, answer[0], rival[0]

    def __call__(self, p) -> str | None:
        """The reason prompt `p` cannot be used, or None (draw_prompts' `fits`)."""
        r = self.row(p)
        return r if isinstance(r, str) else None


def prompt_checker(tokenizer, pad_id: int | None = None) -> PromptChecker:
    return PromptChecker(tokenizer, pad_id)


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


def encode(tokenizer, prompts, checker: PromptChecker | None = None) -> PromptBatch:
    """Check and encode prompts; those that don't fit the tokenizer are dropped and counted."""
    checker = checker or PromptChecker(tokenizer, tokenizer.pad_token_id)
    rows, dropped = [], {}
    for p in prompts:
        r = checker.row(p)
        if isinstance(r, str):
            dropped[r] = dropped.get(r, 0) + 1
        else:
            rows.append(r)
    if not rows:
        raise ValueError(f"no prompt fits this tokenizer: {dropped}")
    width = max(len(r[0]) for r in rows)
    pad = tokenizer.pad_token_id
    pad = pad if pad is not None else (tokenizer.eos_token_id or 0)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    cor, mask = ids.clone(), torch.zeros(len(rows), width, dtype=torch.long)
    for i, (c, k, _, _) in enumerate(rows):
        ids[i, :len(c)], cor[i, :len(k)], mask[i, :len(c)] = torch.tensor(c), torch.tensor(k), 1
    return PromptBatch(ids, cor, mask, mask.sum(1) - 1,
                       torch.tensor([r[2] for r in rows]), torch.tensor([r[3] for r in rows]),
                       dropped)
