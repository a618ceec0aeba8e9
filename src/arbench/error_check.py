"""The error-bar check stage: the standard error one set is given, against the spread of
independent draws of such sets; a calibration of every metric's error
(`arbench.metrics.error_bars`).

`python -m arbench.error_check --data D.npz --features F.pt --model M1.pt --model M2.pt --n 500
--draws 20 --out E.json` draws `draws` independent sets of `n` images from each trained model
(one of each family: the study's declared pair) and `draws` sets of `n` real images from the
training and valid splits (disjoint where they hold that many, otherwise overlapping random sets
whose spread is corrected for the overlap), measures every set as the other stages do, and
calibrates each metric's error by the spread across the draws. Every draw is measured by every
metric, the classifier test included; the jackknife error one set is given is computed on the
first `GIVEN_DRAWS` draws of each source (it takes 30 estimates; its size varies little between
draws).
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
from arbench.metrics.error_bars import GIVEN_DRAWS, LEVEL, judge
from arbench.metrics.measurement import CLASSIFIER, Reference, measure, set_size
from arbench.metrics.measures import two_sample_test
from arbench.metrics.spaces import FeatureSpaces
from arbench.training.checkpoints import load_model, resolve_device

log = logging.getLogger("arbench.error_check")

FIRST_SEED = 1_000  # the models' draws: seeds apart from those the sample stage uses


def real_draws(data, size: int, draws: int) -> tuple[list[np.ndarray], float]:
    """`draws` sets of `size` real images from the training and valid splits, and the share of
    the pool each holds when they overlap (0 when they are disjoint)."""
    pool = np.concatenate([data.train, data.valid])
    rng = np.random.default_rng(0)
    if draws * size <= len(pool):
        order = rng.permutation(len(pool))
        return [pool[order[i * size : (i + 1) * size]] for i in range(draws)], 0.0
    sets = [pool[rng.choice(len(pool), size, replace=False)] for _ in range(draws)]
    return sets, size / len(pool)


def model_draws(model_path, size: int, draws: int, device: str) -> list[np.ndarray]:
    model = load_model(model_path)
    if isinstance(model, torch.nn.Module):
        model.to(resolve_device(device)).eval()
    return [model.sample(size, seed=FIRST_SEED + i) for i in range(draws)]


def measured_draw(images, reference, index: int) -> dict:
    """Every metric's value of one draw; its jackknife error on the first draws only."""
    if index < GIVEN_DRAWS:
        found = measure(images, reference, seed=index, classifier_seeds=())
        values = {
            m: {"value": found[m]["value"], "se": found[m]["se"]} for m in found if m in METRICS
        }
    else:
        values = {
            m: {"value": v, "se": None} for m, v in reference.compare(images).estimates().items()
        }
    values[CLASSIFIER] = two_sample_test(images, reference.test, reference.data.levels, seed=0)
    return values


def check(data_path, features_path, model_paths, n: int, draws: int, out, device="auto") -> dict:
    data = load_dataset(data_path)
    reference = Reference.of(data, FeatureSpaces.load(features_path))
    size = set_size(n, data)
    real, share = real_draws(data, size, draws)
    sources = {Path(p).stem: lambda p=p: model_draws(p, size, draws, device) for p in model_paths}
    sources["real"] = lambda: real
    measured = {}
    for source, drawn in sources.items():
        measured[source] = []
        for index, images in enumerate(drawn()):
            measured[source].append(measured_draw(images, reference, index))
            log.info("%s draw %d of %d measured", source, index + 1, draws)
    result = {
        "dataset": Path(data_path).stem,
        "images_per_set": size,
        "models": [str(p) for p in model_paths],
        "real_overlap": share,
        "level": LEVEL,
        "given_draws": GIVEN_DRAWS,
        "metrics": judge(measured, {"real": share}),
        "draws": measured,
    }
    ERROR_CHECK.write(out, result)
    for metric, judged in result["metrics"].items():
        ratio = "unchecked" if judged["ratio"] is None else f"{judged['ratio']:.2f}x"
        log.info("%s: spread across draws %s the error given: %s", metric, ratio, judged["reading"])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(
        "arbench.error_check", "Standard errors against the spread of independent draws."
    )
    parser.add_argument("--data", required=True)
    parser.add_argument("--features", required=True, help="the dataset's features file")
    parser.add_argument(
        "--model", action="append", default=[], help="a trained model to draw sets from"
    )
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
        inputs=(args.data, args.features, *args.model),
        outputs=(args.out,),
    )


if __name__ == "__main__":
    sys.exit(main())
