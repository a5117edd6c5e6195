"""hist with a large input space: 4 symbols, 10 positions, 4^10 = 1,048,576 distinct inputs."""
from benchmark.backends.tracr.spec import TaskSpec
from tasks.tracr.hist import program

TASK = TaskSpec(name="hist_large", program=program, vocab=("a", "b", "c", "d"), max_seq_len=11,
                length=10, output="categorical", max_verify_inputs=1024, validation_inputs=20_000,
                description="count of each token, 10 tokens over 4 symbols (1.0M inputs)")
