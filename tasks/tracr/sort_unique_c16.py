"""sort_unique in superposition: the residual stream compressed to 16 dims by a learned W."""
from benchmark.backends.tracr.spec import compressed
from tasks.tracr.sort_unique import TASK as BASE

TASK = compressed(BASE, width=16)
