"""For each token, how many times it occurs in the input."""
from benchmark.backends.tracr.spec import TaskSpec


def program():
    from tracr.compiler import lib
    return lib.make_hist()


TASK = TaskSpec(name="hist", program=program, vocab=("a", "b", "c"), max_seq_len=5, length=4,
                output="categorical", description="count of each token in the input")
