rule prepare:
    """Download (checked), generate or read a dataset and write it in the common format."""
    input:
        local=local_data,
        code=data_code,
    output:
        data="results/data/{dataset}.npz",
        sidecar="results/data/{dataset}.json",
    params:
        spec=spec_json,
    log:
        "results/logs/prepare/{dataset}.log",
    benchmark:
        "results/benchmarks/prepare/{dataset}.tsv"
    conda:
        "../../envs/arbench.yaml"
    shell:
        PYTHON
        + " -m arbench.prepare --spec {params.spec:q} --resources resources "
        "--out {output.data} > {log} 2>&1"
