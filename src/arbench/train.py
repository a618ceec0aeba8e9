"""The train stage: fit one model on one dataset file.

`python -m arbench.train --data D.npz --model nade --settings '{...}' --out M.pt` writes the model
(best parameters by valid NLL) to `--out`, per-epoch metrics to `--metrics` and keeps a resumable
checkpoint at `--checkpoint`. Settings are JSON (inline or a file) and are checked against the
model's settings in `arbench.core.plan` before anything runs. Neural models train in the loop of
`arbench.training.trainer` (minibatches, early stopping on the valid NLL, checkpoints from which a
killed job resumes to the same parameters as an uninterrupted run, on CPU). Mixture models fit in
one call.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from arbench.core.cli import STOPPED, json_object, run_stage, stage_parser
from arbench.core.plan import SettingsError, build_model, entry_for, split_settings
from arbench.data.format import load_dataset
from arbench.training import checkpoints, convergence
from arbench.training.checkpoints import resolve_device
from arbench.training.trainer import Trainer, flush_denormals, mean_nll, write_metrics

log = logging.getLogger("arbench.train")


class NonFiniteFit(RuntimeError):
    """A model fitted to a non-finite likelihood; nothing was written."""


def train(
    data_path: str | Path,
    model_name: str,
    settings: dict,
    out: str | Path,
    metrics: str | Path | None = None,
    checkpoint: str | Path | None = None,
    keep_checkpoint: bool = False,
) -> dict:
    """Train `model_name` on the dataset file and write the model to `out`; returns a summary."""
    summary = fit(
        load_dataset(data_path), model_name, settings, out, metrics, checkpoint, keep_checkpoint
    )
    return {**summary, "dataset": str(data_path)}


def fit(
    data,
    model_name: str,
    settings: dict,
    out: str | Path,
    metrics: str | Path | None = None,
    checkpoint: str | Path | None = None,
    keep_checkpoint: bool = False,
) -> dict:
    """Train on an in-memory dataset (train and valid splits are used) and write `out`. The
    training checkpoint is removed once the model is written, unless `keep_checkpoint`: then a
    run that is started again after it finished writes the model without training again."""
    out = Path(out)
    metrics = Path(metrics) if metrics else None
    checkpoint = Path(checkpoint) if checkpoint else out.with_suffix(".ckpt")
    architecture, training = split_settings(model_name, settings)
    if training.get("threads"):
        torch.set_num_threads(training["threads"])
    model = build_model(model_name, data.shape, data.levels, architecture)
    started = time.perf_counter()
    if entry_for(model_name, settings).neural:
        model, state, record = Trainer(model, data, training, checkpoint, metrics).run(
            keep_checkpoint
        )
        device = resolve_device(training["device"])
        summary = {
            "epochs": state["epoch"],
            "best_epoch": state["best_epoch"],
            "best_valid_nll": state["best_nll"],
            "training": record,
            "seconds": state["seconds"],  # every process's, a resumed training's included
        }
        if device.type == "cuda":
            summary["peak_gpu_memory_bytes"] = torch.cuda.max_memory_allocated(device)
        device = str(device)
        model.cpu()
    else:
        fit = model.fit(data.train, data.valid)
        valid_nll = mean_nll(model, data.valid)
        if not math.isfinite(valid_nll):
            raise NonFiniteFit(
                f"{model_name} fitted to a valid NLL of {valid_nll} with settings "
                f"{json.dumps(architecture, sort_keys=True)}: some valid image has probability "
                "0 under it (for mob, smoothing 0 lets a pixel's probability reach 0 or 1). "
                "Change the settings; no model was written."
            )
        write_metrics(
            metrics,
            [
                {
                    "epoch": 1,
                    "train_nll": mean_nll(model, data.train),
                    "valid_nll": valid_nll,
                    "seconds": time.perf_counter() - started,
                }
            ],
        )
        device = "cpu"
        fit["training"]["best_valid_nll"] = valid_nll
        summary = {**fit, "best_valid_nll": valid_nll}
        log.info("fit ended: %s", convergence.describe(fit["training"]))
    summary.setdefault("seconds", time.perf_counter() - started)
    summary.update(
        model=model_name,
        device=device,
        parameters=parameter_count(model),
    )
    checkpoints.save({**model.to_checkpoint(), "summary": summary}, out)
    if not keep_checkpoint:
        checkpoint.unlink(missing_ok=True)
    log.info("wrote %s: %s", out, json.dumps(summary))
    return summary


def parameter_count(model) -> int:
    if isinstance(model, torch.nn.Module):
        return sum(p.numel() for p in model.parameters())
    # the numbers of its state (a user's model may keep plain values beside its tensors)
    state = model.to_checkpoint()["state"].values()
    return sum(int(np.prod(v.shape)) for v in state if hasattr(v, "shape"))


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("arbench.train", "Train one model on one dataset file.")
    parser.add_argument("--data", required=True, help="dataset file (.npz)")
    parser.add_argument(
        "--model",
        required=True,
        help="a model of arbench.core.plan.MODELS, an installed arbench.models entry point, or "
        "a name for the class the settings name (`class`)",
    )
    parser.add_argument(
        "--settings",
        type=json_object,
        default={},
        help="model and training settings: a JSON object, inline or in a file",
    )
    parser.add_argument("--out", required=True, help="model file to write (.pt)")
    parser.add_argument("--metrics", help="per-epoch metrics CSV")
    parser.add_argument("--checkpoint", help="resumable checkpoint (default: OUT with .ckpt)")
    parser.add_argument(
        "--keep-checkpoint",
        action="store_true",
        help="keep the checkpoint once the model is written (the workflow removes it when the "
        "run succeeds): started again, the job writes the model without training again",
    )
    args = parser.parse_args(argv)
    flush_denormals()
    return run_stage(
        f"train {args.model} on {args.data}",
        lambda: train(
            args.data,
            args.model,
            args.settings,
            args.out,
            args.metrics,
            args.checkpoint,
            args.keep_checkpoint,
        ),
        inputs=(args.data,),
        outputs=(args.out, args.metrics),
        on_stop=when_stopped(args.model, args.settings),
    )


def when_stopped(model: str, settings: dict) -> str:
    """What a training stopped by a signal does when run again: a network resumes from the
    checkpoint it wrote as it stopped; a fit starts again (it keeps no checkpoint)."""
    try:
        neural = entry_for(model, settings).neural
    except SettingsError:  # the stage itself says what is wrong with the model
        return STOPPED
    if neural:
        return (
            "No output was left half-written and the checkpoint it wrote as it stopped is "
            "kept: run it again and the training resumes where it stopped."
        )
    return "No output was left half-written; run it again to fit the model from the start."


if __name__ == "__main__":
    sys.exit(main())
