"""Methods register from methods/ and through the entry-point group; names are checked."""
import sys
import textwrap

import pytest

from benchmark.core.registry import METHODS, RegistryError


def test_builtin_methods_registered():
    assert {"acdc", "eap", "eap_ig", "edge_pruning", "random"} <= set(METHODS.names())


def test_unknown_method_lists_known_ones():
    with pytest.raises(RegistryError) as err:
        METHODS.get("acdcc")
    assert "acdc" in str(err.value) and "eap_ig" in str(err.value)


def _install_toy_distribution(tmp_path, monkeypatch, method_name):
    """A fake installed package whose entry point adds a method (no pip needed)."""
    pkg = tmp_path / "toy_circuit_method"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent(f"""
        from dataclasses import dataclass
        from benchmark.protocol import Adapter, Discovery

        class Toy(Adapter):
            name = "{method_name}"
            version = "0"
            output = "scores"

            @dataclass(frozen=True)
            class Params:
                bias: float = 0.0

            def discover(self, problem, params):
                return Discovery("scores", scores={{e: params.bias + i for i, e in
                                                    enumerate(problem.graph.edges)}})
        """))
    dist = tmp_path / "toy_circuit_method-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-circuit-method\n"
                                   "Version: 0.1\n")
    (dist / "entry_points.txt").write_text(
        f"[circuitbench.methods]\n{method_name} = toy_circuit_method:Toy\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "toy_circuit_method", raising=False)
    METHODS.reset()


def test_entry_point_method_runs_end_to_end(tmp_path, monkeypatch, get_task):
    from benchmark.discovery import discover
    _install_toy_distribution(tmp_path, monkeypatch, "toy")
    try:
        assert "toy" in METHODS.names()
        task = get_task("xproportion")
        result, adapter, params = discover(task, "toy", {"bias": "2.5"}, n=8, seed=0)
        assert params.bias == 2.5
        assert result.score_dict()[task.graph.edges[0]] == 2.5
    finally:
        monkeypatch.undo()
        METHODS.reset()


def test_duplicate_name_is_an_error_naming_both(tmp_path, monkeypatch):
    _install_toy_distribution(tmp_path, monkeypatch, "acdc")
    try:
        with pytest.raises(RegistryError) as err:
            METHODS.names()
        msg = str(err.value)
        assert "twice" in msg and "methods.acdc" in msg and "toy_circuit_method" in msg
    finally:
        monkeypatch.undo()
        METHODS.reset()


def test_unknown_parameter_names_known_ones():
    with pytest.raises(ValueError, match="threshold"):
        METHODS.get("acdc").params(tau=0.1)


def test_a_module_that_fails_to_import_is_named_and_skipped(tmp_path, monkeypatch, capsys):
    """One broken adapter module must not stop `list` or runs of the other methods."""
    from benchmark.core.registry import Registry
    pkg = tmp_path / "someones_methods"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "good.py").write_text("class Good:\n    name = 'good'\n\nADAPTER = Good\n")
    (pkg / "broken.py").write_text("def discover(:\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry("method", "someones_methods", "ADAPTER", "circuitbench.none")
    assert registry.names() == ["good"]
    warning = capsys.readouterr().err
    assert "someones_methods.broken failed to import (SyntaxError" in warning
    assert "unavailable until it is fixed or removed" in warning
    with pytest.raises(RegistryError) as err:
        registry.get("brokens_method")
    assert "known methods: good" in str(err.value)
    assert "someones_methods.broken failed to import (SyntaxError" in str(err.value)
    registry.reset()
    assert registry.names() == ["good"]
    assert capsys.readouterr().err == ""  # warned once per process, not per look-up
