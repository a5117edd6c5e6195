"""TinyLlama v1.1 (1.1B params; 22 layers, 32 query heads sharing 4 key/value heads), a
pretrained Llama-family model: loaded with from_pretrained on a user's GPU, never in tests.
Not Greater-Than: the Llama tokenizer splits numbers into single digits, so no prompt fits."""
from benchmark.backends.lm.spec import LMSpec

LM_MODEL = LMSpec(name="tinyllama_1b", pretrained="TinyLlama/TinyLlama_v1.1",
                  tasks=("ioi", "ioi_t1", "gendered_pronoun"),
                  description="TinyLlama v1.1 (1.1B Llama) from the Hugging Face hub")
