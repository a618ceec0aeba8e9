"""What checkpointing every epoch costs, against checkpointing on a time interval, at a shape
where the checkpoint dominates: MADE with two wide hidden layers on small images, few training
images, so that an epoch is short and the checkpoint (model, Adam's two moments, the best
parameters) is large. The same training (`arbench.train.fit`, same seed) with `checkpoint_minutes:
0` (a checkpoint at every epoch's end) and with the default interval, each in a fresh process,
alternated; the final parameters of the two must be equal bit for bit (when to checkpoint never
changes what is trained). Also measures the bytes and seconds of one checkpoint write
(`arbench.training.checkpoints.save`: write, fsync, rename) on this disk, which the projection for
`config/full.yaml` uses.

    python bench/checkpoint_cadence.py --out bench/results/checkpoint_cadence.json
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

SETTINGS = {
    "hidden": [2000, 2000],
    "epochs": 6,
    "patience": 100,
    "batch_size": 100,
    "lr": 1e-3,
    "device": "cpu",
    "threads": 2,
}

RUN = """
import json, sys, time, torch
from arbench.data import load_dataset
from arbench.train import fit
from arbench.training.trainer import flush_denormals
flush_denormals()
data, settings, out = load_dataset(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
started = time.perf_counter()
summary = fit(data, "made", settings, out)
print(json.dumps({"seconds": time.perf_counter() - started, "epochs": summary["epochs"]}))
"""


def dataset(folder: Path) -> Path:
    from arbench.data.format import save_dataset

    rng = np.random.default_rng(0)
    images = (rng.random((500, 1, 16, 16)) < 0.3).astype(np.uint8)
    splits = {"train": images[:300], "valid": images[300:400], "test": images[400:]}
    return save_dataset(folder / "data.npz", splits, 2, {"source": "bench"})


def train_once(data: Path, settings: dict, out: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", RUN, str(data), json.dumps(settings), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def one_write(folder: Path, data: Path) -> dict:
    """Bytes and seconds of one checkpoint of this model, written as training writes it."""
    import torch

    from arbench.core.plan import build_model, split_settings
    from arbench.data import load_dataset
    from arbench.training import checkpoints

    architecture, _ = split_settings("made", SETTINGS)
    loaded = load_dataset(data)
    model = build_model("made", loaded.shape, loaded.levels, architecture)
    optimizer = torch.optim.Adam(model.parameters())
    model.nll(torch.from_numpy(loaded.train[:100].reshape(100, -1)).long()).mean().backward()
    optimizer.step()
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "best": copy.deepcopy(model.state_dict()),
    }
    times = []
    for _ in range(3):
        started = time.perf_counter()
        checkpoints.save(state, folder / "one.ckpt")
        times.append(time.perf_counter() - started)
    return {"bytes": (folder / "one.ckpt").stat().st_size, "seconds": float(np.median(times))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    import torch

    from arbench.training.trainer import load_checkpoint

    with tempfile.TemporaryDirectory(dir=".") as tmp:
        folder = Path(tmp)
        data = dataset(folder)
        runs = {"every epoch": [], "every 5 minutes": []}
        for repeat in range(args.repeats):
            for name, minutes in (("every epoch", 0.0), ("every 5 minutes", 5.0)):
                out = folder / f"{minutes}-{repeat}.pt"
                runs[name].append(
                    train_once(data, {**SETTINGS, "checkpoint_minutes": minutes}, out)
                )
                print(name, runs[name][-1], flush=True)
        first = load_checkpoint(folder / "0.0-0.pt")["state"]
        second = load_checkpoint(folder / "5.0-0.pt")["state"]
        identical = all(
            torch.equal(first[k], second[k]) for k in first if isinstance(first[k], torch.Tensor)
        )
        write = one_write(folder, data)
    seconds = {name: [r["seconds"] / r["epochs"] for r in rows] for name, rows in runs.items()}
    result = {
        "date": date.today().isoformat(),
        "machine": platform.processor() or platform.machine(),
        "settings": SETTINGS,
        "seconds_per_epoch": {name: float(np.median(v)) for name, v in seconds.items()},
        "all_seconds_per_epoch": seconds,
        "same_parameters": identical,
        "one_checkpoint": write,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
