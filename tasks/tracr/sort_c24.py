"""sort in superposition: the residual stream compressed to 24 dims by a learned W."""
from benchmark.backends.tracr.spec import compressed
from tasks.tracr.sort import TASK as BASE

TASK = compressed(BASE, width=24)
