rule score:
    """Faithfulness, size, recovery and cost of every circuit of one (task, ablation, n, seed)."""
    input:
        task=f"{RESULTS}/tasks/{{task}}.json",
        circuits=circuits_of_group,
    output:
        f"{RESULTS}/scores/{{task}}/{{ablation}}/n{{n}}/s{{seed}}.csv",
    log:
        f"{RESULTS}/logs/score/{{task}}/{{ablation}}/n{{n}}/s{{seed}}.log",
    params:
        cache=CACHE,
        sparsities=config["sparsities"],
        kernels=KERNELS,
        eval_examples=config["eval_examples"],
        device=config["device"],
        config_hash=SCORING_CONFIG_HASH,
        code=SCORING_KEY,
        task_key=lambda wc: task_key(wc.task),
    resources:
        mem_mb=4000,
    conda:
        "../envs/circuitbench.yaml"
    script:
        "../scripts/score.py"
