"""Corrupt, edited or foreign files are named and rebuilt, never used; bad parameters and
devices fail before any job runs, with the config path in the message."""
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmark.backends.tracr.task import artifact_path
from benchmark.core.artifact import Artifact, ArtifactError
from benchmark.core.registry import TASKS
from benchmark.datasets import DatasetError, dataset_stage, ensure_dataset, load_dataset
from benchmark.tasks import load_task

ROOT = Path(__file__).resolve().parent.parent


def _rewrite_npz(path, arrays, meta):
    buf = io.BytesIO()
    np.savez(buf, __meta__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
    Path(path).write_bytes(buf.getvalue())


def test_load_task_rebuilds_a_truncated_or_edited_artifact(get_task, tmp_path, capsys):
    task = get_task("xproportion")
    # a copy in a cache of its own: the session's is shared with the other test worker
    path = artifact_path(TASKS.get("xproportion"), tmp_path)
    good = artifact_path(TASKS.get("xproportion")).read_bytes()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ArtifactError, match=f"artifact {path} is unreadable"):
        Artifact.load(path)
    again = load_task("xproportion", cache=tmp_path)
    assert "compiling it again" in capsys.readouterr().err
    for k, v in task.artifact.arrays.items():
        np.testing.assert_array_equal(again.artifact.arrays[k], v)
    arrays = {k: v * 2 for k, v in again.artifact.arrays.items()}
    _rewrite_npz(path, arrays, Artifact.load(path).meta)
    with pytest.raises(ArtifactError, match="does not match its fingerprint"):
        Artifact.load(path)
    again = load_task("xproportion", cache=tmp_path)
    assert "does not match its fingerprint" in capsys.readouterr().err
    for k, v in task.artifact.arrays.items():
        np.testing.assert_array_equal(again.artifact.arrays[k], v)


def test_dataset_errors_name_the_file_and_what_is_wrong(get_task, task_cache, tmp_path):
    get_task("xproportion")
    path = tmp_path / "d.pt"
    dataset_stage("xproportion", task_cache, 20, 0, 20, str(path))
    assert len(load_dataset(str(path), "xproportion", 20, 0).discovery) == 20
    with pytest.raises(DatasetError, match=rf"dataset {path} was made for seed 0, not 1"):
        load_dataset(str(path), "xproportion", 20, 1)
    with pytest.raises(DatasetError, match=r"was made for task 'xproportion', not 'reverse'"):
        load_dataset(str(path), "reverse", 20, 0)
    good = path.read_bytes()
    path.write_bytes(good[:200])
    with pytest.raises(DatasetError, match=rf"dataset {path} is unreadable"):
        load_dataset(str(path), "xproportion", 20, 0)
    data = ensure_dataset(str(path), "xproportion", task_cache, 20, 0, 20)
    assert path.read_bytes() == good and len(data.discovery) == 20


def _dry_run(tmp_path, body):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(body)
    return subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1",
                           "--configfile", str(cfg), "--config", f"results={tmp_path}/r"],
                          cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize("value, message", [
    ("[true]", "parameter threshold expects a number, got True"),
    ("['nan']", "parameter threshold must be finite"),
    ("[-1.0]", "parameter threshold must be >= 0, got -1.0"),
    ("[[1, 2]]", "parameter threshold expects a number, got [1, 2]"),
])
def test_bad_method_parameters_fail_before_any_job(tmp_path, value, message):
    proc = _dry_run(tmp_path, "studies:\n  s:\n    tasks: [reverse]\n    methods:\n"
                              f"      acdc: {{threshold: {value}}}\n")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "config studies.s.methods.acdc" in out and message in out, out[-2000:]


def test_negative_batch_size_is_a_config_error(tmp_path):
    proc = _dry_run(tmp_path, "studies:\n  s:\n    tasks: [reverse]\n    methods:\n"
                              "      eap: {batch_size: [-5]}\n")
    assert proc.returncode != 0
    assert "parameter batch_size must be >= 1, got -5" in proc.stdout + proc.stderr


def test_cuda_on_a_cpu_machine_is_a_config_error(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    proc = _dry_run(tmp_path, "device: cuda\nstudies:\n  s:\n    tasks: [reverse]\n"
                              "    methods:\n      random: null\n")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "config device:" in out and "no CUDA device" in out


def _frac_of_a():
    from tracr.compiler import lib
    from tracr.rasp import rasp
    return lib.make_frac_prevs(rasp.tokens == "a")


def test_a_task_whose_output_ignores_its_input_is_refused():
    from benchmark.backends.tracr.build import DegenerateTaskError, build_task_artifact
    from benchmark.backends.tracr.spec import TaskSpec
    spec = TaskSpec(name="frac_of_missing_a", program=_frac_of_a, vocab=("w", "x", "y"),
                    max_seq_len=4, length=3, output="numerical")
    with pytest.raises(DegenerateTaskError, match="does not depend on its input"):
        build_task_artifact(spec)


def test_a_damaged_circuit_file_is_named_with_the_fix(tmp_path):
    from benchmark.scoring.stage import read_circuit
    path = tmp_path / "c.json"
    path.write_text('{"task": "reverse", "meth')
    with pytest.raises(ValueError, match=rf"circuit file {path} is unreadable .*rerun snakemake"):
        read_circuit(str(path), "reverse")
    path.write_text('{"task": "reverse"}')
    with pytest.raises(ValueError, match="lacks method, params"):
        read_circuit(str(path), "reverse")
    fields = dict(task="reverse", method="eap", params={}, seed=0, n_examples=5,
                  ablation="zero", kind="scores", status="ok", scores=None)
    path.write_text(json.dumps(fields))
    with pytest.raises(ValueError, match="an ok 'scores' run without its scores"):
        read_circuit(str(path), "reverse")
    path.write_text(json.dumps({**fields, "status": "failed"}))
    assert read_circuit(str(path), "reverse")["status"] == "failed"


def test_a_second_quarantine_keeps_the_first_copy(tmp_path, capsys):
    """Each copy set aside gets a name of its own: `.damaged`, then `.damaged.1`, ...; the
    same for `.cancelled`."""
    from benchmark.workflow.damaged import Cancelled, quarantine
    path = str(tmp_path / "s0.csv")

    def damaged():
        raise ValueError(f"score file {path} is damaged")

    def cancelled():
        raise Cancelled(f"circuit file {path} is of a run stopped from outside")

    for check, suffix in ((damaged, ".damaged"), (cancelled, ".cancelled")):
        for text in ("first", "second", "third"):
            Path(path).write_text(text)
            assert quarantine([(path, check)]) == [path] and not Path(path).exists()
        copies = [path + suffix, path + suffix + ".1", path + suffix + ".2"]
        assert [Path(p).read_text() for p in copies] == ["first", "second", "third"]
        assert f"moved to {copies[2]}" in capsys.readouterr().err
