"""The train stage: fit one model on one dataset file.

`python -m arbench.train --data D.npz --model nade --settings '{...}' --out M.pt` writes the model
(best parameters by valid NLL) to `--out`, per-epoch metrics to `--metrics` and keeps a resumable
checkpoint at `--checkpoint`. Settings are JSON (inline or a file) and are checked against the
model's settings in `arbench.plan` before anything runs. Neural models train with minibatches
(Adam or Adagrad, a per-epoch learning-rate decay, early stopping on the valid NLL); a checkpoint
is written atomically after every epoch with the optimizer, scheduler and RNG states, so a killed
job started again resumes and, on CPU, ends with the same parameters as an uninterrupted run.
Mixture models fit in one call.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import logging
import math
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from arbench import checkpoints, convergence
from arbench.checkpoints import resolve_device
from arbench.cli import Terminated, json_object, run_stage, stage_parser
from arbench.data.format import load_dataset
from arbench.files import atomic_write
from arbench.plan import SettingsError, build_model, model_entry, split_settings

log = logging.getLogger("arbench.train")

# Settings a killed run may be resumed with changed: they steer when to stop and where to run,
# not the state a checkpoint holds.
RESUMABLE_CHANGES = (
    "epochs",
    "patience",
    "max_minutes",
    "checkpoint_minutes",
    "validate_every",
    "device",
    "threads",
)
METRIC_FIELDS = ["epoch", "train_nll", "valid_nll", "lr", "seconds", "images_per_second"]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def load_checkpoint(path: Path) -> dict:
    return checkpoints.load(
        path, "training checkpoint", f"Delete {path} to train this model from the start."
    )


def write_metrics(path: Path | None, rows: list[dict]) -> None:
    if path is None:
        return
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=METRIC_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda handle: handle.write(text.getvalue().encode()))


@torch.inference_mode()
def mean_nll(model, images: np.ndarray, batch: int = 2000) -> float:
    """Mean NLL (nats/image) of the model's likelihood over `images`."""
    total = 0.0
    for start in range(0, len(images), batch):
        total += float(-model.log_prob(images[start : start + batch]).sum())
    return total / len(images)


def make_optimizer(model, training: dict):
    # Fused: one pass over each parameter instead of one per arithmetic operation.
    settings = {"lr": training["lr"], "weight_decay": training["weight_decay"]}
    if training["optimizer"] == "adam":
        return torch.optim.Adam(model.parameters(), fused=True, **settings)
    if training["optimizer"] == "adagrad":
        on_cpu = next(model.parameters()).device.type == "cpu"  # fused Adagrad is CPU-only
        return torch.optim.Adagrad(model.parameters(), fused=on_cpu, **settings)
    raise ValueError(f"unknown optimizer {training['optimizer']!r}; expected adam or adagrad")


def make_average(model, decay: float) -> AveragedModel | None:
    if not decay:
        return None
    if not 0.0 < decay < 1.0:
        raise ValueError(f"averaging must be 0 (off) or a decay in (0, 1), got {decay}")
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))


def rng_states(generator: torch.Generator) -> dict:
    states = {"torch": torch.get_rng_state(), "shuffle": generator.get_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(states["torch"])
    generator.set_state(states["shuffle"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def flush_denormals() -> None:
    """Make this process's float arithmetic flush denormal numbers to zero.

    Weights that get no gradient (a masked connection, a pixel that is always 0) are moved by
    Adam's weight decay alone, which shrinks them into denormal floats; CPU arithmetic on those
    is slow enough to make MADE training two to five times slower. Zero instead costs nothing a
    likelihood can see. The setting is per thread and new threads copy it, so call this before
    the first parallel operation creates PyTorch's worker threads: at the start of a process.
    """
    torch.set_flush_denormal(True)


def denormal_count(tensors) -> int:
    """How many values of the float32 tensors among `tensors` are denormal, read off their bits:
    float comparisons would see them as zero in a process that flushes denormals."""
    floats = [t.detach().flatten() for t in tensors if t.dtype == torch.float32]
    bits = torch.cat(floats).view(torch.int32)
    return int((((bits & 0x7F800000) == 0) & ((bits & 0x007FFFFF) != 0)).sum())


class StopRequest:
    """SIGTERM and SIGINT, while installed, only set `signal`: the training loop checks it
    between steps, saves a checkpoint where the run can resume bit for bit, then stops."""

    def __init__(self):
        self.signal = None
        self.previous = {}

    def __enter__(self):
        for number in (signal.SIGTERM, signal.SIGINT):
            self.previous[number] = signal.signal(number, self._request)
        return self

    def __exit__(self, *exc):
        for number, handler in self.previous.items():
            signal.signal(number, handler)

    def _request(self, number, frame):
        self.signal = number

    def stop(self):
        """Stop as the signal asked: the stage reports it, keeping the checkpoint just saved."""
        if self.signal == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(128 + self.signal)


def ended_by(state: dict, training: dict, deadline: float | None) -> str | None:
    """Why training must end before another epoch, or None to go on."""
    # judged at validations only: the epochs after the last one have not been looked at yet
    if state["validated_epoch"] - state["improved_epoch"] >= training["patience"]:
        return convergence.EARLY_STOPPING
    if state["epoch"] >= training["epochs"]:
        return convergence.EPOCH_CAP
    if deadline is not None and state["epoch"] > 0 and time.monotonic() > deadline:
        return convergence.TIME_CAP
    return None


def train_neural(
    model,
    data,
    training: dict,
    checkpoint_path: Path,
    metrics_path: Path | None,
    keep_checkpoint: bool = False,
):
    """Minibatch training with early stopping; returns the model holding its best parameters,
    and the progress record. Early stopping ends training after `patience` epochs in which no
    epoch lowered the best valid NLL by more than `arbench.convergence.tolerance` (a plateau by
    the same measure the verdict judges unfinished training by).

    A checkpoint is written every `checkpoint_minutes` (at every epoch's end with 0), when a
    signal stops the run (between two steps, so that it resumes within its epoch), and, with
    `keep_checkpoint`, once training ends. A checkpoint left by a run with other settings (the
    config changed since) is set aside: resuming it would mix two trainings."""
    device = resolve_device(training["device"])
    # TF32 trades matmul precision (10-bit mantissa) for tensor-core speed on CUDA.
    torch.backends.cuda.matmul.allow_tf32 = bool(training["tf32"])
    model.to(device)
    torch.manual_seed(training["seed"])
    generator = torch.Generator().manual_seed(training["seed"])
    optimizer = make_optimizer(model, training)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=training["lr_decay"])
    averaged = make_average(model, training["averaging"])
    # Both splits stay on the device for the whole run: no copies per batch.
    train_x = torch.from_numpy(data.train.reshape(len(data.train), -1)).long().to(device)
    valid_x = torch.from_numpy(data.valid.reshape(len(data.valid), -1)).long().to(device)
    state = {
        "epoch": 0,
        "best_nll": math.inf,
        "best_epoch": 0,
        # the last epoch that lowered the best valid NLL by more than the convergence tolerance:
        # patience counts from it, so that a creep smaller than the tolerance ends training
        "improved_epoch": 0,
        "validated_epoch": 0,
        "best_state": None,
        "metrics": [],
        "resumed": 0,
        "ended_by": None,
        # an epoch stopped between two steps: its shuffle, the next step, the loss and time so far
        "partial": None,
    }

    # What the saved state depends on; when to stop and where to run may change in between.
    settings = {
        "model": model.config,
        "training": {k: v for k, v in training.items() if k not in RESUMABLE_CHANGES},
    }
    saved = load_checkpoint(checkpoint_path) if checkpoint_path.exists() else None
    if saved is not None and saved.get("settings") != settings:
        log.warning(
            "%s was written with other settings (%s); training from the start instead",
            checkpoint_path,
            json.dumps(saved.get("settings"), sort_keys=True),
        )
        saved = None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        if averaged is not None:
            averaged.load_state_dict(saved["averaged"])
        restore_rng_states(saved["rng"], generator)
        # a checkpoint of an older arbench lacks what later versions record
        state = {
            "improved_epoch": saved["progress"]["best_epoch"],
            "validated_epoch": saved["progress"]["epoch"],
            "resumed": 0,
            "ended_by": None,
            "partial": None,
            **saved["progress"],
        }
        if state["ended_by"] is None:
            state["resumed"] += 1
        log.info("resuming from %s %s", checkpoint_path, position(state))

    def save_checkpoint():
        checkpoints.save(
            {
                "settings": settings,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "averaged": averaged.state_dict() if averaged is not None else None,
                "rng": rng_states(generator),
                "progress": state,
            },
            checkpoint_path,
        )
        return time.monotonic()

    if training["patience"] < training["validate_every"]:
        raise SettingsError(
            f"patience {training['patience']} is shorter than validate_every "
            f"{training['validate_every']}: early stopping judges only validated epochs, so "
            "patience must span at least one validation; raise patience or validate more often"
        )
    batch_size = training["batch_size"]
    steps = math.ceil(len(train_x) / batch_size)
    interval = 60 * training["checkpoint_minutes"]
    # A wall-clock budget for this run (e.g. a cluster time slot); checked between epochs.
    deadline = time.monotonic() + 60 * training["max_minutes"] if training["max_minutes"] else None
    last_saved = time.monotonic()
    with StopRequest() as stop:
        while (reason := ended_by(state, training, deadline)) is None:
            epoch = state["epoch"] + 1
            model.train()
            partial = state["partial"] or {
                "order": torch.randperm(len(train_x), generator=generator),
                "step": 0,
                "total": 0.0,
                "seconds": 0.0,
            }
            state["partial"] = None
            order = partial["order"].to(device)
            total, seconds = partial["total"], partial["seconds"]
            started = time.perf_counter()
            bar = tqdm(
                range(partial["step"], steps),
                desc=f"epoch {epoch}",
                unit="batch",
                disable=None,
                leave=False,
                initial=partial["step"],
                total=steps,
            )
            for step in bar:
                if stop.signal is not None:
                    seconds += time.perf_counter() - started
                    state["partial"] = {
                        "order": partial["order"],
                        "step": step,
                        "total": total,
                        "seconds": seconds,
                    }
                    save_checkpoint()
                    log.info("stopped in epoch %d before step %d/%d", epoch, step + 1, steps)
                    stop.stop()
                batch = train_x[order[step * batch_size : (step + 1) * batch_size]]
                loss = model.nll(batch).mean()
                if not math.isfinite(loss.item()):
                    raise TrainingDiverged(
                        f"loss is {loss.item()} at epoch {epoch}, step {step + 1}/{steps}; "
                        f"the last good checkpoint (epoch {state['epoch']}) is kept at "
                        f"{checkpoint_path}. Lower the learning rate and run again."
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if averaged is not None:
                    averaged.update_parameters(model)
                total += loss.item() * len(batch)
            seconds += time.perf_counter() - started
            validated = model if averaged is None else averaged.module
            # an epoch that may be the last (its cap, or the time cap passed) is always validated
            validating = (
                epoch % training["validate_every"] == 0
                or epoch == training["epochs"]
                or (deadline is not None and time.monotonic() > deadline)
            )
            valid_nll = None
            if validating:
                validated.eval()
                valid_nll = mean_nll(validated, valid_x)
            row = {
                "epoch": epoch,
                "train_nll": total / len(train_x),
                "valid_nll": valid_nll,
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": seconds,
                "images_per_second": len(train_x) / seconds,
            }
            scheduler.step()
            state["metrics"].append(row)
            state["epoch"] = epoch
            if validating:
                state["validated_epoch"] = epoch
                if valid_nll < state["best_nll"] - convergence.tolerance(state["best_nll"]):
                    state["improved_epoch"] = epoch
                if valid_nll < state["best_nll"]:
                    state["best_nll"], state["best_epoch"] = valid_nll, epoch
                    state["best_state"] = copy.deepcopy(
                        {
                            k: v.detach().cpu() if torch.is_tensor(v) else v
                            for k, v in validated.state_dict().items()
                        }
                    )
            log.info(
                "epoch %d: train %.3f, valid %s nats (best %.3f at epoch %d), %.0f images/s",
                epoch,
                row["train_nll"],
                "-" if valid_nll is None else f"{valid_nll:.3f}",
                state["best_nll"],
                state["best_epoch"],
                row["images_per_second"],
            )
            # read once: a signal that comes after this is seen at the next step, and saved there
            stopping = stop.signal is not None
            if stopping or time.monotonic() - last_saved >= interval:
                last_saved = save_checkpoint()
            write_metrics(metrics_path, state["metrics"])
            if stopping:
                log.info("stopped after epoch %d", epoch)
                stop.stop()
    state["ended_by"] = reason
    # a run resumed after its last epoch trains none, and its curve must be written again too
    write_metrics(metrics_path, state["metrics"])
    if keep_checkpoint:
        save_checkpoint()
    record = convergence.network_record(
        reason, [row["valid_nll"] for row in state["metrics"]], state["resumed"]
    )
    log.info("training ended: %s", convergence.describe(record))
    model.load_state_dict(state["best_state"])
    return model, state, record


def position(state: dict) -> str:
    """Where a checkpoint's run stands, for the log."""
    if state["ended_by"] is not None:
        return f"after its last epoch ({state['epoch']}; {state['ended_by']})"
    if state["partial"] is not None:
        return f"in epoch {state['epoch'] + 1} at step {state['partial']['step'] + 1}"
    return f"after epoch {state['epoch']}"


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
    if model_entry(model_name).neural:
        model, state, record = train_neural(
            model, data, training, checkpoint, metrics, keep_checkpoint
        )
        device = resolve_device(training["device"])
        summary = {
            "epochs": state["epoch"],
            "best_epoch": state["best_epoch"],
            "best_valid_nll": state["best_nll"],
            "training": record,
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
    summary.update(
        model=model_name,
        seconds=time.perf_counter() - started,
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
    return sum(int(np.prod(v.shape)) for v in model.to_checkpoint()["state"].values())


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("arbench.train", "Train one model on one dataset file.")
    parser.add_argument("--data", required=True, help="dataset file (.npz)")
    parser.add_argument("--model", required=True, help="a model of arbench.plan.MODELS")
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
    )


if __name__ == "__main__":
    sys.exit(main())
