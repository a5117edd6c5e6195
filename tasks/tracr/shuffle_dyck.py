"""1 where one kind of parenthesis is balanced (shuffle-Dyck-1), else 0."""
from benchmark.backends.tracr.spec import TaskSpec


def program():
    from tracr.compiler import lib
    return lib.make_shuffle_dyck(pairs=["()"])


TASK = TaskSpec(name="shuffle_dyck", program=program, vocab=("(", ")", "a"), max_seq_len=5,
                length=4, output="categorical", description="are the parentheses balanced")
