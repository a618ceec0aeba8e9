"""Why does one Gaussian pass for real images where trained models do not? The classifier
two-sample test on one dataset, probed.

    python bench/classifier_probe.py --results results --dataset anime [--out FILE.json]

For the real held-out images, the metric check's single Gaussian and every model's samples (the
first draw), against the same test images as the quality stage: the classifier's accuracy as the
stage measures it; the same classifier given twice the width and twice the epochs (is the test
under-powered?); the stage's classifier on images blurred over 3x3 pixels (does it see fine
texture or coarse structure?); and what each set's pixels are like beside real ones: the mean
and spread of each channel, the share of the extreme levels, and roughness (the mean absolute
difference of neighbouring pixels, in levels).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from arbench.core.contracts import SAMPLES
from arbench.data.format import load_dataset
from arbench.metrics import measures
from arbench.metrics.known_answers import blurred, gaussian_images
from arbench.metrics.measurement import TEST_IMAGES, set_size


class WideDiscriminator(torch.nn.Module):
    """The stage's classifier at twice the width."""

    def __init__(self, channels: int):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(channels, 32, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(32, 64, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(2),
            torch.nn.Flatten(),
            torch.nn.Linear(256, 1),
        )

    def forward(self, x):
        return self.net(x).squeeze(1)


def accuracy(images, test, levels, wide: bool = False) -> float:
    if not wide:
        return measures.two_sample_test(images, test, levels)["value"]
    original, settings = measures.Discriminator, dict(measures.C2ST)
    measures.Discriminator = WideDiscriminator
    measures.C2ST["epochs"] = 2 * settings["epochs"]
    try:
        return measures.two_sample_test(images, test, levels)["value"]
    finally:
        measures.Discriminator = original
        measures.C2ST.clear()
        measures.C2ST.update(settings)


def pixels(images: np.ndarray, levels: int) -> dict:
    values = images.astype(np.float64)
    rough = np.abs(np.diff(values, axis=3)).mean() + np.abs(np.diff(values, axis=2)).mean()
    return {
        "channel_mean": values.mean((0, 2, 3)).round(1).tolist(),
        "channel_sd": values.std((0, 2, 3)).round(1).tolist(),
        "extreme_share": float(((images == 0) | (images == levels - 1)).mean()),
        "roughness": float(rough / 2),
    }


def probe(results: Path, dataset: str) -> dict:
    data = load_dataset(results / "data" / f"{dataset}.npz")
    rng = np.random.default_rng(0)
    test = data.test
    if len(test) > TEST_IMAGES:
        test = test[np.sort(rng.choice(len(test), TEST_IMAGES, replace=False))]
    size = set_size(10**9, data)
    sets = {
        "real (valid)": data.valid[:size],
        "one Gaussian": gaussian_images(data, size),
    }
    for path in sorted((results / "samples" / dataset).glob("*.npz")):
        samples = SAMPLES.read(path, levels=data.levels, shape=data.shape)["samples"]
        sets[path.stem] = samples[:size]
    found = {}
    for name, images in sets.items():
        found[name] = {
            "classifier": accuracy(images, test, data.levels),
            "classifier_wide_longer": accuracy(images, test, data.levels, wide=True),
            "classifier_on_blurred": accuracy(blurred(images), blurred(test), data.levels),
            **pixels(images, data.levels),
        }
        print(name, json.dumps(found[name]), flush=True)
    return {"dataset": dataset, "images_per_set": size, "test": pixels(test, data.levels), **found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--dataset", default="anime")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    record = probe(args.results, args.dataset)
    text = json.dumps(record, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
