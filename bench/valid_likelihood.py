"""Train one model on binarized MNIST (train split) and report its best valid NLL and the wall
time it took; the test split is never touched. Writes metrics.csv and summary.json to --out.

    python bench/valid_likelihood.py --data-dir ../shared/data/binarized_mnist --model nade \\
        --config '{"hidden": 500, "lr": 0.001}' --out bench/results/nade500
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from arbench.core.cli import json_object
from arbench.data.format import Dataset
from arbench.data.mnist import check_binarized_split
from arbench.train import fit
from arbench.training.trainer import flush_denormals


def binarized_mnist(folder: Path) -> Dataset:
    splits = {}
    for split in ("train", "valid"):
        rows = check_binarized_split(folder / f"binarized_mnist_{split}.amat.gz", split)
        splits[split] = rows.reshape(-1, 1, 28, 28)
    empty = np.zeros((0, 1, 28, 28), np.uint8)  # the test split is kept for the final evaluation
    return Dataset(splits["train"], splits["valid"], empty, 2, {"source": "binarized_mnist"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--config", type=json_object, default={}, help="settings, JSON")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    flush_denormals()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    data = binarized_mnist(args.data_dir)
    config = args.config
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        model_path, metrics = Path(scratch) / "model.pt", args.out / "metrics.csv"
        summary = fit(data, args.model, config, model_path, metrics)
    summary.update(
        config=config,
        wall_seconds=time.perf_counter() - started,
        date=date.today().isoformat(),
        machine=f"{platform.machine()}, {torch.get_num_threads()} CPU threads"
        + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""),
        torch=torch.__version__,
    )
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
