"""Reverse a sequence (the Tracr task of Conmy et al. and Bhaskar et al.)."""
from benchmark.backends.tracr.spec import TaskSpec


def program():
    from tracr.compiler import lib
    from tracr.rasp import rasp
    return lib.make_reverse(rasp.tokens)


TASK = TaskSpec(name="reverse", program=program, vocab=(1, 2, 3), max_seq_len=5, length=4,
                output="categorical", description="reverse the input tokens")
