"""The error-bar check stage: is the standard error each measurement is given what another draw
of the set would give?

`python -m arbench.error_check --data D.npz --features F.pt --model M.pt --n 500 --draws 20
--out E.json` draws `draws` independent sets of `n` images from a trained network, and as many
disjoint sets of `n` real images as the training and valid splits hold (at most `draws`), measures
every set exactly as the quality stage measures a model's samples, and judges each metric's error
bar by the spread across the draws (`arbench.metrics.error_bars`).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import torch

from arbench.core.cli import positive_int, run_stage, stage_parser
from arbench.core.contracts import ERROR_CHECK
from arbench.core.plan import METRICS
from arbench.data.format import load_dataset
from arbench.metrics.error_bars import TOLERANCE, judge
from arbench.metrics.measurement import Reference, measure, set_size
from arbench.metrics.spaces import FeatureSpaces
from arbench.training.checkpoints import load_model, resolve_device

log = logging.getLogger("arbench.error_check")

FIRST_SEED = 1_000  # the network's draws: seeds apart from those the sample stage uses


def real_draws(data, size: int, draws: int) -> list[np.ndarray]:
    """Disjoint sets of `size` real images from the training and valid splits, at most
    `draws`: independent draws from the images the test split was drawn beside."""
    pool = np.concatenate([data.train, data.valid])
    order = np.random.default_rng(0).permutation(len(pool))
    count = min(draws, len(pool) // size)
    return [pool[order[i * size : (i + 1) * size]] for i in range(count)]


def network_draws(model_path, size: int, draws: int, device: str) -> list[np.ndarray]:
    model = load_model(model_path)
    if isinstance(model, torch.nn.Module):
        model.to(resolve_device(device)).eval()
    return [model.sample(size, seed=FIRST_SEED + i) for i in range(draws)]


def check(data_path, features_path, model_path, n: int, draws: int, out, device="auto") -> dict:
    data = load_dataset(data_path)
    reference = Reference.of(data, FeatureSpaces.load(features_path))
    size = set_size(n, data)
    sets = {"real": real_draws(data, size, draws)}
    if model_path is not None:
        sets = {"network": network_draws(model_path, size, draws, device), **sets}
    measured = {}
    for source, drawn in sets.items():
        measured[source] = []
        for index, images in enumerate(drawn):
            found = measure(images, reference, seed=index)
            measured[source].append({m: found[m] for m in METRICS})
            log.info("%s draw %d of %d measured", source, index + 1, len(drawn))
    result = {
        "dataset": Path(data_path).stem,
        "images_per_set": size,
        "network": None if model_path is None else str(model_path),
        "tolerance": list(TOLERANCE),
        "metrics": judge(measured),
        "draws": measured,
    }
    ERROR_CHECK.write(out, result)
    for metric, judged in result["metrics"].items():
        ratio = "unchecked" if judged["ratio"] is None else f"{judged['ratio']:.2f}x"
        log.info(
            "%s: spread across draws %s the error given to one set (%s)",
            metric,
            ratio,
            "within tolerance" if judged["within"] else "not within tolerance: does not vote",
        )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(
        "arbench.error_check", "Standard errors against the spread of independent draws."
    )
    parser.add_argument("--data", required=True)
    parser.add_argument("--features", required=True, help="the dataset's features file")
    parser.add_argument("--model", help="a trained network to draw sets from")
    parser.add_argument("--n", type=positive_int, default=500, help="images a set")
    parser.add_argument("--draws", type=positive_int, default=20, help="sets from each source")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    return run_stage(
        f"error-bar check on {args.data}",
        lambda: check(
            args.data, args.features, args.model, args.n, args.draws, args.out, args.device
        ),
        inputs=(args.data, args.features, args.model),
        outputs=(args.out,),
    )


if __name__ == "__main__":
    sys.exit(main())
