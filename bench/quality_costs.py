"""What each sample-quality measurement costs, per dataset of a finished run, on one set of
images (the held-out valid images, as many as the run measures).

    python bench/quality_costs.py --results results [--out bench/results/quality_costs.json]

Times one call of each measurement (the median of 3, so the first call's start-up is not
counted) on the learned features (or pixels, for the classifier and novelty): each metric's own
function, then what the stages do: a set's kernels and distances computed once
(`measurement.Comparison`), every cheap metric read off them, for the whole set and for a subset
of it or of the test images, and the classifier test.
"""

from __future__ import annotations

import argparse
import json
import platform
from datetime import date
from pathlib import Path

import torch
from timing import median_seconds

from arbench.data import load_dataset
from arbench.metrics import measurement
from arbench.metrics.measures import (
    SUBSETS,
    frechet_distance,
    kernel_distance,
    nearest,
    prdc,
    two_sample_test,
)
from arbench.metrics.spaces import FeatureSpaces, flat


def costs(data, spaces: FeatureSpaces, n: int) -> dict:
    reference = measurement.Reference.of(data, spaces)
    images = data.valid[:n]
    ours = reference.features(images)
    theirs = reference.test_features
    learned_a, learned_b = ours["learned"], theirs["learned"]
    comparison = reference.compare(images)
    subset = measurement.subset_indices(len(images), 1, seed=0)[0]
    return {
        "images": len(images),
        "test_images": len(reference.test),
        "features, all three spaces": seconds(lambda: reference.features(images)),
        "Fréchet, one space": seconds(lambda: frechet_distance(learned_a, learned_b)),
        "KID, one space": seconds(lambda: kernel_distance(learned_a, learned_b)),
        "precision/recall/density/coverage": seconds(lambda: prdc(learned_b, learned_a)),
        "kernels and distances, computed once a set": seconds(lambda: reference.compare(images)),
        "every cheap metric, read off them": seconds(lambda: comparison.estimates()),
        f"against {SUBSETS} subsets of the test images": SUBSETS
        * seconds(lambda: comparison.estimates(theirs=reference.subsets[0])),
        f"{SUBSETS} subsets of the set (a check set's error)": SUBSETS
        * seconds(lambda: comparison.estimates(ours=subset)),
        "classifier two-sample test": seconds(
            lambda: two_sample_test(images, reference.test, data.levels)
        ),
        "novelty (nearest training image)": seconds(
            lambda: nearest(flat(images, data.levels), reference.train_pixels)
        ),
        "one whole measurement": seconds(lambda: measurement.measure(images, reference)),
    }


def seconds(work) -> float:
    """The median of 3 calls, none of them a warm-up: the first call's start-up is the stage's."""
    return median_seconds(work, repeats=3, warmup=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    record = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
    }
    for data_file in sorted((args.results / "data").glob("*.npz")):
        data = load_dataset(data_file)
        spaces = FeatureSpaces.load(args.results / "features" / f"{data_file.stem}.pt")
        record[data_file.stem] = costs(data, spaces, min(args.n, len(data.valid)))
    text = json.dumps(record, indent=2, default=float)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
