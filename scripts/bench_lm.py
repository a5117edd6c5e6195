"""Cost of the transformers backend against plain HF GPT-2 passes: masked passes, EAP, Edge Pruning.

Batch 8 x 16 tokens, float32, on --device (cpu by default), three GPT-2 configs:
  the trained small GPT-2 `tiny_gpt2`, loaded from --cache (skipped with a note when it is not
  trained there; this script never trains it), on random ids from its vocab without its pad id 0;
  randomly initialised GPT-2-small (124M) and a 2-layer GPT-2 at d 768 (nothing is downloaded).
Passes (all on one batch; the graph model wraps the same HF model, whose weights are frozen):
  plain forward         `hf(ids).logits`, no grad
  masked forward        `run_circuit` with a mask of ones [n_edges], no grad
  plain fwd+bwd         `hf(inputs_embeds=e)` with e requiring grad (weights frozen, as in the
                        masked runs, so both backpropagate through every layer to the inputs
                        only); the loss is next-token cross-entropy
  masked fwd+bwd        a continuous mask of ones requiring grad, zero or resample ablation (the
                        ablated outputs computed once, outside the timed pass); the same loss;
                        also with `checkpoint_layers` (each block recomputed in the backward)
  EAP                   `methods.eap.EAP().discover` on a `Problem` of the batch (batch_size 8,
                        zero or resample ablation): 1 clean forward, 1 corrupted forward
                        (resample only), 1 forward+backward
  Edge Pruning step     `methods.edge_pruning.EdgePruning().discover` (resample ablation,
                        batch_size 8) timed at 1 and at 1 + K steps (K = --ep-steps); the step is
                        (t(1 + K) - t(1)) / K, which removes the set-up (full outputs, ablation
                        cache, final metric). A step: per-example hard-concrete masks [8, n_edges],
                        the masked forward, the KL metric, the Lagrangian, backward, Adam. Also
                        shown: the whole 1-step run, and as a check the step by the adapter's own
                        clock of its training loop (info train_seconds / steps, 1 + K run).
Times are the median of --repeats runs (--ep-repeats for Edge Pruning) after one warm-up (the
1 + K run is warmed up by the 1-step runs); on CUDA the device is synchronised before the clock
starts and before it stops.
Peak memory, each pass in a fresh interpreter (--memory-jobs of them at a time, all before any
timing starts, so they never overlap a timed run), one first run after the pass's set-up:
  CPU   the growth of the peak resident set (Linux VmHWM, what ru_maxrss reports, reset through
        /proc/self/clear_refs) after malloc_trim, so a run cannot reuse memory freed earlier
        (forking instead hangs once torch's thread pool has started);
  CUDA  torch.cuda.max_memory_allocated during the run minus what was allocated before it.
Edge Pruning's peak is that of the whole 1-step run (its set-up's outputs stay resident in a real
run too).
Targets (issue): masked forward <= 2x plain forward; masked fwd+bwd, EAP and one Edge Pruning step
<= 3x plain fwd+bwd in time; the masked fwd+bwd's peak memory <= 2x the plain fwd+bwd's (issue
20: `run_circuit`'s default path, without `checkpoint_layers`). `--depth` prints instead the peak
memory per token of the masked fwd+bwd at 2, 4, 8 and 12 layers (GPT-2 at d 768: it must grow
linearly in depth) and what a line through them predicts for Llama 1B, 7B and 13B shapes.

    python scripts/bench_lm.py [--threads 1] [--repeats 5] [--device cuda] [--ep-steps 10]
    python scripts/bench_lm.py --depth
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import torch
from _timing import median_time

CONFIGS = {"tiny_gpt2 (trained)": {"trained": "tiny_gpt2"},
           "gpt2-small 124M (random init)": {},
           "gpt2 2 layers, d 768 (random init)": {"n_layer": 2}}
BATCH, SEQ = 8, 16
EP_STEP = "Edge Pruning step (resample)"
CKPT = "masked fwd+bwd (zero, checkpointed)"
# Llama shapes the per-token memory is extrapolated to: (layers, heads, d_model)
LLAMA_SHAPES = {"Llama 1B (3.2-1B)": (16, 32, 2048), "Llama 7B (2-7B)": (32, 32, 4096),
                "Llama 13B (2-13B)": (40, 40, 5120)}
DEPTHS = (2, 4, 8, 12)
EP_CLOCK = "  (step, loop clock)"
# peak memory targets, as ratios to the plain fwd+bwd's peak
MEMORY_TARGETS = {"masked fwd+bwd (zero)": 2.0, "masked fwd+bwd (resample)": 2.0}


def _ep_runs(ep_steps: int) -> tuple[str, str]:
    """Names of the two timed Edge Pruning runs: 1 step and 1 + K steps."""
    return "Edge Pruning 1 step, whole run", f"Edge Pruning {1 + ep_steps} steps, whole run"


def _rows(ep_steps: int) -> list[tuple[str, str, float | None]]:
    """(row, reference pass of its ratio, target ratio or None) in print order."""
    fb = "plain fwd+bwd"
    return [("plain forward", "plain forward", None),
            ("masked forward", "plain forward", 2.0),
            (fb, fb, None),
            ("masked fwd+bwd (zero)", fb, 3.0), ("masked fwd+bwd (resample)", fb, 3.0),
            (CKPT, fb, None),
            ("EAP (zero)", fb, 3.0), ("EAP (resample)", fb, 3.0),
            (EP_STEP, fb, 3.0), (EP_CLOCK, fb, None),
            (_ep_runs(ep_steps)[0], fb, None)]


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))


def _peak_mb(config: str, pass_name: str, args) -> float:
    """Peak memory growth (MB) of one run of a pass, in a fresh interpreter."""
    # glibc's dynamic mmap threshold keeps freed blocks of up to 32 MB in the heap, so the peak
    # resident set would count the allocator's fragmentation from the backward pass's transient
    # tensors (measured: 755 MB for the masked fwd+bwd whose live tensors peak at 534 MB); a
    # fixed threshold returns every block over 128 KB on free, so the peak follows the tensors
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    out = subprocess.run([sys.executable, __file__, "--threads", str(args.threads),
                          "--device", args.device, "--cache", args.cache,
                          "--ep-steps", str(args.ep_steps), "--memory", config, pass_name],
                         capture_output=True, text=True, check=False, env=env)
    if out.returncode:
        raise RuntimeError(f"memory of {pass_name!r} on {config!r} failed:\n{out.stderr[-3000:]}")
    return float(out.stdout.split()[-1])


def _measure_memory(config: str, pass_name: str, args) -> None:
    """(In the child) build the model, do the pass's set-up, reset the peak, run the pass once,
    print the growth in MB."""
    device = torch.device(args.device)
    run = passes(*_setup(config, device, args.cache), args.ep_steps)[pass_name]()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        run()
        torch.cuda.synchronize(device)
        print((torch.cuda.max_memory_allocated(device) - base) / 2 ** 20)
        return
    import ctypes
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # setup's freed memory back to the OS, not reused
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _rss_kb("VmRSS")
    run()
    print((_rss_kb("VmHWM") - base) / 1024)


def _loss(logits, ids):
    """Next-token cross-entropy."""
    return torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten())


def passes(hf, model, ids, corrupted, ep_steps: int, clock: dict | None = None) -> dict:
    """{pass: prepare}: prepare() does the pass's untimed set-up and returns the timed run.
    Edge Pruning runs append their training loop's seconds per step to clock[steps]."""
    from benchmark.graph.circuit import ablated_outputs, graph_of, run_circuit
    from benchmark.graph.data import Split
    from benchmark.protocol import Problem
    from methods.eap import EAP
    from methods.edge_pruning import EdgePruning
    graph = graph_of(model)
    n, device = graph.n_edges, ids.device

    def problem(ablation):
        return Problem(model=model, graph=graph, data=Split(ids, corrupted), ablation=ablation,
                       output_kind="categorical", seed=0, device=device)

    def plain_fwd():
        with torch.no_grad():
            return hf(ids).logits

    def masked_fwd():
        with torch.no_grad():
            run_circuit(model, ids, torch.ones(n, device=device))

    def plain_fwd_bwd():
        embeds = hf.get_input_embeddings()(ids).detach().requires_grad_()
        _loss(hf(inputs_embeds=embeds).logits, ids).backward()

    def masked_fwd_bwd(ablation, checkpoint_layers=False):
        with torch.no_grad():  # computed once, outside the timed pass (a method caches it too)
            ablated = ablated_outputs(model, ablation, ids, corrupted)

        def run():
            mask = torch.ones(n, device=device, requires_grad=True)
            out = run_circuit(model, ids, mask, ablated, checkpoint_layers=checkpoint_layers)
            _loss(out, ids).backward()
        return run

    def eap(ablation):
        params = EAP.params(batch_size=BATCH)
        return lambda: EAP().discover(problem(ablation), params)

    def edge_pruning(steps):
        params = EdgePruning.params(steps=steps, batch_size=BATCH)

        def run():
            info = EdgePruning().discover(problem("resample"), params).info
            if clock is not None:
                clock.setdefault(steps, []).append(info["train_seconds"] / steps)
        return run

    one, more = _ep_runs(ep_steps)
    return {"plain forward": lambda: plain_fwd, "masked forward": lambda: masked_fwd,
            "plain fwd+bwd": lambda: plain_fwd_bwd,
            "masked fwd+bwd (zero)": lambda: masked_fwd_bwd("zero"),
            "masked fwd+bwd (resample)": lambda: masked_fwd_bwd("resample"),
            CKPT: lambda: masked_fwd_bwd("zero", checkpoint_layers=True),
            "EAP (zero)": lambda: eap("zero"), "EAP (resample)": lambda: eap("resample"),
            one: lambda: edge_pruning(1), more: lambda: edge_pruning(1 + ep_steps)}


def _trained_dir(config: str, cache: str):
    """The cache directory of a trained config's model, or None for a random one."""
    name = CONFIGS[config].get("trained")
    if name is None:
        return None
    from benchmark.backends.lm.models import model_dir
    return model_dir(name, cache)


def _setup(config: str, device: torch.device, cache: str):
    """The HF GPT-2 of this config on `device`, its graph model, clean and corrupted ids."""
    from benchmark.backends.lm.model import LMGraphModel
    spec = dict(CONFIGS[config])
    trained = spec.pop("trained", None)
    torch.manual_seed(0)
    if trained:
        from benchmark.backends.lm.models import load_model
        hf, _tokenizer, _report = load_model(trained, cache, device=str(device))
    else:
        import transformers as tf
        hf = tf.GPT2LMHeadModel(tf.GPT2Config(**spec))
    hf = hf.to(device).eval()
    g = torch.Generator().manual_seed(0)
    low = 1 if hf.config.pad_token_id == 0 else 0  # the trained model pads with id 0
    ids, corrupted = (torch.randint(low, hf.config.vocab_size, (BATCH, SEQ), generator=g)
                      for _ in range(2))
    return hf, LMGraphModel(hf), ids.to(device), corrupted.to(device)


def bench(config: str, args) -> None:
    from benchmark.graph.circuit import graph_of
    trained_dir = _trained_dir(config, args.cache)
    if trained_dir is not None and not (trained_dir / "report.json").is_file():
        print(f"\n{config}: skipped, no trained model at {trained_dir} (train it with the "
              "workflow; this script does not)")
        return
    device = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else None
    hf, model, ids, corrupted = _setup(config, device, args.cache)
    clock: dict = {}
    prepare = passes(hf, model, ids, corrupted, args.ep_steps, clock)
    one, more = _ep_runs(args.ep_steps)
    measured = [k for k in prepare if k != more]  # the 1 + K run peaks as the 1-step run does
    with ThreadPoolExecutor(args.memory_jobs) as pool:  # all done before any timing starts
        memory = dict(zip(measured, pool.map(lambda k: _peak_mb(config, k, args), measured)))
    memory[EP_STEP] = memory[one]
    runs = {k: p() for k, p in prepare.items()}
    seconds = {k: median_time(fn, args.repeats, sync=sync)
               for k, fn in runs.items() if k not in (one, more)}
    seconds[one] = median_time(runs[one], args.ep_repeats, sync=sync)
    seconds[more] = median_time(runs[more], args.ep_repeats, warmup=False, sync=sync)
    seconds[EP_STEP] = (seconds[more] - seconds[one]) / args.ep_steps
    seconds[EP_CLOCK] = statistics.median(clock[1 + args.ep_steps])

    c = hf.config
    print(f"\n{config}: {c.n_layer} layers, d {c.n_embd}, vocab {c.vocab_size}, "
          f"{graph_of(model).n_edges} edges, batch {BATCH} x {SEQ} tokens")
    print(f"  {'pass':32s} {'seconds':>8s} {'ratio':>6s} {'target':>6s} {'peak MB':>8s} "
          f"{'ratio':>6s} {'target':>6s}")
    for k, base, target in _rows(args.ep_steps):
        ratio = seconds[k] / seconds[base]
        flag = "" if target is None else f"{'<=' if ratio <= target else '>'}{target:.0f}x"
        mem = f"{memory[k]:8.0f}" if k in memory else ""
        if k in memory and base in memory:
            mem_ratio, mem_target = memory[k] / memory[base], MEMORY_TARGETS.get(k)
            mem += f" {mem_ratio:6.2f}"
            if mem_target is not None:
                mem += f" {'<=' if mem_ratio <= mem_target else '>'}{mem_target:.0f}x"
        print(f"  {k:32s} {seconds[k]:8.3f} {ratio:6.2f} {flag:>6s} {mem}")
    print(f"  ({more}: {seconds[more]:.3f} s; the step is the difference / {args.ep_steps}."
          "\n   Ratios: forward rows / plain forward, the others / plain fwd+bwd; "
          "memory likewise.)")


def depth_scaling(args) -> None:
    """Peak memory per token of the masked fwd+bwd (zero ablation) on GPT-2 configs of 2 to 12
    layers at d 768, and what a linear fit in depth predicts for Llama shapes."""
    rows = {}
    for layers in DEPTHS:
        name = f"gpt2 {layers} layers, d 768 (random init)"
        CONFIGS.setdefault(name, {"n_layer": layers})
        rows[layers] = {k: _peak_mb(name, k, args) / (BATCH * SEQ)
                        for k in ("plain fwd+bwd", "masked fwd+bwd (zero)", CKPT)}
    print(f"\nPeak memory per token (MB), batch {BATCH} x {SEQ}, GPT-2 at d 768, 12 heads:")
    print(f"  {'layers':>6s} {'plain fwd+bwd':>14s} {'masked':>8s} {'ratio':>6s} "
          f"{'checkpointed':>13s} {'ratio':>6s}")
    for layers, r in rows.items():
        plain, masked, ckpt = r["plain fwd+bwd"], r["masked fwd+bwd (zero)"], r[CKPT]
        print(f"  {layers:6d} {plain:14.3f} {masked:8.3f} {masked / plain:6.2f} "
              f"{ckpt:13.3f} {ckpt / plain:6.2f}")
    # per layer and per (port x d_model): the slope of a least-squares line in depth
    xs = list(rows)
    print("  Extrapolated (the slope per layer scaled by (3 heads + 1 MLP port) x d_model of the "
          "shape, the intercept by its d_model; weights and vocabulary left out):")
    for key, label in (("masked fwd+bwd (zero)", "masked"), (CKPT, "checkpointed")):
        ys = [rows[x][key] for x in xs]
        mx, my = statistics.mean(xs), statistics.mean(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        unit = slope / ((3 * 12 + 1) * 768)  # MB per token per port-dimension and layer
        base = (my - slope * mx) / 768
        print(f"  {label}: {slope:.3f} MB per token per layer at GPT-2 small's shape")
        for shape, (layers, heads, d) in LLAMA_SHAPES.items():
            per_token = unit * layers * (3 * heads + 1) * d + base * d
            print(f"    {shape:20s} {layers} layers x {heads} heads, d {d}: "
                  f"{per_token:8.1f} MB per token, {per_token:.1f} GB per 1,024 tokens")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (machine shared)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    parser.add_argument("--cache", default="results/cache",
                        help="cache holding the trained tiny_gpt2 (under models/)")
    parser.add_argument("--ep-steps", type=int, default=10,
                        help="K: Edge Pruning is timed at 1 and 1 + K steps")
    parser.add_argument("--ep-repeats", type=int, default=None,
                        help="repeats of the Edge Pruning runs (default: --repeats)")
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS),
                        metavar="CONFIG", help=f"any of {list(CONFIGS)}")
    parser.add_argument("--memory-jobs", type=int, default=2,
                        help="fresh interpreters measuring memory at a time (before timing)")
    parser.add_argument("--depth", action="store_true",
                        help="only the per-token memory at 2, 4, 8 and 12 layers, extrapolated "
                             "to Llama 1B, 7B and 13B")
    parser.add_argument("--memory", nargs=2, metavar=("CONFIG", "PASS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if min(args.ep_steps, args.memory_jobs) < 1:
        parser.error("--ep-steps and --memory-jobs must be >= 1")
    args.ep_repeats = args.ep_repeats or args.repeats
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    if args.memory:
        config = args.memory[0]
        if config not in CONFIGS and config.startswith("gpt2 ") and " layers, d 768" in config:
            CONFIGS[config] = {"n_layer": int(config.split()[1])}
        return _measure_memory(config, args.memory[1], args)
    if args.depth:
        return depth_scaling(args)
    device = torch.device(args.device)
    where = (f"CUDA ({torch.cuda.get_device_name(device)})" if device.type == "cuda"
             else "CPU")
    print(f"torch {torch.__version__}, {args.threads} thread(s), float32, {where}; "
          f"{args.repeats} repeats, Edge Pruning {args.ep_repeats} repeats, K = {args.ep_steps}")
    for config in args.configs:
        bench(config, args)


if __name__ == "__main__":
    main()
