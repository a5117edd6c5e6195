import json
import sys; sys.path.insert(0, snakemake.scriptdir)  # noqa: E702,F821
from _log import redirect  # noqa: E402

from benchmark.workflow.job_server import run_stage  # noqa: E402

sm = snakemake  # noqa: F821
redirect(sm)
w = sm.wildcards
values = json.loads(sm.params.values)
threads = max(1, sm.threads // values.get("processes", 1))  # per rank: the rule asks for all
run_stage("benchmark.workflow.discover_stage:discover_stage", w.task, sm.params.cache, sm.input.data, w.method,
          values, w.ablation, int(w.n), int(w.seed), sm.output[0],
          device=sm.params.device, timeout_s=sm.params.timeout_s, mem_mb=sm.params.mem_mb,
          threads=threads, eval_examples=sm.params.eval_examples, fork=True)
