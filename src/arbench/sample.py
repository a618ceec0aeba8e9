"""The sample stage: `python -m arbench.sample --model M.pt --n 64 --seed 0 --out S.npz`.

Writes uint8 samples (N, C, H, W) on the model's support, atomically, checked by the samples
file's contract (`arbench.core.contracts.SAMPLES`) before they are written.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

from arbench.core.cli import nonnegative_int, positive_int, run_stage, stage_parser
from arbench.core.contracts import SAMPLES
from arbench.training.checkpoints import load_model, resolve_device

log = logging.getLogger("arbench.sample")


def sample(
    model_path: str | Path, n: int, seed: int, out: str | Path, device: str = "auto"
) -> Path:
    model = load_model(model_path)
    if isinstance(model, torch.nn.Module):
        model.to(resolve_device(device)).eval()
    started = time.perf_counter()
    images = model.sample(n, seed=seed)
    seconds = time.perf_counter() - started
    out = Path(out)
    content = {
        "samples": images,
        "levels": np.int64(model.levels),
        "seed": np.int64(seed),
        "seconds": np.float64(seconds),
    }
    SAMPLES.write(out, content, levels=model.levels, shape=model.shape)
    log.info("wrote %d samples to %s in %.1f s", n, out, seconds)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("arbench.sample", "Draw samples from a trained model.")
    parser.add_argument("--model", required=True)
    parser.add_argument("--n", type=positive_int, required=True, help="how many samples")
    parser.add_argument("--seed", type=nonnegative_int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    return run_stage(
        f"sample {args.model}",
        lambda: sample(args.model, args.n, args.seed, args.out, args.device),
        inputs=(args.model,),
        outputs=(args.out,),
    )


if __name__ == "__main__":
    sys.exit(main())
