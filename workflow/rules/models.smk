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
    """Draw two independent sets of samples from a trained model: the verdict chooses on one and
    judges on the other."""
    input:
        model=plan.path("model"),
    output:
        plan.path("samples"),
    params:
        code=model_code("sample"),
        n=2 * config["samples"]["count"],
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


rule evaluate:
    """Exact (or bounded) test log-likelihood, per image and summarised."""
    input:
        data=plan.path("data"),
        model=plan.path("model"),
    output:
        metrics=plan.path("metrics"),
        nll=plan.path("nll"),
    params:
        code=model_code("evaluate"),
        device=config["device"],
    threads: config["resources"]["threads"]
    resources:
        gpu=gpus,
    log:
        plan.path("log", stage="evaluate"),
    benchmark:
        plan.path("benchmark", stage="evaluate")
    conda:
        "../../envs/arbench.yaml"
    shell:
        'OMP_NUM_THREADS={threads} "$ARBENCH_PYTHON" -m arbench.evaluate '
        "--data {input.data} "
        "--model {input.model} --device {params.device} --out {output.metrics} --nll {output.nll} "
        "> {log} 2>&1"


rule complete:
    """Complete test images whose bottom rows are hidden; score the true hidden pixels."""
    input:
        data=plan.path("data"),
        model=plan.path("model"),
    output:
        summary=plan.path("completion"),
        images=plan.path("completion_images"),
    params:
        code=model_code("complete"),
        hidden_rows=config["completion"]["hidden_rows"],
        images=config["completion"]["images"],
        completions=config["completion"]["completions"],
        seed=config["completion"]["seed"],
        device=config["device"],
    threads: config["resources"]["threads"]
    resources:
        gpu=gpus,
    log:
        plan.path("log", stage="complete"),
    benchmark:
        plan.path("benchmark", stage="complete")
    conda:
        "../../envs/arbench.yaml"
    shell:
        'OMP_NUM_THREADS={threads} "$ARBENCH_PYTHON" -m arbench.complete '
        "--data {input.data} --model {input.model} "
        "--hidden-rows {params.hidden_rows} --images {params.images} "
        "--completions {params.completions} --seed {params.seed} --device {params.device} "
        "--out {output.summary} > {log} 2>&1"
