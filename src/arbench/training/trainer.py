"""The minibatch training loop every network shares: a model brings only its `nll`.

`Trainer` runs one network's training to its end: Adam or Adagrad with a per-epoch learning-rate
decay and an optional moving average of the parameters (what is validated and kept), validation
on a schedule, early stopping judged at validations, an epoch cap and a wall-clock cap, and
checkpoints that let a stopped or killed run resume bit for bit. Its parts:

- `Progress`: where a run stands (epoch, best valid NLL, the curve, a part-done epoch), which a
  checkpoint carries;
- `ended_by`: the stop rules, read between epochs;
- `StopRequest`: SIGTERM and SIGINT turned into a request the loop honours between two steps;
- `Trainer.resume` / `Trainer.save_checkpoint`: the checkpoint, set aside when written with other
  settings;
- `Trainer.train_epoch` / `Trainer.end_epoch`: one epoch's steps, then its validation, record
  and checkpoint.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import logging
import math
import signal
import time
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from arbench.core.cli import Terminated
from arbench.core.files import atomic_write
from arbench.core.plan import SettingsError, validations_span_patience
from arbench.training import checkpoints, convergence
from arbench.training.checkpoints import resolve_device

log = logging.getLogger("arbench.train")

# Settings a killed run may be resumed with changed: they steer when to stop and where to run,
# not the state a checkpoint holds.
RESUMABLE_CHANGES = (
    "epochs",
    "patience",
    "max_minutes",
    "checkpoint_minutes",
    "validate_every",
    "compile",
    "device",
    "threads",
)
METRIC_FIELDS = ["epoch", "train_nll", "valid_nll", "lr", "seconds", "images_per_second"]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


CHECKPOINT_KEYS = ("settings", "model", "optimizer", "scheduler", "rng", "progress")


def load_checkpoint(path: Path) -> dict:
    """A training checkpoint, refused by name when it does not hold what `Trainer` saves."""
    remedy = f"Delete {path} to train this model from the start."
    saved = checkpoints.load(path, "training checkpoint", remedy)
    missing = [key for key in CHECKPOINT_KEYS if key not in saved]
    if missing:
        problem = f"not a training checkpoint that arbench wrote (no {', '.join(missing)})"
        raise checkpoints.refused(path, "training checkpoint", problem, remedy)
    return saved


def write_metrics(path: Path | None, rows: list[dict]) -> None:
    if path is None:
        return
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=METRIC_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda handle: handle.write(text.getvalue().encode()))


@torch.inference_mode()
def mean_nll(model, images, batch: int = 2000) -> float:
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


def new_progress() -> dict:
    """Where a run stands before its first epoch (a plain dict: it travels in checkpoints)."""
    return {
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
        # wall seconds spent in this training by every process so far: a resumed run adds up
        "seconds": 0.0,
    }


def improves(valid_nll: float, best_nll: float) -> bool:
    """Whether a validation counts as progress for patience: the first one always does (the
    tolerance of an infinite best is not a number), later ones by more than the tolerance."""
    if not math.isfinite(best_nll):
        return math.isfinite(valid_nll)
    return valid_nll < best_nll - convergence.tolerance(best_nll)


def ended_by(state: dict, training: dict, deadline: float | None) -> str | None:
    """Why training must end before another epoch, or None to go on."""
    # judged at validations only: the epochs after the last one have not been looked at yet;
    # and only once the curve has flattened, so that early stopping ends a finished run
    if state["validated_epoch"] - state["improved_epoch"] >= training["patience"] and (
        convergence.finished(
            convergence.improvement_rate([row["valid_nll"] for row in state["metrics"]]),
            state["best_nll"],
        )
    ):
        return convergence.EARLY_STOPPING
    if state["epoch"] >= training["epochs"]:
        return convergence.EPOCH_CAP
    if deadline is not None and state["epoch"] > 0 and time.monotonic() > deadline:
        return convergence.TIME_CAP
    return None


def position(state: dict) -> str:
    """Where a checkpoint's run stands, for the log."""
    if state["ended_by"] is not None:
        return f"after its last epoch ({state['epoch']}; {state['ended_by']})"
    if state["partial"] is not None:
        return f"in epoch {state['epoch'] + 1} at step {state['partial']['step'] + 1}"
    return f"after epoch {state['epoch']}"


class Trainer:
    """One network's training on a dataset's train split, validated on its valid split."""

    def __init__(self, model, data, training: dict, checkpoint_path: Path, metrics_path):
        if problem := validations_span_patience(training, model.levels):
            raise SettingsError(problem)
        self.training = training
        self.checkpoint_path, self.metrics_path = checkpoint_path, metrics_path
        self.device = resolve_device(training["device"])
        # TF32 trades matmul precision (10-bit mantissa) for tensor-core speed on CUDA.
        torch.backends.cuda.matmul.allow_tf32 = bool(training["tf32"])
        self.model = model.to(self.device)
        torch.manual_seed(training["seed"])
        self.generator = torch.Generator().manual_seed(training["seed"])
        self.optimizer = make_optimizer(model, training)
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(
            self.optimizer, gamma=training["lr_decay"]
        )
        self.averaged = make_average(model, training["averaging"])
        self.loss = torch.compile(model.nll) if training["compile"] else model.nll
        # Both splits stay on the device for the whole run: no copies per batch.
        self.train_x = self.on_device(data.train)
        self.valid_x = self.on_device(data.valid)
        self.state = new_progress()
        # What the saved state depends on; when to stop and where to run may change in between.
        self.settings = {
            "model": model.config,
            "training": {k: v for k, v in training.items() if k not in RESUMABLE_CHANGES},
        }

    def on_device(self, images: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(images.reshape(len(images), -1)).long().to(self.device)

    @property
    def validated_model(self):
        return self.model if self.averaged is None else self.averaged.module

    def resume(self) -> None:
        """Continue from the checkpoint, if one written with these settings is there. A
        checkpoint left by a run with other settings (the config changed since) is set aside:
        resuming it would mix two trainings."""
        path = self.checkpoint_path
        saved = load_checkpoint(path) if path.exists() else None
        if saved is not None and saved.get("settings") != self.settings:
            log.warning(
                "%s was written with other settings (%s); training from the start instead",
                path,
                json.dumps(saved.get("settings"), sort_keys=True),
            )
            saved = None
        if saved is None:
            return
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        if self.averaged is not None:
            self.averaged.load_state_dict(saved["averaged"])
        restore_rng_states(saved["rng"], self.generator)
        # a checkpoint of an older arbench lacks what later versions record: fresh values then
        self.state = {
            **new_progress(),
            "improved_epoch": saved["progress"]["best_epoch"],
            "validated_epoch": saved["progress"]["epoch"],
            **saved["progress"],
        }
        if self.state["ended_by"] is None:
            self.state["resumed"] += 1
        log.info("resuming from %s %s", path, position(self.state))

    def count_seconds(self) -> None:
        """Add the wall time since the last count to the run's total."""
        now = time.monotonic()
        self.state["seconds"] += now - self.counted
        self.counted = now

    def save_checkpoint(self) -> float:
        """Write the checkpoint atomically; returns when, on the monotonic clock."""
        self.count_seconds()
        checkpoints.save(
            {
                "settings": self.settings,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "averaged": self.averaged.state_dict() if self.averaged is not None else None,
                "rng": rng_states(self.generator),
                "progress": self.state,
            },
            self.checkpoint_path,
        )
        return time.monotonic()

    def train_epoch(self, epoch: int, stop: StopRequest) -> tuple[float, float]:
        """The steps of one epoch (from where a stopped one left off); returns the summed loss
        and the seconds spent. A signal between two steps saves the epoch's position and stops."""
        batch_size = self.training["batch_size"]
        steps = math.ceil(len(self.train_x) / batch_size)
        self.model.train()
        partial = self.state["partial"] or {
            "order": torch.randperm(len(self.train_x), generator=self.generator),
            "step": 0,
            "total": 0.0,
            "seconds": 0.0,
        }
        self.state["partial"] = None
        order = partial["order"].to(self.device)
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
                self.state["partial"] = {
                    "order": partial["order"],
                    "step": step,
                    "total": total,
                    "seconds": seconds,
                }
                self.save_checkpoint()
                log.info("stopped in epoch %d before step %d/%d", epoch, step + 1, steps)
                stop.stop()
            batch = self.train_x[order[step * batch_size : (step + 1) * batch_size]]
            loss = self.loss(batch).mean()
            if not math.isfinite(loss.item()):
                raise TrainingDiverged(
                    f"loss is {loss.item()} at epoch {epoch}, step {step + 1}/{steps}; "
                    f"the last good checkpoint (epoch {self.state['epoch']}) is kept at "
                    f"{self.checkpoint_path}. Lower the learning rate and run again."
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if self.averaged is not None:
                self.averaged.update_parameters(self.model)
            total += loss.item() * len(batch)
        return total, seconds + time.perf_counter() - started

    def end_epoch(self, epoch: int, total: float, seconds: float, validating: bool) -> None:
        """Validate (when scheduled), record the epoch, and keep the best parameters."""
        validated = self.validated_model
        valid_nll = None
        if validating:
            validated.eval()
            valid_nll = mean_nll(validated, self.valid_x)
        row = {
            "epoch": epoch,
            "train_nll": total / len(self.train_x),
            "valid_nll": valid_nll,
            "lr": self.optimizer.param_groups[0]["lr"],
            "seconds": seconds,
            "images_per_second": len(self.train_x) / seconds,
        }
        self.scheduler.step()
        state = self.state
        state["metrics"].append(row)
        state["epoch"] = epoch
        if validating:
            state["validated_epoch"] = epoch
            if improves(valid_nll, state["best_nll"]):
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

    def run(self, keep_checkpoint: bool = False):
        """Train until a stop rule ends it; returns the model holding its best parameters, the
        progress and the record of how training ended. A checkpoint is written every
        `checkpoint_minutes` (at every epoch's end with 0), when a signal stops the run (between
        two steps, so that it resumes within its epoch), and, with `keep_checkpoint`, once
        training ends."""
        self.resume()
        self.counted = time.monotonic()
        training = self.training
        interval = 60 * training["checkpoint_minutes"]
        # A wall-clock budget for this run (e.g. a cluster time slot); checked between epochs.
        deadline = (
            time.monotonic() + 60 * training["max_minutes"] if training["max_minutes"] else None
        )
        last_saved = time.monotonic()
        with StopRequest() as stop:
            while (reason := ended_by(self.state, training, deadline)) is None:
                epoch = self.state["epoch"] + 1
                total, seconds = self.train_epoch(epoch, stop)
                # an epoch that may be the last (its cap, or the time cap passed) is validated
                validating = (
                    epoch % training["validate_every"] == 0
                    or epoch == training["epochs"]
                    or (deadline is not None and time.monotonic() > deadline)
                )
                self.end_epoch(epoch, total, seconds, validating)
                # read once: a signal that comes after this is seen at the next step, and
                # saved there
                stopping = stop.signal is not None
                if stopping or time.monotonic() - last_saved >= interval:
                    last_saved = self.save_checkpoint()
                write_metrics(self.metrics_path, self.state["metrics"])
                if stopping:
                    log.info("stopped after epoch %d", epoch)
                    stop.stop()
        self.state["ended_by"] = reason
        self.count_seconds()
        # a run resumed after its last epoch trains none, and its curve must be written again
        write_metrics(self.metrics_path, self.state["metrics"])
        if keep_checkpoint:
            self.save_checkpoint()
        record = convergence.network_record(
            reason, [row["valid_nll"] for row in self.state["metrics"]], self.state["resumed"]
        )
        log.info("training ended: %s", convergence.describe(record))
        self.model.load_state_dict(self.state["best_state"])
        return self.model, self.state, record
