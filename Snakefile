"""arbench: NADE and MADE against mixture baselines, from raw data to report.

    snakemake --cores all                                # the default, offline, small-scale run
    snakemake --cores all --configfile config/full.yaml  # the full reproduction (GPU sizes)
"""

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        "results/report.md",
        "results/likelihoods.csv",
    default_target: True
