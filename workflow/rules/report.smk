rule quality:
    """Sample-quality measurements of one model's samples, in the dataset's fixed features."""
    input:
        data=plan.path("data"),
        samples=plan.path("samples"),
        code=code_files("arbench.quality"),
    output:
        plan.path("quality"),
    log:
        plan.path("log", stage="quality"),
    benchmark:
        plan.path("benchmark", stage="quality")
    conda:
        "../../envs/arbench.yaml"
    shell:
        PYTHON
        + " -m arbench.quality --data {input.data} --samples {input.samples} --out {output} "
        "> {log} 2>&1"


rule report:
    """Likelihood table, sample and training-curve figures, and report.md."""
    input:
        data=list(REPORT_INPUTS["data"].values()),
        models=[
            path
            for models in REPORT_INPUTS["models"].values()
            for files in models.values()
            for path in files.values()
        ],
        code=code_files("arbench.report"),
    output:
        report=report(plan.path("report"), caption="../report/report.rst", category="Report"),
        table=report(
            plan.path("likelihoods"), caption="../report/likelihoods.rst", category="Likelihoods"
        ),
        quality=report(
            plan.path("sample_quality"),
            caption="../report/sample_quality.rst",
            category="Sample quality",
        ),
        samples=report(figures("samples"), caption="../report/samples.rst", category="Samples"),
        nearest=report(figures("nearest"), caption="../report/nearest.rst", category="Samples"),
        curves=report(
            figures(
                "training",
                [d for d, models in DATASETS.items() if any(plan.MODELS[m].neural for m in models)],
            ),
            caption="../report/training.rst",
            category="Training curves",
        ),
    params:
        inputs=json.dumps({**REPORT_INPUTS, "skipped": SKIPPED}, sort_keys=True),
    log:
        plan.path("report_log"),
    benchmark:
        plan.path("report_benchmark")
    conda:
        "../../envs/arbench.yaml"
    shell:
        PYTHON + " -m arbench.report --inputs {params.inputs:q} > {log} 2>&1"
