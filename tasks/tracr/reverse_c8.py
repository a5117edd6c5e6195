"""reverse in superposition: the residual stream compressed to 8 dims by a learned W."""
from benchmark.backends.tracr.spec import compressed
from tasks.tracr.reverse import TASK as BASE

TASK = compressed(BASE, width=8)
