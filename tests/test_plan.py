"""The plan of a run (benchmark/workflow/plan.py), tested as code: the runs, score groups,
datasets and models a config makes, their paths and settings, and the config errors, without
Snakemake. The paths, setting ids and hashes are pinned: they are job outputs and params, and a
change reruns every job of an existing results folder."""
import subprocess
import sys

import pytest
from conftest import ROOT, validated_config

from benchmark.core.provenance import config_hash
from benchmark.report.outputs import PLOTS, TABLES
from benchmark.workflow.plan import Plan, check_device, expand_grid, setting_id

TOP = {"results": "res", "cache": "res/cache", "device": "cpu", "eval_examples": 1000,
       "sparsities": [0.5, 0.9]}


def _config(**studies) -> dict:
    """A config of `studies` ({name: block}), each block with one seed and ablation unless it
    says otherwise."""
    blocks = {name: {"seeds": [0], "ablations": ["zero"], "examples": [50], **block}
              for name, block in studies.items()}
    return {**TOP, "studies": blocks}


def test_setting_ids_are_one_readable_path_component():
    assert setting_id({}) == "default"
    assert setting_id({"threshold": 0.01}) == "threshold=0.01"
    assert setting_id({"steps": 600, "batch_size": 2000}) == "batch_size=2000+steps=600"
    # `/`, `+`, `=`, `%` and commas (Slurm's --target-jobs) never reach the path unencoded
    assert setting_id({"model": "a/b+c=d%e,f"}) == "model=a%2Fb%2Bc%3Dd%25e%2Cf"


def test_a_grid_expands_to_its_product_in_sorted_param_order():
    assert expand_grid(None) == [{}] and expand_grid({}) == [{}]
    assert expand_grid({"q": [0.1, 0.2], "p": [1, 2, 3]}) == [
        {"p": p, "q": q} for p in (1, 2, 3) for q in (0.1, 0.2)]


def test_a_small_config_plans_each_run_once():
    config = _config(
        a={"tasks": ["x", "y@tiny_gpt2"], "examples": [1, 2],
           "methods": {"m": {"p": [1, 2, 3], "q": [0.1, 0.2]}, "r": None}},
        b={"tasks": ["x"], "examples": [1], "methods": {"r": None}},  # a duplicate of a's
    )
    plan = Plan(config, kernels="native")
    assert len(plan.runs) == 2 * 2 * (3 * 2 + 1)
    path = "res/circuits/x/zero/n1/s0/m/p=2+q=0.1.json"
    assert plan.runs[path] == dict(task="x", n=1, seed=0, ablation="zero", method="m",
                                   setting="p=2+q=0.1", values={"p": 2, "q": 0.1})
    assert plan.run_of(path) is plan.runs[path]
    assert "res/circuits/x/zero/n1/s0/r/default.json" in plan.runs
    with pytest.raises(ValueError, match="^res/circuits/x/zero/n9/s0/r/default.json is not a "
                                         "run of this config$"):
        plan.run_of("res/circuits/x/zero/n9/s0/r/default.json")
    assert plan.groups == [("x", "zero", 1, 0), ("x", "zero", 2, 0),
                           ("y@tiny_gpt2", "zero", 1, 0), ("y@tiny_gpt2", "zero", 2, 0)]
    assert plan.datasets == [("x", 1, 0), ("x", 2, 0), ("y@tiny_gpt2", 1, 0),
                             ("y@tiny_gpt2", 2, 0)]
    assert plan.tasks == ["x", "y@tiny_gpt2"] and plan.models == ["tiny_gpt2"]
    assert plan.score_path(*plan.groups[0]) == "res/scores/x/zero/n1/s0.csv"
    circuits = plan.circuits_of(("x", "zero", 1, 0))
    assert len(circuits) == 3 * 2 + 1 and circuits == sorted(circuits)
    assert all(p.startswith("res/circuits/x/zero/n1/s0/") for p in circuits)
    assert plan.leaderboard == [f"res/leaderboard/{n}" for n in TABLES]
    assert plan.plots == [f"res/leaderboard/{n}" for n in PLOTS]


def test_a_studys_settings_reach_its_tasks_only_and_the_hash_keeps_its_form():
    own = {"sparsities": [0.9, 0.99], "eval_examples": 200}
    plan = Plan(_config(a={"tasks": ["reverse"], "methods": {"random": None}, **own},
                        b={"tasks": ["sort"], "methods": {"random": None}}), kernels="native")
    assert plan.task_settings("reverse") == own
    top = {"sparsities": TOP["sparsities"], "eval_examples": TOP["eval_examples"]}
    assert plan.task_settings("sort") == plan.task_settings("no_study") == top
    # the score rows' config_hash, unchanged from when the two keys were top-level only
    assert plan.scoring_config_hash("reverse") == config_hash({**own, "kernels": "native"})
    for task in ("sort", "no_study"):
        assert plan.scoring_config_hash(task) == config_hash({**top, "kernels": "native"})
    assert Plan(plan.config, kernels="portable").scoring_config_hash("sort") != \
        plan.scoring_config_hash("sort")


@pytest.mark.parametrize("a, b, says", [
    ({"eval_examples": 200}, {},
     "config studies.a.eval_examples (200) and studies.b (top-level 1000) both list task "
     "reverse: give them the same value or move the task to one study"),
    ({}, {"sparsities": [0.9, 0.99]},
     "config studies.b.sparsities ([0.9, 0.99]) and studies.a (top-level [0.5, 0.9]) both list "
     "task reverse: give them the same value or move the task to one study"),
    ({"eval_examples": 200}, {"eval_examples": 300},
     "config studies.a.eval_examples (200) and studies.b.eval_examples (300) both list task "
     "reverse: give them the same value or move the task to one study"),
])
def test_a_task_of_two_studies_with_different_values_is_refused(a, b, says):
    config = _config(a={"tasks": ["reverse"], "methods": {"random": None}, **a},
                     b={"tasks": ["xproportion", "reverse"], "methods": {"random": None}, **b})
    with pytest.raises(ValueError) as err:
        Plan(config)
    assert str(err.value) == says


def test_two_studies_giving_a_task_the_same_values_are_one_setting():
    plan = Plan(_config(a={"tasks": ["reverse"], "methods": {"random": None}, **TOP},
                        b={"tasks": ["reverse"], "methods": {"eap": None}}), kernels="native")
    assert plan.scoring_config_hash("reverse") == plan.scoring_config_hash("no_study")


@pytest.mark.parametrize("block, says", [
    ({"tasks": ["no_such_task"], "methods": {"random": None}},
     "config studies.a.tasks: unknown task 'no_such_task'; known tasks: "),
    ({"tasks": ["reverse"], "methods": {"no_such_method": None}},
     "config studies.a.methods: unknown method 'no_such_method'; known methods: "),
])
def test_check_names_the_unknown_task_or_method(block, says):
    plan = Plan(_config(a=block))
    with pytest.raises(ValueError) as err:
        plan.check()
    assert str(err.value).startswith(says)


def test_check_device_says_how_to_fall_back_to_the_cpu():
    with pytest.raises(ValueError, match=r"^config device: unknown device 'tpu'; .* \(or set "
                                         r"device: cpu in the config\)$"):
        check_device("tpu")
    check_device("cpu")


def test_the_default_config_plans_its_jobs():
    """config/config.yaml: the counts its Snakemake dry run prints (discover 400, score 40,
    make_dataset 40, train_model 3, compile_task 14)."""
    config = validated_config(ROOT / "config" / "config.yaml")
    plan = Plan(config)
    assert len(plan.runs) == 400
    assert len(plan.groups) == 40 and len(plan.datasets) == 40
    assert plan.models == ["narrow_gpt2", "tiny_gpt2", "tiny_llama"]
    assert len(plan.tasks) == 14 and "ioi@tiny_gpt2" in plan.tasks
    assert {"reverse_c8", "hist_planted"} <= set(plan.tasks)
    assert sum(len(plan.circuits_of(g)) for g in plan.groups) == len(plan.runs)
    assert plan.task_settings("reverse") == {"sparsities": config["sparsities"],
                                             "eval_examples": config["eval_examples"]}
    assert "results/circuits/reverse/zero/n1000/s0/acdc/threshold=0.01.json" in plan.runs


def test_planning_imports_no_torch_or_matplotlib():
    """Planning runs in every Snakemake process, twice per cluster job."""
    code = ("import sys, benchmark.workflow.plan; heavy = [m for m in ('torch', 'transformers', "
            "'matplotlib') if m in sys.modules]; assert not heavy, heavy")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_the_leaderboard_writes_the_files_the_plan_expects(tmp_path):
    """One home for the leaderboard's file names (benchmark/report/outputs.py): the job writes
    exactly the outputs the workflow plans, or Snakemake would call it failed."""
    from benchmark.report.leaderboard import build_leaderboard
    (tmp_path / "empty.csv").write_text("")
    out = build_leaderboard([tmp_path / "empty.csv"], tmp_path / "board")
    assert sorted(out) == sorted([*TABLES, *PLOTS])
    assert sorted(p.name for p in (tmp_path / "board").iterdir()) == sorted(out)
