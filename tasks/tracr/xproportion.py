"""Running fraction of previous tokens equal to "x" (tracr's frac_prevs)."""
from benchmark.backends.tracr.spec import TaskSpec


def program():
    from tracr.compiler import lib
    from tracr.rasp import rasp
    return lib.make_frac_prevs(rasp.tokens == "x")


TASK = TaskSpec(name="xproportion", program=program, vocab=("w", "x", "y", "z"), max_seq_len=5,
                length=4, output="numerical",
                description="fraction of tokens so far that are 'x'")
