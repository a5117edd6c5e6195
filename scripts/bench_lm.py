"""Cost of the transformers backend: the masked forward against the plain HF forward.

On randomly initialised GPT-2 configs (nothing is downloaded), batch 8 x 16 tokens, float32, CPU:
  forward   plain `hf(ids).logits` vs `run_circuit` with a mask of ones [n_edges], no grad
  fwd+bwd   plain: `hf(inputs_embeds=e)` with e requiring grad (weights are frozen, as in the
            masked run, so both backpropagate through every layer to the inputs only);
            masked: a continuous mask of ones requiring grad, zero or resample ablation.
            The loss is next-token cross-entropy in both.
Times are the median of --repeats runs after one warm-up. Peak memory is the growth of the
peak resident set (Linux VmHWM, what ru_maxrss reports, reset through /proc/self/clear_refs)
during one first run, each in a fresh interpreter after malloc_trim (so a run cannot reuse
memory freed earlier; forking instead hangs once torch's thread pool has started).
Targets (issue): masked forward <= 2x plain; masked fwd+bwd <= 3x plain fwd+bwd.

    python scripts/bench_lm.py [--threads 1] [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import torch

CONFIGS = {"gpt2-small 124M (12 layers)": {}, "gpt2 2 layers (d 768)": {"n_layer": 2}}
BATCH, SEQ = 8, 16


def _median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))


def _peak_mb(config: str, pass_name: str, threads: int) -> float:
    """Peak resident-set growth (MB) of one run of a pass, in a fresh interpreter."""
    out = subprocess.run([sys.executable, __file__, "--threads", str(threads), "--memory",
                          config, pass_name], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def _measure_memory(config: str, pass_name: str) -> None:
    """(In the child) build the model, reset the peak, run the pass once, print the growth."""
    import ctypes
    runs = passes(*_setup(CONFIGS[config]))
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # setup's freed memory back to the OS, not reused
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _rss_kb("VmRSS")
    runs[pass_name]()
    print((_rss_kb("VmHWM") - base) / 1024)


def _loss(logits, ids):
    """Next-token cross-entropy."""
    return torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten())


def passes(hf, model, ids, corrupted):
    from benchmark.circuit import ablated_outputs, graph_of, run_circuit
    n = graph_of(model).n_edges
    ones = torch.ones(n)

    def plain_fwd():
        with torch.no_grad():
            hf(ids).logits

    def masked_fwd():
        with torch.no_grad():
            run_circuit(model, ids, ones)

    def plain_fwd_bwd():
        embeds = hf.get_input_embeddings()(ids).detach().requires_grad_()
        _loss(hf(inputs_embeds=embeds).logits, ids).backward()

    def masked_fwd_bwd(ablation):
        with torch.no_grad():  # computed once, outside the timed pass (a method caches it too)
            ablated = ablated_outputs(model, ablation, ids, corrupted)

        def run():
            mask = torch.ones(n, requires_grad=True)
            _loss(run_circuit(model, ids, mask, ablated), ids).backward()
        return run

    return {"plain forward": plain_fwd, "masked forward": masked_fwd,
            "plain fwd+bwd": plain_fwd_bwd, "masked fwd+bwd (zero)": masked_fwd_bwd("zero"),
            "masked fwd+bwd (resample)": masked_fwd_bwd("resample")}


def _setup(overrides: dict):
    """A randomly initialised GPT-2 of this config, its graph model, clean and corrupted ids."""
    import transformers as tf

    from benchmark.lm_model import LMGraphModel
    torch.manual_seed(0)
    hf = tf.GPT2LMHeadModel(tf.GPT2Config(**overrides)).eval()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, hf.config.vocab_size, (BATCH, SEQ), generator=g)
    corrupted = torch.randint(0, hf.config.vocab_size, (BATCH, SEQ), generator=g)
    return hf, LMGraphModel(hf), ids, corrupted


def bench(name: str, repeats: int, threads: int) -> None:
    from benchmark.circuit import graph_of
    hf, model, ids, corrupted = _setup(CONFIGS[name])
    runs = passes(hf, model, ids, corrupted)
    memory = {k: _peak_mb(name, k, threads) for k in runs}
    seconds = {k: _median_time(fn, repeats) for k, fn in runs.items()}
    print(f"\n{name}: {graph_of(model).n_edges} edges, batch {BATCH} x {SEQ} tokens")
    print(f"  {'pass':28s} {'seconds':>8s} {'ratio':>6s} {'target':>6s} {'peak MB':>8s}")
    for k in runs:
        base, target = ("plain forward", 2.0) if "forward" in k else ("plain fwd+bwd", 3.0)
        ratio = seconds[k] / seconds[base]
        flag = "" if k == base else f"{'<=' if ratio <= target else '>'}{target:.0f}x"
        print(f"  {k:28s} {seconds[k]:8.3f} {ratio:6.2f} {flag:>6s} {memory[k]:8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (machine shared)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--memory", nargs=2, metavar=("CONFIG", "PASS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    if args.memory:
        return _measure_memory(*args.memory)
    print(f"torch {torch.__version__}, {args.threads} thread(s), float32, CPU")
    for name in CONFIGS:
        bench(name, args.repeats, args.threads)


if __name__ == "__main__":
    main()
