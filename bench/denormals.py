"""Denormal floats and weight decay: MADE 784-500-784 (one mask) trained with Adam and weight
decay 1e-4 on binarized MNIST, batch 100, in a fresh process with and without
`flush_denormals()` (set before PyTorch creates its worker threads). Weights that never get a
gradient (masked connections, always-off border pixels) are moved by the decay alone, into
denormal floats. Prints and records images/s per block of steps, and how many parameters are
denormal at the end of each block.

    python bench/denormals.py --data-dir ../shared/data/binarized_mnist \\
        --out bench/results/denormals.json
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import torch
from valid_likelihood import binarized_mnist

from arbench.models.made import MADE
from arbench.training.trainer import denormal_count, flush_denormals


def measure(data_dir: Path, blocks: int, steps: int) -> list[dict]:
    data = binarized_mnist(data_dir)
    x = torch.from_numpy(data.train.reshape(len(data.train), -1)).long()
    torch.manual_seed(0)
    model = MADE((1, 28, 28), 2, {"hidden": [500], "masks": 1, "seed": 0})
    optimizer = torch.optim.Adam(model.parameters(), 1e-3, weight_decay=1e-4, fused=True)
    generator = torch.Generator().manual_seed(0)
    rows = []
    for block in range(1, blocks + 1):
        started = time.perf_counter()
        for _ in range(steps):
            batch = x[torch.randint(0, len(x), (100,), generator=generator)]
            optimizer.zero_grad(set_to_none=True)
            model.nll(batch).mean().backward()
            optimizer.step()
        seconds = time.perf_counter() - started
        rows.append(
            {
                "steps": block * steps,
                "images_per_second": 100 * steps / seconds,
                "denormal_parameters": denormal_count(model.parameters()),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--blocks", type=int, default=30)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--flush", choices=["on", "off"], help="measure in this process")
    args = parser.parse_args()
    if args.flush:
        if args.flush == "on":
            flush_denormals()
        measure(args.data_dir, args.blocks, args.steps)
        return
    runs = {}
    for flush in ("off", "on"):
        print(f"flush {flush}", flush=True)
        command = [sys.executable, __file__, "--data-dir", str(args.data_dir), "--flush", flush]
        command += ["--blocks", str(args.blocks), "--steps", str(args.steps)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        runs[flush] = [json.loads(line) for line in output.splitlines()]
        for row in runs[flush]:
            print(json.dumps(row))
    record = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "settings": {"blocks": args.blocks, "steps": args.steps, "batch": 100, "lr": 1e-3},
        "runs": runs,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
