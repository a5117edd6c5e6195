"""hist planted in a trained 2-layer x 2-head transformer of residual width 12 (tracr's hist
has 1 x 1 and width 18): the compiled head and MLP are aligned to a0.h1 and m1, and the four
other components are trained to be irrelevant under resample ablation (SIIT). 2,500 steps:
at 1,500, seed 1 missed the exact ground truth on a few of its 6,480 pairs; at 2,500 seeds
0, 1 and 2 all agree with the compiled model on every intervention."""
from benchmark.backends.tracr.spec import planted
from tasks.tracr.hist import TASK as HIST

TASK = planted(HIST, n_layers=2, n_heads=2, d_model=12,
               align=(("a0.h0", "a0.h1"), ("m0", "m1")), seed=0, steps=2500, lr=0.02)
