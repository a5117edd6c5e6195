"""How many tokens occur at most twice (tracr's count_less_freq with n=2)."""
from benchmark.backends.tracr.spec import TaskSpec


def program():
    from tracr.compiler import lib
    return lib.make_count_less_freq(n=2)


TASK = TaskSpec(name="count_less_freq", program=program, vocab=("a", "b", "c"), max_seq_len=5,
                length=4, output="categorical",
                description="number of tokens occurring at most twice")
