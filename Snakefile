"""arbench: NADE and MADE against mixture baselines, from raw data to report.

    snakemake --cores all                                # the default, offline, small-scale run
    snakemake --cores all --configfile config/full.yaml  # the full reproduction (GPU sizes)
"""

from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

from arbench.core import configuration

min_version("9.0")

DEFAULT_CONFIG = "config/config.yaml"
# A config file given with --configfile is the whole config: the default run is read only when
# none is given, so that none of its keys leak into another run.
if not workflow.config_settings.configfiles:

    configfile: DEFAULT_CONFIG


CONFIG_FILES = [str(f) for f in workflow.config_settings.configfiles] or [DEFAULT_CONFIG]
SCHEMA = configuration.load_schema(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
try:
    for config_file in CONFIG_FILES:
        configuration.check_file(config_file)
    # --config values arrive as strings: typed by the schema; a file's values are as written
    configuration.with_typed_overrides(
        config, dict(workflow.config_settings.config), SCHEMA
    )
    configuration.check(config, SCHEMA, CONFIG_FILES)
    # every key left out that the schema gives a default: whatever reads the config finds it
    configuration.fill_defaults(config, SCHEMA)
except configuration.ConfigError as error:
    raise WorkflowError(f"config: {error}") from None


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/report.smk"


# Every file of the run, not only the report: a file deleted, or a dataset or figure added to the
# config, is then missing from a target, and Snakemake makes it (and what depends on it) again.
rule all:
    input:
        rules.report.output,
        plan.run_results(DATASETS),
    default_target: True


onerror:
    # Each failed job's own reason, where the user looks: the console, not only its log
    summary = advice.failed_jobs_summary(log)
    if summary:
        logger.error(summary)


onsuccess:
    # Every model is in place: the training checkpoints kept for an interrupted run can go.
    for dataset, runs in DATASETS.items():
        for run in runs:
            if Path(plan.path("model", dataset=dataset, model=run)).exists():
                Path(plan.path("checkpoint", dataset=dataset, model=run)).unlink(missing_ok=True)
