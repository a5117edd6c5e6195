"""A study may set its own `sparsities` and `eval_examples` (config/schema.yaml): its tasks'
datasets, discoveries and score jobs get them, every other task the top-level values, and a
task that two studies list with different values is a config error before any job runs.

Dry runs only: a small driver runs Snakemake's dry run and prints each planned job's params
(the dry-run executor's `run_job`, wrapped), which `--printshellcmds` does not show for a
script rule.
"""
import json
import subprocess
import sys

import pytest
from conftest import ROOT

from benchmark.core.numerics import kernel_mode
from benchmark.core.provenance import config_hash

DRIVER = """
import json, sys
from snakemake.cli import main
from snakemake.executors import dryrun

run_job = dryrun.Executor.run_job


def printing_run_job(self, job):
    print("JOB=" + json.dumps({"rule": job.rule.name, "wildcards": dict(job.wildcards.items()),
                               "params": dict(job.params.items())}, default=str), flush=True)
    return run_job(self, job)


dryrun.Executor.run_job = printing_run_job
main(sys.argv[1:])
"""

TOP = {"eval_examples": 1000, "sparsities": [0.5, 0.9]}


def _config(tmp_path, a: dict, b: dict | None = None, b_tasks=("xproportion",)) -> str:
    studies = {"a": {"tasks": ["reverse"], "examples": [50], "methods": {"random": None,
                                                                         "eap": None}, **a},
               "b": {"tasks": list(b_tasks), "examples": [50],
                     "methods": {"random": None, "eap": None}, **(b or {})}}
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps({"results": str(tmp_path / "results"),
                                "cache": str(tmp_path / "cache"), **TOP, "studies": studies}))
    return str(path)


def _dry_run(configfile):
    proc = subprocess.run([sys.executable, "-c", DRIVER, "--cores", "1", "--nolock", "-n",
                           "--configfile", configfile], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    jobs = [json.loads(line[len("JOB="):]) for line in proc.stdout.splitlines()
            if line.startswith("JOB=")]
    return proc, jobs


def _params(jobs, rule, key) -> dict:
    """{task: the set of `key` values its `rule` jobs got} (a list as a tuple)."""
    out = {}
    for j in jobs:
        if j["rule"] == rule:
            value = j["params"][key]
            out.setdefault(j["wildcards"]["task"], set()).add(
                tuple(value) if isinstance(value, list) else value)
    return out


def _hash(sparsities, eval_examples):
    # the form of the score rows' config_hash (workflow/rules/common.smk), unchanged from when
    # sparsities and eval_examples were top-level keys only
    return config_hash({"sparsities": sparsities, "eval_examples": eval_examples,
                        "kernels": kernel_mode()})


def test_a_studys_settings_reach_its_tasks_jobs_only(tmp_path):
    own = {"sparsities": [0.9, 0.95, 0.966, 0.98, 0.99], "eval_examples": 200}
    proc, jobs = _dry_run(_config(tmp_path, own))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert {j["rule"] for j in jobs} >= {"make_dataset", "discover", "score"}
    for rule in ("make_dataset", "discover", "score"):
        assert _params(jobs, rule, "eval_examples") == {"reverse": {200}, "xproportion": {1000}}
    assert _params(jobs, "score", "sparsities") == {
        "reverse": {tuple(own["sparsities"])}, "xproportion": {tuple(TOP["sparsities"])}}
    # a study that sets nothing keeps exactly the hash of the top-level values
    assert _params(jobs, "score", "config_hash") == {
        "reverse": {_hash(own["sparsities"], 200)},
        "xproportion": {_hash(TOP["sparsities"], TOP["eval_examples"])}}


def test_a_study_setting_the_top_level_values_keeps_their_hash(tmp_path):
    proc, jobs = _dry_run(_config(tmp_path, dict(TOP), b_tasks=("xproportion", "reverse")))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    top = _hash(TOP["sparsities"], TOP["eval_examples"])
    assert _params(jobs, "score", "config_hash") == {"reverse": {top}, "xproportion": {top}}


@pytest.mark.parametrize("a, b, says", [
    ({"eval_examples": 200}, None,
     "config studies.a.eval_examples (200) and studies.b (top-level 1000) both list task "
     "reverse: give them the same value or move the task to one study"),
    ({}, {"sparsities": [0.9, 0.99]},
     "config studies.b.sparsities ([0.9, 0.99]) and studies.a (top-level [0.5, 0.9]) both list "
     "task reverse: give them the same value or move the task to one study"),
    ({"eval_examples": 200}, {"eval_examples": 300},
     "config studies.a.eval_examples (200) and studies.b.eval_examples (300) both list task "
     "reverse: give them the same value or move the task to one study"),
])
def test_a_task_of_two_studies_with_different_values_is_refused(tmp_path, a, b, says):
    proc, jobs = _dry_run(_config(tmp_path, a, b, b_tasks=("xproportion", "reverse")))
    assert proc.returncode != 0 and jobs == []
    out = proc.stdout + proc.stderr  # Snakemake prints a workflow's error on stdout
    assert says in out, out[-3000:]


def test_the_schema_refuses_a_bad_study_value(tmp_path):
    proc, jobs = _dry_run(_config(tmp_path, {"sparsities": [1.5]}))
    assert proc.returncode != 0 and jobs == []
    err = proc.stdout + proc.stderr
    assert "1.5 is greater than the maximum of 1" in err, err[-3000:]
    assert "['studies']['a']['sparsities'][0]" in err, err[-3000:]
