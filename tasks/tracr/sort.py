"""Sort tokens (duplicates allowed: keys made unique by a small position offset)."""
from benchmark.backends.tracr.spec import TaskSpec


def program():
    from tracr.compiler import lib
    from tracr.rasp import rasp
    return lib.make_sort(rasp.tokens, rasp.tokens, max_seq_len=5, min_key=1)


TASK = TaskSpec(name="sort", program=program, vocab=(1, 2, 3, 4), max_seq_len=5, length=4,
                output="categorical", description="sort the input tokens")
