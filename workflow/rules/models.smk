rule train:
    """Fit one model on one dataset; neural models checkpoint and resume. The final checkpoint
    is kept until the workflow succeeds (the Snakefile's onsuccess removes it), so that a job
    that finished while Snakemake was being interrupted writes its model again without training."""
    input:
        data=plan.path("data"),
    output:
        model=plan.path("model"),
        metrics=plan.path("curve"),
    params:
        code=model_code("train"),
        settings=settings_json,
        checkpoint=plan.path("checkpoint"),
    threads: config["resources"]["threads"]
    priority: training_priority
    resources:
        gpu=gpus,
    log:
        plan.path("log", stage="train"),
    benchmark:
        plan.path("benchmark", stage="train")
    conda:
        "../../envs/arbench.yaml"
    shell:
        'OMP_NUM_THREADS={threads} "$ARBENCH_PYTHON" -m arbench.train '
        "--data {input.data} --model {wildcards.model} "
        "--settings {params.settings:q} --out {output.model} --metrics {output.metrics} "
        "--checkpoint {params.checkpoint} --keep-checkpoint > {log} 2>&1"


rule sample:
    """Draw independent sets of samples from a trained model (`samples.draws` of them): their
    spread is the error of the model's sample quality."""
    input:
        model=plan.path("model"),
    output:
        plan.path("samples"),
    params:
        code=model_code("sample"),
        n=config["samples"]["draws"] * config["samples"]["count"],
        seed=config["samples"]["seed"],
        device=config["device"],
    threads: config["resources"]["threads"]
    resources:
        gpu=gpus,
    log:
        plan.path("log", stage="sample"),
    benchmark:
        plan.path("benchmark", stage="sample")
    conda:
        "../../envs/arbench.yaml"
    shell:
        'OMP_NUM_THREADS={threads} "$ARBENCH_PYTHON" -m arbench.sample '
        "--model {input.model} "
        "--n {params.n} --seed {params.seed} --device {params.device} --out {output} "
        "> {log} 2>&1"


rule examine:
    """One trained model against the test split, in one job (a job is mostly Python and torch
    starting): the exact (or bounded) test log-likelihood, per image and summarised, and test
    images whose bottom rows are hidden, completed, the true hidden pixels scored."""
    input:
        data=plan.path("data"),
        model=plan.path("model"),
    output:
        likelihood=plan.path("metrics"),
        nll=plan.path("nll"),
        completion=plan.path("completion"),
        completion_images=plan.path("completion_images"),
    params:
        code=model_code("examine"),
        hidden_rows=config["completion"]["hidden_rows"],
        images=config["completion"]["images"],
        completions=config["completion"]["completions"],
        seed=config["completion"]["seed"],
        device=config["device"],
    threads: config["resources"]["threads"]
    resources:
        gpu=gpus,
    log:
        plan.path("log", stage="examine"),
    benchmark:
        plan.path("benchmark", stage="examine")
    conda:
        "../../envs/arbench.yaml"
    shell:
        'OMP_NUM_THREADS={threads} "$ARBENCH_PYTHON" -m arbench.examine '
        "--data {input.data} --model {input.model} --device {params.device} "
        "--likelihood {output.likelihood} --nll {output.nll} "
        "--completion {output.completion} --hidden-rows {params.hidden_rows} "
        "--images {params.images} --completions {params.completions} --seed {params.seed} "
        "> {log} 2>&1"
