"""arbench: NADE and MADE against mixture baselines, from raw data to report.

    snakemake --cores all                                # the default, offline, small-scale run
    snakemake --cores all --configfile config/full.yaml  # the full reproduction (GPU sizes)
"""

from pathlib import Path

from snakemake.utils import min_version, validate

from arbench.configuration import coerce, load_schema

min_version("9.0")

# A config file given with --configfile is the whole config: the default run is read only when
# none is given, so that none of its keys leak into another run.
if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"


SCHEMA = "workflow/schemas/config.schema.yaml"
# --config values arrive as strings; type them by the schema before it judges them.
config.update(coerce(config, load_schema(Path(workflow.basedir) / SCHEMA)))
validate(config, SCHEMA, set_default=False)


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        plan.path("report"),
        plan.path("likelihoods"),
    default_target: True
