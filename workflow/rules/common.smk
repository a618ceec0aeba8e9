"""What the rules share: the run's datasets and models, their settings, and their code inputs,
all from `arbench.plan`, the module the stages use too."""

import json
import re
import shlex
import sys

from snakemake.exceptions import WorkflowError
from snakemake.settings.types import DeploymentMethod

from arbench import plan
from arbench.code_inputs import code_files

# Jobs run with Snakemake's own interpreter, unless they run in the rule's conda environment.
CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
PYTHON = "python" if CONDA else shlex.quote(sys.executable)

DATASETS, SKIPPED = plan.datasets_in_run(config)
try:  # every job's settings, checked once before any job is planned
    SPECS = {d: plan.dataset_spec(config, d) for d in DATASETS}
    SETTINGS = {
        (d, m): plan.job_settings(config, d, m) for d, models in DATASETS.items() for m in models
    }
except plan.SettingsError as error:
    raise WorkflowError(f"config: {error}") from None


wildcard_constraints:
    dataset="|".join(DATASETS) or "none",
    model=f"({'|'.join(plan.MODELS)})({re.escape(plan.REPLICATE)}[0-9]+)?",


def spec_json(wildcards):
    return json.dumps(SPECS[wildcards.dataset], sort_keys=True)


def settings_json(wildcards):
    return json.dumps(SETTINGS[wildcards.dataset, wildcards.model], sort_keys=True)


def local_data(wildcards):
    path = SPECS[wildcards.dataset].get("path")
    return [path] if path else []


def data_code(wildcards):
    """The prepare stage and the source module the dataset is built by."""
    return code_files("arbench.prepare", plan.source_entry(SPECS[wildcards.dataset]["source"]).module)


def model_code(stage):
    """The stage's entry module and the module of the model the job runs."""

    def code(wildcards):
        return code_files(f"arbench.{stage}", plan.model_entry(wildcards.model).module)

    return code


def gpus(wildcards):
    return plan.gpus(config, wildcards.model)


def per_model(kind):
    return [plan.path(kind, dataset=d, model=m) for d, models in DATASETS.items() for m in models]


REPORT_INPUTS = plan.report_inputs(DATASETS)


def figures(kind, datasets=DATASETS):
    return [plan.path("figure", dataset=d, figure=kind) for d in datasets]
