rule features:
    """A feature space learned on the dataset's training images, a random one beside it, and the
    instruments that see modes: k-means bins of the training pixels (NDB) and, where labelled
    images exist, a label classifier (the class histogram)."""
    input:
        data=plan.path("data"),
        labelled_test=labelled_test,
    output:
        features=plan.path("features"),
        summary=plan.path("features_summary"),
    params:
        code=code_digest("arbench.features"),
        labelled_test_content=labelled_test_digest,
        bins=ndb_bins,
        labelled_test=lambda wildcards, input: (
            f"--labelled-test {input.labelled_test}" if input.labelled_test else ""
        ),
    threads: config["resources"]["threads"]
    # the metric check waits on it, and the check is long: neither may end the run alone
    priority: 2
    log:
        plan.path("dataset_log", stage="features"),
    benchmark:
        plan.path("dataset_benchmark", stage="features")
    conda:
        "../../envs/arbench.yaml"
    shell:
        'OMP_NUM_THREADS={threads} "$ARBENCH_PYTHON" -m arbench.features '
        "--data {input.data} --bins {params.bins} {params.labelled_test} "
        "--out {output.features} > {log} 2>&1"


rule metric_check:
    """Every sample-quality metric on sets whose ranking is known: which may vote."""
    input:
        data=plan.path("data"),
        features=plan.path("features"),
    output:
        plan.path("metric_check"),
    params:
        code=code_digest("arbench.metric_check"),
        n=config["samples"]["count"],
        components=mixture_components,
    threads: config["resources"]["threads"]
    priority: 2
    log:
        plan.path("dataset_log", stage="metric_check"),
    benchmark:
        plan.path("dataset_benchmark", stage="metric_check")
    conda:
        "../../envs/arbench.yaml"
    shell:
        'OMP_NUM_THREADS={threads} "$ARBENCH_PYTHON" -m arbench.metric_check '
        "--data {input.data} --features {input.features} "
        "--n {params.n} --mixture-components {params.components} --out {output} > {log} 2>&1"


rule error_check:
    """Every metric's standard error against the spread of independent draws of a set, from a
    trained model of each family and from the real images: the calibration of every error."""
    input:
        data=plan.path("data"),
        features=plan.path("features"),
        models=error_check_models,
    output:
        plan.path("error_check"),
    params:
        code=error_check_code,
        models=lambda wildcards, input: " ".join(f"--model {m}" for m in input.models),
        n=config["samples"]["count"],
        draws=config["samples"]["error_draws"],
        device=config["device"],
    threads: config["resources"]["threads"]
    priority: 1
    log:
        plan.path("dataset_log", stage="error_check"),
    benchmark:
        plan.path("dataset_benchmark", stage="error_check")
    conda:
        "../../envs/arbench.yaml"
    shell:
        'OMP_NUM_THREADS={threads} "$ARBENCH_PYTHON" -m arbench.error_check '
        "--data {input.data} --features {input.features} {params.models} --n {params.n} "
        "--draws {params.draws} --device {params.device} --out {output} > {log} 2>&1"


rule quality:
    """Sample-quality measurements of one model's independent draws of samples."""
    input:
        data=plan.path("data"),
        features=plan.path("features"),
        samples=plan.path("samples"),
    output:
        plan.path("quality"),
    params:
        code=code_digest("arbench.quality"),
        n=config["samples"]["count"],
        draws=config["samples"]["draws"],
        classifier_draws=config["samples"]["classifier_draws"],
    threads: config["resources"]["threads"]
    log:
        plan.path("log", stage="quality"),
    benchmark:
        plan.path("benchmark", stage="quality")
    conda:
        "../../envs/arbench.yaml"
    shell:
        'OMP_NUM_THREADS={threads} "$ARBENCH_PYTHON" -m arbench.quality '
        "--data {input.data} --features {input.features} --samples {input.samples} "
        "--n {params.n} --draws {params.draws} --classifier-draws {params.classifier_draws} "
        "--out {output} > {log} 2>&1"


rule report:
    """The tables, the figures, report.md and its self-contained HTML twin."""
    input:
        data=list(REPORT_INPUTS["data"].values()),
        checks=list(REPORT_INPUTS["checks"].values()),
        errors=list(REPORT_INPUTS["errors"].values()),
        features=list(REPORT_INPUTS["features"].values()),
        models=[
            path
            for models in REPORT_INPUTS["models"].values()
            for files in models.values()
            for path in files.values()
        ],
    output:
        page=report(plan.path("report_html"), caption="../report/report.rst", category="Report"),
        report=report(plan.path("report"), caption="../report/report.rst", category="Report"),
        table=report(
            plan.path("likelihoods"), caption="../report/likelihoods.rst", category="Likelihoods"
        ),
        quality=report(
            plan.path("sample_quality"),
            caption="../report/sample_quality.rst",
            category="Sample quality",
        ),
        verdicts=plan.path("verdicts"),
        overview=report(plan.path("overview"), caption="../report/pairs.rst", category="Verdict"),
        pairs=report(figures("pairs"), caption="../report/pairs.rst", category="Verdict"),
        likelihood_plots=report(
            figures("likelihoods"), caption="../report/likelihoods.rst", category="Likelihoods"
        ),
        samples=report(sample_sheets(), caption="../report/samples.rst", category="Samples"),
        checks=report(
            figures("check"), caption="../report/check.rst", category="Sample quality"
        ),
        calibrations=report(
            figures("calibration"), caption="../report/calibration.rst", category="Sample quality"
        ),
        completions=report(
            figures("completion"), caption="../report/completion.rst", category="Completion"
        ),
        curves=report(
            figures("training"),
            caption="../report/training.rst",
            category="Training curves",
        ),
    params:
        code=code_digest("arbench.report"),
        inputs=json.dumps(
            {**REPORT_INPUTS, "skipped": SKIPPED, "primary": list(PRIMARY)}, sort_keys=True
        ),
    log:
        plan.path("report_log"),
    benchmark:
        plan.path("report_benchmark")
    conda:
        "../../envs/arbench.yaml"
    shell:
        '"$ARBENCH_PYTHON" -m arbench.report --inputs {params.inputs:q} > {log} 2>&1'



rule stale:
    """List the files under results/ that the current config does not make: left by datasets,
    models or settings taken out of it, or set aside as damaged (`snakemake remove_stale`
    removes them)."""
    localrule: True
    params:
        config=json.dumps(config, sort_keys=True),
    log:
        plan.path("stale_log"),
    conda:
        "../../envs/arbench.yaml"
    shell:
        '"$ARBENCH_PYTHON" -m arbench.stale --config {params.config:q} 2>&1 | tee {log}'


rule remove_stale:
    """Remove the files `snakemake stale` lists."""
    localrule: True
    params:
        config=json.dumps(config, sort_keys=True),
    log:
        plan.path("stale_log"),
    conda:
        "../../envs/arbench.yaml"
    shell:
        '"$ARBENCH_PYTHON" -m arbench.stale --config {params.config:q} --remove 2>&1 | tee {log}'
