"""Command line: `python -m benchmark {list,compile,discover,export-mib}` (and the workflow's stages).

Method hyper-parameters are passed as `--name value` after the known options, e.g.
`python -m benchmark discover --task reverse --method acdc --threshold 0.01 --out c.json`.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from benchmark.core.conventions import ABLATIONS
from benchmark.core.task_names import is_lm_task


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
    from benchmark.backends.lm.task import list_lm_tasks
    from benchmark.core.registry import METHODS
    from benchmark.discovery import list_methods
    from benchmark.tasks import list_tasks
    print("tasks:   " + ", ".join(list_tasks()))
    print("language-model tasks (prompt task@model): " + ", ".join(list_lm_tasks()))
    print("methods:")
    import dataclasses
    width = max(map(len, list_methods()))
    for name in list_methods():
        cls = METHODS.get(name)
        fields = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(cls.Params))
        print(f"  {name:{width}s} v{cls.version:4s} {cls.output:8s} {fields}")
    return 0


def cmd_compile(args) -> int:
    from benchmark.tasks import load_task
    if args.out:
        _check_writable(args.out)
    for name in args.task:
        _check_cache(name, args.cache)
    for name in args.task:
        task = load_task(name, cache=args.cache)
        if is_lm_task(name):  # a prompt task on a language model: trained or loaded, no ground truth
            accuracy = task.report.get("accuracy", {}).get(task.spec.name)
            print(f"{name}: {task.graph.n_edges} edges, {task.spec.space:,} distinct prompts"
                  + (f", held-out accuracy {accuracy}" if accuracy is not None else ""))
            if args.out:
                from benchmark.core.artifact import atomic_write_json
                atomic_write_json(args.out, task.summary())
            continue
        m = task.meta
        gt = {k: len(task.ground_truth(k)) for k in task.conventions}
        v = m["verification"]
        # a trained (planted) model has no haiku twin: it reports its agreement instead
        check = (f"max |torch - haiku| = {v['max_abs_diff_torch_vs_haiku']:.2g}"
                 if "max_abs_diff_torch_vs_haiku" in v else
                 ", ".join(f"{k} {x}" for k, x in v.items() if k != "n_inputs"))
        print(f"{name}: {task.graph.n_edges} edges, verified on {v['n_inputs']} inputs "
              f"({check}), ground truth sizes {gt}")
        if args.out:
            from benchmark.core.artifact import atomic_write_json
            atomic_write_json(args.out, task.summary())
    return 0


def _check_writable(path, option: str = "--out", folder: bool = False) -> None:
    """Fail before any work when a file (or a folder to write files in) cannot be written: not
    after minutes of compiling or discovery, and as one line, not a traceback."""
    from benchmark.workflow.results_folder import cannot_write
    target = Path(path).resolve()
    why = ("it is a folder" if not folder and target.is_dir() else
           cannot_write(target if folder else target.parent))
    if why:
        fix = "choose a writable folder (--cache DIR)" if folder else \
            "choose a writable file path"
        raise ValueError(f"{option} {path}: cannot write there ({why}); {fix}")


def _check_cache(task: str, cache) -> None:
    """Fail before any work when `task` is not cached yet and the folder it would be cached in
    cannot be written (a complete cache may be read-only)."""
    option = "--cache" if cache else "task cache"
    if is_lm_task(task):  # a prompt task on a language model: a local model is trained once, cached
        from benchmark.backends.lm.models import model_dir
        from benchmark.backends.lm.task import split_name
        lm = split_name(task)[1]
        model = model_dir(lm.name, cache)
        if lm.trained_here and not (model / "report.json").is_file():
            _check_writable(model.parent, option, folder=True)
        return
    from benchmark.backends.tracr.task import artifact_path
    from benchmark.core.registry import TASKS
    artifact = artifact_path(TASKS.get(task), Path(cache) if cache else None)
    if not artifact.exists():
        _check_writable(artifact.parent, option, folder=True)


def cmd_discover(args, extra) -> int:
    """The workflow's discovery (benchmark.workflow.discover_stage): same isolation, limits and
    record fields; the dataset is built in a temporary folder."""
    from benchmark.datasets import dataset_stage
    from benchmark.discovery import prepare_job
    from benchmark.tasks import load_task
    from benchmark.workflow.discover_stage import run_discovery
    params = _parse_method_params(extra)
    if args.out:
        _check_writable(args.out)
    with tempfile.TemporaryDirectory(prefix="circuitbench-") as tmp:
        data = str(Path(tmp) / "data.pt")
        out = args.out or str(Path(tmp) / "circuit.json")
        # the workflow's job description: method, parameters and device checked before any work
        job = prepare_job(args.task, args.method, params, n=args.n, seed=args.seed,
                          ablation=args.ablation, device=args.device, dataset=data,
                          cache=args.cache, threads=args.threads, out=out,
                          processes=args.processes)
        _check_cache(args.task, args.cache)
        task = load_task(args.task, cache=args.cache)
        dataset_stage(args.task, args.cache, args.n, args.seed, args.n, data)
        record = run_discovery(job, timeout_s=args.timeout_s, mem_mb=args.mem_mb,
                               eval_examples=args.n)
    c = record["counters"]
    if record["status"] != "ok":
        size = f"{record['status']}: {record['error']}"
    elif record["kind"] == "circuit":
        level = record.get("level", "edge")
        # a node circuit counts writers: `logits` is always kept
        total = task.graph.n_edges if level == "edge" else len(task.graph.writers)
        size = f"{len(record['circuit'])} of {total} {level}s kept"
    else:
        size = f"scores for {record['scores']['shape'][0]} {record.get('level', 'edge')}s"
    print(f"{args.method} on {args.task} (n={args.n}, seed={args.seed}, {args.ablation} "
          f"ablation): {size}; {c['wall_seconds']:.2f} s, {c['forward_passes']} forward / "
          f"{c['backward_passes']} backward passes" + (f" -> {args.out}" if args.out else "")
          + (f" (+ {record['scores']['file']})" if args.out and isinstance(
              record.get("scores"), dict) else ""))
    return 0 if record["status"] == "ok" else 1


def cmd_export_mib(args) -> int:
    """A circuit record as MIB's circuit file (benchmark.graph.circuit_files: what is written);
    the graph is its task's."""
    from benchmark.graph.circuit_files import export_record, export_task
    from benchmark.tasks import load_task
    _check_writable(args.out)
    task = load_task(export_task(args.circuit_file, args.out), cache=args.cache)
    print(export_record(args.circuit_file, args.out, task.graph, task.model.d_model,
                        top=args.top, sparsity=args.sparsity))
    return 0


CI_RUN = ("run the CI config first (snakemake --cores 2 --configfile config/ci.yaml) and name "
          "its scores (results/ci/scores)")


def _is_score_file(path: Path) -> bool:
    """Whether `path` has the score columns; a damaged score file is an error with its fix."""
    from benchmark.scoring.schema import COLUMNS
    from benchmark.workflow.damaged import NotScoreFile, check_scores
    try:
        check_scores(str(path), COLUMNS)
    except NotScoreFile:
        return False
    except ValueError as err:
        raise ValueError(f"{err}; rerun the CI config (snakemake --cores 2 --configfile "
                         "config/ci.yaml): it sets damaged files aside and rebuilds them") from None
    return True


def _score_files(root: Path) -> tuple[list[Path], int]:
    """The score files at `root` (one, or a folder's), and how many other CSVs of the folder
    were skipped: leaderboard tables hold score rows too, in other columns or as copies."""
    if not root.is_dir():
        if not _is_score_file(root):
            raise ValueError(f"--scores {root}: not a score file (a CSV with the columns of "
                             "benchmark.scoring.schema.COLUMNS, <results>/scores/<task>/<ablation>/"
                             f"n<N>/s<seed>.csv); {CI_RUN}")
        return [root], 0
    csvs = sorted(root.rglob("*.csv"))
    files = [path for path in csvs if _is_score_file(path)]
    return files, len(csvs) - len(files)


def cmd_update_reference(args) -> int:
    """Writes nothing unless the score files hold rows, each identity (regression.KEY) once."""
    from benchmark.scoring import regression
    root = Path(args.scores)
    out = args.out or regression.REFERENCE
    if not root.exists():
        raise ValueError(f"--scores {root}: no such file or folder; {CI_RUN}")
    _check_writable(out)
    files, skipped = _score_files(root)
    scores = regression.read_scores(files)
    others = f", {skipped} other CSV files skipped" if skipped else ""
    if not len(scores):
        raise ValueError(f"--scores {root}: no score rows ({len(files)} score file(s){others}); "
                         f"{out} not written; {CI_RUN}")
    regression.write_reference(scores, out)
    print(f"wrote {len(scores)} reference rows from {len(files)} score file(s){others} to {out}; "
          "review the diff before committing")
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
    d.add_argument("--processes", type=int, default=1,
                   help="ranks of torch.distributed (a method with distributed = True; "
                        "--mem-mb caps each)")
    x = sub.add_parser("export-mib", help="write a circuit record as MIB's circuit file")
    x.add_argument("circuit_file", help="a circuit record (<setting>.json)")
    x.add_argument("--out", required=True, help="OUT.json or OUT.pt")
    top = x.add_mutually_exclusive_group()
    top.add_argument("--top", type=int, default=None,
                     help="scores: mark the N top-ranked units in_graph (default: none)")
    top.add_argument("--sparsity", type=float, default=None,
                     help="scores: mark the top (1 - S) of the units in_graph")
    x.add_argument("--cache", default=None)
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
        if args.command == "export-mib":
            return cmd_export_mib(args)
        return cmd_discover(args, extra)
    except (KeyError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
