"""The complete stage: fill in the hidden part of test images, and score the true hidden part.

`python -m arbench.complete --data D.npz --model M.pt --out C.json` hides the bottom
`hidden_rows` of every test image (with the raster ordering, the observed top comes first) and,
per model:

- the **conditional NLL** of the true hidden pixels given the observed ones, per test image, in
  nats (`.npz` beside the summary, for paired differences). Exact for NADE and MADE (their
  ordering conditions on the observed pixels; an ensemble's conditional is the ratio of its
  mixtures, not an average of conditionals), for the mixture of Bernoullis and the diagonal
  Gaussian mixture (component posterior from the observed pixels, then each hidden pixel's bin
  mass); for the full-covariance and PCA Gaussian mixtures a dequantized estimate,
  E_u[-log p(y_hidden | y_observed)] + (hidden pixels) log L, which is neither exact nor a bound
  and is labelled so;
- **completions**: `completions` draws of the hidden part for each of `images` test images (a
  stratified draw, the same for every model, as the figures use), with the observed pixels left
  as they are.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from arbench.core.cli import nonnegative_int, positive_int, run_stage, stage_parser
from arbench.core.contracts import COMPLETION, COMPLETIONS
from arbench.core.plan import hidden_rows
from arbench.data.format import load_dataset
from arbench.data.splits import shown_test_images
from arbench.training.checkpoints import check_fits, load_model, resolve_device

log = logging.getLogger("arbench.complete")


def hidden_region(shape, fraction: float) -> np.ndarray:
    """Boolean (D,) over the flattened (C, H, W) image: True where the bottom rows are hidden."""
    channels, height, width = shape
    hidden = np.zeros((channels, height, width), dtype=bool)
    hidden[:, height - hidden_rows(height, fraction) :, :] = True
    return hidden.reshape(-1)


def images_file(summary) -> Path:
    """Where the completions and per-image NLLs go: beside the summary, as `.npz`."""
    return Path(summary).with_suffix(".npz")


def complete(
    data_path,
    model_path,
    out,
    hidden_rows: float = 0.5,
    images: int = 6,
    completions: int = 4,
    seed: int = 0,
    device: str = "auto",
) -> dict:
    data = load_dataset(data_path)
    model = load_model(model_path)
    check_fits(model, model_path, data, data_path)
    if isinstance(model, torch.nn.Module):
        model.to(resolve_device(device)).eval()
    hidden = hidden_region(data.shape, hidden_rows)
    started = time.perf_counter()
    conditional, exact = model.conditional_log_prob(data.test, hidden)
    nll = -np.asarray(conditional, dtype=np.float64)
    if not np.all(np.isfinite(nll)):
        raise ValueError(f"{model_path} gives a non-finite conditional NLL on {data_path}")
    shown = shown_test_images(data, images)
    filled = model.complete(data.test[shown], hidden, completions, seed)
    observed = data.test[shown].reshape(len(shown), 1, -1)[:, :, ~hidden]
    if not np.all(filled.reshape(len(shown), completions, -1)[:, :, ~hidden] == observed):
        raise RuntimeError(f"{model_path} changed observed pixels while completing")
    seconds = time.perf_counter() - started
    standard_error = float(nll.std(ddof=1) / math.sqrt(len(nll)))
    summary = {
        "dataset": Path(data_path).stem,
        "model": model.name,
        "likelihood": "exact" if exact else "dequantized estimate",
        "hidden_rows": hidden_rows,
        "hidden_pixels": int(hidden.sum()),
        "test_images": len(nll),
        "conditional_nll_nats": float(nll.mean()),
        "conditional_nll_nats_se": standard_error,
        "seconds": seconds,
    }
    COMPLETIONS.write(
        images_file(out),
        {
            "nll": nll,
            "shown": np.asarray(shown),
            "originals": data.test[shown],
            "completions": filled,
            "hidden": hidden,
            "levels": np.int64(data.levels),
        },
        levels=data.levels,
        shape=data.shape,
    )
    COMPLETION.write(out, summary)
    log.info(
        "%s: conditional NLL of the hidden %d pixels %.3f +- %.3f nats (%s)",
        model_path,
        hidden.sum(),
        nll.mean(),
        standard_error,
        summary["likelihood"],
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("arbench.complete", "Complete test images whose bottom is hidden.")
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True, help="summary JSON; per-image results beside")
    parser.add_argument("--hidden-rows", type=float, default=0.5, help="fraction of rows hidden")
    parser.add_argument("--images", type=positive_int, default=6)
    parser.add_argument("--completions", type=positive_int, default=4)
    parser.add_argument("--seed", type=nonnegative_int, default=0)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    return run_stage(
        f"complete with {args.model}",
        lambda: complete(
            args.data,
            args.model,
            args.out,
            args.hidden_rows,
            args.images,
            args.completions,
            args.seed,
            args.device,
        ),
        inputs=(args.data, args.model),
        outputs=(args.out, images_file(args.out)),
    )


if __name__ == "__main__":
    sys.exit(main())
