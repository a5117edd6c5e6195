"""GPT-2 small (124M; 12 layers x 12 heads, 32,491 edges), the Edge Pruning paper's model.
Loaded with from_pretrained("gpt2"): on a user's machine or the cluster, never in tests."""
from benchmark.backends.lm.spec import LMSpec
from tasks.prompts.ioi_circuit import IOI_HEADS

LM_MODEL = LMSpec(name="gpt2", pretrained="gpt2",
                  tasks=("ioi", "ioi_t1", "greater_than", "gendered_pronoun"),
                  published=(("ioi", IOI_HEADS), ("ioi_t1", IOI_HEADS)),
                  description="GPT-2 small from the Hugging Face hub")
