"""Gated PixelCNN: sampling that computes only what the next pixel needs against one full pass
per pixel, and our training step against pytorch-generative's Gated PixelCNN, in one process.

    python bench/pixelcnn_speed.py --snapshot DIR [--out bench/results/pixelcnn_speed.json]

DIR is a git snapshot of github.com/EugenHotaj/pytorch-generative (the search tool's `fetch`
brings one); its `gated_pixel_cnn.py`, `models/base.py` and `nn/convolution.py` are read from the
snapshot at run time into a temporary package and imported, never copied into this project.

- **Sampling** (`PixelCNN.fast_sample` against `PixelCNN.naive_sample`, the same model, the same
  generator: the same images): seconds for a batch of MNIST-shaped images, and the fast sampler's
  time over one forward pass of the batch (1 would be the floor the method aims at).
- **Training step** at the same width and depth (their `n_gated` counts the layers after the
  first, ours counts every layer; the same head width), each with Adam at the same learning
  rate, Bernoulli loss, on real binarized MNIST when `../shared` is there. Blocks of steps of the
  two alternate, so both see the same machine; the ratio is the median over pairs of blocks.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from karpathy_made import ours_loss  # noqa: E402
from throughput import binarized_mnist  # noqa: E402
from timing import paired_blocks, rates_summary  # noqa: E402

from arbench.core.plan import split_settings  # noqa: E402
from arbench.models.pixelcnn import PixelCNN  # noqa: E402
from arbench.training.trainer import flush_denormals, make_optimizer  # noqa: E402

THEIR_FILES = (
    "pytorch_generative/models/autoregressive/gated_pixel_cnn.py",
    "pytorch_generative/models/base.py",
    "pytorch_generative/nn/convolution.py",
)
# What their modules import of their package, and nothing else (its own __init__ files pull in
# datasets and torchvision)
STUB_INITS = {
    "pytorch_generative/__init__.py": "",
    "pytorch_generative/models/__init__.py": "",
    "pytorch_generative/models/autoregressive/__init__.py": "",
    "pytorch_generative/nn/__init__.py": (
        "from pytorch_generative.nn.convolution import GatedActivation  # noqa: F401\n"
    ),
}
LR = 1e-3


def load_their_gated_pixelcnn(snapshot: Path):
    git_dir = snapshot / ".git" if (snapshot / ".git").exists() else snapshot
    root = Path(tempfile.mkdtemp())
    for name in THEIR_FILES:
        show = ["git", "--git-dir", str(git_dir), "show", f"HEAD:{name}"]
        source = subprocess.run(show, capture_output=True, text=True, check=True).stdout
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(source)
    for name, text in STUB_INITS.items():
        (root / name).write_text(text)
    sys.path.insert(0, str(root))
    module = importlib.import_module("pytorch_generative.models.autoregressive.gated_pixel_cnn")
    commit = subprocess.run(
        ["git", "--git-dir", str(git_dir), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return module.GatedPixelCNN, commit


def theirs_loss(model, chunk):
    images = chunk.float().view(-1, 1, 28, 28)
    logits = model(images)
    return (
        F.binary_cross_entropy_with_logits(logits, images, reduction="none").sum((1, 2, 3)).mean()
    )


def training(their_class, x, channels, layers, head, batch, pairs, block) -> dict:
    torch.manual_seed(0)
    config = {"channels": channels, "layers": layers, "head": head, "first_kernel": 7}
    ours = PixelCNN((1, 28, 28), 2, config)
    our_optimizer = make_optimizer(ours, split_settings("pixelcnn", {"lr": LR})[1])
    theirs = their_class(1, 1, n_gated=layers - 1, gated_channels=channels, head_channels=head)
    their_optimizer = torch.optim.Adam(theirs.parameters(), LR)
    ratios, ours_rates, their_rates = paired_blocks(
        (ours, our_optimizer, ours_loss),
        (theirs, their_optimizer, theirs_loss),
        x,
        batch,
        pairs,
        block,
    )
    return {
        "parameters": {
            "ours": sum(p.numel() for p in ours.parameters()),
            "theirs": sum(p.numel() for p in theirs.parameters()),
        },
        **rates_summary(ratios, ours_rates, their_rates),
    }


@torch.inference_mode()
def sampling(channels, layers, head, n, repeats, naive: bool = True) -> dict:
    """Seconds to draw `n` images each way; without `naive`, the naive sampler's time is taken
    as what it is, one forward pass per pixel (784 of them), from the measured forward pass."""
    torch.manual_seed(0)
    config = {"channels": channels, "layers": layers, "head": head, "first_kernel": 7}
    model = PixelCNN((1, 28, 28), 2, config).eval()
    images = torch.zeros(n, 1, 28, 28, dtype=torch.long)

    def timed(work) -> float:
        started = time.perf_counter()
        work()
        return time.perf_counter() - started

    def fast_draw():
        return model.fast_sample(n, torch.Generator().manual_seed(0))

    def naive_draw():
        return model.naive_sample(n, torch.Generator().manual_seed(0))

    forward = min(timed(lambda: model.features(images)) for _ in range(repeats))
    fast = min(timed(fast_draw) for _ in range(repeats))
    found = {"images": n, "forward_pass_seconds": forward, "fast_seconds": fast}
    if naive:
        found["naive_seconds"] = timed(naive_draw)
        found["same_images"] = torch.equal(fast_draw(), naive_draw())
    else:
        found["naive_seconds_as_784_forward_passes"] = 784 * forward
    slow = found.get("naive_seconds") or found["naive_seconds_as_784_forward_passes"]
    return {**found, "speedup": slow / fast, "fast_over_one_forward_pass": fast / forward}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", type=Path, required=True)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--pairs", type=int, default=9)
    args = parser.parse_args()
    flush_denormals()  # as a training process does, for both
    their_class, commit = load_their_gated_pixelcnn(args.snapshot)
    x = binarized_mnist(10_000)
    sizes = {"study": (16, 7, 32), "paper": (128, 11, 32)}  # channels, layers, head
    record = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "pytorch_generative_commit": commit,
        "sampling": {
            "study": sampling(*sizes["study"], n=50, repeats=3),
            "paper": sampling(*sizes["paper"], n=16, repeats=2, naive=False),
        },
        "training": {
            "study": training(their_class, x, *sizes["study"], 50, args.pairs, 10),
            "paper": training(their_class, x, *sizes["paper"], 32, max(3, args.pairs // 3), 2),
        },
    }
    text = json.dumps(record, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
