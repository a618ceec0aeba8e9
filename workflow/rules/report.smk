rule quality:
    """Sample-quality measurements of one model's samples, in the dataset's fixed features."""
    input:
        data="results/data/{dataset}.npz",
        samples="results/samples/{dataset}/{model}.npz",
        code=sources(["quality.py", "data/format.py"]),
    output:
        "results/quality/{dataset}/{model}.json",
    log:
        "results/logs/quality/{dataset}/{model}.log",
    benchmark:
        "results/benchmarks/quality/{dataset}/{model}.tsv"
    conda:
        "../../envs/arbench.yaml"
    shell:
        PYTHON
        + " -m arbench.quality --data {input.data} --samples {input.samples} --out {output} "
        "> {log} 2>&1"


rule report:
    """Likelihood table, sample and training-curve figures, and report.md."""
    input:
        data=expand("results/data/{dataset}.npz", dataset=DATASETS),
        metrics=per_model("results/metrics/{dataset}/{model}.json"),
        samples=per_model("results/samples/{dataset}/{model}.npz"),
        curves=per_model("results/models/{dataset}/{model}.metrics.csv"),
        quality=per_model("results/quality/{dataset}/{model}.json"),
        code=sources(["report.py", "plots.py", "quality.py"]),
    output:
        report=report(
            "results/report.md", caption="../report/report.rst", category="Report"
        ),
        table=report(
            "results/likelihoods.csv", caption="../report/likelihoods.rst", category="Likelihoods"
        ),
        quality=report(
            "results/sample_quality.csv",
            caption="../report/sample_quality.rst",
            category="Sample quality",
        ),
        samples=report(
            expand("results/figures/{dataset}_samples.png", dataset=DATASETS),
            caption="../report/samples.rst",
            category="Samples",
        ),
        nearest=report(
            expand("results/figures/{dataset}_nearest.png", dataset=DATASETS),
            caption="../report/nearest.rst",
            category="Samples",
        ),
        curves=report(
            expand(
                "results/figures/{dataset}_training.png",
                dataset=[d for d, models in DATASETS.items() if set(models) & set(NEURAL)],
            ),
            caption="../report/training.rst",
            category="Training curves",
        ),
    params:
        plan=json.dumps({"datasets": DATASETS, "skipped": SKIPPED}, sort_keys=True),
    log:
        "results/logs/report.log",
    benchmark:
        "results/benchmarks/report.tsv"
    conda:
        "../../envs/arbench.yaml"
    shell:
        PYTHON
        + " -m arbench.report --results results --plan {params.plan:q} > {log} 2>&1"
