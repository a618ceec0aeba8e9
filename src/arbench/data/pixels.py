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


# Integer modes wider than 8 bits: Pillow's convert("RGB") clips them at 255, which turns a
# 16-bit grayscale PNG white. Their full range is scaled down to 8 bits instead.
WIDE_INTEGER_MODES = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535}


def to_rgb(image: Image.Image) -> Image.Image:
    """Any decodable image as 8-bit RGB."""
    if image.mode in WIDE_INTEGER_MODES:
        wide = np.asarray(image, dtype=np.float64)
        if wide.min() < 0 or wide.max() > WIDE_INTEGER_MODES[image.mode]:
            raise ValueError(f"{image.mode} values outside 0..{WIDE_INTEGER_MODES[image.mode]}")
        narrow = np.round(wide * 255 / WIDE_INTEGER_MODES[image.mode]).astype(np.uint8)
        return Image.fromarray(narrow).convert("RGB")
    if image.mode == "F":
        raise ValueError("floating-point images have no fixed range")
    # Palette images may carry transparency that only converts cleanly via RGBA.
    return (image.convert("RGBA") if image.mode in ("P", "PA") else image).convert("RGB")
