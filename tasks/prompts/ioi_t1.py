"""IOI with one template (the Edge Pruning paper's IOI-t1)."""
from tasks.prompts.ioi import TEMPLATES, spec

PROMPT_TASK = spec("ioi_t1", TEMPLATES[:1], "indirect object identification, one template")
