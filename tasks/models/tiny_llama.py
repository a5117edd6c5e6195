"""A 2-layer Llama (d_model 64, 4 query heads sharing 2 key/value heads, RMSNorm, rotary
positions, gated MLP) trained here on IOI, Greater-Than and the gendered pronoun."""
from benchmark.backends.lm.spec import LMSpec

LM_MODEL = LMSpec(
    name="tiny_llama", family="llama",
    tasks=("ioi", "ioi_t1", "greater_than", "gendered_pronoun"),
    train_tasks=("ioi", "ioi", "greater_than", "gendered_pronoun"),
    steps=2400, description="2-layer Llama trained locally on the prompt tasks")
