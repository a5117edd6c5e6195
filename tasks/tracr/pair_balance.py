"""Fraction of previous open minus close parentheses (numerical output)."""
from benchmark.backends.tracr.spec import TaskSpec


def program():
    from tracr.compiler import lib
    from tracr.rasp import rasp
    return lib.make_pair_balance(rasp.tokens, "(", ")")


TASK = TaskSpec(name="pair_balance", program=program, vocab=("(", ")", "a"), max_seq_len=5,
                length=4, output="numerical", description="running balance of parentheses")
