"""The CLI refuses what it cannot do in one line, `error: ...` naming the path and the fix, exit
2, before any work: update-reference reads score files only and never writes an empty or
ambiguous reference; files and caches that cannot be written are named, not tracebacks."""
import json
import os
import subprocess
import sys
from dataclasses import dataclass

import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.core.registry import METHODS
from benchmark.protocol import Adapter, Discovery
from benchmark.scoring import regression
from benchmark.scoring.schema import COLUMNS


def _error(capsys, *argv) -> str:
    """The error line of a refused command (warnings of other modules may come before it)."""
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.splitlines()[-1].startswith("error: "), err
    return err.splitlines()[-1]


def _score_rows(n=4) -> pd.DataFrame:
    reference = pd.read_csv(regression.REFERENCE, dtype={"params": str, "circuit": str})
    return reference.head(n).reindex(columns=COLUMNS)


@pytest.fixture
def results(tmp_path):
    """A results folder as the workflow leaves it: score files and the leaderboard's CSVs."""
    rows = _score_rows()
    scores = tmp_path / "r" / "scores" / "reverse" / "zero" / "n5"
    scores.mkdir(parents=True)
    rows.iloc[:2].to_csv(scores / "s0.csv", index=False)
    rows.iloc[2:].to_csv(scores / "s1.csv", index=False)
    board = tmp_path / "r" / "leaderboard"
    board.mkdir()
    for name in ("summary.csv", "pairwise.csv", "leaderboard.csv"):
        rows[["task", "method", "faithfulness"]].to_csv(board / name, index=False)
    return tmp_path / "r"


def test_update_reference_reads_score_files_only(results, tmp_path, capsys):
    out = tmp_path / "ref.csv"
    assert main(["update-reference", "--scores", str(results), "--out", str(out)]) == 0
    assert "from 2 score file(s), 3 other CSV files skipped" in capsys.readouterr().out
    written = pd.read_csv(out, dtype={"params": str, "circuit": str})
    assert len(written) == 4 and not written.duplicated(regression.KEY).any()


def test_update_reference_refuses_a_row_twice(results, tmp_path, capsys):
    """The leaderboard's scores.csv has the score columns: a copy of every score row."""
    _score_rows().to_csv(results / "leaderboard" / "scores.csv", index=False)
    out = tmp_path / "ref.csv"
    err = _error(capsys, "update-reference", "--scores", results, "--out", out)
    first = _score_rows().iloc[0]
    assert "is there twice" in err and f"'method': '{first.method}'" in err
    assert str(results / "leaderboard" / "scores.csv") in err and "s0.csv" in err
    assert not out.exists()


def test_update_reference_names_a_file_that_is_not_a_score_file(results):
    """Run as a user does: one line, no traceback."""
    proc = subprocess.run([sys.executable, "-m", "benchmark", "update-reference", "--scores",
                           str(results / "leaderboard" / "summary.csv"), "--out",
                           str(results / "ref.csv")], capture_output=True, text=True,
                          env=os.environ, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: --scores {results / 'leaderboard' / 'summary.csv'}: not a "
                           "score file"), line


def test_update_reference_without_score_rows_keeps_the_reference(results, tmp_path, capsys):
    out = tmp_path / "ref.csv"
    out.write_text("the committed reference\n")
    for scores in (tmp_path / "empty", results / "leaderboard"):
        scores.mkdir(exist_ok=True)
        err = _error(capsys, "update-reference", "--scores", scores, "--out", out)
        assert f"--scores {scores}: no score rows" in err and "not written" in err
        assert "snakemake --cores 2 --configfile config/ci.yaml" in err
    assert "3 other CSV files skipped" in err
    assert out.read_text() == "the committed reference\n"


def test_update_reference_names_a_damaged_score_file(results, tmp_path, capsys):
    damaged = results / "scores" / "reverse" / "zero" / "n5" / "s1.csv"
    damaged.write_text(damaged.read_text()[:-40])
    err = _error(capsys, "update-reference", "--scores", results, "--out", tmp_path / "ref.csv")
    assert f"score file {damaged} has incomplete rows" in err and "snakemake" in err


@pytest.fixture
def unwritable(tmp_path):
    """A path under a regular file: not writable even by root (chmod does not stop root)."""
    (tmp_path / "afile").write_text("")
    return tmp_path / "afile" / "sub"


def test_unwritable_outputs_fail_before_any_work(results, tmp_path, unwritable, capsys):
    err = _error(capsys, "update-reference", "--scores", results, "--out", unwritable / "r.csv")
    assert f"--out {unwritable / 'r.csv'}: cannot write there" in err and "writable file" in err
    # a fresh cache: compiling reverse first would take seconds, then fail to write
    err = _error(capsys, "compile", "--task", "reverse", "--cache", tmp_path / "cache",
                 "--out", unwritable / "s.json")
    assert f"--out {unwritable / 's.json'}: cannot write there" in err
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


@pytest.mark.parametrize("task", ["reverse", "ioi@tiny_gpt2"])
def test_unwritable_cache_fails_before_any_work(task, unwritable, capsys):
    """The compiled artifact (or the trained model) is written into the cache."""
    for argv in (["compile", "--task", task], ["discover", "--task", task, "--method", "random"]):
        err = _error(capsys, *argv, "--cache", unwritable)
        assert f"--cache {unwritable}" in err and "cannot write there" in err, err
        assert "choose a writable folder (--cache DIR)" in err


def test_unwritable_default_cache_is_named(unwritable, monkeypatch, capsys):
    monkeypatch.setenv("CIRCUITBENCH_CACHE", str(unwritable))
    err = _error(capsys, "compile", "--task", "reverse")
    assert f"task cache {unwritable / 'tasks'}: cannot write there" in err


class TextParam(Adapter):
    """A method with a text parameter (none of the built-ins has one)."""
    name, version, output = "text_param", "1", "scores"

    @dataclass(frozen=True)
    class Params:
        mode: str = "plain"

    def discover(self, problem, params):
        return Discovery("scores", scores={e: 0.0 for e in problem.graph.edges})


def test_a_parameter_value_with_a_slash(get_task, tmp_path, monkeypatch, capsys):
    """The CLI puts no parameter in a path: a text value with '/' is kept as given (only the
    workflow's setting id, a path segment, cannot hold one); bad values are one line."""
    get_task("reverse")
    monkeypatch.setitem(METHODS._load(), TextParam.name, TextParam)
    monkeypatch.setitem(METHODS._sources, TextParam.name, "test")
    out = tmp_path / "c.json"
    assert main(["discover", "--task", "reverse", "--method", "text_param", "--mode", "a/b",
                 "--n", "5", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["params"] == {"mode": "a/b"}
    err = _error(capsys, "discover", "--task", "reverse", "--method", "eap", "--batch_size", "a/b")
    assert "parameter batch_size expects int, got 'a/b'" in err
    err = _error(capsys, "discover", "--task", "reverse", "--method", "random", "--a/b", "1")
    assert "has no parameter(s) ['a/b']" in err
