"""The package's layers, as a contract: imports point only down, so the tree keeps showing the
architecture (README, "Layout"). Read from the source (ast), every import counted, those inside
functions too: a lazy import is still a dependency."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# top to bottom; a module may import its own layer and the layers below it
LAYERS = [
    ("cli", ("benchmark.cli", "benchmark.__main__")),
    ("workflow", ("benchmark.workflow",)),
    ("report", ("benchmark.report",)),
    ("scoring", ("benchmark.scoring",)),
    ("discovery", ("benchmark.discovery", "benchmark.protocol")),
    ("tasks", ("benchmark.tasks", "benchmark.datasets")),
    ("backends", ("benchmark.backends",)),
    ("graph", ("benchmark.graph",)),
    ("core", ("benchmark.core",)),
]
# what plugins (methods/, tasks/) may use of the package: the protocol, the graph, the specs
PLUGIN_API = ("benchmark.protocol", "benchmark.graph", "benchmark.core.conventions",
              "benchmark.backends.tracr.spec", "benchmark.backends.lm.spec",
              "benchmark.backends.lm.prompt_spec")
PROJECT = ("benchmark", "methods", "tasks")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Project modules (or packages) `path` imports, `from a import b` giving a.b where b is a
    module and a otherwise."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            subs = [f"{base}.{a.name}" for a in node.names if _is_module(f"{base}.{a.name}")]
            found.update(subs or [base])
    return {m for m in found if m.split(".")[0] in PROJECT}


def _is_module(name: str) -> bool:
    path = ROOT / name.replace(".", "/")
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _layer(module: str) -> int | None:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    return None


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_every_module_of_the_package_is_in_a_layer():
    loose = [_module_name(p) for p in _sources("benchmark")
             if _layer(_module_name(p)) is None and _module_name(p) != "benchmark"]
    assert loose == [], "add these modules to a layer (tests/test_layers.py and the README)"


def test_imports_point_only_down():
    upward = []
    for path in _sources("benchmark"):
        module = _module_name(path)
        if module == "benchmark":  # the facade: lazy re-exports for users (load_task, load_lm)
            continue
        for target in _imports(path):
            if target == "benchmark":
                upward.append(f"{module} imports the package facade; import the module itself")
            elif target.split(".")[0] != "benchmark":
                upward.append(f"{module} imports the plugin {target} (registries load plugins)")
            elif _layer(target) is not None and _layer(target) < _layer(module):
                upward.append(f"{module} ({LAYERS[_layer(module)][0]}) imports {target} "
                              f"({LAYERS[_layer(target)][0]})")
    assert upward == []


def test_the_two_backends_do_not_know_each_other():
    crossing = [f"{_module_name(p)} imports {t}" for side, other in (("tracr", "lm"), ("lm", "tracr"))
                for p in _sources(f"benchmark/backends/{side}") for t in _imports(p)
                if t.startswith(f"benchmark.backends.{other}")]
    assert crossing == []


@pytest.mark.parametrize("plugins", ["methods", "tasks"])
def test_plugins_use_only_the_public_api(plugins):
    private = [f"{_module_name(p)} imports {t}" for p in _sources(plugins) for t in _imports(p)
               if t.startswith("benchmark") and not any(t == a or t.startswith(a + ".")
                                                        for a in PLUGIN_API)]
    assert private == []


def test_the_contract_sees_a_violation():
    """The check itself: an upward import inside a function is found."""
    bad = ROOT / "benchmark/core/_layer_probe.py"
    bad.write_text("def f():\n    from benchmark.workflow.isolation import run_isolated\n")
    try:
        with pytest.raises(AssertionError, match="_layer_probe"):
            test_imports_point_only_down()
    finally:
        bad.unlink()


@pytest.mark.parametrize("module", ["benchmark.report.leaderboard", "benchmark.tasks",
                                    "benchmark.workflow.plan_keys", "benchmark.scoring.schema",
                                    "benchmark.workflow.job_server"])
def test_planning_and_report_import_no_torch(module):
    """The report job and the workflow's planning must not pay for torch (seconds a process)."""
    code = (f"import sys, {module}; heavy = [m for m in ('torch', 'transformers', 'jax') "
            "if m in sys.modules]; assert not heavy, heavy")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_no_module_is_over_300_lines():
    """Small modules with one job each: a module that outgrows this is split along its seams."""
    long = [f"{p.relative_to(ROOT)}: {n} lines" for package in PROJECT for p in _sources(package)
            if (n := len(p.read_text().splitlines())) > 300]
    assert long == []
