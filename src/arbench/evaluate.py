"""The evaluate stage: test log-likelihood of one trained model, comparable across models.

`python -m arbench.evaluate --data D.npz --model M.pt --out metrics.json` writes the mean test NLL
in nats/image and bits/dim with its standard error over test images, whether it is exact or an
upper bound (for a Gaussian mixture, the dequantization bound and its Monte Carlo error, beside an
exact NLL where there is one), and beside it (same stem, `.npz`) the NLL of every test image, so
that the report can give paired differences between models on the same images.
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path

import numpy as np
import torch

from arbench.core.cli import run_stage, stage_parser
from arbench.core.contracts import LIKELIHOOD, NLLS
from arbench.data.format import load_dataset
from arbench.training import checkpoints
from arbench.training.checkpoints import load_model, resolve_device

log = logging.getLogger("arbench.evaluate")


def nll_file(summary, given=None) -> Path:
    """Where the per-image NLLs go: `given`, or beside the summary as `.npz`."""
    return Path(given) if given else Path(summary).with_suffix(".npz")


def evaluate(
    data_path, model_path, out, device: str = "auto", nll_out=None, batch: int = 1000
) -> dict:
    """Write the test NLL summary to `out` and per-image NLLs to `nll_out` (default: `out`
    with suffix .npz); returns the summary."""
    data = load_dataset(data_path)
    model = load_model(model_path)
    checkpoints.check_fits(model, model_path, data, data_path)
    on = resolve_device(device) if isinstance(model, torch.nn.Module) else torch.device("cpu")
    bound = None
    if on.type == "cuda":  # this evaluation's peak, not that of work before it in the process
        torch.cuda.reset_peak_memory_stats(on)
    if isinstance(model, torch.nn.Module):
        model.to(on).eval()
        nll = np.concatenate(
            [
                -model.log_prob(data.test[start : start + batch]).double().cpu().numpy()
                for start in range(0, len(data.test), batch)
            ]
        )
    else:  # the mixtures: in one piece, so every image gets its own dequantization draws
        nll = -model.log_prob(data.test).double().numpy()
        if hasattr(model, "bound_log_prob"):
            bound = model.bound_log_prob(data.test.reshape(len(data.test), -1))
    if not np.all(np.isfinite(nll)):
        raise ValueError(f"{model_path} gives a non-finite NLL on {data_path}'s test split")
    summary = checkpoints.summary(model_path)
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
        # how training ended and how fast it was still improving (arbench.training.convergence)
        "training": summary.get("training"),
    }
    if bound is not None:
        # The dequantization bound, beside an exact NLL or as the NLL itself, and the Monte
        # Carlo error of its mean over the test images.
        value, monte_carlo = bound
        metrics["bound_nll_nats"] = float(-value.mean())
        metrics["bound_monte_carlo_se"] = float(np.sqrt((monte_carlo**2).mean() / len(value)))
    if on.type == "cuda":
        metrics["peak_gpu_memory_bytes"] = torch.cuda.max_memory_allocated(on)
    NLLS.write(nll_file(out, nll_out), {"nll": nll})
    LIKELIHOOD.write(out, metrics)
    kind = "exact" if model.exact else "upper bound"
    log.info("%s: test NLL %.3f +- %.3f nats (%s)", model_path, nll.mean(), standard_error, kind)
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("arbench.evaluate", "Test log-likelihood of a trained model.")
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", required=True, help="summary JSON")
    parser.add_argument("--nll", help="per-image NLLs (.npz; default: OUT with .npz)")
    args = parser.parse_args(argv)
    return run_stage(
        f"evaluate {args.model} on {args.data}",
        lambda: evaluate(args.data, args.model, args.out, args.device, args.nll),
        inputs=(args.data, args.model),
        outputs=(args.out, nll_file(args.out, args.nll)),
    )


if __name__ == "__main__":
    sys.exit(main())
