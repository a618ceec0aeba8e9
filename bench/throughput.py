"""Training and sampling throughput of NADE and MADE on binarized MNIST, beside the machine's
measured matmul GFLOP/s, all in one run. Prints a JSON record (medians of repeats).

    python bench/throughput.py [--out bench/results/throughput.json]
"""

from __future__ import annotations

import argparse
import json
import platform
from datetime import date
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from timing import median_rate

from arbench.models.made import MADE
from arbench.models.nade import NADE
from arbench.training.trainer import flush_denormals

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "binarized_mnist"


def binarized_mnist(n: int) -> torch.Tensor:
    """Real binarized MNIST training images when ../shared is there, else Bernoulli(0.13)."""
    path = SHARED / "binarized_mnist_train.amat.gz"
    if path.exists():
        from arbench.data.mnist import parse_amat

        rows = parse_amat(path)
        return torch.from_numpy(rows[np.random.default_rng(0).permutation(len(rows))[:n]]).long()
    return (torch.rand(n, 784) < 0.13).long()


def matmul_gflops(batch: int) -> float:
    a, b = torch.randn(batch, 784), torch.randn(784, 500)
    reps = 50

    def work():
        for _ in range(reps):
            a @ b

    return median_rate(work, reps * 2 * batch * 784 * 500) / 1e9


def training_rate(model, x, batch, optimizer, steps=10) -> float:
    def work():
        for i in range(steps):
            chunk = x[(i * batch) % (len(x) - batch) :][:batch]
            optimizer.zero_grad(set_to_none=True)
            model.nll(chunk).mean().backward()
            optimizer.step()

    return median_rate(work, steps * batch)


class RemaskingMADE(torch.nn.Module):
    """The reference: a plain masked MLP that multiplies weights by masks on every forward."""

    def __init__(self, made: MADE):
        super().__init__()
        linears = made.linears()
        self.weights = torch.nn.ParameterList(
            torch.nn.Parameter(m.weight.detach().clone()) for m in linears
        )
        self.biases = torch.nn.ParameterList(
            torch.nn.Parameter(m.bias.detach().clone()) for m in made.layers
        )
        self.masks = made.masks(0)

    def logits(self, values):
        hidden = values
        last = len(self.biases) - 1
        for i in range(last):
            hidden = F.relu(F.linear(hidden, self.weights[i] * self.masks[i], self.biases[i]))
        out = F.linear(hidden, self.weights[last] * self.masks[last], self.biases[last])
        return out + F.linear(values, self.weights[last + 1] * self.masks[last + 1])

    def nll(self, x):
        values = x.float()
        return F.binary_cross_entropy_with_logits(
            self.logits(values), values, reduction="none"
        ).sum(1)

    @torch.inference_mode()
    def sample(self, n):
        """Each pixel from a full forward pass over the image drawn so far."""
        x = torch.zeros(n, 784)
        for d in range(784):
            x[:, d] = torch.bernoulli(torch.sigmoid(self.logits(x)[:, d]))
        return x


def made_flops_per_image(model: MADE, dense: bool) -> float:
    """Multiply-add FLOPs of forward + backward (x3) of the masked matmuls actually executed."""
    total = 0
    for linear, blocks in zip(model.linears(), model.blocks, strict=True):
        if dense:
            total += linear.in_features * linear.out_features
        else:
            total += sum((r1 - r0) * c for r0, r1, c in blocks)
    return 3 * 2 * total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    flush_denormals()  # as a training process does
    torch.manual_seed(0)
    x = binarized_mnist(5000)
    record = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "data": "binarized MNIST train" if SHARED.exists() else "random Bernoulli(0.13)",
        "matmul_gflops": {b: matmul_gflops(b) for b in (100, 500)},
    }

    nade = NADE((1, 28, 28), 2, {"hidden": 500})
    optimizer = torch.optim.Adam(nade.parameters(), fused=True)
    record["nade500_train_images_per_s"] = {"fused": training_rate(nade, x, 100, optimizer)}
    nade.config["kernel"] = "reference"
    record["nade500_train_images_per_s"]["reference"] = training_rate(
        nade, x, 100, optimizer, steps=2
    )

    made_rates = {}
    for batch in (100, 500):
        made = MADE((1, 28, 28), 2, {"hidden": [500]})
        reference = RemaskingMADE(made)
        ours = training_rate(made, x, batch, torch.optim.Adam(made.parameters(), fused=True))
        plain = training_rate(reference, x, batch, torch.optim.Adam(reference.parameters()))
        made_rates[batch] = {
            "ours": ours,
            "reference": plain,
            "speedup": ours / plain,
            "ours_gflops": ours * made_flops_per_image(made, dense=False) / 1e9,
            "reference_gflops": plain * made_flops_per_image(made, dense=True) / 1e9,
        }
        made_rates[batch]["ours_fraction_of_matmul"] = (
            made_rates[batch]["ours_gflops"] / record["matmul_gflops"][batch]
        )
    record["made500_train"] = made_rates

    made = MADE((1, 28, 28), 2, {"hidden": [500]})
    record["made500_sample_images_per_s"] = {
        "ours_batch_1000": median_rate(
            lambda: made.sample(1000, seed=0), 1000, repeats=3, warmup=1
        ),
        "full_forward_per_pixel_batch_100": median_rate(
            lambda: RemaskingMADE(made).sample(100), 100, repeats=3, warmup=1
        ),
    }
    text = json.dumps(record, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
