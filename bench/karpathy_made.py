"""MADE-500 training steps: ours against karpathy/pytorch-made's own `made.py`, in one process.

    python bench/karpathy_made.py --snapshot DIR [--out bench/results/karpathy_made.json]

DIR is a git snapshot of github.com/karpathy/pytorch-made (the search tool's `fetch` brings one);
its `made.py` is read from the snapshot at run time and imported, never copied into this project.
Both models are 784-500-784 with one mask, natural ordering and no direct connections, each with the
optimizer its code trains with (ours: `arbench.training.trainer.make_optimizer`, fused Adam; theirs:
`torch.optim.Adam(lr=1e-3, weight_decay=1e-4)` as its `run.py`), the same learning rate and weight
decay, on real binarized MNIST training images when `../shared` is there. Blocks of steps of the two
alternate, so both see the same machine; the ratio is the median over pairs of blocks, and beside it
the ratio of each side's fastest block (on a noisy shared machine, the one least disturbed).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import binarized_mnist, made_flops_per_image  # noqa: E402
from timing import paired_blocks, rates_summary  # noqa: E402

from arbench.core.plan import split_settings  # noqa: E402
from arbench.models.made import MADE  # noqa: E402
from arbench.training.trainer import flush_denormals, make_optimizer  # noqa: E402

LR, WEIGHT_DECAY = 1e-3, 1e-4


def load_their_made(snapshot: Path):
    """Their MADE class, from made.py as committed in the snapshot."""
    git_dir = snapshot / ".git" if (snapshot / ".git").exists() else snapshot
    show = ["git", "--git-dir", str(git_dir), "show", "HEAD:made.py"]
    source = subprocess.run(show, capture_output=True, text=True, check=True).stdout
    folder = Path(tempfile.mkdtemp())
    (folder / "karpathy_made.py").write_text(source)
    spec = importlib.util.spec_from_file_location("karpathy_made", folder / "karpathy_made.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MADE


def ours_loss(model, chunk):
    return model.nll(chunk).mean()


def theirs_loss(model, chunk):
    values = chunk.float()
    return F.binary_cross_entropy_with_logits(model(values), values, reduction="none").sum(1).mean()


def compare(their_class, x, batch: int, pairs: int, block: int) -> dict:
    torch.manual_seed(0)
    ours = MADE((1, 28, 28), 2, {"hidden": [500], "direct": False})
    _, training = split_settings("made", {"lr": LR, "weight_decay": WEIGHT_DECAY})
    our_optimizer = make_optimizer(ours, training)
    theirs = their_class(784, [500], 784, num_masks=1, natural_ordering=True)
    their_optimizer = torch.optim.Adam(theirs.parameters(), LR, weight_decay=WEIGHT_DECAY)
    ratios, ours_rates, their_rates = paired_blocks(
        (ours, our_optimizer, ours_loss),
        (theirs, their_optimizer, theirs_loss),
        x,
        batch,
        pairs,
        block,
    )
    return {
        **rates_summary(ratios, ours_rates, their_rates),
        # the fastest block of each: what the code can do when the shared machine lets it
        "speedup_of_fastest_blocks": max(ours_rates) / max(their_rates),
        "flops_ceiling": made_flops_per_image(ours, dense=True)
        / made_flops_per_image(ours, dense=False),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", type=Path, required=True)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--pairs", type=int, default=25)
    args = parser.parse_args()
    flush_denormals()  # as a training process does, for both
    their_class = load_their_made(args.snapshot)
    x = binarized_mnist(20_000)
    record = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "optimizers": {"ours": "fused Adam", "theirs": "torch.optim.Adam (run.py)"},
        "batch": {
            str(batch): compare(their_class, x, batch, args.pairs, block)
            for batch, block in ((100, 50), (500, 20))
        },
    }
    text = json.dumps(record, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
