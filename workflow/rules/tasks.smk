rule train_model:
    """Train a small language model on the prompt tasks (seeded, one thread, cached), or find
    a pretrained one; its report holds the held-out accuracy each task reached."""
    output:
        f"{RESULTS}/models/{{model}}.json",
    log:
        f"{RESULTS}/logs/models/{{model}}.log",
    params:
        cache=CACHE,
        model_key=lambda wc: model_key(wc.model),
    priority: 11  # every job on the model waits for it, and its chain is the run's longest
    resources:
        mem_mb=4000,
    conda:
        "../envs/circuitbench.yaml"
    script:
        "../scripts/train_model.py"


rule compile_task:
    """Compile a RASP program with tracr, verify the torch port, derive its ground truth; for
    a prompt task on a language model (`ioi@tiny_gpt2`), load the model and describe the task."""
    input:
        model_of_task,
    output:
        f"{RESULTS}/tasks/{{task}}.json",
    log:
        f"{RESULTS}/logs/compile/{{task}}.log",
    params:
        cache=CACHE,
        task_key=lambda wc: task_key(wc.task),
    priority: 10  # every job on the task waits for it
    resources:
        mem_mb=4000,
    conda:
        "../envs/circuitbench.yaml"
    script:
        "../scripts/compile_task.py"


rule make_dataset:
    """Seeded clean/corrupted inputs: a discovery split and a held-out evaluation split."""
    input:
        f"{RESULTS}/tasks/{{task}}.json",
    output:
        f"{RESULTS}/data/{{task}}/n{{n}}_s{{seed}}.pt",
    log:
        f"{RESULTS}/logs/data/{{task}}/n{{n}}_s{{seed}}.log",
    params:
        cache=CACHE,
        eval_examples=lambda wc: task_settings(wc.task)["eval_examples"],
        task_key=lambda wc: task_key(wc.task),
        code=DATA_KEY,
    # as the discoveries that wait for it (discover.smk)
    priority: lambda wc: len(wc.n) + chain_priority(wc.task)
    resources:
        mem_mb=2000,
    conda:
        "../envs/circuitbench.yaml"
    script:
        "../scripts/make_dataset.py"
