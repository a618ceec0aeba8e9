"""What the rules share: the run's datasets and models, their settings, and the code each job
runs, all from `arbench.core.plan`, the module the stages use too."""

import atexit
import json
import os
import re
import sys

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.settings.types import DeploymentMethod

from arbench.core import configuration, contracts, plan, user_models
from arbench.core.code_inputs import code_digest, content_digest
from arbench.hooks import advice, damaged
from arbench.metrics import bins

# Jobs run with Snakemake's own interpreter, unless they run in the rule's conda environment. Its
# path reaches the jobs through the environment, not the command: Snakemake reruns a job whose
# command changed, and a run moved to another folder (another virtual environment) must not.
CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
os.environ["ARBENCH_PYTHON"] = "python" if CONDA else sys.executable
# The command line the user typed, which advice a job gives repeats (its jobs inherit it)
os.environ.setdefault(contracts.RUN_COMMAND, advice.user_command(sys.orig_argv))
try:  # every model the config names, a user's class imported and checked against the interface
    USER_MODELS = plan.use_config(config)
except plan.SettingsError as error:
    raise WorkflowError(f"config: {error}") from None
# --config values of a user's model's settings arrive as text, as every --config value does: the
# schema does not know them, the defaults its class declares type them
configuration.with_typed_overrides(
    config,
    plan.user_overrides(dict(workflow.config_settings.config), USER_MODELS),
    plan.user_settings_schema(USER_MODELS),
)
# The run's user models, for the jobs that know a model only by its name (the report); a job's
# settings and a model file name the class themselves
plan.export_user_models(USER_MODELS)


envvars:
    "ARBENCH_PYTHON",
    contracts.RUN_COMMAND,
    user_models.ENVIRONMENT,

DATASETS, SKIPPED = plan.datasets_in_run(config)
try:  # every job's settings, checked once before any job is planned, rules between keys too
    SPECS = {d: plan.dataset_spec(config, d) for d in DATASETS}
    SETTINGS = {
        (d, m): plan.job_settings(config, d, m) for d, models in DATASETS.items() for m in models
    }
    for (dataset, run), settings in SETTINGS.items():
        plan.check_job(config, dataset, run, settings)
    for dataset, spec in SPECS.items():
        plan.hidden_rows(plan.spec_height(spec), config["completion"]["hidden_rows"])
except plan.SettingsError as error:
    raise WorkflowError(f"config: {error}") from None

# Every result of the run already there, checked by its contract before anything is planned. A
# damaged one is set aside (kept for a look, listed by `snakemake stale`), so that this run makes
# it again with what depends on it; a dry run puts it back when it ends, having planned those
# jobs. Job-level Snakemakes (a cluster job) leave this to the main one.
DAMAGED = {}
if workflow.is_main_process:
    DAMAGED = damaged.scan(plan.result_kinds(DATASETS), Path(".snakemake/arbench/checked.json"))
    DRY_RUN = advice.is_dry_run(sys.orig_argv)
    for damaged_file, damage in DAMAGED.items():
        aside = damaged.set_aside(damaged_file)
        logger.warning(
            f"{damaged_file} is damaged: {damage.problem}. Set aside as {aside}: "
            + ("the run planned below makes it again" if DRY_RUN else "this run makes it again")
            + ", with what depends on it"
        )
        if DRY_RUN:
            atexit.register(aside.replace, damaged_file)


wildcard_constraints:
    dataset="|".join(DATASETS) or "none",
    model=f"({'|'.join([*plan.MODELS, *USER_MODELS])})({re.escape(plan.REPLICATE)}[0-9]+)?",


def spec_json(wildcards):
    return json.dumps(SPECS[wildcards.dataset], sort_keys=True)


def settings_json(wildcards):
    return json.dumps(SETTINGS[wildcards.dataset, wildcards.model], sort_keys=True)


def outside_data(setting):
    """Data a config names outside results/ (`setting(wildcards)`: its path, or None), as a job's
    input and the digest parameter beside it: by content, so a share provisioned again with
    fresh times (each session's ../shared is) reruns nothing and a changed file reruns the job."""

    def paths(wildcards):
        path = setting(wildcards)
        return [ancient(path)] if path else []

    def digest(wildcards):
        path = setting(wildcards)
        return content_digest(path) if path else ""

    return paths, digest


local_data, local_data_digest = outside_data(
    lambda wildcards: SPECS[wildcards.dataset].get("path")
)


def data_code(wildcards):
    """The digest of the prepare stage and of the source module the dataset is built by."""
    return code_digest("arbench.prepare", plan.source_entry(SPECS[wildcards.dataset]["source"]).module)


def model_code(stage):
    """The digest of the stage's entry module and of the modules of the model the job runs (a
    user's model: its module, with what it imports of its own package, and the interface that
    wraps it)."""

    def code(wildcards):
        return code_digest(f"arbench.{stage}", *plan.model_entry(wildcards.model).code_modules)

    return code


PRIMARY = plan.primary_pair(config)


def error_check_models(wildcards):
    """The model files the error-bar check draws from: one of each family, the declared pair's
    first runs where the dataset trains them."""
    runs = plan.error_check_runs(DATASETS[wildcards.dataset], PRIMARY)
    return [plan.path("model", dataset=wildcards.dataset, model=run) for run in runs]


def error_check_code(wildcards):
    """The digest of the error-bar check's entry module and of the models it draws from."""
    runs = plan.error_check_runs(DATASETS[wildcards.dataset], PRIMARY)
    modules = sorted({m for run in runs for m in plan.model_entry(run).code_modules})
    return code_digest("arbench.error_check", *modules)


# the labelled test images the label classifier's accuracy is measured on, where the dataset
# names them (`labelled_test`)
labelled_test, labelled_test_digest = outside_data(
    lambda wildcards: config["datasets"][wildcards.dataset].get("labelled_test")
)


def ndb_bins(wildcards):
    return bins.bins_for(config["samples"]["count"])


def mixture_components(wildcards):
    return plan.largest_mixture(config, wildcards.dataset, DATASETS[wildcards.dataset])


def gpus(wildcards):
    return plan.gpus(config, wildcards.model)


def training_priority(wildcards):
    return plan.training_priority(wildcards.model)


def per_model(kind):
    return [plan.path(kind, dataset=d, model=m) for d, models in DATASETS.items() for m in models]


REPORT_INPUTS = plan.report_inputs(DATASETS)


def figures(kind):
    return [
        plan.path("figure", dataset=d, figure=kind)
        for d, runs in DATASETS.items()
        if kind in plan.dataset_figures(runs)
    ]


def sample_sheets():
    return [
        plan.path("figure", dataset=d, figure=sheet)
        for d, runs in DATASETS.items()
        for sheet in plan.sample_sheets(runs)
    ]
