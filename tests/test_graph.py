"""The shared computational graph: edge ids, counts and order."""
import pytest
import torch

from benchmark.graph import Graph


def test_reference_edge_counts(get_task):
    assert get_task("reverse").graph.n_edges == 94
    assert get_task("xproportion").graph.n_edges == 32


def test_edge_ids(get_task):
    edges = set(get_task("reverse").graph.edges)
    for e in ("tok_embeds->a0.h0<q>", "a0.h0->m0", "m2->a3.h0<q>", "a3.h0->logits",
              "pos_embeds->logits", "m3->logits", "a2.h0->a3.h0<v>"):
        assert e in edges
    for e in ("m0->a0.h0<q>", "a1.h0->a1.h0<q>", "m1->m1", "m1->m0", "a3.h0->m2",
              "logits->m0"):
        assert e not in edges


def test_counts_by_hand():
    g = Graph(n_layers=2, n_heads=2)
    # heads layer 0: 3 ports x 2 heads x 2 writers; MLP 0: 4; heads layer 1: 6 x 5; MLP 1: 7;
    # logits: 8
    assert g.n_edges == 12 + 4 + 30 + 7 + 8
    assert "a0.h0->a0.h1<q>" not in g.edges and "a0.h1->m0" in g.edges
    assert g.writers == ["tok_embeds", "pos_embeds", "a0.h0", "a0.h1", "m0", "a1.h0", "a1.h1",
                         "m1"]


def test_readers_see_only_earlier_writers():
    g = Graph(n_layers=3, n_heads=2)
    order = {w: i for i, w in enumerate(g.writers)}
    for e in g.edges:
        w, r = e.split("->")
        if r == "logits":
            continue
        node = r.split("<")[0]
        layer = int(node[1:].split(".")[0])
        if node.startswith("a"):  # a head reads embeddings and every block of earlier layers
            assert w in ("tok_embeds", "pos_embeds") or int(w[1:].split(".")[0]) < layer
        else:  # an MLP also reads the heads of its own layer
            assert order[w] < order[node]


def test_mask_round_trip(get_task):
    g = get_task("reverse").graph
    kept = {"a3.h0->logits", "tok_embeds->m0"}
    mask = g.mask_from_edges(kept)
    assert mask.sum() == 2 and g.edges_from_mask(mask) == kept
    with pytest.raises(KeyError, match="not in this graph"):
        g.mask_from_edges({"a9.h0->logits"})


def test_group_index_matches_edge_ids(get_task):
    g = get_task("xproportion").graph
    for group in g.groups:
        for p, port in enumerate(group.ports):
            for w in range(group.n_writers_before):
                assert g.edges[int(group.edge_index[w, p])] == f"{g.writers[w]}->{port}"
    assert torch.equal(torch.sort(torch.cat([gr.edge_index.flatten() for gr in g.groups]))[0],
                       torch.arange(g.n_edges))
