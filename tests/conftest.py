"""Shared fixtures: one fresh task cache per test session, each task compiled at most once.

The session compiles into a temporary folder (never the user's cache), so the tests check what
the current code builds. For quick local reruns, CIRCUITBENCH_TEST_CACHE=<dir> makes the
session reuse (and fill) a persistent folder instead.

tracr's compile of a task is memoised for the session: `load_task` compiles through
`benchmark.backends.tracr.compile.compile_program`; the compile tests reuse that same compilation (the
haiku model and the RASP program) instead of compiling a second time.

The suite runs on both cores (`pytest -n 2`, pytest-xdist): each test file stays on one worker
(its module fixtures are built once), the files that use the local CI run (`ci_run`) share a
worker and start first (the Slurm test among them is the longest), and the workers share one
task cache, each task compiled by whichever worker needs it first while the other waits.
"""
import fcntl
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    """One torch thread unless CIRCUITBENCH_TEST_THREADS says otherwise: the tests' tensors are
    small, and on a busy machine two threads waiting on each other were 5-10x slower."""
    import torch
    torch.set_num_threads(int(os.environ.get("CIRCUITBENCH_TEST_THREADS", "1")))


CI_RUN_FILES = ("test_slurm.py", "test_regression.py")  # the longest first


def pytest_xdist_make_scheduler(config, log):
    """`pytest -n 2`: each test file is one unit of work (its module fixtures built once), the
    files that use the CI run one unit together, units handed out in collection order. (Not
    xdist's `loadgroup`: with pytest 9.2 its group marks are lost.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ByFile(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            path = nodeid.split("::", 1)[0]
            return "ci_run" if Path(path).name in CI_RUN_FILES else path

    config.option.loadscopereorder = False  # keep the order below, not the largest file first
    return ByFile(config, log)


def pytest_collection_modifyitems(config, items):
    """The files that use the CI run first: the Slurm test is the suite's longest."""
    first = {name: i for i, name in enumerate(CI_RUN_FILES)}
    items.sort(key=lambda item: first.get(item.path.name, len(first)))


def _shared_tmp(tmp_path_factory) -> Path:
    """The run's temporary folder, the same for every xdist worker (each has its own below)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session", autouse=True)
def task_cache(tmp_path_factory):
    """$CIRCUITBENCH_CACHE for the whole session (shared by the workers), restored afterwards."""
    shared = _shared_tmp(tmp_path_factory) / "task_cache"
    shared.mkdir(exist_ok=True)
    path = os.environ.get("CIRCUITBENCH_TEST_CACHE") or str(shared)
    previous = os.environ.get("CIRCUITBENCH_CACHE")
    os.environ["CIRCUITBENCH_CACHE"] = path
    yield path
    if previous is None:
        os.environ.pop("CIRCUITBENCH_CACHE", None)
    else:
        os.environ["CIRCUITBENCH_CACHE"] = previous


@pytest.fixture(scope="session", autouse=True)
def compilations():
    """name -> (program, haiku model) of every tracr compile this session, one per task."""
    from benchmark.backends.tracr import compile as tracr_compile
    original = tracr_compile.compile_program
    done = {}

    def compile_once(spec):
        if spec.name not in done:
            done[spec.name] = original(spec)
        return done[spec.name]

    tracr_compile.compile_program = compile_once
    yield done
    tracr_compile.compile_program = original


@pytest.fixture(scope="session")
def get_task(task_cache, compilations):
    """get_task(name): the loaded task, compiled on first use, shared by the session."""
    from benchmark import load_task
    loaded = {}

    def get(name):
        if name not in loaded:
            # the other worker may be compiling it: wait for its artifact, don't compile twice
            lock = Path(task_cache) / f".{name}.lock"
            with open(lock, "w") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                loaded[name] = load_task(name)
        return loaded[name]

    return get


@pytest.fixture(scope="session")
def get_compiled(get_task, compilations):
    """get_compiled(name): (program, haiku model) of the compile behind get_task(name)."""
    from benchmark.backends.tracr import compile as tracr_compile

    def get(name):
        task = get_task(name)
        if name not in compilations:  # artifact came from a reused cache
            tracr_compile.compile_program(task.spec)
        return compilations[name]

    return get


@contextmanager
def registered(classes, source: str):
    """Test adapters (tests/faulty_methods.py, tests/rank_methods.py) in the method registry
    while the block runs, and out of it after."""
    from benchmark.core.registry import METHODS
    METHODS.names()  # load the real ones first
    for cls in classes:
        METHODS.register(cls, source)
    try:
        yield
    finally:
        for cls in classes:
            METHODS._load().pop(cls.name)
            METHODS._sources.pop(cls.name)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, task_cache, get_task):
    """The discovery data file (50 xproportion examples) the discover-stage tests run on."""
    from benchmark.datasets import dataset_stage
    get_task("xproportion")
    path = str(tmp_path_factory.mktemp("data") / "xproportion.pt")
    dataset_stage("xproportion", task_cache, 50, 0, 50, path)
    return path


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (ended, not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone, before the open or the read
        return False


def job_counts(output: str) -> dict[str, int]:
    """{rule: jobs} of Snakemake's first job stats table, the `all` target left out; {} when
    it prints none (nothing to do). The one parser of that table, for tests of what Snakemake
    itself decides to run; what a config plans, the tests ask benchmark/workflow/plan.py."""
    counts, table = {}, False
    for line in output.splitlines():
        parts = line.split()
        if line.startswith("Job stats:"):
            table = True
        elif table and parts and parts[0] == "total":
            break
        elif table and len(parts) == 2 and parts[1].isdigit() and parts[0] != "all":
            counts[parts[0]] = int(parts[1])
    return counts


def validated_config(path, **overrides) -> dict:
    """A config file as the workflow sees it: `overrides` set (as `--config key=value` does),
    then checked against config/schema.yaml with its defaults filled in (Snakefile: validate)."""
    import yaml
    from snakemake.utils import validate
    config = {**yaml.safe_load(Path(path).read_text()), **overrides}
    validate(config, str(ROOT / "config" / "schema.yaml"))
    return config


def snakemake_ci(*args, results, cache):
    """Snakemake on config/ci.yaml with its results and task cache elsewhere."""
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "config/ci.yaml",
           "--config", f"results={results}", f"cache={cache}", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)


@pytest.fixture(scope="session")
def compiled_cache(get_task):
    """The session's task cache, with the CI tasks compiled once."""
    for name in ("reverse", "xproportion"):
        get_task(name)
    return os.environ["CIRCUITBENCH_CACHE"]


@pytest.fixture(scope="session")
def ci_run(tmp_path_factory, compiled_cache):
    """The results folder of one local run of config/ci.yaml."""
    results = tmp_path_factory.mktemp("ci_results")
    proc = snakemake_ci(results=results, cache=compiled_cache)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return results


