"""reverse with a large input space: 8 symbols, 7 positions, 8^7 = 2,097,152 distinct inputs,
so that 100,000 discovery examples are (almost) all different and never seen in evaluation."""
from benchmark.backends.tracr.spec import TaskSpec
from tasks.tracr.reverse import program

TASK = TaskSpec(name="reverse_large", program=program, vocab=tuple(range(1, 9)), max_seq_len=8,
                length=7, output="categorical", max_verify_inputs=1024, validation_inputs=20_000,
                description="reverse 7 tokens over 8 symbols (2.1M inputs)")
