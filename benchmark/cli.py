"""Command line: `python -m benchmark {list,compile,discover}` (and the workflow's stages).

Method hyper-parameters are passed as `--name value` after the known options, e.g.
`python -m benchmark discover --task reverse --method acdc --threshold 0.01 --out c.json`.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from benchmark.conventions import ABLATIONS


def _parse_method_params(extra: list[str]) -> dict:
    params, i = {}, 0
    while i < len(extra):
        key = extra[i]
        if not key.startswith("--"):
            raise SystemExit(f"error: unexpected argument {key!r}; method parameters are "
                             "given as --name value")
        key = key[2:].replace("-", "_")
        if "=" in key:
            key, value = key.split("=", 1)
            i += 1
        else:
            if i + 1 >= len(extra):
                raise SystemExit(f"error: --{key} needs a value")
            value = extra[i + 1]
            i += 2
        params[key] = value
    return params


def cmd_list(args) -> int:
    from benchmark import list_tasks
    from benchmark.discover import list_methods
    from benchmark.registry import METHODS
    from benchmark.lm_task import list_lm_tasks
    print("tasks:   " + ", ".join(list_tasks()))
    print("language-model tasks (prompt task@model): " + ", ".join(list_lm_tasks()))
    print("methods:")
    for name in list_methods():
        cls = METHODS.get(name)
        import dataclasses
        fields = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(cls.Params))
        print(f"  {name:14s} v{cls.version:4s} {cls.output:8s} {fields}")
    return 0


def cmd_compile(args) -> int:
    from benchmark import load_task
    for name in args.task:
        task = load_task(name, cache=args.cache)
        if "@" in name:  # a prompt task on a language model: trained or loaded, no ground truth
            accuracy = task.report.get("accuracy", {}).get(task.spec.name)
            print(f"{name}: {task.graph.n_edges} edges, {task.spec.space:,} distinct prompts"
                  + (f", held-out accuracy {accuracy}" if accuracy is not None else ""))
            if args.out:
                from benchmark.artifact import atomic_write_json
                atomic_write_json(args.out, task.summary())
            continue
        m = task.meta
        gt = {k: len(task.ground_truth(k)) for k in task.conventions}
        v = m["verification"]
        print(f"{name}: {task.graph.n_edges} edges, verified on {v['n_inputs']} inputs "
              f"(max |torch - haiku| = {v['max_abs_diff_torch_vs_haiku']:.2g}), "
              f"ground truth sizes {gt}")
        if args.out:
            from benchmark.artifact import atomic_write_json
            atomic_write_json(args.out, task.summary())
    return 0


def _check_writable(path: str) -> None:
    """Fail before any work when the circuit file cannot be written."""
    folder = Path(path).resolve().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if Path(path).is_dir():
            raise IsADirectoryError(path)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as err:
        raise ValueError(f"--out {path}: cannot write there ({err}); choose a writable file "
                         "path") from None


def cmd_discover(args, extra) -> int:
    """The workflow's discovery (benchmark.discover.discover_stage): same isolation, limits and
    record fields; the dataset is built in a temporary folder."""
    from benchmark import load_task
    from benchmark.datasets import dataset_stage
    from benchmark.discover import discover_stage, resolve_device
    from benchmark.registry import METHODS
    params = _parse_method_params(extra)
    if args.out:
        _check_writable(args.out)
    resolve_device(args.device)
    METHODS.get(args.method).params(args.task, **params)
    task = load_task(args.task, cache=args.cache)
    with tempfile.TemporaryDirectory(prefix="circuitbench-") as tmp:
        data = str(Path(tmp) / "data.pt")
        dataset_stage(args.task, args.cache, args.n, args.seed, args.n, data)
        out = args.out or str(Path(tmp) / "circuit.json")
        record = discover_stage(args.task, args.cache, data, args.method, params, args.ablation,
                                args.n, args.seed, out, device=args.device,
                                timeout_s=args.timeout_s, mem_mb=args.mem_mb,
                                threads=args.threads, eval_examples=args.n)
    c = record["counters"]
    if record["status"] != "ok":
        size = f"{record['status']}: {record['error']}"
    elif record["kind"] == "circuit":
        size = f"{len(record['circuit'])} of {task.graph.n_edges} edges kept"
    else:
        size = f"scores for {len(record['scores'])} edges"
    print(f"{args.method} on {args.task} (n={args.n}, seed={args.seed}, {args.ablation} "
          f"ablation): {size}; {c['wall_seconds']:.2f} s, {c['forward_passes']} forward / "
          f"{c['backward_passes']} backward passes" + (f" -> {args.out}" if args.out else ""))
    return 0 if record["status"] == "ok" else 1


def cmd_update_reference(args) -> int:
    from benchmark import regression
    root = Path(args.scores)
    if not root.exists():
        raise ValueError(f"--scores {root}: no such file or folder; run the CI config first "
                         "(snakemake --cores 2 --configfile config/ci.yaml) or name its scores")
    paths = sorted(root.rglob("*.csv")) if root.is_dir() else [root]
    scores = regression.read_scores(paths)
    out = regression.write_reference(scores, args.out or regression.REFERENCE)
    print(f"wrote {len(scores)} reference rows to {out}; review the diff before committing")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmark", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="registered tasks and methods")
    c = sub.add_parser("compile", help="compile, verify and cache tasks")
    c.add_argument("--task", nargs="+", required=True)
    c.add_argument("--cache", default=None, help="artifact folder (default: the user cache)")
    c.add_argument("--out", default=None, help="write a JSON summary (one task)")
    d = sub.add_parser("discover", help="run one method on one task, write its circuit file",
                       epilog="Method parameters follow as --name value (see `list`).")
    d.add_argument("--task", required=True)
    d.add_argument("--method", required=True)
    d.add_argument("--n", type=int, default=1000, help="discovery examples")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--ablation", default="zero", choices=list(ABLATIONS))
    d.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 or auto")
    d.add_argument("--cache", default=None)
    d.add_argument("--out", default=None, help="circuit JSON to write")
    d.add_argument("--timeout-s", type=float, default=None,
                   help="kill the method after this many seconds (default: no limit)")
    d.add_argument("--mem-mb", type=int, default=None,
                   help="address-space limit of the method's process (default: none)")
    d.add_argument("--threads", type=int, default=1)
    u = sub.add_parser("update-reference",
                       help="rewrite the committed CI reference numbers from a CI run")
    u.add_argument("--scores", default="results/ci/scores",
                   help="score CSV or folder of them (default: the CI run's)")
    u.add_argument("--out", default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command != "discover" and extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "list":
            return cmd_list(args)
        if args.command == "compile":
            return cmd_compile(args)
        if args.command == "update-reference":
            return cmd_update_reference(args)
        return cmd_discover(args, extra)
    except (KeyError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
