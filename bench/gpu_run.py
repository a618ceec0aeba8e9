"""One GPU, the full config's binarized-MNIST branch, measured in one call.

    python bench/gpu_run.py --data-dir DIR --out OUT [--minutes 7.5] [--config config/full.yaml]
    python bench/gpu_run.py --data-dir DIR --out OUT --device cpu --shrink   # the CI smoke run

DIR holds `binarized_mnist_{train,valid,test}.amat` (or `.amat.gz`); without the test split the
valid split stands in for it, and the record says so. In order:

1. the GPU's dense matmul rate on MADE's shapes, forward and backward, in float32, TF32 and bf16
   (the ceiling each training step is compared with), and on one large square product;
2. paper-sized MADE training steps (784-8000-8000-784, 32 masks) at batches 100 and 1,000, in
   float32 and TF32: achieved TFLOP/s of its matmuls beside the dense rate of the same shapes;
3. every model of the config's `mnist` entry through the stage commands the workflow runs
   (`python -m arbench.train`, `.sample`, `.evaluate`, with the settings `arbench.core.plan` gives
   them), each training job capped at its share of the time left (`max_minutes`). Mixture models
   run on the CPU beside the GPU jobs, as Snakemake runs them with `--resources gpu=1`.

Writes `gpu_run.json` (per job: wall time, images/s, peak GPU memory, valid and test NLL) and the
neural models' metrics CSVs to OUT. `--shrink` runs the same steps at tiny sizes (what CI runs on
the CPU, where only float32 is measured).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from functools import partial
from pathlib import Path

import torch
import yaml
from timing import median_seconds

from arbench.core import plan
from arbench.data.format import save_dataset
from arbench.data.mnist import check_binarized_split
from arbench.models.made import MADE
from arbench.training.checkpoints import load as load_file

SPLITS = ("train", "valid", "test")
MADE_WIDTHS = [784, 8000, 8000, 784]
MADE_MASKS = 32
# --shrink: sizes and epochs only, every other setting as the config gives it
SHRUNK_WIDTHS = [784, 32, 32, 784]
SHRUNK_MASKS = 2
SHRUNK_SETTINGS = {
    "nade": {"hidden": 8, "epochs": 1},
    "made": {"hidden": [16, 16], "epochs": 1},
    "pixelcnn": {"channels": 4, "layers": 2, "head": 8, "epochs": 1},
    "gmm": {"components": 2, "max_iter": 5, "reg_covar": 0.1},
    "gmm_diag": {"components": 2, "max_iter": 5},
    "pca_gmm": {"components": 2, "max_iter": 5, "reg_covar": 0.3},
    "mob": {"components": 3, "max_iter": 3},
}
SHRUNK_SAMPLES = 10
SHRUNK_IMAGES = 3000  # a split


def found(folder: Path, split: str) -> Path | None:
    for name in (f"binarized_mnist_{split}.amat", f"binarized_mnist_{split}.amat.gz"):
        if (folder / name).exists():
            return folder / name
    return None


def mnist(folder: Path, out: Path, limit: int | None = None) -> tuple[Path, str]:
    """The dataset file (at most `limit` images a split), and which split the test NLL is
    measured on."""
    splits = {}
    for split in SPLITS:
        path = found(folder, split)
        if path is not None:
            splits[split] = check_binarized_split(path, split).reshape(-1, 1, 28, 28)[:limit]
    measured_on = "test"
    if "test" not in splits:
        splits["test"], measured_on = splits["valid"], "valid (the test split is not here)"
    save_dataset(out, splits, 2, {"source": "binarized_mnist", "test_is": measured_on})
    return out, measured_on


def mlp_flops(batch: int, widths: list[int], direct: bool = True) -> float:
    """Forward + backward (3x) multiply-add FLOPs of the matmuls of a step."""
    pairs = list(zip(widths[:-1], widths[1:], strict=True))
    total = sum(a * b for a, b in pairs) + (widths[0] * widths[-1] if direct else 0)
    return 3 * 2 * batch * total


def precisions(device) -> tuple[str, ...]:
    return ("float32", "tf32", "bf16") if device.type == "cuda" else ("float32",)


def precision(name: str):
    torch.backends.cuda.matmul.allow_tf32 = name == "tf32"
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=name == "bf16")


def dense_step(layers, direct, x, name: str) -> None:
    """Forward and backward of a plain MLP of MADE's shapes, in one precision."""
    with precision(name):
        hidden = x
        for layer in layers[:-1]:
            hidden = torch.relu(layer(hidden))
        out = layers[-1](hidden) + direct(x)
    out.float().square().mean().backward()


def dense_rates(device, widths: list[int]) -> dict:
    """TFLOP/s of a plain (unmasked) MLP's forward and backward matmuls of MADE's shapes."""
    rates = {}
    layers = [
        torch.nn.Linear(a, b, device=device) for a, b in zip(widths[:-1], widths[1:], strict=True)
    ]
    direct = torch.nn.Linear(widths[0], widths[-1], bias=False, device=device)
    for batch in (100, 1000):
        x = torch.rand(batch, widths[0], device=device)
        for name in precisions(device):
            seconds = median_seconds(
                partial(dense_step, layers, direct, x, name), 20, device=device
            )
            rates[f"{name}_batch{batch}"] = mlp_flops(batch, widths) / seconds / 1e12
    if device.type == "cuda":
        a = torch.rand(8192, 8192, device=device)
        for name in ("tf32", "bf16"):
            seconds = median_seconds(partial(square_product, a, name), 10, device=device)
            rates[f"{name}_square8192"] = 2 * 8192**3 / seconds / 1e12
    torch.backends.cuda.matmul.allow_tf32 = False
    return rates


def square_product(a, name: str) -> None:
    with precision(name):
        a @ a


def made_steps(device, dense: dict, widths: list[int], masks: int) -> dict:
    """MADE training steps (Adam, masks cycling) against the dense rate of the same shapes."""
    made = MADE((1, 28, 28), 2, {"hidden": widths[1:-1], "masks": masks}).to(device)
    optimizer = torch.optim.Adam(made.parameters(), lr=2e-4, fused=True)
    x = (torch.rand(1000, 784, device=device) < 0.13).long()
    results = {}
    for batch in (100, 1000):
        for name in precisions(device):
            if name == "bf16":  # not a training option: the dense rate shows its ceiling
                continue

            def step(batch=batch, name=name):
                with precision(name):
                    loss = made.nll(x[:batch]).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

            seconds = median_seconds(step, 32, device=device)
            achieved = mlp_flops(batch, widths) / seconds / 1e12
            results[f"{name}_batch{batch}"] = {
                "step_ms": seconds * 1000,
                "images_per_s": batch / seconds,
                "tflops": achieved,
                "dense_tflops": dense[f"{name}_batch{batch}"],
                "fraction_of_dense": achieved / dense[f"{name}_batch{batch}"],
            }
    torch.backends.cuda.matmul.allow_tf32 = False
    return results


def run(command: list[str], log: Path) -> float:
    started = time.perf_counter()
    with open(log, "a") as handle:
        handle.write(f"$ {' '.join(command)}\n")
        handle.flush()
        subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - started


def branch_job(model: str, settings: dict, data: Path, work: Path, samples: int, log: Path):
    """Train, sample and evaluate one model by the stage commands; returns its record."""
    python = [sys.executable, "-m"]
    model_file, curve = work / f"{model}.pt", work / f"{model}.metrics.csv"
    record = {"settings": settings}
    record["train_seconds"] = run(
        [
            *python,
            "arbench.train",
            "--data",
            str(data),
            "--model",
            model,
            "--settings",
            json.dumps(settings),
            "--out",
            str(model_file),
            "--metrics",
            str(curve),
            "--checkpoint",
            str(work / f"{model}.ckpt"),
        ],
        log,
    )
    record["sample_seconds"] = run(
        [
            *python,
            "arbench.sample",
            "--model",
            str(model_file),
            "--n",
            str(samples),
            "--seed",
            "0",
            "--out",
            str(work / f"{model}.samples.npz"),
        ],
        log,
    )
    metrics = work / f"{model}.json"
    record["evaluate_seconds"] = run(
        [
            *python,
            "arbench.evaluate",
            "--data",
            str(data),
            "--model",
            str(model_file),
            "--out",
            str(metrics),
        ],
        log,
    )
    summary = load_file(model_file).get("summary", {})
    evaluated = json.loads(metrics.read_text())
    record.update(
        epochs=summary.get("epochs"),
        best_valid_nll=summary.get("best_valid_nll"),
        test_nll=evaluated["nll_nats"],
        test_nll_se=evaluated["nll_nats_se"],
        peak_gpu_memory_gib={
            stage: value / 2**30
            for stage, value in (
                ("train", summary.get("peak_gpu_memory_bytes")),
                ("evaluate", evaluated.get("peak_gpu_memory_bytes")),
            )
            if value
        },
        device=summary.get("device"),
    )
    if curve.exists() and plan.MODELS[model].neural:
        rates = [float(r.split(",")[5]) for r in curve.read_text().splitlines()[1:]]
        record["train_images_per_s_median"] = statistics.median(rates)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--config", type=Path, default=Path("config/full.yaml"))
    parser.add_argument("--minutes", type=float, default=7.5, help="the whole run's budget")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--shrink", action="store_true", help="tiny sizes, for a smoke run")
    parser.add_argument("--models", nargs="+", help="only these models of the branch")
    parser.add_argument("--no-rates", action="store_true", help="skip the matmul measurements")
    parser.add_argument(
        "--set", type=json.loads, default={}, help='settings over the config\'s: {"made": {...}}'
    )
    args = parser.parse_args()
    started = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    widths, masks = (SHRUNK_WIDTHS, SHRUNK_MASKS) if args.shrink else (MADE_WIDTHS, MADE_MASKS)
    record = {
        "date": date.today().isoformat(),
        "device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor(),
        "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(),
        "shrunk": args.shrink,
        "made_widths": widths,
        "made_masks": masks,
    }

    def save():  # after every step, so that a run cut short still reports what it measured
        record["wall_seconds"] = time.monotonic() - started
        (args.out / "gpu_run.json").write_text(json.dumps(record, indent=2) + "\n")

    if not args.no_rates:
        record["dense_tflops"] = dense_rates(device, widths)
        save()
        record["made_steps"] = made_steps(device, record["dense_tflops"], widths, masks)
        save()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    print(json.dumps(record, indent=2), flush=True)

    config = yaml.safe_load(args.config.read_text())
    work = Path(tempfile.mkdtemp(prefix="gpu_run."))  # models and samples stay out of OUT
    limit = SHRUNK_IMAGES if args.shrink else None
    data, measured_on = mnist(args.data_dir, work / "mnist.npz", limit)
    record["nll_measured_on"] = measured_on
    models = args.models or config["datasets"]["mnist"]["models"]
    samples = SHRUNK_SAMPLES if args.shrink else config["samples"]["count"]

    def settings(model: str) -> dict:
        resolved = plan.job_settings(config, "mnist", model)
        if args.shrink:
            resolved.update(SHRUNK_SETTINGS[model])
        resolved.update(args.set.get(model, {}))
        if plan.MODELS[model].neural:
            resolved["device"] = args.device
        return resolved

    # Training time left after the measurements above, less ~1.5 min for sampling, evaluation
    # and start-up, shared among the GPU jobs, the paper-sized MADE and PixelCNN taking the most.
    left = args.minutes - (time.monotonic() - started) / 60 - 1.5
    weights = {"nade": 0.35, "made": 0.65, "pixelcnn": 0.65}
    neural = [m for m in models if plan.MODELS[m].neural]
    shares = {m: weights.get(m, 0.5) / sum(weights.get(n, 0.5) for n in neural) for m in neural}
    record["jobs"] = {}
    with ThreadPoolExecutor(max_workers=1) as cpu:
        pending = {
            m: cpu.submit(branch_job, m, settings(m), data, work, samples, work / f"{m}.log")
            for m in models
            if not plan.MODELS[m].neural
        }
        for model in neural:
            chosen = settings(model)
            chosen["max_minutes"] = max(0.2, left * shares[model])
            record["jobs"][model] = branch_job(
                model, chosen, data, work, samples, work / f"{model}.log"
            )
            shutil.copy(work / f"{model}.metrics.csv", args.out / f"{model}.metrics.csv")
            save()
            print(json.dumps({model: record["jobs"][model]}, indent=2), flush=True)
        for model, future in pending.items():
            record["jobs"][model] = future.result()
    logs = "".join((work / f"{m}.log").read_text() for m in models)
    (args.out / "gpu_run.log").write_text(logs)
    shutil.rmtree(work)
    save()
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
