"""The input's length at every position (constant for fixed-length inputs: its resample
ground truth is empty, a useful edge case)."""
from benchmark.backends.tracr.spec import TaskSpec


def program():
    from tracr.compiler import lib
    return lib.make_length()


TASK = TaskSpec(name="length", program=program, vocab=("a", "b", "c"), max_seq_len=5, length=4,
                output="categorical", description="length of the input",
                constant_output=True)
