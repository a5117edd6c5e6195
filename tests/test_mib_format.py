"""MIB interop: circuit records exported in MIB's circuit format (.json, .pt) and read back by
the from_file method give the same circuit, scores and score rows; files in MIB's own layout
load; the export command and the workflow's keying on file content work."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from benchmark.cli import main
from benchmark.core.score_file import write_scores
from benchmark.discovery import circuit_record, discover
from benchmark.graph.circuit_files import export_record, read_record
from benchmark.graph.graph import Graph
from benchmark.graph.mib_format import MibCircuit, mib_cfg, read_mib, to_mib, to_mib_pt
from benchmark.graph.nodes import node_scores_of_edges, nodes_of_edges
from benchmark.protocol import Problem
from benchmark.scoring.evaluate import score_record
from benchmark.workflow.plan import check_names
from benchmark.workflow.plan_keys import PlanKeys, input_files_key
from methods.from_file import FromFile

# what differs between a method's row and the row of its file read back: who made it, its cost
NOT_COMPARED = {"method", "params", "method_version", "runtime_s", "forward_passes",
                "backward_passes", "peak_mem_mb", "device"}


def mib_order(L, H):
    """EAP-IG's own indices, from its format (not from our module): forward index of a
    writer, backward index of a reader, and its edges in the order Graph.from_model adds them."""
    fwd = {"input": 0, **{f"a{l}.h{h}": 1 + l * (H + 1) + h for l in range(L) for h in range(H)},
           **{f"m{l}": 1 + l * (H + 1) + H for l in range(L)}}
    bwd = {f"a{l}.h{h}<{x}>": l * (3 * H + 1) + "qkv".index(x) * H + h
           for l in range(L) for h in range(H) for x in "qkv"}
    bwd.update({f"m{l}": l * (3 * H + 1) + 3 * H for l in range(L)}, logits=L * (3 * H + 1))
    edges, stream = [], ["input"]
    for l in range(L):
        heads = [f"a{l}.h{h}" for h in range(H)]
        edges += [f"{w}->{a}<{x}>" for w in stream for a in heads for x in "qkv"]
        stream += heads
        edges += [f"{w}->m{l}" for w in stream]
        stream.append(f"m{l}")
    return fwd, bwd, edges + [f"{w}->logits" for w in stream]


def test_gpt2_small_pt_shapes_and_names():
    g = Graph(12, 12, ("input",))  # GPT-2 small's graph, no model needed
    scores = np.random.default_rng(0).normal(size=g.n_edges)
    kept = frozenset(e for e, s in zip(g.edges, scores) if s > 2)
    d = to_mib_pt(g, MibCircuit(kept, nodes_of_edges(g, kept), scores), mib_cfg(g, 768))
    assert d["edges_scores"].shape == d["edges_in_graph"].shape == (157, 445)
    assert d["edges_scores"].dtype == torch.float64 and d["edges_in_graph"].dtype == torch.bool
    assert d["cfg"] == {"n_layers": 12, "n_heads": 12, "parallel_attn_mlp": False,
                        "d_model": 768}
    assert d["src_nodes"][:2] == ["input", "a0.h0"] and d["src_nodes"][13] == "m0"
    assert d["dst_nodes"][:2] == ["a0.h0<q>", "a0.h1<q>"] and d["dst_nodes"][12] == "a0.h0<k>"
    assert d["dst_nodes"][36] == "m0" and d["dst_nodes"][-1] == "logits"
    fwd, bwd, edges = mib_order(12, 12)
    assert sorted(edges) == sorted(g.edges) and len(edges) == 32491
    rows, cols = zip(*[(fwd[e.split("->")[0]], bwd[e.split("->")[1]]) for e in g.edges])
    assert torch.equal(d["edges_scores"][list(rows), list(cols)], torch.from_numpy(scores))
    assert d["edges_scores"].abs().gt(0).sum() == 32491  # every other cell is no edge: 0
    assert int(d["edges_in_graph"].sum()) == len(kept) > 0
    assert d["edges_scores"][fwd["a3.h4"], bwd["a7.h2<k>"]] == scores[
        g.edge_to_index["a3.h4->a7.h2<k>"]]
    j = to_mib(g, MibCircuit(kept, nodes_of_edges(g, kept), scores), mib_cfg(g, 768))
    assert {"input->a0.h0<q>", "a5.h1->m5", "m11->logits", "m4->a5.h0<v>"} <= set(j["edges"])
    assert j["nodes"]["logits"] == {"in_graph": True} and len(j["nodes"]) == 158


def _mib_files(tmp_path, L=2, H=4):
    """One circuit in MIB's own layouts, written as EAP-IG's to_json / to_pt write them:
    float32 scores, every node without a score, no entry of ours."""
    fwd, bwd, edges = mib_order(L, H)
    rng = np.random.default_rng(1)
    scores = {e: float(np.float32(rng.normal())) for e in edges}
    kept = {e for e in edges if scores[e] > 0.8}
    nodes = {e.split("->")[0] for e in kept}
    cfg = {"n_layers": L, "n_heads": H, "parallel_attn_mlp": False, "d_model": 64}
    doc = {"cfg": cfg, "nodes": {n: {"in_graph": n in nodes} for n in fwd},
           "edges": {e: {"score": scores[e], "in_graph": e in kept} for e in edges}}
    doc["nodes"]["logits"] = {"in_graph": True}
    (tmp_path / "mib.json").write_text(json.dumps(doc))
    n_f, n_b = 1 + L * (H + 1), L * (3 * H + 1) + 1
    table, in_graph = torch.zeros(n_f, n_b), torch.zeros(n_f, n_b, dtype=torch.bool)
    for e in edges:
        w, r = e.split("->")
        table[fwd[w], bwd[r]], in_graph[fwd[w], bwd[r]] = scores[e], e in kept
    nodes_scores = torch.arange(n_f, dtype=torch.float32) - 3
    torch.save({"cfg": cfg, "src_nodes": sorted(fwd, key=fwd.get),
                "dst_nodes": sorted(bwd, key=bwd.get), "edges_scores": table,
                "edges_in_graph": in_graph, "nodes_in_graph": torch.tensor(
                    [n in nodes for n in sorted(fwd, key=fwd.get)]),
                "nodes_scores": nodes_scores}, tmp_path / "mib.pt")
    return scores, kept, nodes, nodes_scores


def _from_file(graph, **params):
    """from_file on a problem of `graph` alone: the method reads no model."""
    problem = Problem(model=None, graph=graph, data=None, ablation="zero",
                      output_kind="categorical")
    return FromFile().run(problem, FromFile.params(**params))


def test_a_file_in_mibs_own_layout_loads(tmp_path):
    scores, kept, nodes, nodes_scores = _mib_files(tmp_path)
    g = Graph(2, 4, ("input",))  # ioi@tiny_gpt2's shape: 110 edges
    for name in ("mib.json", "mib.pt"):
        c = read_mib(tmp_path / name, g)
        assert c.edges == kept and c.nodes == nodes and len(kept) > 5
        assert c.edge_scores.tolist() == [scores[e] for e in g.edges]
        result = _from_file(g, path=str(tmp_path / name))
        assert (result.kind, result.level, result.ranking) == ("scores", "edge", "abs")
        assert result.score_dict() == scores  # MIB's signed scores, ranked by |score|
        circuit = _from_file(g, path=str(tmp_path / name), use="circuit")
        assert circuit.circuit == kept and circuit.kind == "circuit"
    nodes_level = _from_file(g, path=str(tmp_path / "mib.pt"), level="node")
    assert nodes_level.scores.tolist() == nodes_scores.tolist() + [0.0]  # + logits
    assert _from_file(g, path=str(tmp_path / "mib.pt"), level="node",
                      use="circuit").circuit == nodes


def _saved(record: dict, path) -> str:
    """A record as the discover stage leaves it: scores in the side file, status ok."""
    record = dict(record, status="ok", error="")
    if record["scores"] is not None:
        record["scores"] = write_scores(path, record["scores"])
    path.write_text(json.dumps(record))
    return str(path)


def _round_trip(task, record, tmp_path, name):
    """The record exported as .json and .pt and read back by from_file: two new records."""
    src = _saved(record, tmp_path / f"{name}.json")
    back = []
    for suffix in (".json", ".pt"):
        out = str(tmp_path / f"{name}_mib{suffix}")
        export_record(src, out, task.graph, task.model.d_model)
        result, adapter, p = discover(task, "from_file", {"path": out}, n=100, seed=0)
        back.append(circuit_record(task, result, adapter, p, n=100, seed=0, ablation="zero",
                                   device="cpu"))
        assert back[-1]["info"]["format"] == "mib-" + suffix[1:]
    return read_record(src, task.graph), back


def _rows(task, record):
    return [{k: v for k, v in row.items() if k not in NOT_COMPARED}
            for row in score_record(task, record, sparsities=(0.5, 0.8), eval_examples=100)]


def test_round_trip_edge_level(get_task, tmp_path):
    task = get_task("xproportion")
    for method, params in (("eap", {}), ("acdc", {"threshold": 0.01})):
        result, adapter, p = discover(task, method, params, n=100, seed=0)
        record = circuit_record(task, result, adapter, p, n=100, seed=0, ablation="zero",
                                device="cpu")
        original, back = _round_trip(task, record, tmp_path, method)
        rows = _rows(task, original)
        for r in back:
            assert (r["kind"], r["level"], r["ranking"]) == (
                original["kind"], "edge", original["ranking"])
            if original["kind"] == "scores":
                assert np.array_equal(r["scores"], original["scores"])  # bit for bit
            else:
                assert r["circuit"] == original["circuit"] and len(r["circuit"]) > 0
            assert _rows(task, r) == rows


def test_round_trip_node_level(get_task, tmp_path):
    """Node scores (signed effects, ranking "abs") and a node circuit, from real methods' edge
    output projected to nodes, come back unchanged."""
    task = get_task("xproportion")
    g = task.graph
    eap, adapter, p = discover(task, "eap", {}, n=100, seed=0)
    eap.scores, eap.level, eap.ranking = np.append(node_scores_of_edges(g, eap.scores) - 0.01,
                                                   0.0), "node", "abs"
    acdc, a2, p2 = discover(task, "acdc", {"threshold": 0.01}, n=100, seed=0)
    acdc.circuit, acdc.level = nodes_of_edges(g, acdc.circuit), "node"
    for result, ad, params, name in ((eap, adapter, p, "node_scores"), (acdc, a2, p2, "nodes")):
        record = circuit_record(task, result.check(g), ad, params, n=100, seed=0,
                                ablation="zero", device="cpu")
        original, back = _round_trip(task, record, tmp_path, name)
        rows = _rows(task, original)
        for r in back:
            assert (r["kind"], r["level"], r["ranking"]) == (
                original["kind"], "node", original["ranking"])
            if original["kind"] == "scores":
                assert np.array_equal(r["scores"], original["scores"])
            else:
                assert set(r["circuit"]) == set(original["circuit"]) - {"logits"}
            assert _rows(task, r) == rows
    mib = json.loads((tmp_path / "node_scores_mib.json").read_text())
    assert mib["nodes"]["a0.h0"]["score"] == eap.scores[g.node_to_index["a0.h0"]]
    assert not any(e["in_graph"] for e in mib["edges"].values())  # scores alone: no circuit


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "benchmark", *args], capture_output=True,
                          text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, check=False)


def test_export_command_end_to_end(get_task, tmp_path, capsys):
    task = get_task("xproportion")
    result, adapter, p = discover(task, "eap", {}, n=100, seed=0)
    record = circuit_record(task, result, adapter, p, n=100, seed=0, ablation="zero",
                            device="cpu")
    src = _saved(record, tmp_path / "eap.json")
    proc = _cli("export-mib", src, "--out", str(tmp_path / "eap.pt"), "--top", "5")
    assert proc.returncode == 0, proc.stderr
    assert "5 of 32 edges" in proc.stdout and "tok_embeds" in proc.stdout
    c = read_mib(tmp_path / "eap.pt", task.graph)
    rank = np.abs(result.scores) if result.ranking == "abs" else result.scores
    top5 = [task.graph.edges[i] for i in np.argsort(-rank, kind="stable")[:5]]
    assert c.edges == frozenset(top5) and c.nodes == nodes_of_edges(task.graph, top5)
    assert np.array_equal(c.edge_scores, result.scores)
    assert c.meta["method"] == "eap" and c.meta["task"] == "xproportion"
    # the same command in this process (no second interpreter start): --sparsity, then errors
    assert main(["export-mib", src, "--out", str(tmp_path / "eap_mib.json"),
                 "--sparsity", "0.75"]) == 0
    assert "8 of 32 edges" in capsys.readouterr().out
    assert len(read_mib(tmp_path / "eap_mib.json", task.graph).edges) == 8
    for args, message in (
            ([str(tmp_path / "none.json"), "--out", "x.json"], "no such file"),
            ([src, "--out", str(tmp_path / "x.txt")], "end in .json or .pt"),
            ([src, "--out", "x.json", "--top", "40"], "between 0 and the 32"),
            ([str(tmp_path / "eap_mib.json"), "--out", "x.pt"], "already a MIB circuit file")):
        assert main(["export-mib", *args]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x.txt").exists()


def test_bad_files_are_clear_errors(tmp_path):
    g = Graph(2, 4, ("input",))
    _mib_files(tmp_path)
    with pytest.raises(ValueError, match=r"2 layers, 4 heads and input writer\(s\) \['input'\]"
                       r"; this task's graph has 2 layers, 1 heads"):
        _from_file(Graph(2, 1), path=str(tmp_path / "mib.json"))  # tracr's two input writers
    with pytest.raises(ValueError, match="no node scores"):
        _from_file(g, path=str(tmp_path / "mib.json"), level="node", use="scores")
    with pytest.raises(ValueError, match="needs a path"):
        _from_file(g)
    (tmp_path / "failed.json").write_text(json.dumps(
        {"task": "reverse", "kind": "scores", "status": "timeout", "scores": None}))
    (tmp_path / "other.json").write_text('{"edges": {}}')
    (tmp_path / "broken.pt").write_bytes(b"not a torch file")
    neurons = json.loads((tmp_path / "mib.json").read_text())
    neurons["nodes"]["m0"]["neurons"] = [True] * 64
    (tmp_path / "neurons.json").write_text(json.dumps(neurons))
    for name, message in (("missing.pt", "no such file"), ("failed.json", "timeout run"),
                          ("other.json", "no cfg, nodes"), ("broken.pt", "unreadable"),
                          ("neurons.json", "neuron-level circuit")):
        with pytest.raises(ValueError, match=message) as err:
            _from_file(g, path=str(tmp_path / name))
        assert str(tmp_path / name) in str(err.value)
    block = {"tasks": ["reverse"], "methods": {"from_file": {"path": [str(tmp_path / "x.pt")]}}}
    with pytest.raises(ValueError, match=r"studies.s.methods.from_file: circuit file .*x.pt: "
                                         r"no such file; expected .*MIB's circuit file"):
        check_names({"device": "cpu"}, "s", block)  # at planning, before any job


def test_a_job_is_keyed_on_the_files_content(tmp_path):
    _mib_files(tmp_path)
    path = tmp_path / "mib.json"
    values = {"path": str(path)}
    key = input_files_key("from_file", values)
    assert key.startswith("+inputs=") and input_files_key("eap", {}) == ""
    os.utime(path, (0, 0))  # touched, same content: same key
    assert input_files_key("from_file", values) == key
    doc = json.loads(path.read_text())
    doc["edges"]["input->logits"]["score"] += 1
    path.write_text(json.dumps(doc))
    assert input_files_key("from_file", values) not in ("", key)
    main = PlanKeys(inherit=False)  # keeps non-empty keys only; a job takes a missing one as ''
    assert main.get_sparse("inputs", "eap/default", lambda _: "") == ""
    assert main.get_sparse("inputs", "from_file/x", lambda _: key) == key
    assert main.values == {"inputs": {"from_file/x": key}}
    job = PlanKeys(inherit=False)
    job.values, job.inherited = {"inputs": {"from_file/x": key}}, True
    assert job.get_sparse("inputs", "eap/default", lambda _: pytest.fail("computed")) == ""
    assert job.get_sparse("inputs", "from_file/x", lambda _: pytest.fail("computed")) == key
