"""The cluster path on a real Slurm: the CI config through the shipped profile.

A one-node Slurm with accounting (.ci/slurm.sh: munged, mariadbd, slurmdbd, slurmctld, slurmd,
all stopped again at the end) runs config/ci.yaml through profiles/slurm with only the account
and partitions changed. One discovery is cancelled (`scancel`) while its method runs: the run
still completes, with a visible `cancelled` cell; a second run reruns just that discovery (its
score and the leaderboard, no other job), then every score equals the local run's
(tests/conftest.py::ci_run), and a dry run plans nothing: what the cluster jobs recorded agrees
with the main process's provenance keys (benchmark/workflow/plan_keys.py).

Skipped with the reason where Slurm cannot run (not root, packages missing: `.ci/slurm.sh
install`); under CI (.ci/run installs it) a missing Slurm fails instead.
"""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, job_counts

from benchmark.scoring import regression
from benchmark.workflow.slurm_compat import normalise_states, recorded_stop

SLURM_SH = ROOT / ".ci" / "slurm.sh"
# the discovery to cancel (its method runs for seconds), and its Slurm log folder's name
CANCELLED = ("ioi@tiny_gpt2", "resample", "n200", "s0", "acdc", "threshold=0.01")
CANCELLED_JOB = "rule_discover/ioi@tiny_gpt2_resample_200_0_acdc_threshold=0.01/"


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "starting Slurm's daemons needs root"
    missing = [b for b in ("slurmctld", "slurmd", "slurmdbd", "munged", "mariadbd", "sbatch",
                           "sacct") if not shutil.which(b)]
    if missing:
        return f"Slurm is not installed ({', '.join(missing)} missing): .ci/slurm.sh install"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "the slurm executor plugin is missing: pip install -e '.[slurm]'"
    conf = Path("/etc/slurm/slurm.conf")
    if conf.exists() and not conf.is_symlink():
        return "this machine has a Slurm of its own (/etc/slurm/slurm.conf)"
    return None


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    why = _why_not()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Slurm test: {why}")
        pytest.skip(why)
    # .ci/run names the folder, to stop the daemons even if this process dies
    folder = Path(os.environ.get("CIRCUITBENCH_SLURM_DIR") or tmp_path_factory.mktemp("slurm"))
    up = subprocess.run(["bash", str(SLURM_SH), "up", str(folder)], capture_output=True,
                        text=True, timeout=300)
    try:
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        yield folder
    finally:
        subprocess.run(["bash", str(SLURM_SH), "down", str(folder)], timeout=120)


def _profile(folder: Path) -> Path:
    """The shipped profile with the test cluster's account and partitions, nothing else."""
    conf = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    conf["default-resources"]["slurm_account"] = "ci"
    conf["default-resources"]["slurm_partition"] = "cpu"
    conf["set-resources"]["discover"]["slurm_partition"] = "gpu"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(conf))
    return folder


def _command(profile: Path, paths: Path) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--workflow-profile", str(profile),
            "--configfile", "config/ci.yaml", str(paths)]


def _cancel_when_running(proc, log: Path, deadline: float, lines: list):
    """Read the run's output (into `lines`, on a thread) for the job's id, watch the job's
    log until its method has started, and scancel it then. The log is polled, not read when
    output arrives: Snakemake prints at its status polls, and the method may finish between
    two of them."""
    import threading
    found: dict = {}

    def read():
        for line in proc.stdout:
            lines.append(line)
            if "jobid" not in found and "submitted with SLURM jobid" in line \
                    and CANCELLED_JOB in line:
                found["jobid"] = line.split("SLURM jobid")[1].split()[0]

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while time.time() < deadline and proc.poll() is None:
        if "jobid" in found and log.exists() and "starts" in log.read_text():
            time.sleep(0.5)
            subprocess.run(["scancel", found["jobid"]], check=True)
            return reader
        time.sleep(0.1)
    raise AssertionError(f"the discovery {CANCELLED_JOB} never started on the cluster")


def test_state_names_with_a_suffix_are_cut():
    assert normalise_states({"3": "CANCELLED by 0", "4": "COMPLETED", "5": ""}) == \
        {"3": "CANCELLED", "4": "COMPLETED", "5": ""}
    assert normalise_states(None) is None


def test_ci_config_on_slurm_equals_local_run(slurm, ci_run, compiled_cache, tmp_path):
    results = tmp_path / "results"
    for part in ("tasks", "data", "models"):  # built locally once: the cluster reruns the rest
        shutil.copytree(Path(ci_run, part), results / part)
    paths = tmp_path / "paths.yaml"
    paths.write_text(yaml.safe_dump({"results": str(results), "cache": compiled_cache}))
    profile = _profile(tmp_path / "profile")
    circuit = results.joinpath("circuits", *CANCELLED[:-1], CANCELLED[-1] + ".json")
    log = results.joinpath("logs", "discover", *CANCELLED[:-1], CANCELLED[-1] + ".log")
    env = dict(os.environ, PYTHONUNBUFFERED="1")

    start = time.time()
    proc = subprocess.Popen(_command(profile, paths), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    lines: list = []
    try:
        reader = _cancel_when_running(proc, log, start + 600, lines)
        proc.wait(timeout=900)
        reader.join(30)
        rest = "".join(lines)
    finally:
        proc.kill()
    first = time.time() - start
    assert proc.returncode == 0, rest[-4000:]
    # the run completed, the cancelled discovery a visible cell of the leaderboard
    assert recorded_stop([circuit]) == "cancelled"
    scores = regression.read_scores(sorted(results.joinpath("scores").rglob("*.csv")))
    cell = scores[(scores.task == CANCELLED[0]) & (scores.method == "acdc")]
    assert list(cell.status) == ["cancelled"], cell.status
    assert "cancelled" in results.joinpath("leaderboard", "leaderboard.md").read_text()

    # the next run sets the cancelled cell aside and reruns only its chain
    again = subprocess.run(_command(profile, paths), cwd=ROOT, capture_output=True, text=True,
                           env=env, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert job_counts(again.stdout + again.stderr) == \
        {"discover": 1, "score": 1, "leaderboard": 1}
    assert Path(str(circuit) + ".cancelled").exists()
    assert recorded_stop([circuit]) is None
    slurm_scores = regression.read_scores(sorted(results.joinpath("scores").rglob("*.csv")))
    local_scores = regression.read_scores(sorted(Path(ci_run, "scores").rglob("*.csv")))
    assert len(slurm_scores) == len(local_scores)
    problems = regression.compare(slurm_scores, local_scores)
    assert not problems, "\n".join(problems[:20])
    # what the cluster jobs recorded (params: the provenance keys they were handed) is what
    # the main process plans with: nothing is left to run
    plan = subprocess.run(_command(profile, paths) + ["-n", "--quiet", "rules"], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=300)
    assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-3000:]
    assert job_counts(plan.stdout + plan.stderr) == {}, plan.stdout + plan.stderr
    print(f"Slurm: first run {first:.0f} s, rerun {time.time() - start - first:.0f} s")


DRY_RUN = """
import json, sys
sys.path.insert(0, {tests!r})
import rank_methods
from benchmark.core.registry import METHODS
for cls in rank_methods.RANK_METHODS:
    METHODS.register(cls, "tests/rank_methods.py")
from snakemake.cli import main
from snakemake.executors import dryrun
run_job = dryrun.Executor.run_job


def printing_run_job(self, job):
    if job.rule.name == "discover":
        print("JOB=" + json.dumps({{"setting": job.wildcards.setting, "threads": job.threads,
                                   "resources": dict(job.resources.items())}}), flush=True)
    return run_job(self, job)


dryrun.Executor.run_job = printing_run_job
main(sys.argv[1:])
"""


@pytest.mark.parametrize("host_mem_mb", [None, 1000])
def test_a_run_of_two_processes_asks_slurm_for_two_of_everything(tmp_path, host_mem_mb):
    """The shipped profile on a config whose study runs a distributed method on 2 processes:
    its discover job asks for 2 GPUs, 2 x threads CPUs and 2 x mem_mb (+ 2 GB for the job), on
    one node and as ONE task (torchrun starts the ranks); a run of one process asks for what the
    profile asked before processes existed. The sbatch line is the slurm plugin's own, built
    from the resources of a dry run."""
    from types import SimpleNamespace

    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "results": str(tmp_path / "results"), "cache": str(tmp_path / "cache"), "mem_mb": 4000,
        "studies": {"a": {"tasks": ["xproportion"], "examples": [50], "processes": 2,
                          "methods": {"rank_sum": None, "random": None}}},
        # host_mem_mb replaces mem_mb in the request (on CUDA mem_mb is the GPU's share)
        **({"host_mem_mb": host_mem_mb} if host_mem_mb else {})}))
    profile = _profile(tmp_path / "profile")
    # --cores: the dry run's local executor would cap the profile's 4 threads at one core
    proc = subprocess.run([sys.executable, "-c", DRY_RUN.format(tests=str(ROOT / "tests")),
                           "--workflow-profile", str(profile), "--configfile", str(config),
                           "--cores", "64", "--nolock", "-n"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    jobs = {j["setting"]: j for j in (json.loads(line[4:]) for line in proc.stdout.splitlines()
                                      if line.startswith("JOB="))}
    assert sorted(jobs) == ["default", "processes=2"]  # random on one process, rank_sum on 2

    class Resources(dict):
        __getattr__ = dict.__getitem__

    params = dict(run_uuid="u", slurm_logfile="log", comment_str="c", account="-A ci",
                  partition="-p gpu", workdir=None)
    sbatch = {}
    for setting, j in jobs.items():  # as the plugin's run_job builds it
        job = SimpleNamespace(resources=Resources(j["resources"]), threads=j["threads"])
        sbatch[setting] = (get_submit_command(job, params) + set_gres_string(job)).split()
    assert {"--gpus=2", "--cpus-per-task=8", "--nodes=1"} <= set(sbatch["processes=2"])
    per_process = host_mem_mb or 4000
    assert f"--mem {2 * per_process + 2000}" in " ".join(sbatch["processes=2"])
    assert {"--gpus=1", "--cpus-per-task=4", "--nodes=1"} <= set(sbatch["default"])
    assert f"--mem {per_process + 2000}" in " ".join(sbatch["default"])
    assert not [a for line in sbatch.values() for a in line if a.startswith("--ntasks")]
