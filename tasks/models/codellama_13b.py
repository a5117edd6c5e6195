"""CodeLlama-13B (40 layers, 40 heads, d_model 5120; 3.9M edges), the largest model Edge Pruning
was run on (Bhaskar et al. 2024: FSDP over 32 H100s). A pretrained Llama-family model for a
user's GPU cluster: loaded sharded over the ranks of a `processes: N` run, never in tests. Not
Greater-Than: the Llama tokenizer splits numbers into single digits, so no prompt fits."""
from benchmark.backends.lm.spec import LMSpec

LM_MODEL = LMSpec(name="codellama_13b", pretrained="codellama/CodeLlama-13b-hf",
                  tasks=("ioi", "ioi_t1", "gendered_pronoun"), dtype="bfloat16",
                  description="CodeLlama-13B from the Hugging Face hub (bf16 weights)")
