"""A 2-layer GPT-2 (d_model 64, 4 heads) trained here on IOI, Greater-Than and the gendered
pronoun: held-out accuracy 0.996 / 1.0 / 1.0 after 2,000 steps (seed 0)."""
from benchmark.backends.lm.spec import LMSpec

LM_MODEL = LMSpec(
    name="tiny_gpt2", family="gpt2",
    tasks=("ioi", "ioi_t1", "greater_than", "gendered_pronoun"),
    train_tasks=("ioi", "ioi", "greater_than", "gendered_pronoun"),  # IOI needs the most steps
    steps=2000, description="2-layer GPT-2 trained locally on the prompt tasks")
