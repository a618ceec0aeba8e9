"""Deterministic train/valid/test splits, of items or of whole groups of items (episodes)."""

from __future__ import annotations

import numpy as np

from arbench.data.format import SPLITS


def check_fractions(fractions) -> tuple[float, float, float]:
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(
            f"split fractions must be three positive numbers (train, valid, test) summing to 1, "
            f"got {list(fractions)}"
        )
    return fractions


def split_items(n: int, fractions, seed: int) -> dict[str, np.ndarray]:
    """Shuffle 0..n-1 with `seed` and cut it into train/valid/test index arrays.

    The indices stay shuffled: sources grouped by class (the MNIST files are) are mixed within
    every split, so any prefix of a split is a fair sample of it.
    """
    fractions = check_fractions(fractions)
    n_valid, n_test = round(n * fractions[1]), round(n * fractions[2])
    if n - n_valid - n_test < 1 or n_valid < 1 or n_test < 1:
        raise ValueError(f"{n} items are too few to split into {list(fractions)}")
    order = np.random.default_rng(seed).permutation(n)
    return {
        "valid": order[:n_valid],
        "test": order[n_valid : n_valid + n_test],
        "train": order[n_valid + n_test :],
    }


def split_groups(group_sizes, fractions, seed: int) -> dict[str, np.ndarray]:
    """Assign whole groups to splits so no group straddles two; return group indices per split.

    Groups are shuffled with `seed`, then valid and test each take groups until they hold their
    share of items; every split gets at least one group.
    """
    fractions = check_fractions(fractions)
    sizes = np.asarray(group_sizes)
    if len(sizes) < 3:
        raise ValueError(f"{len(sizes)} groups are too few to give each of {SPLITS} one")
    order = list(np.random.default_rng(seed).permutation(len(sizes)))
    total = sizes.sum()
    chosen: dict[str, list[int]] = {"valid": [], "test": []}
    # Each split still to be filled keeps one group in reserve: test and train after valid.
    for name, fraction, reserve in (("valid", fractions[1], 2), ("test", fractions[2], 1)):
        while len(order) > reserve and (
            not chosen[name] or sizes[chosen[name]].sum() < fraction * total
        ):
            chosen[name].append(order.pop(0))
    return {
        "train": np.sort(order),
        "valid": np.sort(chosen["valid"]),
        "test": np.sort(chosen["test"]),
    }


def stratified_sample(n: int, count: int, labels: np.ndarray | None, seed: int) -> np.ndarray:
    """`count` of the indices 0..n-1 drawn at random, with every label as equally represented as
    it allows (labels taken in turn, each from its own shuffled images). The same seed draws the
    same images, so every model's figure shows the same ones; splits stored in blocks (game
    after game) are not shown by their first block."""
    rng = np.random.default_rng(seed)
    if labels is None:
        return rng.permutation(n)[:count]
    groups = [rng.permutation(np.flatnonzero(labels == value)) for value in np.unique(labels)]
    taken = [group[i] for i in range(max(map(len, groups))) for group in groups if i < len(group)]
    return np.array(taken[:count], dtype=np.int64)


FIGURE_SEED = 0


def shown_test_images(data, count: int) -> np.ndarray:
    """Indices of the test images the figures show and complete: a random draw with every label
    (digit, game) as equally represented as it allows, the same for every model and figure."""
    labels = data.labels["test"] if data.labels else None
    return stratified_sample(len(data.test), count, labels, seed=FIGURE_SEED)
