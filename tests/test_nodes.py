"""Node-level circuits: the node-masked forward and the edge <-> node projections."""
import pytest
import torch

from benchmark.graph.circuit import ablated_outputs, run_circuit
from benchmark.graph.graph import Graph
from benchmark.graph.nodes import (
    edge_mask_of_nodes,
    edges_of_nodes,
    node_mask_from_nodes,
    node_scores_of_edges,
    nodes_of_edges,
    run_nodes,
)
from benchmark.tasks import load_task


@pytest.fixture(scope="module")
def reverse():
    return load_task("reverse")


def test_all_ones_is_the_plain_model_bit_for_bit(reverse):
    x = reverse.dataset(64, 0).discovery.clean
    assert torch.equal(run_nodes(reverse.model, x, torch.ones(reverse.graph.n_nodes)),
                       reverse.model(x))


@pytest.mark.parametrize("ablation", ["zero", "resample", "mean"])
def test_node_forward_equals_the_edge_forward_of_its_projection(reverse, ablation):
    g, data = reverse.graph, reverse.dataset(64, 1).discovery
    ablated = ablated_outputs(reverse.model, ablation, data.clean, data.corrupted)
    gen = torch.Generator().manual_seed(0)
    per_example = (torch.rand(len(data.clean), g.n_nodes, generator=gen) > 0.5).float()
    assert torch.equal(run_nodes(reverse.model, data.clean, per_example, ablated),
                       run_circuit(reverse.model, data.clean, edge_mask_of_nodes(g, per_example),
                                   ablated))
    nodes = {"tok_embeds", "a1.h0", "m2"}
    by_edges = run_circuit(reverse.model, data.clean,
                           g.mask_from_edges(edges_of_nodes(g, nodes)), ablated)
    assert torch.equal(run_nodes(reverse.model, data.clean, node_mask_from_nodes(g, nodes),
                                 ablated), by_edges)


def test_node_mask_carries_gradients(reverse):
    x = reverse.dataset(16, 0).discovery.clean
    mask = torch.ones(reverse.graph.n_nodes, requires_grad=True)
    run_nodes(reverse.model, x, mask).sum().backward()
    assert mask.grad is not None and mask.grad.abs().sum() > 0


def test_projections_follow_the_stated_rules():
    g = Graph(2, 1)
    assert nodes_of_edges(g, {"a0.h0->m0", "tok_embeds->a1.h0<q>"}) == {"a0.h0", "tok_embeds"}
    edges = edges_of_nodes(g, {"a0.h0", "m1"})
    assert edges == {"a0.h0->m1", "a0.h0->logits", "m1->logits"}
    scores = torch.zeros(g.n_edges)
    scores[g.edge_to_index["a0.h0->m1"]] = 3.0
    scores[g.edge_to_index["a0.h0->logits"]] = -1.0
    node = dict(zip(g.writers, node_scores_of_edges(g, scores.numpy())))
    assert node["a0.h0"] == 3.0 and node["m0"] == 0.0
    with pytest.raises(KeyError, match="nodes not in this graph"):
        edges_of_nodes(g, {"a5.h0"})
