"""Time to quality: MADE 784-500-784 (one mask) trained by our implementation and by the plain
re-masking reference (`throughput.RemaskingMADE`), from the same initial weights, with the same
minibatches, Adam settings and learning-rate decay, on binarized MNIST (train split; early
stopping on the valid split). Records each epoch's cumulative training time (validation passes
excluded, they are the same for both) and valid NLL, then how long each took to reach our best
valid NLL.

    python bench/time_to_quality.py --data-dir ../shared/data/binarized_mnist \\
        --out bench/results/made_time_to_quality.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

import torch
from quality import binarized_mnist
from throughput import RemaskingMADE

from arbench.models import MADE
from arbench.train import flush_denormals


def flat_tensor(images) -> torch.Tensor:
    return torch.from_numpy(images.reshape(len(images), -1)).long()


def train(model, train_x, valid_x, optimizer, args) -> list[dict]:
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, args.lr_decay)
    generator = torch.Generator().manual_seed(0)
    history, elapsed, best, since_best = [], 0.0, float("inf"), 0
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(len(train_x), generator=generator)
        started = time.perf_counter()
        for start in range(0, len(train_x), args.batch):
            optimizer.zero_grad(set_to_none=True)
            model.nll(train_x[order[start : start + args.batch]]).mean().backward()
            optimizer.step()
        schedule.step()
        elapsed += time.perf_counter() - started
        with torch.inference_mode():
            valid = float(torch.cat([model.nll(c) for c in valid_x.split(2000)]).mean())
        history.append({"epoch": epoch, "train_seconds": elapsed, "valid_nll": valid})
        print(f"{type(model).__name__} epoch {epoch}: valid {valid:.3f} after {elapsed:.0f} s")
        best, since_best = (valid, 0) if valid < best else (best, since_best + 1)
        if since_best >= args.patience:
            break
    return history


def seconds_to_reach(history: list[dict], target: float) -> float | None:
    return next((h["train_seconds"] for h in history if h["valid_nll"] <= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lr-decay", type=float, default=0.98)
    args = parser.parse_args()
    flush_denormals()
    data = binarized_mnist(args.data_dir)
    train_x, valid_x = flat_tensor(data.train), flat_tensor(data.valid)
    torch.manual_seed(0)
    ours = MADE((1, 28, 28), 2, {"hidden": [500], "masks": 1, "seed": 0})
    reference = RemaskingMADE(ours)  # a copy of the same initial weights
    runs = {
        "ours": train(
            ours, train_x, valid_x, torch.optim.Adam(ours.parameters(), args.lr, fused=True), args
        ),
        "reference": train(
            reference, train_x, valid_x, torch.optim.Adam(reference.parameters(), args.lr), args
        ),
    }
    target = min(h["valid_nll"] for h in runs["ours"])
    reached = {name: seconds_to_reach(history, target) for name, history in runs.items()}
    record = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "settings": vars(args) | {"data_dir": str(args.data_dir), "out": str(args.out)},
        "target_valid_nll": target,
        "seconds_to_target": reached,
        "ratio": reached["ours"] / reached["reference"] if reached["reference"] else None,
        "history": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: record[k] for k in ("target_valid_nll", "seconds_to_target", "ratio")}))


if __name__ == "__main__":
    main()
