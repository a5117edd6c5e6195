rule discover:
    """One method, one setting, one task, seed, size and ablation -> a circuit file.

    The method's version and source hash are params: editing methods/<name>.py reruns its jobs.
    A crash or a timeout is written as a `failed` / `timeout` circuit file, not a job failure.
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
        version=lambda wc: METHODS.get(wc.method).version,
        source=lambda wc: method_source_hash(wc.method),
        cache=CACHE,
        device=config["device"],
        timeout_s=config["timeout_s"],
    threads: config["threads"]
    resources:
        mem_mb=8000,
        runtime=lambda wc: int(config["timeout_s"] / 60) + 10,
    conda:
        "../envs/circuitbench.yaml"
    script:
        "../scripts/discover.py"
