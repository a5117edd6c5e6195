"""successor_position in superposition: the residual stream compressed to 8 dims by a learned W."""
from benchmark.backends.tracr.spec import compressed
from tasks.tracr.successor_position import TASK as BASE

TASK = compressed(BASE, width=8)
