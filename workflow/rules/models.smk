rule train:
    """Fit one model on one dataset; neural models checkpoint every epoch and resume."""
    input:
        data="results/data/{dataset}.npz",
        code=model_code,
    output:
        model="results/models/{dataset}/{model}.pt",
        metrics="results/models/{dataset}/{model}.metrics.csv",
    params:
        config=model_config,
        checkpoint="results/checkpoints/{dataset}/{model}.ckpt",
    threads: config["resources"]["threads"]
    resources:
        gpu=gpus,
    log:
        "results/logs/train/{dataset}/{model}.log",
    benchmark:
        "results/benchmarks/train/{dataset}/{model}.tsv"
    conda:
        "../../envs/arbench.yaml"
    shell:
        "OMP_NUM_THREADS={threads} "
        + PYTHON
        + " -m arbench.train --data {input.data} "
        "--model {wildcards.model} --config {params.config:q} --out {output.model} "
        "--metrics {output.metrics} --checkpoint {params.checkpoint} > {log} 2>&1"


rule sample:
    """Draw samples from a trained model."""
    input:
        model="results/models/{dataset}/{model}.pt",
        code=model_code,
    output:
        "results/samples/{dataset}/{model}.npz",
    params:
        n=config["samples"]["count"],
        seed=config["samples"]["seed"],
        device=config["device"],
    threads: config["resources"]["threads"]
    resources:
        gpu=gpus,
    log:
        "results/logs/sample/{dataset}/{model}.log",
    benchmark:
        "results/benchmarks/sample/{dataset}/{model}.tsv"
    conda:
        "../../envs/arbench.yaml"
    shell:
        "OMP_NUM_THREADS={threads} "
        + PYTHON
        + " -m arbench.sample --model {input.model} "
        "--n {params.n} --seed {params.seed} --device {params.device} --out {output} "
        "> {log} 2>&1"


rule evaluate:
    """Exact (or bounded) test log-likelihood, per image and summarised."""
    input:
        data="results/data/{dataset}.npz",
        model="results/models/{dataset}/{model}.pt",
        code=model_code,
    output:
        metrics="results/metrics/{dataset}/{model}.json",
        nll="results/metrics/{dataset}/{model}.npz",
    params:
        device=config["device"],
    threads: config["resources"]["threads"]
    resources:
        gpu=gpus,
    log:
        "results/logs/evaluate/{dataset}/{model}.log",
    benchmark:
        "results/benchmarks/evaluate/{dataset}/{model}.tsv"
    conda:
        "../../envs/arbench.yaml"
    shell:
        "OMP_NUM_THREADS={threads} "
        + PYTHON
        + " -m arbench.evaluate --data {input.data} "
        "--model {input.model} --device {params.device} --out {output.metrics} > {log} 2>&1"
