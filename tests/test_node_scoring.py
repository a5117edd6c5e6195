"""Node-level score rows, MIB's CPR / CMD, and their summary: on xproportion (32 edges, writers
tok_embeds, pos_embeds, a0.h0, m0, a1.h0, m1), with a node ground truth given by hand (the writers
of its zero edge truth) so that these tests do not wait for the derived one."""
import numpy as np
import pandas as pd
import pytest

from benchmark.graph.nodes import edges_of_nodes, nodes_of_edges
from benchmark.report.levels import edge_rows
from benchmark.report.render_nodes import nodes_html
from benchmark.report.summary import summarise
from benchmark.scoring.evaluate import evaluate_circuit, score_record
from benchmark.scoring.mib import PERCENTAGES, mib_areas, mib_counts, mib_faithfulness
from benchmark.scoring.recovery import faithfulness_area, normalised_faithfulness
from benchmark.scoring.schema import COLUMNS
from benchmark.scoring.score_files import read_scores
from benchmark.tasks import load_task

NODE_TRUTH = ["tok_embeds", "pos_embeds", "m0", "a1.h0"]  # writers of xproportion's zero truth
ORDER = ["a1.h0", "m0", "tok_embeds", "m1", "pos_embeds", "a0.h0"]  # the node ranking below
EVAL = 200


@pytest.fixture(scope="module")
def task():
    t = load_task("xproportion")
    t.meta["node_ground_truth"] = {"zero": NODE_TRUTH}
    return t


def _record(**kw):
    return {"method": "hand", "params": {}, "seed": 0, "n_examples": 50, "ablation": "zero",
            "status": "ok"} | kw


def _by_writer(task) -> np.ndarray:
    """Edge scores: every edge of the i-th writer of ORDER scores 6 - i (plus a small tie
    breaker): the node ranking (each writer's best outgoing edge) is ORDER."""
    g = task.graph
    scores = np.zeros(g.n_edges)
    for i, w in enumerate(ORDER):
        for j, e in enumerate(g.outgoing(w)):
            scores[e] = 6 - i + 0.01 * j
    return scores


def _edge_forward(task, edges, record) -> float:
    split = task.dataset(n=record["n_examples"], seed=record["seed"], n_eval=EVAL).evaluation
    return evaluate_circuit(task, frozenset(edges), split, record["ablation"])["faithfulness"]


def test_node_rows_of_an_edge_ranking_are_the_node_forward_of_its_node_view(task):
    record = _record(kind="scores", scores=_by_writer(task))
    rows = score_record(task, record, sparsities=(0.5,), eval_examples=EVAL)
    edge = [r for r in rows if r["level"] == "edge"]
    node = {r["circuit"]: r for r in rows if r["level"] == "node"}
    assert [r["circuit"] for r in edge][:2] == ["sparsity=0.5", "top=0"]
    assert list(node) == ["node:sparsity=0.5"] + [f"node:top={k}" for k in range(7)]
    assert node["node:sparsity=0.5"]["nodes_kept"] == 3
    for k in range(7):
        r, kept = node[f"node:top={k}"], frozenset(ORDER[:k])
        edges = edges_of_nodes(task.graph, kept)
        assert (r["nodes_kept"], r["edges_kept"]) == (k, len(edges))
        assert r["node_sparsity"] == 1 - k / 6 and r["n_nodes"] == 6
        # run by the node-masked forward, equal to the edge-masked forward of its edges
        assert r["faithfulness"] == _edge_forward(task, edges, record)
    assert node["node:top=0"]["faithfulness"] == node["node:top=0"]["faithfulness_empty"] > 0
    assert node["node:top=6"]["faithfulness"] == 0
    # every edge row shows its circuit's node view; the node ranking's AUROC is in every row:
    # the four true writers are ranked 1, 2, 3 and 5 of 6, so 7 of 8 pairs are ordered
    for r in edge:
        assert r["nodes_kept"] == len({e.split("->")[0] for e in _top_edges(task, r)})
    assert {r["node_auroc_zero"] for r in rows} == {7 / 8}
    assert {r["node_f1_structural"] for r in rows} == {None}  # no node truth of that convention


def _top_edges(task, row) -> set:
    order = np.argsort(-_by_writer(task), kind="stable")
    return {task.graph.edges[i] for i in order[:row["edges_kept"]]}


def test_node_recovery_of_a_hand_made_edge_circuit(task):
    circuit = ["a1.h0->logits", "m0->a1.h0<v>", "a0.h0->m1"]  # writers a1.h0, m0, a0.h0
    rows = score_record(task, _record(kind="circuit", circuit=circuit), eval_examples=EVAL)
    assert [r["circuit"] for r in rows] == ["discovered", "node:discovered"]
    disc, node = rows
    # 2 of the 3 writers are among the 4 true ones
    expected = {"node_precision_zero": 2 / 3, "node_recall_zero": 0.5,
                "node_f1_zero": 4 / 7, "node_exact_zero": False, "nodes_kept": 3,
                "node_sparsity": 0.5, "node_auroc_zero": None, "mib_cpr": None}
    for r in rows:
        assert {k: r[k] for k in expected} == pytest.approx(expected)
    assert disc["edges_kept"] == 3 and disc["level"] == "edge"
    # the node circuit's edges: those between a0.h0, m0, a1.h0 and logits (a0.h0->m0, the
    # six into a1.h0's q, k, v, the three into logits)
    assert node["edges_kept"] == 10 and node["level"] == "node"
    assert node["f1_zero"] == pytest.approx(2 * 2 / (10 + 5))  # a1.h0->logits, m0->a1.h0<v>
    assert node["faithfulness"] == _edge_forward(
        task, edges_of_nodes(task.graph, nodes_of_edges(task.graph, circuit)), _record())


def test_a_node_level_record_is_scored_at_node_level(task):
    # signed effects over graph.nodes (logits last, ignored), ranked by |score|
    signed = [0.5, -0.2, 0.1, -3.0, 4.0, 0.05, 99.0]  # tok, pos, a0.h0, m0, a1.h0, m1, logits
    rows = score_record(task, _record(kind="scores", level="node", ranking="abs",
                                      scores=np.array(signed)),
                        sparsities=(0.5,), eval_examples=EVAL)
    assert {r["level"] for r in rows} == {"node"}
    assert [r["circuit"] for r in rows] == ["node:sparsity=0.5"] + [
        f"node:top={k}" for k in range(7)]
    top3 = {r["circuit"]: r for r in rows}["node:top=3"]
    kept = frozenset({"a1.h0", "m0", "tok_embeds"})  # |4|, |-3|, |0.5|
    assert top3["edges_kept"] == len(edges_of_nodes(task.graph, kept))
    assert top3["faithfulness"] == _edge_forward(task, edges_of_nodes(task.graph, kept),
                                                 _record())
    # |scores| rank the true writers 1, 2, 3, 4: a perfect node ranking; no edge AUROC
    assert {r["node_auroc_zero"] for r in rows} == {1.0}
    assert {r["auroc_zero"] for r in rows} == {None}
    assert all(r["mib_cpr"] is not None for r in rows)
    circuit = score_record(task, _record(kind="circuit", level="node",
                                         circuit=["m0", "a1.h0", "logits"]),
                           eval_examples=EVAL)
    assert [(r["circuit"], r["nodes_kept"], r["node_recall_zero"]) for r in circuit] == [
        ("node:discovered", 2, 0.5)]


def test_mib_areas_follow_the_definition():
    assert mib_counts(32) == [0, 0, 0, 0, 0, 1, 3, 6, 16, 32]
    assert mib_counts(1000) == [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
    assert mib_areas([1.0] * 10) == pytest.approx((0.999, 0.0))  # not divided by the x range
    f = [0, 0, 0, 0, 0, 0, 0.5, 0.5, 1.5, 1]
    # trapezoids on (0.05, 0) (0.1, .5) (0.2, .5) (0.5, 1.5) (1, 1); |1 - f| at the points
    assert mib_areas(f) == pytest.approx((0.05 * 0.25 + 0.1 * 0.5 + 0.3 * 1.0 + 0.5 * 1.25,
                                          0.049 + 0.05 * 0.75 + 0.1 * 0.5 + 0.3 * 0.5
                                          + 0.5 * 0.25))
    # the task's metric where it has one: (m(C) - m(empty)) / (m(N) - m(empty))
    row = {"task_metric_circuit": 2.0, "task_metric_full": 3.0, "faithfulness": 9.0}
    assert mib_faithfulness(row, {"task_metric_circuit": -1.0, "faithfulness": 9.0}) == 0.75
    assert mib_faithfulness({"faithfulness": 0.25}, {"faithfulness": 1.0}) == 0.75


def test_cpr_and_cmd_of_a_ranking_against_a_direct_computation(task):
    """CPR from the signed scores' top n, CMD from |score|'s, n = int(p * 32), f = 1 - F(C) /
    F(empty) on a Tracr task, each circuit run here by the edge-masked forward."""
    g = task.graph
    # the 5 edges of the zero truth have the largest effects, all negative: first by |score|,
    # last by signed score
    signed = np.random.default_rng(3).uniform(0.01, 1, g.n_edges)
    for i, e in enumerate(sorted(task.ground_truth("zero"))):
        signed[g.edge_to_index[e]] = -10 - i
    record = _record(kind="scores", ranking="abs", scores=signed)
    rows = score_record(task, record, sparsities=(0.5,), eval_examples=EVAL)
    empty = _edge_forward(task, [], record)

    def curve(values):
        order = np.argsort(-values)
        return [1 - _edge_forward(task, [g.edges[i] for i in order[:int(p * g.n_edges)]],
                                  record) / empty for p in PERCENTAGES]

    def area(x, y):
        return sum((x[i + 1] - x[i]) * (y[i] + y[i + 1]) / 2 for i in range(len(x) - 1))

    cpr = area(PERCENTAGES, curve(signed))
    cmd = area(PERCENTAGES, [abs(1 - f) for f in curve(np.abs(signed))])
    edge = [r for r in rows if r["level"] == "edge"]
    assert len({(r["mib_cpr"], r["mib_cmd"]) for r in edge}) == 1  # the record's, in each row
    assert (edge[0]["mib_cpr"], edge[0]["mib_cmd"]) == pytest.approx((cpr, cmd), abs=1e-12)
    # signed: the truth is missed up to 50% of the edges, f = 0 until the full model's 1
    assert cpr == pytest.approx(0.5 * (0 + 1) / 2)
    assert cmd < 0.2 and area(PERCENTAGES, curve(np.abs(signed))) > 0.7
    # an edge ranking's node projection has none: MIB's metrics are of the record's own level
    assert all(r["mib_cpr"] is None for r in rows if r["level"] == "node")
    # a node ranking's (over 6 writers: n = 0, ..., 0, 1, 3, 6), in its node rows
    node_scores = np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0])  # graph.nodes order, logits last
    rows = score_record(task, _record(kind="scores", level="node", ranking="abs",
                                      scores=node_scores), eval_examples=EVAL)
    assert len({(r["mib_cpr"], r["mib_cmd"]) for r in rows}) == 1
    assert rows[0]["mib_cpr"] is not None and 0 <= rows[0]["mib_cpr"] <= 1


def test_summary_has_node_level_columns(task, tmp_path):
    rows = []
    for seed in (0, 1):
        scores = _by_writer(task) + 0.001 * np.random.default_rng(seed).random(task.graph.n_edges)
        rows += score_record(task, _record(kind="scores", seed=seed, scores=scores,
                                           method="ranker"), sparsities=(0.5,),
                             eval_examples=EVAL)
    rows += score_record(task, _record(kind="circuit", level="node", method="node_finder",
                                       circuit=["tok_embeds", "m0", "a1.h0"]),
                         eval_examples=EVAL)
    rows.append(dict.fromkeys(COLUMNS) | _record(method="node_finder", seed=1, status="failed",
                                                 level="node", task="xproportion",
                                                 params="{}", error="boom"))
    path = tmp_path / "s.csv"
    pd.DataFrame(rows, columns=COLUMNS).to_csv(path, index=False)
    df = read_scores([path])
    assert len(edge_rows(df)) == sum(r["level"] == "edge" for r in rows)
    table = summarise(df, [0.5]).set_index("method")
    ranker, finder = table.loc["ranker"], table.loc["node_finder"]
    assert (ranker.circuit_level, finder.circuit_level) == ("edge", "node")
    assert ranker.node_convention == "zero" and ranker.node_auroc == 7 / 8
    ok = df[(df.method == "ranker") & (df.status == "ok")]
    top = ok[ok.circuit.str.startswith("node:top=")]
    areas = [faithfulness_area([(k / 6, normalised_faithfulness(f, e)) for k, f, e in
                                zip(s.nodes_kept, s.faithfulness, s.faithfulness_empty)])["area"]
             for _, s in top.groupby("seed")]
    assert ranker.node_faith_area == pytest.approx(np.median(areas))
    assert ranker.mib_cpr == pytest.approx(ok[ok.level == "edge"].mib_cpr.median())
    # MIB's metrics at the record's own level only: an edge ranking's node projection has none
    assert ok[ok.level == "node"].mib_cmd.isna().all() and np.isnan(ranker.node_mib_cmd)
    # a node method: its circuit's edge view in the edge columns, its node view in the node ones
    disc = df[(df.method == "node_finder") & (df.status == "ok")].iloc[0]
    assert finder.faithfulness == disc.faithfulness and finder.edges_kept == disc.edges_kept
    assert finder.node_f1 == pytest.approx(2 * 3 / (3 + 4)) and finder.node_exact_rate == "0/2"
    assert finder.status == "failed (1/2)" and np.isnan(finder.mib_cpr)
    page = nodes_html(table.reset_index())
    assert "Node level" in page and "node_finder" in page and "ranker" in page


def test_the_headline_has_node_numbers_for_edge_and_node_methods(task, tmp_path):
    """summary.csv's run numbers: node recovery and node integrated faithfulness for every
    method, MIB's CPR / CMD for an edge ranking, and a node method's edge numbers from its
    circuits' edge views (a node ranking has none)."""
    from benchmark.discovery import circuit_record, discover
    from benchmark.report.headline import headline, run_table
    rows = []
    for method, params in (("eap", {}), ("hisp", {}), ("subnetwork_probing", {"steps": 100})):
        result, adapter, p = discover(task, method, params, n=50, seed=0, ablation="zero")
        record = circuit_record(task, result, adapter, p, n=50, seed=0, ablation="zero",
                                device="cpu")
        rows += score_record(task, dict(record, status="ok"), sparsities=(0.5,),
                             eval_examples=EVAL)
    path = tmp_path / "s.csv"
    pd.DataFrame(rows, columns=COLUMNS).to_csv(path, index=False)
    df = read_scores([path])
    runs = run_table(df).set_index("method")
    ok = df.set_index("method")
    for m in ("eap", "hisp"):  # a ranking's node recovery is its node AUROC
        assert runs.loc[m, "node_recovery"] == ok.loc[m, "node_auroc_zero"].iloc[0]
    assert runs.loc["eap", "mib_cpr"] == ok.loc["eap"].query("level == 'edge'").mib_cpr.iloc[0]
    assert np.isnan(runs.loc["hisp", "faith_area"]) and np.isnan(runs.loc["hisp", "mib_cpr"])
    assert runs.loc["hisp", "runtime_s"] > 0  # a node-level method's cost counts too
    sp = runs.loc["subnetwork_probing"]
    disc = df[df.method == "subnetwork_probing"]
    assert 0 <= sp.node_faith_area <= 1 and np.isnan(sp.mib_cpr)
    # its one node circuit: the recovery of its ROC point at both levels
    assert set(disc.circuit) == {"node:discovered"} and 0 < sp.recovery <= 1
    assert 0 < sp.node_recovery <= 1
    assert set(headline(df).method) == {"eap", "hisp", "subnetwork_probing"}
