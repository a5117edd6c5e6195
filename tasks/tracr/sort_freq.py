"""Tokens sorted by descending frequency."""
from benchmark.backends.tracr.spec import TaskSpec


def program():
    from tracr.compiler import lib
    return lib.make_sort_freq(max_seq_len=5)


TASK = TaskSpec(name="sort_freq", program=program, vocab=("a", "b", "c"), max_seq_len=5, length=4,
                output="categorical", description="sort tokens by frequency")
