"""Node-level ground truth: exact node sets for the reference tasks, validated for every task.

The validation here is independent of benchmark.backends.tracr.ground_truth and node_truth: it
runs the node-masked forward (benchmark.graph.nodes.run_nodes, one residual stream with each
removed writer's output replaced) from scratch on the task's inputs and clean/corrupted pairs.
"""
import pytest
import torch
from task_lists import looped_tasks

from benchmark.backends.tracr.build import ground_truth_inputs
from benchmark.core.conventions import EDGE_CONVENTIONS as CONVENTIONS
from benchmark.graph.circuit import ablated_outputs
from benchmark.graph.metrics import changed_examples
from benchmark.graph.nodes import node_mask_from_nodes, nodes_of_edges, run_nodes

# measured; on every compiled task the node sets are the writers of the edge sets (below)
EXPECTED = {
    "reverse": {
        "structural": ["tok_embeds", "pos_embeds", "a0.h0", "m0", "m1", "m2", "a3.h0"],
        "zero": ["tok_embeds", "pos_embeds", "a0.h0", "m0", "m1", "m2", "a3.h0"],
        "resample": ["tok_embeds", "a3.h0"],
    },
    "xproportion": {  # zero: 5 edges (DESIGN.md section 3) from these 4 writers
        "structural": ["tok_embeds", "pos_embeds", "m0", "a1.h0"],
        "zero": ["tok_embeds", "pos_embeds", "m0", "a1.h0"],
        "resample": ["tok_embeds", "m0", "a1.h0"],
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reference_node_truths(get_task, name):
    task = get_task(name)
    assert task.node_conventions == CONVENTIONS
    for convention, nodes in EXPECTED[name].items():
        assert task.node_ground_truth(convention) == frozenset(nodes), convention
        assert task.meta["node_ground_truth"][convention] == nodes, convention  # graph order
        assert nodes_of_edges(task.graph, task.ground_truth(convention)) == set(nodes)
        assert task.meta["node_ground_truth_relation"][convention]["relation"] == "equal"
    assert task.summary()["node_ground_truth"] == EXPECTED[name]


CHUNK = 512  # inputs per masked run when searching for a witness


class Inputs:
    """One convention's inputs, what a removed node carries, and the full model's outputs."""

    def __init__(self, task, tokens, ablated):
        self.task, self.tokens, self.ablated = task, tokens, ablated
        with torch.no_grad():
            self.full = task.model(tokens)
        self.order = torch.randperm(len(tokens), generator=torch.Generator().manual_seed(0))

    def changed(self, nodes, rows) -> bool:
        """Does keeping only the writers `nodes` (the others ablated) change a non-BOS answer
        (a defined one, where the program is partial)?"""
        task = self.task
        ablated = None if self.ablated is None else self.ablated[:, rows]
        with torch.no_grad():
            out = run_nodes(task.model, self.tokens[rows], node_mask_from_nodes(task.graph, nodes),
                            ablated)
        return bool(changed_examples(self.full[rows], out, task.output_kind,
                                     task.spec.numerical_atol, task.partial).any())

    def witness(self, nodes) -> bool:
        """Some input whose answer changes, searched chunk by chunk."""
        return any(self.changed(nodes, self.order[i:i + CHUNK])
                   for i in range(0, len(self.tokens), CHUNK))


@pytest.fixture(scope="module")
def node_inputs(get_task):
    cache = {}

    def get(name, convention):
        if name not in cache:
            task = get_task(name)
            tokens, clean, corrupted = ground_truth_inputs(task.spec, task.meta)
            with torch.no_grad():
                resampled = ablated_outputs(task.model, "resample", clean, corrupted)
            plain = Inputs(task, tokens, None)
            cache[name] = {"structural": plain, "zero": plain,
                           "resample": Inputs(task, clean, resampled)}
        return cache[name][convention]

    return get


def _has(task, convention):
    if convention not in task.node_conventions:
        why = task.meta["node_ground_truth_derivation"]["missing"][convention]
        pytest.skip(f"{task.name} has no node-level {convention} ground truth: {why}")


@pytest.mark.parametrize("name", looped_tasks())
@pytest.mark.parametrize("convention", CONVENTIONS)
def test_node_truth_is_sufficient(get_task, node_inputs, name, convention):
    task = get_task(name)
    _has(task, convention)
    inputs, nodes = node_inputs(name, convention), task.node_ground_truth(convention)
    assert nodes <= set(task.graph.writers)  # `logits` is implied, never listed
    assert not inputs.witness(nodes), f"node {convention} not sufficient"
    # empty only where no writer matters (length under resample: every input has one length)
    assert inputs.witness(frozenset()) == bool(nodes)


@pytest.mark.parametrize("name", looped_tasks())
@pytest.mark.parametrize("convention", ["zero", "resample"])
def test_each_node_is_necessary(get_task, node_inputs, name, convention):
    task = get_task(name)
    _has(task, convention)
    inputs, nodes = node_inputs(name, convention), task.node_ground_truth(convention)
    for node in sorted(nodes):
        assert inputs.witness(nodes - {node}), f"node {convention}: {node} not needed"


@pytest.mark.parametrize("name", looped_tasks())
def test_relation_to_the_edge_level(get_task, name):
    """The recorded relation is the writers of each edge ground truth against the node one; on
    compiled weights the structural nodes are the writers something reads."""
    task = get_task(name)
    relation = task.meta["node_ground_truth_relation"]
    assert set(relation) == set(task.node_conventions)
    for c in task.node_conventions:
        if c not in task.conventions:
            assert relation[c] == {"relation": "no edge-level ground truth"}
            continue
        writers, nodes = nodes_of_edges(task.graph, task.ground_truth(c)), task.node_ground_truth(c)
        assert set(relation[c]["edge_writers_only"]) == writers - nodes
        assert set(relation[c]["nodes_only"]) == nodes - writers
        assert relation[c]["relation"] == ("equal" if writers == nodes else "differs")
    if task.family == "compiled":
        m = task.model
        written = {w for w in task.graph.writers
                   if any(m.write_dims(w) & m.read_dims(p) for p in task.graph.readers)}
        assert task.node_ground_truth("structural") == written
    if task.spec.validation_inputs:  # checked on 20,000 fresh inputs when built
        assert task.meta["ground_truth_validation"]["node_conventions"] == list(CONVENTIONS)


def test_compressed_records_the_compiled_nodes(get_task):
    compressed, compiled = get_task("reverse_c8"), get_task("reverse")
    record = compressed.meta["ground_truth_compression"]
    assert record["compiled_nodes"] == compiled.meta["node_ground_truth"]
    for c in CONVENTIONS:
        assert record["node_relation"][c]["compressed"] == len(compressed.node_ground_truth(c))


def test_planted_has_no_structural_nodes(get_task):
    task = get_task("hist_planted")
    assert "structural" not in task.node_conventions
    assert "resample" in task.node_conventions
    assert "trained" in task.meta["node_ground_truth_derivation"]["missing"]["structural"]
    with pytest.raises(KeyError, match="no node-level 'structural'"):
        task.node_ground_truth("structural")
