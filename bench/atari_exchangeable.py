"""Are Atari valid and test frames drawn alike? The classifier two-sample test between the two
splits of a generated dataset, for several ways of recording frames from episodes.

    python bench/atari_exchangeable.py [--out bench/results/atari_exchangeable.json]

Frames are split by episode, so that no episode lends frames to two splits; with many frames an
episode, few episodes make each of valid and test, and a classifier learns which episodes they
came from (the folds of its cross-validation share episodes). Each variant generates the study's
two games binarized at 32x32 with the study's frame count, then tells valid frames from test
frames (as many of each, at most 1,000) with the quality stage's classifier, two seeds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from arbench.data.atari import atari
from arbench.metrics.measures import two_sample_test

VARIANTS = {
    "50 frames an episode (the study before)": {"episode_steps": 400, "record_every": 8},
    "10 frames an episode": {"episode_steps": 400, "record_every": 40},
}


def measure(variant: dict, frames: int) -> dict:
    spec = {
        "source": "atari",
        "games": ["SpaceInvaders", "Freeway"],
        "size": [32, 32],
        "binarize": "background",
        "frames": frames,
        **variant,
    }
    started = time.perf_counter()
    splits, _, meta = atari(spec, Path("resources"))
    seconds = time.perf_counter() - started
    valid, test = splits["valid"], splits["test"]
    n = min(len(valid), len(test), 1000)
    rng = np.random.default_rng(0)
    a = valid[rng.choice(len(valid), n, replace=False)]
    b = test[rng.choice(len(test), n, replace=False)]
    return {
        "spec": variant,
        "generate_seconds": seconds,
        "counts": {name: len(splits[name]) for name in ("train", "valid", "test")},
        "episodes": meta["episodes"],
        "classifier_accuracy": [two_sample_test(a, b, 2, seed) for seed in (0, 1)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16_000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    found = {name: measure(variant, args.frames) for name, variant in VARIANTS.items()}
    text = json.dumps(found, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
