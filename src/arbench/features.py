"""The features stage: a feature space per dataset, learned on its training split.

`python -m arbench.features --data D.npz --out F.pt` trains a small convolutional encoder on the
training images and writes it, with a second encoder of the same shape left at its random
initialisation (Lee et al. 2022 found random features nearly as informative; it is the
robustness check). Sample-quality measurements compare image sets in these spaces instead of in
linear projections of the pixels, whose means and covariances a Gaussian mixture matches by
construction.

The encoder is trained to reconstruct its input through a 64-number bottleneck (an
autoencoder), and where the dataset labels its images (MNIST digits, Atari games) also to
classify them from the bottleneck: features that tell digits and games apart and keep what the
pixels show. Training is deterministic (fixed seed, deterministic algorithms: the same bytes on
the same machine and thread count) and takes a minute or less at the default run's scale on a
CPU; its valid reconstruction error and accuracy are recorded beside it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from arbench import checkpoints
from arbench.cli import run_stage, stage_parser
from arbench.data.format import load_dataset
from arbench.files import write_text

log = logging.getLogger("arbench.features")

EMBEDDING = 64
# fit_images: the encoder learns from at most this many training images, drawn at random (20
# epochs over 50,000 MNIST images would take minutes, and add little to a 64-number feature)
SETTINGS = {
    "epochs": 20,
    "batch_size": 128,
    "lr": 2e-3,
    "seed": 0,
    "label_weight": 1.0,
    "fit_images": 10_000,
}
RANDOM_SEED = 1


class Encoder(torch.nn.Module):
    """Three stride-2 convolutions, an average pool to 2x2 and a linear map to the embedding."""

    def __init__(self, channels: int):
        super().__init__()
        self.convolutions = torch.nn.Sequential(
            torch.nn.Conv2d(channels, 32, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(32, 64, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(64, 64, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(2),
            torch.nn.Flatten(),
        )
        self.embed = torch.nn.Linear(256, EMBEDDING)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.convolutions(x))


class Trainee(torch.nn.Module):
    """The encoder with the heads it is trained through: a decoder, and a classifier."""

    def __init__(self, shape, classes: int):
        super().__init__()
        self.shape = tuple(shape)
        self.encoder = Encoder(shape[0])
        dims = int(np.prod(shape))
        self.decoder = torch.nn.Sequential(
            torch.nn.ReLU(),
            torch.nn.Linear(EMBEDDING, 256),
            torch.nn.ReLU(),
            torch.nn.Linear(256, dims),
        )
        self.classifier = torch.nn.Linear(EMBEDDING, classes) if classes > 1 else None

    def losses(self, x: torch.Tensor, labels: torch.Tensor | None):
        code = self.encoder(x)
        reconstruction = F.mse_loss(torch.sigmoid(self.decoder(code)), x.flatten(1))
        if self.classifier is None or labels is None:
            return reconstruction, None
        return reconstruction, F.cross_entropy(self.classifier(code), labels)


def scaled(images: np.ndarray, levels: int) -> torch.Tensor:
    """uint8 levels (N, C, H, W) -> float in [0, 1]."""
    return torch.from_numpy(images.astype(np.float32) / (levels - 1))


class FeatureSpaces:
    """The learned and the random encoder of one dataset, as read from the features file."""

    def __init__(self, saved: dict):
        self.levels = saved["levels"]
        self.shape = tuple(saved["shape"])
        self.summary = saved["summary"]
        self.encoders = {}
        for name in ("learned", "random"):
            encoder = Encoder(self.shape[0])
            encoder.load_state_dict(saved[name])
            self.encoders[name] = encoder.eval()

    @classmethod
    def load(cls, path: str | Path) -> FeatureSpaces:
        return cls(checkpoints.load(path, "features file", "Run the features stage again."))

    @torch.inference_mode()
    def embed(self, images: np.ndarray, space: str, batch: int = 1000) -> np.ndarray:
        """(N, C, H, W) levels -> (N, EMBEDDING) float64 features."""
        if tuple(images.shape[1:]) != self.shape:
            raise ValueError(f"images of shape {images.shape[1:]} for features of {self.shape}")
        encoder = self.encoders[space]
        parts = [
            encoder(scaled(images[start : start + batch], self.levels)).double().numpy()
            for start in range(0, len(images), batch)
        ]
        return np.concatenate(parts)


def train_features(data, settings: dict | None = None) -> dict:
    """The learned and random encoders of `data`, trained as the module docstring says."""
    settings = {**SETTINGS, **(settings or {})}
    torch.manual_seed(settings["seed"])
    labels = data.labels
    classes = len(data.meta.get("label_names", [])) if labels else 0
    model = Trainee(data.shape, classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["lr"])
    chosen = np.arange(len(data.train))
    if len(chosen) > settings["fit_images"]:
        rng = np.random.default_rng(settings["seed"])
        chosen = np.sort(rng.choice(len(chosen), settings["fit_images"], replace=False))
    x = scaled(data.train[chosen], data.levels)
    y = torch.from_numpy(labels["train"][chosen]) if labels else None
    generator = torch.Generator().manual_seed(settings["seed"])
    started = time.perf_counter()
    for epoch in range(settings["epochs"]):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for start in range(0, len(x), settings["batch_size"]):
            batch = order[start : start + settings["batch_size"]]
            reconstruction, classification = model.losses(x[batch], None if y is None else y[batch])
            loss = reconstruction + (
                settings["label_weight"] * classification if classification is not None else 0
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        log.info("features epoch %d: loss %.4f", epoch + 1, total / len(x))
    model.eval()
    with torch.inference_mode():
        valid = scaled(data.valid, data.levels)
        code = model.encoder(valid)
        error = float(F.mse_loss(torch.sigmoid(model.decoder(code)), valid.flatten(1)))
        accuracy = None
        if model.classifier is not None:
            predicted = model.classifier(code).argmax(1).numpy()
            accuracy = float((predicted == labels["valid"]).mean())
    torch.manual_seed(RANDOM_SEED)
    random = Encoder(data.shape[0])
    summary = {
        "settings": settings,
        "valid_reconstruction_mse": error,
        "valid_label_accuracy": accuracy,
        "label_names": data.meta.get("label_names"),
        "seconds": time.perf_counter() - started,
    }
    log.info("features: valid reconstruction MSE %.4f, label accuracy %s", error, accuracy)
    return {
        "levels": data.levels,
        "shape": list(data.shape),
        "learned": model.encoder.state_dict(),
        "random": random.state_dict(),
        "summary": summary,
    }


def build(data_path, out) -> dict:
    torch.use_deterministic_algorithms(True)
    saved = train_features(load_dataset(data_path))
    out = Path(out)
    checkpoints.save(saved, out)
    write_text(out.with_suffix(".json"), json.dumps(saved["summary"], indent=2) + "\n")
    return saved["summary"]


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("arbench.features", "Learn a feature space on a dataset.")
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True, help="features file (.pt); a .json summary beside")
    args = parser.parse_args(argv)
    return run_stage(f"features of {args.data}", lambda: build(args.data, args.out))


if __name__ == "__main__":
    sys.exit(main())
