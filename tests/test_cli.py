"""The discover command writes a complete circuit file and fails clearly on bad input."""
import json
import subprocess
import sys


def _run(args, env_cache):
    env = {"CIRCUITBENCH_CACHE": env_cache, "PATH": "/usr/bin:/bin"}
    import os
    env = {**os.environ, **env}
    return subprocess.run([sys.executable, "-m", "benchmark", *args], capture_output=True,
                          text=True, env=env)


def test_discover_writes_circuit_file(tmp_path, get_task):
    import os
    get_task("reverse")  # compiled into the session cache
    out = tmp_path / "circuit.json"
    proc = _run(["discover", "--task", "reverse", "--method", "acdc", "--threshold", "0.01",
                 "--n", "300", "--seed", "0", "--out", str(out)], os.environ["CIRCUITBENCH_CACHE"])
    assert proc.returncode == 0, proc.stderr
    record = json.loads(out.read_text())
    assert record["task"] == "reverse" and record["method"] == "acdc"
    assert record["params"] == {"threshold": 0.01}
    assert record["kind"] == "circuit" and len(record["circuit"]) == 11
    assert record["counters"]["forward_passes"] > 0
    for key in ("method_version", "task_version", "git_commit", "versions", "seed", "n_examples"):
        assert key in record


def test_bad_input_errors(tmp_path):
    import os
    cache = os.environ["CIRCUITBENCH_CACHE"]
    proc = _run(["discover", "--task", "nope", "--method", "acdc"], cache)
    assert proc.returncode == 2 and "known tasks" in proc.stderr and "reverse" in proc.stderr
    proc = _run(["discover", "--task", "reverse", "--method", "acdc", "--tau", "1"], cache)
    assert proc.returncode == 2 and "threshold" in proc.stderr
    proc = _run(["discover", "--task", "reverse", "--method", "nope"], cache)
    assert proc.returncode == 2 and "eap_ig" in proc.stderr
