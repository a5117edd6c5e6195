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
        sparsities=lambda wc: task_settings(wc.task)["sparsities"],
        kernels=KERNELS,
        eval_examples=lambda wc: task_settings(wc.task)["eval_examples"],
        device=config["device"],
        config_hash=lambda wc: scoring_config_hash(wc.task),
        code=SCORING_KEY,
        task_key=lambda wc: task_key(wc.task),
    # as soon as its circuits are there: a language model's score job is among the longest
    priority: lambda wc: 20 + chain_priority(wc.task)
    resources:
        mem_mb=4000,
    conda:
        "../envs/circuitbench.yaml"
    script:
        "../scripts/score.py"
