"""Which standard error says what another draw of a set would give? Simulated on Gaussian feature
sets, where independent draws are free.

    python bench/error_bars.py --out bench/results/error_bars.json

A fixed reference set (the test images' features) and sets of `n` points drawn from a slightly
shifted Gaussian: the true standard error of each metric is the spread of its value over
`truth_draws` independent sets. Each scheme's error is computed on `sets` single sets and its root
mean square compared with the truth:

- `halves_both_divided`: random halves of the set and of the reference, spread divided by
  sqrt(2) (what `arbench.quality` did before);
- `halves_set_undivided`: random halves of the set only, the spread undivided (the delete-half
  jackknife: a half drawn without replacement from N varies as a fresh set of N does);
- `three_quarters_set`: random subsets of three quarters of the set only, the spread times
  sqrt(3) (the delete-d jackknife with d = N/4; what `arbench.quality` does now);
- `bootstrap_set`: the set resampled with replacement (duplicates shrink k-NN balls).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from arbench.metrics.measures import (
    SUBSET_SCALE,
    SUBSET_SHARE,
    frechet_distance,
    kernel_distance,
    prdc,
)

METRICS = ("frechet", "kid", "precision", "recall", "density", "coverage")


def measure(ours: np.ndarray, theirs: np.ndarray) -> dict[str, float]:
    return {
        "frechet": frechet_distance(ours, theirs),
        "kid": kernel_distance(ours, theirs),
        **prdc(theirs, ours),
    }


def scheme_errors(ours, theirs, rng, halves: int) -> dict[str, dict[str, float]]:
    n, m = len(ours), len(theirs)
    found = {
        "halves_both_divided": [],
        "halves_set_undivided": [],
        "three_quarters_set": [],
        "bootstrap_set": [],
    }
    for _ in range(halves):
        a = rng.choice(n, n // 2, replace=False)
        b = rng.choice(m, m // 2, replace=False)
        found["halves_both_divided"].append(measure(ours[a], theirs[b]))
        found["halves_set_undivided"].append(measure(ours[a], theirs))
        three_quarters = rng.choice(n, round(SUBSET_SHARE * n), replace=False)
        found["three_quarters_set"].append(measure(ours[three_quarters], theirs))
        found["bootstrap_set"].append(measure(ours[rng.choice(n, n, replace=True)], theirs))
    scale = {"halves_both_divided": 1 / np.sqrt(2), "three_quarters_set": SUBSET_SCALE}
    return {
        scheme: {
            metric: float(np.std([v[metric] for v in values], ddof=1) * scale.get(scheme, 1.0))
            for metric in METRICS
        }
        for scheme, values in found.items()
    }


def run(n: int, dims: int, truth_draws: int, sets: int, halves: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=(1000, dims))
    shift = np.full(dims, 0.2 / np.sqrt(dims))

    def draw():
        return rng.normal(size=(n, dims)) * 1.1 + shift

    values = [measure(draw(), reference) for _ in range(truth_draws)]
    truth = {m: float(np.std([v[m] for v in values], ddof=1)) for m in METRICS}
    estimates = [scheme_errors(draw(), reference, rng, halves) for _ in range(sets)]
    ratios = {
        scheme: {
            m: float(np.sqrt(np.mean([e[scheme][m] ** 2 for e in estimates])) / truth[m])
            for m in METRICS
        }
        for scheme in estimates[0]
    }
    return {
        "n": n,
        "dims": dims,
        "truth_draws": truth_draws,
        "sets": sets,
        "halves": halves,
        "true_se": truth,
        "ratio_to_true": ratios,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--dims", type=int, default=16)
    parser.add_argument("--truth-draws", type=int, default=400)
    parser.add_argument("--sets", type=int, default=20)
    parser.add_argument("--halves", type=int, default=30)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    result = run(args.n, args.dims, args.truth_draws, args.sets, args.halves)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for scheme, ratios in result["ratio_to_true"].items():
        print(scheme, " ".join(f"{m} {r:.2f}" for m, r in ratios.items()))


if __name__ == "__main__":
    main()
