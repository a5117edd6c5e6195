"""GPT-2 small's shape at a narrow width, trained here: 12 layers x 12 heads (head dim 8) at
d_model 96, so its graph is exactly GPT-2 small's (32,491 edges: one `input` writer, q/k/v ports
per head), with 1.4M parameters instead of 124M. Trained on IOI (with IOI-t1), Greater-Than and
the gendered pronoun.

Measured here (seed 0, one torch thread, 2,400 steps of batch 32): held-out accuracy IOI
0.994, IOI-t1 0.99, Greater-Than 1.0, gendered pronoun 1.0, and the answers depend on what the
corruption changes (Greater-Than: mean KL(clean || corrupted) 0.36 at the answer, 9 distinct
end years as the top answer over 300 prompts), in 423 s on a machine busy with three other
jobs (about 3.5 minutes alone). With Greater-Than one batch in seven and 1,800 steps it reached
accuracy 1.0 by a shortcut: "99" for every prompt (later than every start year, 02-98), KL
0.0002, so that Edge Pruning kept no edge at all; the spec's `min_corruption_kl` now refuses
such a model.

What makes a 12-layer narrow net learn these in minutes (each measured, seed 0 and 1):
- no dropout: with GPT-2's default 0.1 it had learnt neither IOI nor the pronoun after 1,600
  steps of 2,000;
- initial weights' std 0.15 (GPT-2's 0.02 is for d_model 768): at 0.02 the attention stays
  uniform for 1,000 steps or more and whether IOI is learnt at all depends on the seed;
- weight decay 0.3: at 0.01 the pronoun memorised its 384 training prompts and missed the bar
  on held-out ones (0.927);
- IOI four batches in eight (IOI-t1, its first template, among them): it learns each
  template's positions separately; Greater-Than two in eight (see above).
"""
from benchmark.backends.lm.spec import LMSpec

LM_MODEL = LMSpec(
    name="narrow_gpt2", family="gpt2",
    tasks=("ioi", "ioi_t1", "greater_than", "gendered_pronoun"),
    # IOI four batches in eight (IOI-t1, its first template, among them), the others two each
    train_tasks=("ioi", "ioi", "ioi", "ioi_t1", "gendered_pronoun", "greater_than",
                 "greater_than", "gendered_pronoun"),
    n_layer=12, n_head=12, d_model=96, steps=2400, batch_size=32, lr=3e-3, weight_decay=0.3,
    dropout=0.0, init_std=0.15,
    description="GPT-2-small-shaped (12 x 12 heads, d_model 96) trained locally on the prompt "
                "tasks")
