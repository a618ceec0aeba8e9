rule prepare:
    """Download (checked), generate or read a dataset and write it in the common format."""
    input:
        local=local_data,
    output:
        data=plan.path("data"),
        sidecar=plan.path("sidecar"),
    params:
        code=data_code,
        local=local_data_digest,
        spec=spec_json,
        download=json.dumps(plan.download_settings(config.get("download")), sort_keys=True),
    # before any training: a dataset's every job waits on it, and the longest trainings are
    # on the dataset prepared last otherwise
    priority: 3
    log:
        plan.path("prepare_log"),
    benchmark:
        plan.path("prepare_benchmark")
    conda:
        "../../envs/arbench.yaml"
    shell:
        '"$ARBENCH_PYTHON" -m arbench.prepare '
        "--spec {params.spec:q} --download {params.download:q} "
        "--resources resources --out {output.data} > {log} 2>&1"
