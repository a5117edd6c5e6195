"""How many tokens equal "a"."""
from benchmark.backends.tracr.spec import TaskSpec


def program():
    from tracr.compiler import lib
    from tracr.rasp import rasp
    return lib.make_count(rasp.tokens, "a")


TASK = TaskSpec(name="count", program=program, vocab=("a", "b", "c"), max_seq_len=5, length=4,
                output="categorical", description="count of token a")
