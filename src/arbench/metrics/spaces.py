"""The feature spaces the sample-quality metrics measure in, per dataset, learned on its training
split; and the principal components of its pixels beside them.

Two small convolutional encoders are trained on the training images, and a third of the same
shape is left at its random initialisation (Lee et al. 2022 found random features nearly as
informative; it is the robustness check). Sample-quality measurements compare image sets in these
spaces instead of in linear projections of the pixels, whose means and covariances a Gaussian
mixture matches by construction.

- **learned**: trained to reconstruct its input through a 64-number bottleneck (an
  autoencoder), and where the dataset labels its images (MNIST digits, Atari games) also to
  classify them from the bottleneck: features that tell digits and games apart and keep what the
  pixels show. An autoencoder keeps much of what principal components keep.
- **contrastive**: trained so that two augmented views of one image (SimCLR, Chen et al. 2020:
  random crops, horizontal flips where the data allow them, colour jitter on colour images, cut-out
  patches on binary ones) lie closer than views of other images: features of what an image shows
  that are blind to what the augmentations change, the kind that Stein et al. 2023 found to see
  far more than autoencoders or Inception features (self-supervised DINOv2; no pretrained weights
  can be fetched here, so it is trained on the dataset).
- **pca** (`FeatureSpace`): the top principal components of the training pixels, kept to show
  what linear features miss.

Training is deterministic (fixed seed, deterministic algorithms: the same bytes on the same machine
and thread count) and takes a minute or two at the default run's scale on a CPU; the learned
encoder's valid reconstruction error and accuracy, and the contrastive encoder's valid
view-matching accuracy (how often a view's nearest other view is its own image's), are recorded
beside it. The features stage (`arbench.features`) trains and writes them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from arbench.core.contracts import plainly, remake
from arbench.training import checkpoints

log = logging.getLogger("arbench.metrics.spaces")

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
CONTRASTIVE = {
    "epochs": 8,
    "batch_size": 256,
    "lr": 2e-3,
    "temperature": 0.2,
    "seed": 0,
    "fit_images": 10_000,
    "shift": 0.125,  # a crop moves by up to this share of the image's side
}
# Sources whose images may be mirrored left to right without changing what they show
MIRRORED_SOURCES = ("anime_faces",)
ENCODERS = ("learned", "contrastive", "random")
COMPONENTS = 32  # principal components of the pca space
FIT_IMAGES = 10_000  # training images the principal components are fitted to


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


def flat(images: np.ndarray, levels: int) -> np.ndarray:
    """(N, C, H, W) levels -> (N, D) float64 in [0, 1]."""
    return images.reshape(len(images), -1).astype(np.float64) / (levels - 1)


def scaled(images: np.ndarray, levels: int) -> torch.Tensor:
    """uint8 levels (N, C, H, W) -> float in [0, 1]."""
    return torch.from_numpy(images.astype(np.float32) / (levels - 1))


class FeatureSpaces:
    """The learned, contrastive and random encoders of one dataset and the principal components
    of its training pixels, as read from the features file."""

    def __init__(self, saved: dict):
        self.levels = saved["levels"]
        self.shape = tuple(saved["shape"])
        self.summary = saved["summary"]
        self.encoders = {}
        for name in ENCODERS:
            encoder = Encoder(self.shape[0])
            encoder.load_state_dict(saved[name])
            self.encoders[name] = encoder.eval()
        self.pca = FeatureSpace(saved["pca"]["mean"].numpy(), saved["pca"]["components"].numpy())
        # the instruments that see modes, fitted beside the spaces by the features stage
        # (`arbench.metrics.bins`, `arbench.metrics.classes`): None where a file has none
        self.bins = saved.get("bins")
        self.classes = saved.get("classes")

    @classmethod
    def load(cls, path: str | Path) -> FeatureSpaces:
        """The spaces of a features file, refused by name when it does not hold all four."""
        saved = checkpoints.load(path, "features file", rule="features")
        try:
            return cls(saved)
        except (KeyError, RuntimeError, TypeError, IndexError) as error:
            problem = (
                f"does not hold the {', '.join(ENCODERS)} encoders and the principal components "
                f"({plainly(error)})"
            )
            raise checkpoints.CheckpointError(
                f"{path}: {problem}; {remake(path, 'features')}", problem
            ) from None

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


def training_images(data, fit_images: int, seed: int) -> np.ndarray:
    """The indices of the training images an encoder learns from: all, or `fit_images` of them
    drawn at random."""
    chosen = np.arange(len(data.train))
    if len(chosen) > fit_images:
        rng = np.random.default_rng(seed)
        chosen = np.sort(rng.choice(len(chosen), fit_images, replace=False))
    return chosen


class Augment:
    """Random views of a batch of images in [0, 1]: a crop moved by up to `shift` of the side
    (edges repeated), a left-right mirror where the data allow it, and per image a colour jitter
    (brightness, contrast, saturation) on colour images or a cut-out square on binary ones."""

    def __init__(self, shape, levels: int, mirrored: bool, shift: float, generator):
        self.channels, self.height, self.width = shape
        self.levels, self.mirrored, self.generator = levels, mirrored, generator
        self.pad = max(1, round(shift * min(self.height, self.width)))

    def uniform(self, *shape) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n, pad = len(x), self.pad
        padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
        rows = torch.randint(0, 2 * pad + 1, (n,), generator=self.generator)
        columns = torch.randint(0, 2 * pad + 1, (n,), generator=self.generator)
        row_index = rows[:, None] + torch.arange(self.height)
        column_index = columns[:, None] + torch.arange(self.width)
        view = padded[
            torch.arange(n)[:, None, None, None],
            torch.arange(self.channels)[None, :, None, None],
            row_index[:, None, :, None],
            column_index[:, None, None, :],
        ]
        if self.mirrored:
            flip = self.uniform(n) < 0.5
            view = torch.where(flip[:, None, None, None], view.flip(3), view)
        if self.channels == 3:
            grey = view.mean(1, keepdim=True)
            saturation = 0.6 + 0.8 * self.uniform(n, 1, 1, 1)
            view = grey + saturation * (view - grey)
            mean = view.mean((1, 2, 3), keepdim=True)
            contrast = 0.6 + 0.8 * self.uniform(n, 1, 1, 1)
            brightness = 0.8 * (self.uniform(n, 1, 1, 1) - 0.5) * 0.5
            view = (mean + contrast * (view - mean) + brightness).clamp(0, 1)
        elif self.levels == 2:
            side = max(1, min(self.height, self.width) // 4)
            top = torch.randint(0, self.height - side + 1, (n,), generator=self.generator)
            left = torch.randint(0, self.width - side + 1, (n,), generator=self.generator)
            rows, columns = torch.arange(self.height), torch.arange(self.width)
            inside_rows = (rows >= top[:, None]) & (rows < top[:, None] + side)
            inside_columns = (columns >= left[:, None]) & (columns < left[:, None] + side)
            patch = inside_rows[:, None, :, None] & inside_columns[:, None, None, :]
            view = torch.where(patch, torch.zeros_like(view), view)
        else:
            mean = view.mean((1, 2, 3), keepdim=True)
            contrast = 0.7 + 0.6 * self.uniform(n, 1, 1, 1)
            view = (mean + contrast * (view - mean)).clamp(0, 1)
        return view


def contrastive_loss(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent (SimCLR): each view must pick its partner among the other 2n - 1 views."""
    z = F.normalize(torch.cat([a, b]), dim=1)
    similarity = z @ z.t() / temperature
    similarity.fill_diagonal_(-torch.inf)
    n = len(a)
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(similarity, partner)


def train_contrastive(data, settings: dict | None = None) -> tuple[Encoder, dict]:
    """The contrastive encoder of `data` (see the module docstring) and its summary."""
    settings = {**CONTRASTIVE, **(settings or {})}
    torch.manual_seed(settings["seed"])
    encoder = Encoder(data.shape[0])
    projection = torch.nn.Sequential(
        torch.nn.ReLU(),
        torch.nn.Linear(EMBEDDING, EMBEDDING),
        torch.nn.ReLU(),
        torch.nn.Linear(EMBEDDING, 32),
    )
    parameters = [*encoder.parameters(), *projection.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=settings["lr"])
    generator = torch.Generator().manual_seed(settings["seed"])
    mirrored = data.meta.get("source") in MIRRORED_SOURCES
    augment = Augment(data.shape, data.levels, mirrored, settings["shift"], generator)
    x = scaled(
        data.train[training_images(data, settings["fit_images"], settings["seed"])], data.levels
    )
    batch_size = min(settings["batch_size"], len(x))
    started = time.perf_counter()
    for epoch in range(settings["epochs"]):
        order = torch.randperm(len(x), generator=generator)
        total, steps = 0.0, 0
        for start in range(0, len(x) - batch_size + 1, batch_size):  # full batches only
            batch = x[order[start : start + batch_size]]
            views = projection(encoder(augment(torch.cat([batch, batch]))))
            loss = contrastive_loss(*views.chunk(2), settings["temperature"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, steps = total + loss.item(), steps + 1
        log.info("contrastive epoch %d: loss %.4f", epoch + 1, total / max(steps, 1))
    encoder.eval()
    with torch.inference_mode():
        valid = scaled(data.valid[:1000], data.levels)
        a, b = (F.normalize(encoder(augment(valid)), dim=1) for _ in range(2))
        matched = float(((a @ b.t()).argmax(1) == torch.arange(len(valid))).float().mean())
    summary = {
        "settings": {**settings, "mirrored": mirrored},
        "valid_view_matching_accuracy": matched,
        "seconds": time.perf_counter() - started,
    }
    log.info("contrastive features: valid view-matching accuracy %.3f", matched)
    return encoder, summary


def train_features(data, settings: dict | None = None, contrastive: dict | None = None) -> dict:
    """The encoders of `data`, trained as the module docstring says."""
    settings = {**SETTINGS, **(settings or {})}
    torch.manual_seed(settings["seed"])
    labels = data.labels
    classes = len(data.meta.get("label_names", [])) if labels else 0
    model = Trainee(data.shape, classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["lr"])
    chosen = training_images(data, settings["fit_images"], settings["seed"])
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
    summary = {
        "settings": settings,
        "valid_reconstruction_mse": error,
        "valid_label_accuracy": accuracy,
        "label_names": data.meta.get("label_names"),
        "seconds": time.perf_counter() - started,
    }
    log.info("features: valid reconstruction MSE %.4f, label accuracy %s", error, accuracy)
    contrastive_encoder, summary["contrastive"] = train_contrastive(data, contrastive)
    torch.manual_seed(RANDOM_SEED)
    random = Encoder(data.shape[0])
    # fitted once here rather than by every job that measures a set (2 s of SVD each)
    pca = FeatureSpace.fit(flat(data.train, data.levels))
    return {
        "levels": data.levels,
        "shape": list(data.shape),
        "learned": model.encoder.state_dict(),
        "contrastive": contrastive_encoder.state_dict(),
        "random": random.state_dict(),
        "pca": {"mean": torch.from_numpy(pca.mean), "components": torch.from_numpy(pca.components)},
        "summary": summary,
    }


@dataclass
class FeatureSpace:
    """Projection onto the top principal components of a reference set of images."""

    mean: np.ndarray
    components: np.ndarray  # (k, D)

    @classmethod
    def fit(cls, pixels: np.ndarray, components: int = COMPONENTS, seed: int = 0):
        rng = np.random.default_rng(seed)
        if len(pixels) > FIT_IMAGES:
            pixels = pixels[rng.choice(len(pixels), FIT_IMAGES, replace=False)]
        mean = pixels.mean(0)
        _, _, rows = np.linalg.svd(pixels - mean, full_matrices=False)
        return cls(mean, rows[: min(components, len(rows))])

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        return (pixels - self.mean) @ self.components.T
