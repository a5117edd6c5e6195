"""Sort tokens that are all different (tracr's sort_unique needs unique keys)."""
from benchmark.backends.tracr.spec import TaskSpec


def program():
    from tracr.compiler import lib
    from tracr.rasp import rasp
    return lib.make_sort_unique(rasp.tokens, rasp.tokens)


TASK = TaskSpec(name="sort_unique", program=program, vocab=(1, 2, 3, 4, 5), max_seq_len=5, length=4,
                output="categorical", inputs="distinct",
                description="sort distinct input tokens")
