"""Time to quality: MADE 784-500-784 (one mask) trained by our implementation and by the plain
re-masking reference (`throughput.RemaskingMADE`), from the same initial weights, on binarized
MNIST (train split; early stopping on the valid split). Each gets a training regime (minibatch
size, Adam settings, learning-rate decay per epoch, weight decay, parameter averaging); by
default both get the reference's, ours with its fused Adam. Records each epoch's cumulative
training time (validation passes excluded) and valid NLL, then how long each took to reach our
best valid NLL, or, when the reference never gets there, how long each took to reach the
reference's best.

    python bench/time_to_quality.py --data-dir ../shared/data/binarized_mnist \\
        --ours '{"batch": 500, "lr": 0.003}' --out bench/results/made_time_to_quality.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

import torch
import yaml
from throughput import RemaskingMADE
from valid_likelihood import binarized_mnist

from arbench.models.made import MADE
from arbench.training.trainer import flush_denormals, make_average


def flat_tensor(images) -> torch.Tensor:
    return torch.from_numpy(images.reshape(len(images), -1)).long()


REFERENCE_REGIME = {
    "batch": 100,
    "lr": 1e-3,
    "lr_decay": 0.98,
    "weight_decay": 0.0,
    "averaging": 0.0,
    "fused": False,
}


def regime(text: str, base: dict) -> dict:
    """`base` with the keys given in `text` (JSON or YAML), each cast to the type of its default:
    YAML reads 1e-4 as a string."""
    given = yaml.safe_load(text) or {}
    unknown = set(given) - set(REFERENCE_REGIME)
    if unknown:
        known = sorted(REFERENCE_REGIME)
        raise SystemExit(f"unknown regime keys {sorted(unknown)}; known: {known}")
    return base | {k: type(REFERENCE_REGIME[k])(v) for k, v in given.items()}


def train(model, train_x, valid_x, regime: dict, args) -> list[dict]:
    optimizer = torch.optim.Adam(
        model.parameters(), regime["lr"], weight_decay=regime["weight_decay"], fused=regime["fused"]
    )
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, regime["lr_decay"])
    averaged = make_average(model, regime["averaging"])
    validated = model if averaged is None else averaged.module
    generator = torch.Generator().manual_seed(0)
    history, elapsed, best, since_best = [], 0.0, float("inf"), 0
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(len(train_x), generator=generator)
        started = time.perf_counter()
        for start in range(0, len(train_x), regime["batch"]):
            optimizer.zero_grad(set_to_none=True)
            model.nll(train_x[order[start : start + regime["batch"]]]).mean().backward()
            optimizer.step()
            if averaged is not None:
                averaged.update_parameters(model)
        schedule.step()
        elapsed += time.perf_counter() - started
        with torch.inference_mode():
            valid = float(torch.cat([validated.nll(c) for c in valid_x.split(2000)]).mean())
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
    parser.add_argument("--ours", default="{}", help="our regime, over the reference's")
    parser.add_argument("--reference", default="{}", help="the reference's regime, over defaults")
    args = parser.parse_args()
    flush_denormals()
    reference_regime = regime(args.reference, REFERENCE_REGIME)
    regimes = {
        "ours": regime(args.ours, reference_regime | {"fused": True}),
        "reference": reference_regime,
    }
    data = binarized_mnist(args.data_dir)
    train_x, valid_x = flat_tensor(data.train), flat_tensor(data.valid)
    torch.manual_seed(0)
    ours = MADE((1, 28, 28), 2, {"hidden": [500], "masks": 1, "seed": 0})
    reference = RemaskingMADE(ours)  # a copy of the same initial weights
    runs = {
        "ours": train(ours, train_x, valid_x, regimes["ours"], args),
        "reference": train(reference, train_x, valid_x, regimes["reference"], args),
    }
    bests = {name: min(h["valid_nll"] for h in history) for name, history in runs.items()}
    # Our best when the reference gets there; otherwise the reference's best, which ours passed.
    target = max(bests.values())
    reached = {name: seconds_to_reach(history, target) for name, history in runs.items()}
    record = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "settings": vars(args) | {"data_dir": str(args.data_dir), "out": str(args.out)},
        "regimes": regimes,
        "best_valid_nll": bests,
        "target_valid_nll": target,
        "seconds_to_target": reached,
        "ratio": reached["ours"] / reached["reference"] if reached["reference"] else None,
        "history": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    summary = ("best_valid_nll", "target_valid_nll", "seconds_to_target", "ratio")
    print(json.dumps({k: record[k] for k in summary}))


if __name__ == "__main__":
    main()
