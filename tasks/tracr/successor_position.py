"""Where is the next larger token? A program that is undefined (None) where there is none."""
from benchmark.backends.tracr.spec import TaskSpec


def program():
    from tracr.rasp import rasp
    successor = rasp.Map(lambda x: x + 1, rasp.tokens)
    # distinct inputs: at most one key holds successor(query), so the categorical mean is exact
    where = rasp.Select(rasp.tokens, successor, rasp.Comparison.EQ)
    return rasp.categorical(rasp.Aggregate(where, rasp.indices)).named("successor_position")


TASK = TaskSpec(name="successor_position", program=program, vocab=(1, 2, 3, 4, 5),
                max_seq_len=4, length=4, output="categorical", inputs="distinct",
                description="position of the token one larger than each token; None where no "
                            "such token is in the input (excluded from metrics)")
