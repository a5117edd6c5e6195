rule discover:
    """One method, one setting, one task, seed, size and ablation -> a circuit file.

    The method's version, the hash of every project module its run can execute (and of the
    files it reads: Adapter.input_files) and the task's key are params: editing any of them
    reruns its jobs (benchmark/core/fingerprint.py). The method runs in a child process killed
    at timeout_s and capped at mem_mb; a crash, hang, exit or kill is written as a `failed` /
    `timeout` / `oom` circuit file, not a job failure.
    """
    input:
        task=f"{RESULTS}/tasks/{{task}}.json",
        data=f"{RESULTS}/data/{{task}}/n{{n}}_s{{seed}}.pt",
    output:
        f"{RESULTS}/circuits/{{task}}/{{ablation}}/n{{n}}/s{{seed}}/{{method}}/{{setting}}.json",
    log:
        f"{RESULTS}/logs/discover/{{task}}/{{ablation}}/n{{n}}/s{{seed}}/{{method}}/{{setting}}.log",
    benchmark:
        f"{RESULTS}/timings/discover/{{task}}/{{ablation}}/n{{n}}/s{{seed}}/{{method}}/{{setting}}.tsv"
    params:
        values=lambda wc: json.dumps(run_of(wc)["values"], sort_keys=True),
        version=lambda wc: method_version(wc.method),
        source=lambda wc: method_source(wc.method) + input_key(run_of(wc)),
        task_key=lambda wc: task_key(wc.task),
        cache=CACHE,
        kernels=KERNELS,
        device=config["device"],
        timeout_s=config["timeout_s"],
        mem_mb=config["mem_mb"],
        eval_examples=lambda wc: task_settings(wc.task)["eval_examples"],
    # a rank's threads times its ranks: a local run's --cores then counts every rank's cores
    threads: lambda wc: config["threads"] * processes_of(run_of(wc))
    # the runs on most examples first, and a language model's before a Tracr task's: their chain
    # (training, discovery, the scoring of a large graph) is the run's longest, and must not be
    # the last to start
    priority: lambda wc: len(wc.n) + chain_priority(wc.task)
    # A run with `processes: N` (benchmark/workflow/ranks.py) is ONE task on one node: torchrun,
    # inside the job, starts its N ranks. N Slurm tasks would run N copies of the whole job. It
    # asks for N times a rank's resources: N x gpus_per_process GPUs (0 in the default config:
    # the Slurm profile sets 1), N x threads CPUs and N x mem_mb (mem_mb caps each rank; host_mem_mb,
    # where set, replaces it in the request: on CUDA mem_mb is a share of the GPU's memory).
    resources:
        mem_mb=lambda wc: (config.get("host_mem_mb") or config["mem_mb"])
        * processes_of(run_of(wc)) + 2000,
        runtime=lambda wc: int(config["timeout_s"] / 60) + 10,
        gpu=lambda wc: config["gpus_per_process"] * processes_of(run_of(wc)),
        cpus_per_task=lambda wc, threads: threads,
        nodes=1,
    conda:
        "../envs/circuitbench.yaml"
    script:
        "../scripts/discover.py"
