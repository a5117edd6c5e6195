"""A cluster job's own Snakemake plans with the main process's provenance keys, without torch.

Each cluster job parses the Snakefile twice; importing torch there (to find method versions and
code keys) cost 2.5 s of CPU per job. The keys travel in the environment instead
(benchmark/workflow/plan_keys.py), and must be the very values the main process put in the job's params.
"""
import json
import os
import subprocess
import sys
from importlib.metadata import version as package_version

import pytest
from conftest import ROOT

from benchmark.core.numerics import PORTABLE
from benchmark.core.provenance import ALL_PACKAGES, git_commit, head_commit, package_versions
from benchmark.workflow.plan_keys import ENV, PlanKeys

MAIN = """
import os, sys
from snakemake.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("KEYS=" + os.environ.get("CIRCUITBENCH_PLAN_KEYS", ""))
"""


def test_main_process_computes_and_jobs_inherit(monkeypatch):
    monkeypatch.setenv(ENV, json.dumps({"task": {"reverse": "stale"}}))
    main = PlanKeys(inherit=False)  # the main process makes keys, never reads them
    assert main.get("task", "reverse", lambda t: "fresh") == "fresh"
    main.hand_down()
    assert json.loads(os.environ[ENV]) == {"task": {"reverse": "fresh"}}
    job = PlanKeys(inherit=True)
    assert job.get("task", "reverse", lambda t: pytest.fail("recomputed")) == "fresh"
    assert job.get("task", "sort", lambda t: "computed") == "computed"  # not handed down
    monkeypatch.setenv(ENV, "{not json")
    assert PlanKeys(inherit=True).get("code", "data", lambda _: "own") == "own"


def test_provenance_is_the_plans_else_asked_here(monkeypatch):
    """A job records the commit and versions its plan handed down; a process without a plan
    (the CLI) asks git and the package metadata itself: the same values."""
    monkeypatch.setenv(ENV, "{}")  # no plan's keys (and restored after the test)
    commit, versions = git_commit(), package_versions(ALL_PACKAGES)
    assert commit == head_commit()
    assert versions == {p: package_version(p) for p in ALL_PACKAGES}
    main = PlanKeys(inherit=False)
    main.add_provenance()
    main.hand_down()
    assert json.loads(os.environ[ENV])["git"] == {"commit": commit}
    assert json.loads(os.environ[ENV])["package"] == versions
    monkeypatch.setenv(ENV, json.dumps({"git": {"commit": "planned"},
                                        "package": {"torch": "9.9"}}))
    assert git_commit() == "planned"  # read, not asked again
    assert package_versions(["torch", "transformers"]) == {
        "torch": "9.9", "transformers": package_version("transformers")}
    monkeypatch.setenv(ENV, "{not json")
    assert git_commit() == commit


def _keys_of_main_process(tmp_path):
    paths = tmp_path / "paths.yaml"
    paths.write_text(f"results: {tmp_path / 'results'}\ncache: {tmp_path / 'cache'}\n")
    out = subprocess.run([sys.executable, "-c", MAIN, "--configfile", "config/ci.yaml",
                          str(paths), "-n", "--quiet"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    line = [x for x in out.stdout.splitlines() if x.startswith("KEYS=")]
    assert line and line[0] != "KEYS=", out.stdout[-2000:] + out.stderr[-2000:]
    return paths, json.loads(line[0][len("KEYS="):])


def test_cluster_job_plans_with_the_main_keys_and_no_torch(tmp_path):
    paths, keys = _keys_of_main_process(tmp_path)
    assert set(keys) == {"code", "git", "model", "package", "source", "task", "version"}
    # where results come from, asked once per plan: the values a job would find itself
    assert keys["git"] == {"commit": head_commit()}
    assert keys["package"] == {p: package_version(p) for p in ALL_PACKAGES}
    assert set(keys["version"]) == {"acdc", "eap", "eap_ig", "edge_pruning", "random",
                                    "exact_patching", "eap_ig_activations", "ifr", "hisp",
                                    "nap", "subnetwork_probing"}
    assert set(keys["task"]) == {"reverse", "xproportion", "ioi@tiny_gpt2"}
    # the job's Snakemake, as the slurm plugin starts it, with the keys in its environment
    probe = ("import sys, runpy; sys.argv = ['snakemake'] + sys.argv[1:]\n"
             "try:\n    runpy.run_module('snakemake', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "print('TORCH', 'torch' in sys.modules)\n")
    job = "discover:task=ioi@tiny_gpt2,ablation=resample,n=200,seed=0,method=eap,setting=" \
          "batch_size=200"
    env = dict(os.environ, **{ENV: json.dumps(keys)})
    out = subprocess.run([sys.executable, "-c", probe, "--snakefile", str(ROOT / "Snakefile"),
                          "--target-jobs", job, "--allowed-rules", "discover", "--cores", "1",
                          "--force", "--nolock", "--configfiles", "config/ci.yaml", str(paths),
                          "--mode", "remote", "-n"],
                         cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert "TORCH False" in out.stdout, out.stdout[-3000:] + out.stderr[-3000:]
    # a job without inherited keys computes them itself: the same values (the CI config runs
    # the portable kernels, part of a trained model's key)
    own = subprocess.run([sys.executable, "-c", OWN_KEYS], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, env=dict(os.environ,
                                                          **PORTABLE))
    assert own.returncode == 0, own.stderr[-2000:]
    source, version, task, model = own.stdout.split()
    assert (keys["source"]["eap"], keys["version"]["eap"]) == (source, version)
    assert (keys["task"]["ioi@tiny_gpt2"], keys["model"]["tiny_gpt2"]) == (task, model)


OWN_KEYS = """
from benchmark.workflow.plan_keys import method_source_hash
from benchmark.backends.lm.models import lm_model_key
from benchmark.core.registry import METHODS
from benchmark.tasks import task_key
print(method_source_hash("eap"), METHODS.get("eap").version, task_key("ioi@tiny_gpt2"),
      lm_model_key("tiny_gpt2"))
"""
