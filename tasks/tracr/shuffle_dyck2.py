"""1 where two kinds of parentheses are each balanced (shuffle-Dyck-2), else 0."""
from benchmark.backends.tracr.spec import TaskSpec


def program():
    from tracr.compiler import lib
    return lib.make_shuffle_dyck2()


TASK = TaskSpec(name="shuffle_dyck2", program=program, vocab=("(", ")", "{", "}"), max_seq_len=5,
                length=4, output="categorical",
                description="are both kinds of parentheses balanced")
