"""sort with a large input space: 6 symbols, 8 positions, 6^8 = 1,679,616 distinct inputs."""
from benchmark.backends.tracr.spec import TaskSpec


def program():
    from tracr.compiler import lib
    from tracr.rasp import rasp
    return lib.make_sort(rasp.tokens, rasp.tokens, max_seq_len=9, min_key=1)


TASK = TaskSpec(name="sort_large", program=program, vocab=tuple(range(1, 7)), max_seq_len=9,
                length=8, output="categorical", max_verify_inputs=1024, validation_inputs=20_000,
                description="sort 8 tokens over 6 symbols (1.7M inputs)")
