"""The evaluate stage: test log-likelihood of one trained model, comparable across models.

`python -m arbench.evaluate --data D.npz --model M.pt --out metrics.json` writes the mean test NLL
in nats/image and bits/dim with its standard error over test images, whether it is exact or an
upper bound, and beside it (same stem, `.npz`) the NLL of every test image, so that the report
can give paired differences between models on the same images.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

import numpy as np
import torch

from arbench.data.format import atomic_write, load_dataset
from arbench.train import load_checkpoint, load_model, resolve_device

log = logging.getLogger("arbench.evaluate")


def evaluate(data_path, model_path, out, device: str = "auto", batch: int = 1000) -> dict:
    data = load_dataset(data_path)
    model = load_model(model_path)
    if isinstance(model, torch.nn.Module):
        model.to(resolve_device(device)).eval()
    nll = np.concatenate(
        [
            -model.log_prob(data.test[start : start + batch]).double().cpu().numpy()
            for start in range(0, len(data.test), batch)
        ]
    )
    if not np.all(np.isfinite(nll)):
        raise ValueError(f"{model_path} gives a non-finite NLL on {data_path}'s test split")
    summary = load_checkpoint(Path(model_path)).get("summary", {})
    dims = data.dims
    standard_error = float(nll.std(ddof=1) / math.sqrt(len(nll)))
    metrics = {
        "dataset": Path(data_path).stem,
        "source": data.meta.get("source"),
        "model": model.name,
        "exact": bool(model.exact),
        "test_images": len(nll),
        "dims": dims,
        "levels": data.levels,
        "nll_nats": float(nll.mean()),
        "nll_nats_se": standard_error,
        "bits_per_dim": float(nll.mean() / (dims * math.log(2))),
        "bits_per_dim_se": standard_error / (dims * math.log(2)),
        "parameters": summary.get("parameters"),
        "train_seconds": summary.get("seconds"),
        "device": summary.get("device"),
        "best_valid_nll": summary.get("best_valid_nll"),
    }
    out = Path(out)
    atomic_write(out.with_suffix(".npz"), lambda handle: np.savez(handle, nll=nll))
    atomic_write(out, lambda handle: handle.write(json.dumps(metrics, indent=2).encode() + b"\n"))
    kind = "exact" if model.exact else "upper bound"
    log.info("%s: test NLL %.3f +- %.3f nats (%s)", model_path, nll.mean(), standard_error, kind)
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Test log-likelihood of a trained model.")
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        evaluate(args.data, args.model, args.out, args.device)
    except ValueError as error:
        log.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
