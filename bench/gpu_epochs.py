"""An epoch of every neural job of `config/full.yaml`, each on its dataset's real shape, so that
the full reproduction's projection rests on measured epochs rather than on scaling MNIST's.

    python bench/gpu_epochs.py --out OUT [--config config/full.yaml] [--epochs 2]
    python bench/gpu_epochs.py --out OUT --device cpu --shrink     # the CI smoke run

For every dataset of the config, images of the shape, levels and split sizes that `prepare` makes
for it (MNIST 50,000 / 10,000 binary 28x28; Atari 64x64 at 8 levels, 80% of its frames for training;
anime 32x32x3 at 256 levels, 80% of 33,431 faces) are drawn at random: an epoch's work depends on
the shapes, not on the pixels' values. Each NADE and MADE job trains `--epochs` epochs in this
process (`arbench.train.fit`, the settings `arbench.core.plan` gives the job, a checkpoint at every
epoch's end so that one is measured) and records, from its last epoch (the first warms up): seconds
of training, of validation and of one checkpoint write, the checkpoint's size, and the peak GPU
memory. With `--epochs-to-stop`, the epochs early stopping is assumed to take (BENCHMARKS.md), it
projects each job's training time (times its replicates) and the whole config's on this device, one
job after another, checkpointing every `checkpoint_minutes` as configured.

Writes `gpu_epochs.json` to OUT after every job, so that a run cut short keeps what it measured.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
import yaml

from arbench import train as training_stage
from arbench.core import plan
from arbench.data.format import load_dataset, save_dataset
from arbench.training import checkpoints, trainer

# What `prepare` makes of each source at the full config's sizes: (channels, default levels,
# train and valid images); Atari's counts follow its `frames`
FULL_SIZES = {
    "binarized_mnist": (1, 2, 50_000, 10_000),
    "atari": (1, 2, None, None),
    "anime_faces": (3, 256, round(0.8 * 33_431), round(0.1 * 33_431)),
}
SHRUNK_SETTINGS = {
    "nade": {"hidden": 8},
    "made": {"hidden": [16, 16], "masks": 2},
    "pixelcnn": {"channels": 4, "layers": 2, "head": 8},
}
SHRUNK_IMAGES = (64, 16)
SHRUNK_SIZE = (8, 8)
# BENCHMARKS.md: as early stopping took on MNIST (NADE, MADE); PixelCNN as the projection assumes
EPOCHS_TO_STOP = {"nade": 140, "made": 400, "pixelcnn": 100}


def shape_of(spec: dict, shrink: bool) -> tuple[tuple[int, int, int], int, int, int]:
    """(channels, height, width), levels, train and valid images of a dataset of the config."""
    source = spec["source"]
    channels, levels, train, valid = FULL_SIZES[source]
    levels = spec.get("levels", levels)
    height, width = spec.get("size", [28, 28])
    if source == "atari":
        train, valid = round(0.8 * spec["frames"]), round(0.1 * spec["frames"])
    if shrink:
        (height, width), (train, valid) = SHRUNK_SIZE, SHRUNK_IMAGES
    return (channels, height, width), levels, train, valid


def random_dataset(path: Path, shape: tuple, levels: int, train: int, valid: int) -> Path:
    rng = np.random.default_rng(0)
    splits = {
        name: rng.integers(0, levels, size=(count, *shape), dtype=np.uint8)
        for name, count in (("train", train), ("valid", valid), ("test", 1))
    }
    return save_dataset(path, splits, levels, {"source": "random, for timing"})


class Timed:
    """Seconds of every call of `module.name` while installed."""

    def __init__(self, module, name: str):
        self.module, self.name, self.seconds = module, name, []
        self.original = getattr(module, name)

    def __enter__(self):
        def timed(*args, **kwargs):
            synchronize()
            started = time.perf_counter()
            result = self.original(*args, **kwargs)
            synchronize()
            self.seconds.append(time.perf_counter() - started)
            return result

        setattr(self.module, self.name, timed)
        return self

    def __exit__(self, *exc):
        setattr(self.module, self.name, self.original)


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def one_job(data: Path, model: str, settings: dict, work: Path) -> dict:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    checkpoint, curve = work / f"{model}.ckpt", work / f"{model}.csv"
    with (
        Timed(trainer, "mean_nll") as validations,
        Timed(checkpoints, "save") as writes,
    ):
        started = time.perf_counter()
        summary = training_stage.fit(
            load_dataset(data), model, settings, work / f"{model}.pt", curve, checkpoint, True
        )
        wall = time.perf_counter() - started
    with open(curve, newline="") as handle:
        last = list(csv.DictReader(handle))[-1]
    record = {
        "settings": settings,
        "parameters": summary["parameters"],
        "wall_seconds": wall,
        "train_seconds_an_epoch": float(last["seconds"]),
        "images_per_second": float(last["images_per_second"]),
        "valid_seconds_an_epoch": validations.seconds[-1],
        # the writes are: a checkpoint per epoch, the kept final one, then the model
        "checkpoint_seconds": writes.seconds[-2],
        "checkpoint_bytes": checkpoint.stat().st_size,
    }
    if torch.cuda.is_available():
        record["peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return record


def projected_seconds(job: dict, model: str, settings: dict, epochs_to_stop: dict) -> float:
    """Training until early stopping ends it after the assumed epochs, validating every
    `validate_every` epochs and checkpointing every `checkpoint_minutes`."""
    epochs = min(epochs_to_stop[model], settings["epochs"])
    validations = math.ceil(epochs / settings["validate_every"])
    seconds = epochs * job["train_seconds_an_epoch"] + validations * job["valid_seconds_an_epoch"]
    interval = 60 * settings["checkpoint_minutes"]
    writes = math.ceil(seconds / interval) if interval else epochs
    return seconds + writes * job["checkpoint_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--config", type=Path, default=Path("config/full.yaml"))
    parser.add_argument("--epochs", type=int, default=2, help="epochs a job; the last is timed")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--shrink", action="store_true", help="tiny sizes, for a smoke run")
    parser.add_argument(
        "--epochs-to-stop", type=json.loads, default=EPOCHS_TO_STOP, help="for the projection"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    trainer.flush_denormals()
    config = yaml.safe_load(args.config.read_text())
    device = torch.device(args.device)
    record = {
        "date": date.today().isoformat(),
        "device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor(),
        "torch": torch.__version__,
        "shrunk": args.shrink,
        "epochs_to_stop": args.epochs_to_stop,
        "jobs": {},
    }
    runs, _ = plan.datasets_in_run(config)  # each model's seeds, as the workflow trains them
    with tempfile.TemporaryDirectory(prefix="gpu_epochs.") as tmp:
        work = Path(tmp)
        for dataset, spec in config["datasets"].items():
            shape, levels, train, valid = shape_of(spec, args.shrink)
            data = random_dataset(work / f"{dataset}.npz", shape, levels, train, valid)
            for model in spec["models"]:
                if not plan.MODELS[model].neural:
                    continue
                configured = plan.job_settings(config, dataset, model)
                timed = {**configured, **(SHRUNK_SETTINGS[model] if args.shrink else {})}
                timed.update(epochs=args.epochs, checkpoint_minutes=0, device=args.device)
                job = one_job(data, model, timed, work)
                job.update(shape=shape, levels=levels, train_images=train, valid_images=valid)
                job["replicates"] = sum(plan.replicate_of(r)[0] == model for r in runs[dataset])
                job["projected_minutes"] = (
                    job["replicates"]
                    * projected_seconds(job, model, configured, args.epochs_to_stop)
                    / 60
                )
                record["jobs"][f"{dataset} {model}"] = job
                print(json.dumps({f"{dataset} {model}": job}), flush=True)
                (work / f"{model}.ckpt").unlink(missing_ok=True)
                record["projected_hours_one_device"] = (
                    sum(j["projected_minutes"] for j in record["jobs"].values()) / 60
                )
                (args.out / "gpu_epochs.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
