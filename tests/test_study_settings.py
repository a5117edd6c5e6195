"""A study may set its own `sparsities` and `eval_examples` (config/schema.yaml): its tasks'
datasets, discoveries and score jobs get them, every other task the top-level values, and a
task that two studies list with different values is a config error before any job runs.

What the plan decides (each task's settings, the score rows' hash, the error texts) is tested
on benchmark/workflow/plan.py directly (tests/test_plan.py); here, that Snakemake hands it to
the jobs. Dry runs only: a small driver runs Snakemake's dry run and prints each planned job's
params (the dry-run executor's `run_job`, wrapped), which `--printshellcmds` does not show for
a script rule.
"""
import json
import subprocess
import sys

from conftest import ROOT, validated_config

from benchmark.workflow.plan import Plan

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


def _plan(configfile) -> Plan:
    """The plan of the config, as the dry run's Snakemake made it."""
    return Plan(validated_config(configfile))


def test_a_studys_settings_reach_its_tasks_jobs_only(tmp_path):
    own = {"sparsities": [0.9, 0.95, 0.966, 0.98, 0.99], "eval_examples": 200}
    configfile = _config(tmp_path, own)
    proc, jobs = _dry_run(configfile)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert {j["rule"] for j in jobs} >= {"make_dataset", "discover", "score"}
    for rule in ("make_dataset", "discover", "score"):
        assert _params(jobs, rule, "eval_examples") == {"reverse": {200}, "xproportion": {1000}}
    assert _params(jobs, "score", "sparsities") == {
        "reverse": {tuple(own["sparsities"])}, "xproportion": {tuple(TOP["sparsities"])}}
    # the score rows' hash is the plan's (its form: tests/test_plan.py)
    plan = _plan(configfile)
    assert _params(jobs, "score", "config_hash") == {
        task: {plan.scoring_config_hash(task)} for task in ("reverse", "xproportion")}
    assert plan.scoring_config_hash("reverse") != plan.scoring_config_hash("xproportion")


def test_a_task_of_two_studies_with_different_values_is_refused(tmp_path):
    """Before any job, with the plan's one line (every case: tests/test_plan.py)."""
    proc, jobs = _dry_run(_config(tmp_path, {"eval_examples": 200},
                                  b_tasks=("xproportion", "reverse")))
    assert proc.returncode != 0 and jobs == []
    out = proc.stdout + proc.stderr  # Snakemake prints a workflow's error on stdout
    says = ("config studies.a.eval_examples (200) and studies.b (top-level 1000) both list task "
            "reverse: give them the same value or move the task to one study")
    assert says in out, out[-3000:]


def test_the_schema_refuses_a_bad_study_value(tmp_path):
    proc, jobs = _dry_run(_config(tmp_path, {"sparsities": [1.5]}))
    assert proc.returncode != 0 and jobs == []
    err = proc.stdout + proc.stderr
    assert "1.5 is greater than the maximum of 1" in err, err[-3000:]
    assert "['studies']['a']['sparsities'][0]" in err, err[-3000:]
