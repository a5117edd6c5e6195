"""A discovery as N ranks of torch.distributed (gloo on the CPU), through the discover stage:
the record proves N ranks ran, and a rank that dies, hangs or raises becomes a named cell with
nothing left running. The plan's side: `processes` in a config (setting ids, errors)."""
import json
import time

import pytest
import rank_methods
from conftest import ROOT, process_alive, registered

from benchmark.workflow.discover_stage import discover_stage
from benchmark.workflow.plan import Plan


@pytest.fixture(scope="module")
def ranked(get_task):
    get_task("xproportion")
    with registered(rank_methods.RANK_METHODS, "tests/rank_methods.py"):
        yield


def _run(dataset, task_cache, tmp_path, fault="none", **limits):
    out = tmp_path / "rank_sum.json"
    start = time.perf_counter()
    record = discover_stage("xproportion", task_cache, dataset, "rank_sum",
                            {"fault": fault, "processes": 2}, "zero", 50, 0, str(out),
                            eval_examples=50, **limits)
    print(f"2 ranks, fault {fault}: {record['status']} in {time.perf_counter() - start:.1f} s")
    assert json.loads(out.read_text()) == record  # the file is written, whatever happened
    return record


def test_two_ranks_sum_their_ones(ranked, dataset, task_cache, tmp_path):
    """Every edge's score is the all-reduced sum of one per rank: 2.0, so both ranks ran and
    talked; each rank under the per-rank memory limit (RLIMIT_AS, inherited)."""
    from benchmark.scoring.stage import read_circuit
    record = _run(dataset, task_cache, tmp_path, timeout_s=120, mem_mb=6000)
    assert record["status"] == "ok", record["error"]
    assert record["processes"] == 2 and record["n_edges"] == 32
    scores = read_circuit(str(tmp_path / "rank_sum.json"), "xproportion")["scores"]
    assert scores.tolist() == [2.0] * 32


@pytest.mark.parametrize("fault, says", [
    ("sigkill", "rank 1 was killed by signal 9 (SIGKILL)"),
    ("raise", "rank 1 raised RuntimeError: rank 1 broke; rank 0 raised RuntimeError: "),
])
def test_a_failing_rank_is_a_named_failed_cell(ranked, dataset, task_cache, tmp_path, fault,
                                               says):
    record = _run(dataset, task_cache, tmp_path, fault, timeout_s=120)
    assert record["status"] == "failed"
    assert record["error"].startswith("RuntimeError: distributed discovery on 2 ranks failed: "
                                      + says), record["error"]
    assert record["scores"] is None and record["processes"] == 2


def test_a_hanging_rank_times_out_and_no_rank_survives(ranked, dataset, task_cache, tmp_path,
                                                       monkeypatch):
    """Rank 1 sleeps, rank 0 waits in the all-reduce: the run's time limit kills them all
    (torchrun starts each rank in a session of its own)."""
    pids = tmp_path / "pids"
    monkeypatch.setenv("RANK_PIDS", str(pids))
    record = _run(dataset, task_cache, tmp_path, "hang", timeout_s=15)
    assert record["status"] == "timeout" and "time limit of 15 s" in record["error"]
    started = [tuple(map(int, line.split())) for line in pids.read_text().splitlines()]
    assert len(started) == 2, "both ranks reached the method before the limit"
    assert [pid for pair in started for pid in pair if process_alive(pid)] == []


def _config(device="cpu", **studies) -> dict:
    blocks = {name: {"tasks": ["xproportion"], "seeds": [0], "ablations": ["zero"],
                     "examples": [50], **block} for name, block in studies.items()}
    return {"results": "res", "cache": "res/cache", "device": device, "eval_examples": 50,
            "sparsities": [0.5], "studies": blocks}


def test_processes_enters_the_setting_id_only_above_one(ranked, capsys):
    """A grid's processes, else the study's for a distributed method: at 1 the run's values
    (its setting id, path, params) are the adapter's alone, as before the key existed; the
    study's processes skips a method of one process, with one line saying so."""
    plan = Plan(_config(a={"methods": {"rank_sum": {"processes": [1, 2], "fault": ["none"]},
                                       "random": None}},
                        b={"processes": 2, "methods": {"rank_sum": None, "random": None}},
                        c={"processes": 2, "methods": {"rank_sum": {"processes": [1]}}}),
                kernels="native")
    runs = {path.removeprefix("res/circuits/xproportion/zero/n50/s0/"): run["values"]
            for path, run in plan.runs.items()}
    assert runs == {"rank_sum/fault=none.json": {"fault": "none"},
                    "rank_sum/fault=none+processes=2.json": {"fault": "none", "processes": 2},
                    "rank_sum/processes=2.json": {"processes": 2},
                    "rank_sum/default.json": {},
                    "random/default.json": {}}
    plan.check()
    assert capsys.readouterr().err.splitlines() == [
        "config studies.b.processes = 2: method random runs on one process (its adapter does "
        "not set distributed = True)"]


@pytest.mark.parametrize("device, block, says", [
    ("cpu", {"methods": {"random": {"processes": [2]}}},
     "config studies.a.methods.random: studies.a.methods.random.processes = 2: method random "
     "runs on one process (its adapter does not set distributed = True); remove "
     "studies.a.methods.random.processes"),
    ("cuda", {"processes": 2, "methods": {"rank_sum": None}},
     "config studies.a.methods.rank_sum: studies.a.processes = 2 needs 2 CUDA devices (one per "
     "rank), but torch sees 1; set studies.a.processes to at most 1, or run on the CPU (device "
     "cpu)"),
    ("auto", {"methods": {"rank_sum": {"processes": [1, 3]}}},
     "config studies.a.methods.rank_sum: studies.a.methods.rank_sum.processes = 3 needs 3 CUDA "
     "devices (one per rank), but torch sees 1; set studies.a.methods.rank_sum.processes to at "
     "most 1, or run on the CPU (device cpu)"),
])
def test_processes_a_run_cannot_have_is_a_config_error(ranked, monkeypatch, device, block,
                                                       says):
    """Before any job, one line naming the method and the key; the CLI's jobs get the same
    check (prepare_job). CUDA devices are counted without initialising CUDA."""
    from benchmark.core import devices
    from benchmark.discovery import prepare_job
    monkeypatch.setattr(devices, "cuda_device_count", lambda: 1)
    with pytest.raises(ValueError) as err:
        Plan(_config(device, a=block)).check()
    assert str(err.value) == says
    method, processes = ("random", 2) if device == "cpu" else ("rank_sum", 2)
    with pytest.raises(ValueError, match=f"^processes = {processes}"):
        prepare_job("xproportion", method, {}, n=50, seed=0, ablation="zero", device=device,
                    dataset="d.pt", cache=None, threads=1, out="o.json", processes=processes)


def test_the_schema_takes_integer_processes_only():
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate
    schema = str(ROOT / "config" / "schema.yaml")
    good = {"studies": {"a": {"tasks": ["x"], "processes": 2,
                              "methods": {"m": {"processes": [1, 2], "steps": [3]}}}}}
    validate(good, schema)
    assert good["gpus_per_process"] == 0
    for block, where in [({"processes": 0}, "['studies']['a']['processes']"),
                         ({"methods": {"m": {"processes": ["two"]}}},
                          "['studies']['a']['methods']['m']['processes'][0]")]:
        config = {"studies": {"a": {"tasks": ["x"], "methods": {"m": None}, **block}}}
        with pytest.raises(WorkflowError) as err:
            validate(config, schema)
        assert f"On instance{where}" in str(err.value)
