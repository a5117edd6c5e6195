"""Edge Pruning on N ranks (torch.distributed, gloo on the CPU): per-rank memory and time.

A randomly initialised Llama-family model of TinyLlama v1.1's shape (22 layers, 32 query heads
sharing 4 key/value heads, d_model 2048, MLP 5632, vocab 32000: 1.1B parameters, 742,996
edges) runs a few Edge Pruning steps, once per N in --processes. Each run is its own torchrun
launch; every rank builds the model on the meta device, shards its attention and MLP blocks
(FSDP, benchmark.graph.ranks.shard_model) and fills only its own share of the weights
(`materialize`, from a generator seeded per parameter name: every N gets the same weights), so
no rank ever holds the whole model. Printed per N: each rank's peak resident memory (VmHWM),
the seconds of the training loop, its seconds per step, and the masks' largest difference from
the first N's (the same seed must give the same masks whatever N is).

    python scripts/bench_ranks.py                       # TinyLlama's shape, N = 1 and 2
    python scripts/bench_ranks.py --shape small --steps 20   # a 4-layer model, in seconds
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHAPES = {  # LlamaConfig fields
    "tinyllama": dict(vocab_size=32000, hidden_size=2048, intermediate_size=5632,
                      num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4),
    "codellama_13b": dict(vocab_size=32016, hidden_size=5120, intermediate_size=13824,
                          num_hidden_layers=40, num_attention_heads=40, num_key_value_heads=40),
    "small": dict(vocab_size=512, hidden_size=128, intermediate_size=256, num_hidden_layers=4,
                  num_attention_heads=8, num_key_value_heads=2),
}


def fill_random(real_buffers: dict):
    """`materialize`'s fill: N(0, 0.02) weights, ones for norms, from a generator seeded by the
    parameter's name (the same full tensor on every rank and for every N); buffers (rotary
    frequencies) from a model built for real."""
    import torch

    def fill(name, shape, rows):
        if name in real_buffers:
            return real_buffers[name][rows]
        if name.endswith("norm.weight"):
            return torch.ones(shape)[rows]
        gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
        return (0.02 * torch.randn(shape, generator=gen))[rows]
    return fill


def worker(args) -> None:
    import resource

    import torch
    import torch.distributed as dist
    from transformers import LlamaConfig, LlamaForCausalLM

    from benchmark.backends.lm.model import LMGraphModel
    from benchmark.backends.lm.sharded import computed_buffers
    from benchmark.graph import ranks
    from benchmark.graph.circuit import graph_of
    from benchmark.graph.data import Split
    from benchmark.protocol import Problem
    from methods.edge_pruning import EdgePruning

    dist.init_process_group("gloo")
    rank, size = ranks.world()
    torch.set_num_threads(args.threads)
    cfg = LlamaConfig(**SHAPES[args.shape], max_position_embeddings=args.seq)
    clock = time.perf_counter()
    with torch.device("meta"):
        model = LMGraphModel(LlamaForCausalLM(cfg))
    real = computed_buffers(model, cfg)  # rotary frequencies, as a sharded load computes them
    ranks.shard_model(model, torch.device("cpu"))
    ranks.materialize(model, "cpu", fill_random(real))
    load_seconds = time.perf_counter() - clock
    gen = torch.Generator().manual_seed(0)
    clean = torch.randint(0, cfg.vocab_size, (args.examples, args.seq), generator=gen)
    corrupted = torch.randint(0, cfg.vocab_size, (args.examples, args.seq), generator=gen)
    problem = Problem(model=model, graph=graph_of(model), data=Split(clean, corrupted),
                      ablation="resample", output_kind="categorical", seed=0,
                      batch_size=args.batch, rank=rank, world_size=size)
    p = EdgePruning.params(steps=args.steps, batch_size=args.batch, mask_lr=0.8, lambda_lr=0.8,
                           target_sparsity=0.98, warmup_steps=args.steps,
                           sample_per_example=False)
    adapter = EdgePruning()
    result = adapter.discover(problem, p)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peaks = ranks.gather_objects(round(peak, 1))
    if rank == 0:
        torch.save(adapter.masks.log_alpha.detach(), args.out)
        print(json.dumps({"processes": size, "rank_peak_mem_mb": peaks,
                          "load_seconds": round(load_seconds, 1),
                          "train_seconds": round(result.info["train_seconds"], 1),
                          "seconds_per_step": round(result.info["train_seconds"] / args.steps, 2),
                          "edges": problem.graph.n_edges,
                          "edges_kept": result.info["edges_kept"],
                          "circuit_sha256": hashlib.sha256(
                              "\n".join(sorted(result.circuit)).encode()).hexdigest()}),
              flush=True)
    dist.destroy_process_group()


def parameter_counts(shape: str) -> dict:
    """Parameters in the sharded blocks, those every rank keeps whole, the largest block's, and
    writers x d_model, of a shape: counted on the meta device (no memory)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from benchmark.backends.lm.model import LMGraphModel
    with torch.device("meta"):
        model = LMGraphModel(LlamaForCausalLM(LlamaConfig(**SHAPES[shape])))
    units = [sum(p.numel() for p in u.parameters()) for u in model.shard_units()]
    total = sum(p.numel() for p in model.parameters())
    return {"sharded": sum(units), "whole": total - sum(units), "largest": max(units),
            "width": (1 + model.n_layers * (model.n_heads + 1)) * model.d_model}


def estimate(shape: str, n: int, tokens_per_rank: int, weight_bytes: int, per_unit: float,
             base_mb: float) -> float:
    """Peak MB per rank: the process's base, the weights kept whole, two gathered blocks (the
    one computing and the next, prefetched) when sharded, 1/n of the blocks' weights, and
    activations of writers x d_model x the rank's tokens (`per_unit` bytes each, fitted on a
    float32 run; in the weights' dtype they take weight_bytes / 4 of that)."""
    c = parameter_counts(shape)
    gathered = 2 * c["largest"] if n > 1 else 0
    return (base_mb + (c["sharded"] / n + c["whole"] + gathered) * weight_bytes / 2**20
            + per_unit * weight_bytes / 4 * c["width"] * tokens_per_rank / 2**20)


def report_memory(args, runs) -> None:
    """Fit the memory model's activation term on N = 1, check it on the other Ns, and apply it
    to CodeLlama-13B (bf16 weights, batch 1 per rank)."""
    first = runs[0]
    if first["processes"] != 1 or args.shape != "tinyllama":
        return
    c = parameter_counts(args.shape)
    tokens = args.batch * args.seq
    weights_mb = (c["sharded"] + c["whole"]) * 4 / 2**20
    per_unit = ((first["rank_peak_mem_mb"][0] - args.base_mb - weights_mb) * 2**20
                / (c["width"] * tokens))
    print(f"memory model: {args.base_mb:.0f} MB base + weights + {per_unit:.1f} bytes per "
          f"writer x d_model x token (fitted on N=1)")
    for r in runs[1:]:
        n = r["processes"]
        est = estimate(args.shape, n, -(-tokens // n), 4, per_unit, args.base_mb)
        print(f"  N={n}: predicted {est:,.0f} MB per rank, measured "
              f"{max(r['rank_peak_mem_mb']):,.0f}")
    for seq in (32, 256):
        est = {n: estimate("codellama_13b", n, seq, 2, per_unit, args.base_mb)
               for n in (1, 2, 4, 8, 16, 32)}
        print(f"CodeLlama-13B, bf16, batch 1 x {seq} tokens per rank, GB per rank: " +
              ", ".join(f"N={n} {mb / 1024:,.1f}" for n, mb in est.items()))


def launch(args, n: int, out: str) -> dict:
    """One torchrun launch of `worker` on n ranks; rank 0's JSON line."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
           "--nproc-per-node", str(n), __file__, "--worker", "--out", out,
           "--shape", args.shape, "--steps", str(args.steps), "--batch", str(args.batch),
           "--seq", str(args.seq), "--examples", str(args.examples),
           "--threads", str(max(1, args.threads_total // n))]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode or not lines:
        sys.exit(f"N={n} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--shape", choices=SHAPES, default="tinyllama")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=16)
    ap.add_argument("--examples", type=int, default=64)
    ap.add_argument("--threads-total", type=int, default=2, help="torch threads over all ranks")
    ap.add_argument("--base-mb", type=float, default=400.0,
                    help="an idle rank's memory (torch, transformers), for the memory model")
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--save", help="write the runs' results to this JSON file")
    ap.add_argument("--load", help="print the results saved with --save instead of running")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    import torch
    if args.load:
        runs = json.loads(Path(args.load).read_text())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            runs = [launch(args, n, f"{tmp}/masks{n}.pt") for n in args.processes]
            masks = [torch.load(f"{tmp}/masks{n}.pt") for n in args.processes]
        for r, m in zip(runs, masks):
            r["mask_diff"] = float((m - masks[0]).abs().max())
    if args.save:
        Path(args.save).write_text(json.dumps(runs))
    first = runs[0]
    print(f"{args.shape}: {first['edges']:,} edges, {args.steps} steps, batch {args.batch} x "
          f"{args.seq} tokens, resample ablation, {args.threads_total} threads in all")
    print(f"{'N':>3} {'peak MB per rank':>22} {'load s':>7} {'train s':>8} {'s/step':>7} "
          f"{'x N=' + str(first['processes']):>7} {'kept':>8} {'same circuit':>13} "
          f"{'max |log_alpha diff|':>21}")
    for r in runs:
        print(f"{r['processes']:>3} {', '.join(f'{m:,.0f}' for m in r['rank_peak_mem_mb']):>22} "
              f"{r['load_seconds']:>7} {r['train_seconds']:>8} {r['seconds_per_step']:>7} "
              f"{r['train_seconds'] / first['train_seconds']:>7.2f} {r['edges_kept']:>8,} "
              f"{str(r['circuit_sha256'] == first['circuit_sha256']):>13} {r['mask_diff']:>21.2e}")
    report_memory(args, runs)


if __name__ == "__main__":
    main()
