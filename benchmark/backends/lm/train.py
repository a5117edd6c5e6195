"""Train a small causal LM on the prompt tasks, so that circuit discovery on it means something.

Everything is local and seeded: the word-level tokenizer is built from the tasks' pieces, the
model is a transformers config (GPT-2 or Llama family) initialised from the seed, and training
sees only prompts drawn from a stream that discovery and evaluation never use. The loss is the
next-token cross-entropy at the answer position (for Greater-Than, a uniformly drawn end year
greater than the start). `accuracy` reports, on held-out prompts, how often the model's top next
token is right; a trained model must reach the configured bar or training fails loudly.
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.backends.lm.metrics import at_answer
from benchmark.backends.lm.prompt_spec import PromptTaskSpec
from benchmark.backends.lm.prompts import PromptChecker, encode, local_tokenizer

TRAIN_STREAM = 7  # rng stream id; discovery and evaluation use 0 and 1


def build_model(family: str, vocab_size: int, *, n_layer=2, d_model=64, n_head=4, seed=0,
                max_len=32, dropout=None, init_std=None):
    """A randomly initialised small causal LM of the given family (no download). `dropout`
    (embeddings, residual writes, attention) and `init_std` (the standard deviation of the
    initial weights, transformers' `initializer_range`) replace the family's defaults (GPT-2:
    0.1 and 0.02) when given."""
    import transformers
    torch.manual_seed(seed)
    init = {} if init_std is None else {"initializer_range": init_std}
    if family == "gpt2":
        drop = {} if dropout is None else {"embd_pdrop": dropout, "resid_pdrop": dropout,
                                            "attn_pdrop": dropout}
        cfg = transformers.GPT2Config(vocab_size=vocab_size, n_positions=max_len, n_embd=d_model,
                                      n_layer=n_layer, n_head=n_head, n_inner=4 * d_model,
                                      bos_token_id=1, eos_token_id=1, pad_token_id=0,
                                      **drop, **init)
        return transformers.GPT2LMHeadModel(cfg)
    if family == "llama":
        drop = {} if dropout is None else {"attention_dropout": dropout}
        cfg = transformers.LlamaConfig(vocab_size=vocab_size, hidden_size=d_model,
                                       intermediate_size=4 * d_model, num_hidden_layers=n_layer,
                                       num_attention_heads=n_head,
                                       num_key_value_heads=max(1, n_head // 2),
                                       max_position_embeddings=max_len, bos_token_id=1,
                                       eos_token_id=1, pad_token_id=0, **drop, **init)
        return transformers.LlamaForCausalLM(cfg)
    raise ValueError(f"unknown model family {family!r}; known: gpt2, llama")


def _targets(batch, prompts, spec: PromptTaskSpec, tok, rng) -> torch.Tensor:
    if spec.metric != "greater_than":
        return batch.answer
    years = [int(tok.decode([r])) for r in batch.rival]
    later = [f"{int(rng.integers(y + 1, 100)):02d}" if y < 99 else "99" for y in years]
    return torch.tensor(tok.convert_tokens_to_ids(later))


def _sample(spec, rng, n, exclude=frozenset()):
    out = []
    while len(out) < n:
        p = spec.sample(rng)
        if p.clean not in exclude:
            out.append(p)
    return out


def _distinct(spec, rng, n):
    out: dict = {}
    while len(out) < n:
        p = spec.sample(rng)
        out.setdefault(p.clean, p)
    return list(out.values())


def year_ids(tok) -> torch.Tensor:
    return torch.tensor(tok.convert_tokens_to_ids([f"{y:02d}" for y in range(100)]))


@torch.no_grad()
def accuracy(model, tok, spec: PromptTaskSpec, prompts) -> float:
    """Fraction of prompts whose top next token answers them (GT: any later end year)."""
    batch = encode(tok, prompts)
    logits = model(batch.input_ids, attention_mask=batch.attention_mask).logits
    top = at_answer(logits, batch.answer_pos).argmax(-1)
    if spec.metric == "greater_than":
        lookup = {int(t): y for y, t in enumerate(year_ids(tok).tolist())}
        start = [lookup[int(r)] for r in batch.rival]
        return float(np.mean([lookup.get(int(t), -1) > s for t, s in zip(top, start)]))
    return float((top == batch.answer).double().mean())


@torch.no_grad()
def corruption_kl(model, tok, prompts) -> float:
    """Mean KL(clean || corrupted) of the next-token distribution at the answer: how much the
    model's answer depends on what the task's corruption changes."""
    batch = encode(tok, prompts)  # clean and corrupted ids share the mask and answer position
    clean, corrupted = (
        at_answer(model(ids, attention_mask=batch.attention_mask).logits,
                  batch.answer_pos).log_softmax(-1)
        for ids in (batch.input_ids, batch.corrupted_ids))
    return float((clean.exp() * (clean - corrupted)).sum(-1).mean())


def train(specs: list[PromptTaskSpec], family: str = "gpt2", *, steps: int = 3000,
          batch_size: int = 64, lr: float = 3e-3, seed: int = 0, min_accuracy: float = 0.0,
          min_corruption_kl: float = 0.0, weight_decay: float = 0.01, log=print, **arch):
    """(model, tokenizer, report) trained on a mixture of `specs`, one batch of each in turn
    (list a task twice to give it twice the steps: IOI needs them). Raises if a task's
    held-out accuracy stays below `min_accuracy`, or its answers depend on what the task's
    corruption changes by less than `min_corruption_kl` (corruption_kl: a shortcut).

    Measured here (seed 0, 2 layers, d_model 64, 3,000 steps with IOI listed twice, ~3 CPU
    minutes): GPT-2 IOI 0.988, Greater-Than 1.0, gendered pronoun 1.0; with 1,500 steps and
    IOI once, GPT-2 reached 0.61 on IOI and Llama 0.94."""
    tok = local_tokenizer(*specs)
    model = build_model(family, len(tok), seed=seed, **arch)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    rng = np.random.default_rng([seed, TRAIN_STREAM])
    # held-out prompts first (a fifth of a small space), never trained on
    held = {s.name: _distinct(s, np.random.default_rng([seed, TRAIN_STREAM + 1]),
                              min(500, s.space // 5)) for s in specs}
    excluded = {s.name: frozenset(p.clean for p in held[s.name]) for s in specs}
    checker = PromptChecker(tok, tok.pad_token_id)  # looks each piece up once
    t0 = time.perf_counter()
    model.train()
    for step in range(steps):
        spec = specs[step % len(specs)]
        prompts = _sample(spec, rng, batch_size, excluded[spec.name])
        batch = encode(tok, prompts, checker)
        logits = model(batch.input_ids, attention_mask=batch.attention_mask).logits
        loss = F.cross_entropy(at_answer(logits, batch.answer_pos),
                               _targets(batch, prompts, spec, tok, rng))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0 or step == steps - 1:
            log(f"step {step} {spec.name} loss {loss.item():.3f}")
    model.eval()
    report = {"family": family, "steps": steps, "seed": seed,
              "train_seconds": round(time.perf_counter() - t0, 1),
              "parameters": sum(p.numel() for p in model.parameters()),
              "accuracy": {s.name: accuracy(model, tok, s, held[s.name]) for s in specs},
              "held_out": {s.name: len(held[s.name]) for s in specs},
              "corruption_kl": {s.name: round(corruption_kl(model, tok, held[s.name]), 4)
                                for s in specs}}
    weak = {k: v for k, v in report["accuracy"].items() if v < min_accuracy}
    if weak:
        raise ValueError(f"the trained {family} model solves too little: held-out accuracy "
                         f"{weak} < {min_accuracy}; train longer (steps) or larger (d_model)")
    blind = {k: v for k, v in report["corruption_kl"].items() if v < min_corruption_kl}
    if blind:
        raise ValueError(f"the trained {family} model answers without what the corrupted "
                         f"prompts change: mean KL(clean || corrupted) {blind} < "
                         f"{min_corruption_kl} (a shortcut, e.g. one answer for every prompt); "
                         "give the task more of the training mixture or more steps")
    return model, tok, report


MANIFEST = "manifest.json"  # sha256 of every other file of a saved model, written last


def file_hashes(folder: str) -> dict:
    """{file name: sha256} of the files in `folder` (save_pretrained writes no subfolders)."""
    import hashlib
    from pathlib import Path
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(Path(folder).iterdir()) if f.name != MANIFEST}


def save_trained(model, tok, report: dict, out_dir: str) -> None:
    """save_pretrained of model and tokenizer plus report.json, then the manifest of their
    hashes (what a later load checks, benchmark.backends.lm.models.verified_report), moved into place whole."""
    import json
    import os
    import shutil
    import tempfile
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-model-")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    with open(os.path.join(tmp, "report.json"), "w") as f:
        json.dump(report, f, indent=1, sort_keys=True)
    with open(os.path.join(tmp, MANIFEST), "w") as f:
        json.dump({"files": file_hashes(tmp)}, f, indent=1, sort_keys=True)
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
