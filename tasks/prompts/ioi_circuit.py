"""The IOI circuit Wang et al. (2022, "Interpretability in the Wild") report for GPT-2 small:
26 attention heads in seven classes, as (layer, head). It is a node-level circuit (which heads,
not which edges), found on their IOI prompts by path patching; circuitbench scores a method's
circuit on GPT-2 small against it as the `published` convention (heads that write into the
circuit), a reference point rather than a ground truth: the paper's own evaluation finds it
incomplete (MLPs, and heads outside it, matter)."""

IOI_HEAD_CLASSES = {
    "name mover": ((9, 9), (9, 6), (10, 0)),
    "negative name mover": ((10, 7), (11, 10)),
    "backup name mover": ((9, 0), (9, 7), (10, 1), (10, 2), (10, 6), (10, 10), (11, 2), (11, 9)),
    "s-inhibition": ((7, 3), (7, 9), (8, 6), (8, 10)),
    "induction": ((5, 5), (5, 8), (5, 9), (6, 9)),
    "duplicate token": ((0, 1), (0, 10), (3, 0)),
    "previous token": ((2, 2), (4, 11)),
}
IOI_HEADS = tuple(sorted(f"a{layer}.h{head}" for heads in IOI_HEAD_CLASSES.values()
                         for layer, head in heads))
