"""Stage 2, the shared computational graph: edge ids, counts, reading rules and mask order."""
import pytest
import torch

from benchmark.graph.graph import Graph


def _expected_edges(n_layers, n_heads):
    """DESIGN.md section 2 written out independently of benchmark.graph.graph."""
    emb = ["tok_embeds", "pos_embeds"]

    def heads(layer):
        return [f"a{layer}.h{h}" for h in range(n_heads)]

    def block(layer):
        return heads(layer) + [f"m{layer}"]

    edges = set()
    for layer in range(n_layers):
        earlier = emb + [w for i in range(layer) for w in block(i)]
        for h in heads(layer):
            edges |= {f"{w}->{h}<{x}>" for w in earlier for x in "qkv"}
        edges |= {f"{w}->m{layer}" for w in earlier + heads(layer)}
    writers = emb + [w for i in range(n_layers) for w in block(i)]
    edges |= {f"{w}->logits" for w in writers}
    return edges


def test_reference_edge_counts(get_task):
    assert get_task("reverse").graph.n_edges == 94
    assert get_task("xproportion").graph.n_edges == 32
    assert len(set(get_task("reverse").graph.edges)) == 94


def test_edge_ids(get_task):
    edges = set(get_task("reverse").graph.edges)
    for e in ("tok_embeds->a0.h0<q>", "a0.h0->m0", "m2->a3.h0<q>", "a3.h0->logits",
              "pos_embeds->logits", "m3->logits", "a2.h0->a3.h0<v>", "pos_embeds->a0.h0<k>",
              "a3.h0->m3"):
        assert e in edges, e
    for e in ("m0->a0.h0<q>", "a1.h0->a1.h0<q>", "m1->m1", "m1->m0", "a3.h0->m2",
              "logits->m0", "a0.h0->a0.h0<v>", "m3->a3.h0<k>", "tok_embeds->a0.h0",
              "a3.h0<q>->logits", "a0.h1->m0"):
        assert e not in edges, e


@pytest.mark.parametrize("n_layers,n_heads", [(1, 1), (2, 2), (3, 2), (4, 1), (2, 3)])
def test_edges_follow_the_reading_rules(n_layers, n_heads):
    """A head in layer l reads embeddings + heads and MLPs of layers < l; MLP l reads the heads
    of layers <= l and the MLPs of layers < l; logits read every writer."""
    g = Graph(n_layers, n_heads)
    assert set(g.edges) == _expected_edges(n_layers, n_heads)
    assert len(g.edges) == len(set(g.edges))


def test_reference_graphs_follow_the_rules(get_task):
    for name, (n_layers, n_heads) in (("reverse", (4, 1)), ("xproportion", (2, 1))):
        g = get_task(name).graph
        assert (g.n_layers, g.n_heads) == (n_layers, n_heads)
        assert set(g.edges) == _expected_edges(n_layers, n_heads)


def test_counts_by_hand():
    g = Graph(n_layers=2, n_heads=2)
    # layer 0 heads: 2 writers (embeddings) x 2 heads x 3 ports = 12
    # m0: embeddings + a0.h0 + a0.h1 = 4
    # layer 1 heads: 5 writers (+ m0) x 2 heads x 3 ports = 30
    # m1: 5 + a1.h0 + a1.h1 = 7
    # logits: all 8 writers = 8
    assert g.n_edges == 12 + 4 + 30 + 7 + 8 == 61
    assert "a0.h0->a0.h1<q>" not in g.edges and "a0.h1->m0" in g.edges
    assert g.writers == ["tok_embeds", "pos_embeds", "a0.h0", "a0.h1", "m0", "a1.h0", "a1.h1",
                         "m1"]
    assert g.readers == ["a0.h0<q>", "a0.h0<k>", "a0.h0<v>", "a0.h1<q>", "a0.h1<k>", "a0.h1<v>",
                         "m0", "a1.h0<q>", "a1.h0<k>", "a1.h0<v>", "a1.h1<q>", "a1.h1<k>",
                         "a1.h1<v>", "m1", "logits"]


def test_canonical_order_is_topological():
    g = Graph(3, 2)
    reader_pos = {r: i for i, r in enumerate(g.readers)}
    keys = [(reader_pos[e.split("->")[1]], g.writer_to_index[e.split("->")[0]]) for e in g.edges]
    assert keys == sorted(keys)
    assert g.edges[0] == "tok_embeds->a0.h0<q>" and g.edges[-1] == "m2->logits"
    assert [g.edge_to_index[e] for e in g.edges] == list(range(g.n_edges))


def test_mask_round_trip(get_task):
    g = get_task("reverse").graph
    kept = {"a3.h0->logits", "tok_embeds->m0"}
    mask = g.mask_from_edges(kept)
    assert mask.shape == (94,) and mask.dtype == torch.float32
    assert mask.sum() == 2 and g.edges_from_mask(mask) == kept
    assert mask[g.edge_to_index["a3.h0->logits"]] == 1
    rng = torch.Generator().manual_seed(0)
    for _ in range(5):
        random_mask = (torch.rand(g.n_edges, generator=rng) < 0.3).float()
        edges = g.edges_from_mask(random_mask)
        assert torch.equal(g.mask_from_edges(edges), random_mask)
    assert g.edges_from_mask(g.mask_from_edges(g.edges)) == set(g.edges)
    assert g.edges_from_mask(torch.zeros(g.n_edges)) == frozenset()


def test_unknown_edge_raises_key_error(get_task):
    g = get_task("reverse").graph
    with pytest.raises(KeyError, match="not in this graph"):
        g.mask_from_edges({"a9.h0->logits"})
    with pytest.raises(KeyError):
        g.mask_from_edges({"a3.h0->logits", "m0->a0.h0<q>"})  # wrong direction
    with pytest.raises(KeyError):
        g.group_of_edge("nope")


def test_group_index_matches_edge_ids(get_task):
    g = get_task("xproportion").graph
    for group in g.groups:
        for p, port in enumerate(group.ports):
            for w in range(group.n_writers_before):
                assert g.edges[int(group.edge_index[w, p])] == f"{g.writers[w]}->{port}"
    assert torch.equal(torch.sort(torch.cat([gr.edge_index.flatten() for gr in g.groups]))[0],
                       torch.arange(g.n_edges))
    assert g.group_of_edge("m0->a1.h0<v>") == 2 and g.group_of_edge("a1.h0->logits") == 4
    assert sorted(g.outgoing("m1")) == [g.edge_to_index["m1->logits"]]
