"""Pixel-level preprocessing shared by every source: quantization, binarization, crop and resize."""

from __future__ import annotations

import numpy as np
from PIL import Image

BINARIZATIONS = ("stochastic", "threshold")


def quantize(images: np.ndarray, levels: int) -> np.ndarray:
    """Map 8-bit values 0..255 onto `levels` equal-width bins 0..levels-1 (identity for 256)."""
    if not 2 <= levels <= 256:
        raise ValueError(f"levels must be in 2..256, got {levels}")
    return (images.astype(np.uint16) * levels // 256).astype(np.uint8)


def binarize(images: np.ndarray, method: str, *, threshold: float = 0.5, seed: int = 0):
    """Binarize 8-bit images: `stochastic` draws Bernoulli(x/255) with a fixed seed,
    `threshold` keeps x/255 > threshold."""
    intensity = images.astype(np.float64) / 255.0
    if method == "stochastic":
        rng = np.random.default_rng(seed)
        return (rng.random(images.shape) < intensity).astype(np.uint8)
    if method == "threshold":
        return (intensity > threshold).astype(np.uint8)
    raise ValueError(f"unknown binarization {method!r}; expected one of {BINARIZATIONS}")


def reduce_levels(images: np.ndarray, spec: dict) -> tuple[np.ndarray, int]:
    """Apply a spec's `binarize` (stochastic | threshold | null) or else its `levels`."""
    method = spec.get("binarize")
    if method:
        binary = binarize(
            images, method, threshold=spec.get("threshold", 0.5), seed=spec.get("seed", 0)
        )
        return binary, 2
    levels = int(spec.get("levels", 256))
    return quantize(images, levels), levels


def centre_crop_resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Crop the largest centred region with the target aspect ratio, then resize to (H, W)."""
    height, width = size
    target = width / height
    src_w, src_h = image.size
    if src_w / src_h > target:
        crop_w, crop_h = round(src_h * target), src_h
    else:
        crop_w, crop_h = src_w, round(src_w / target)
    left, top = (src_w - crop_w) // 2, (src_h - crop_h) // 2
    image = image.crop((left, top, left + crop_w, top + crop_h))
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    return image


def to_chw(image: Image.Image) -> np.ndarray:
    """Pillow image (L or RGB) to a uint8 (C, H, W) array."""
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
