"""How a training run ended, and whether it had finished learning when it did.

Every fit records how it ended: a network by early stopping (its valid NLL had not improved for
`patience` epochs), by its epoch cap, or by its time cap (`max_minutes`), and how many times it
was interrupted and resumed; an EM fit by reaching its convergence tolerance or by its iteration
cap. Beside it, the rate at which its NLL was still falling when it ended, in nats per image per
epoch (per EM iteration): for a network, the fall of its best valid NLL so far over the last
`WINDOW` epochs, divided by the epochs; for EM, the gain of the training log-likelihood in its
last iteration.

A run is *unfinished* when that rate still exceeded `TOLERANCE` of its best valid NLL per epoch when
it ended, whatever ended it: a cap, or early stopping after a learning rate had decayed to almost
nothing while the curve still fell. Such a model is not judged (`arbench.metrics.verdict`). The
tolerance is relative because what an improvement is worth depends on the data: a nat is a lot on
binarized Atari frames (about 30 nats an image) and nothing on 8-bit faces (thousands). Early
stopping counts an epoch as an improvement only when it lowers the best valid NLL by more than the
same tolerance, so that a creep below it (a decayed learning rate, a moving average) ends training
instead of holding it at its cap; and it ends a run only once the rate over the last `WINDOW` epochs
is within the tolerance too, so that a run it ends has finished by the same measure.
"""

from __future__ import annotations

import math

WINDOW = 5  # epochs over which a network's improvement rate is measured
TOLERANCE = 5e-4  # of the best valid NLL, per epoch (or EM iteration): slower is a plateau

EARLY_STOPPING = "early stopping"
EPOCH_CAP = "epoch cap"
TIME_CAP = "time cap"
CONVERGED = "converged"
ITERATION_CAP = "iteration cap"

RULE = (
    "A model whose NLL was still falling by more than "
    f"{TOLERANCE:.2%} of its best valid NLL per epoch (per iteration for EM) when its training "
    "ended, whatever ended it (a cap on its epochs, minutes or EM's iterations, or early stopping "
    "after its learning rate had decayed), has not finished learning, and a comparison that "
    "includes it is *not decided*. A network's rate is the fall of its best valid NLL over its "
    f"last {WINDOW} epochs, per epoch; EM's, the gain of its training log-likelihood in its last "
    "iteration. Early stopping ends a network only when no epoch lowered the best valid NLL by "
    "more than that tolerance for `patience` epochs and that rate is within it too."
)


def improvement_rate(valid_nlls: list[float | None], window: int = WINDOW) -> float | None:
    """Nats per epoch by which the best valid NLL so far fell over the last `window` epochs
    (from the first validation where fewer ran). `valid_nlls[e - 1]` is epoch e's, None where
    the epoch was not validated: the rate is then taken from the last validation at least
    `window` epochs before the last one. None before two validations."""
    validated = [(e, nll) for e, nll in enumerate(valid_nlls, 1) if nll is not None]
    if len(validated) < 2:
        return None
    best, lowest = [], math.inf
    for epoch, nll in validated:
        lowest = min(lowest, nll)
        best.append((epoch, lowest))
    last_epoch, last_best = best[-1]
    start_epoch, start_best = best[0]
    for epoch, value in best:
        if epoch <= last_epoch - window:
            start_epoch, start_best = epoch, value
    return float(start_best - last_best) / (last_epoch - start_epoch)


def network_record(ended_by: str, valid_nlls: list[float], resumed: int = 0) -> dict:
    return {
        "ended_by": ended_by,
        "improvement_per_epoch": improvement_rate(valid_nlls),
        "epochs": len(valid_nlls),
        "resumed": resumed,
        "best_valid_nll": float(min(nll for nll in valid_nlls if nll is not None)),
    }


def em_record(converged: bool, log_likelihoods: list[float]) -> dict:
    """The record of an EM fit from its mean training log-likelihood after each iteration (the
    train stage adds the fitted model's `best_valid_nll`)."""
    last_gain = None
    if len(log_likelihoods) >= 2:
        last_gain = float(log_likelihoods[-1] - log_likelihoods[-2])
    return {
        "ended_by": CONVERGED if converged else ITERATION_CAP,
        "improvement_per_epoch": last_gain,
        "epochs": len(log_likelihoods),
        "resumed": 0,
    }


def tolerance(nll: float) -> float:
    """The improvement, nats per image per epoch, below which a run whose best valid NLL is
    `nll` has plateaued."""
    return TOLERANCE * abs(nll) if math.isfinite(nll) else math.inf


def finished(rate: float | None, best_nll: float) -> bool:
    """Whether a best valid NLL falling by `rate` nats an epoch has plateaued."""
    return rate is not None and math.isfinite(rate) and rate <= tolerance(best_nll)


def unfinished(record: dict | None) -> bool:
    """Whether the run was still improving faster than the tolerance when it ended, whatever
    ended it (a run without a record, or whose rate could not be measured, counts as
    unfinished)."""
    if record is None:
        return True
    return not finished(record["improvement_per_epoch"], record.get("best_valid_nll", math.nan))


def describe(record: dict | None) -> str:
    """How a run ended, in a few words: 'early stopping after 42 epochs (resumed once)'."""
    if record is None:
        return "not recorded"
    unit = "iterations" if record["ended_by"] in (CONVERGED, ITERATION_CAP) else "epochs"
    text = f"{record['ended_by']} after {record['epochs']} {unit}"
    resumed = record.get("resumed", 0)
    if resumed:
        text += f" (resumed {'once' if resumed == 1 else f'{resumed} times'})"
    return text


def rate_text(record: dict | None) -> str:
    if record is None or record["improvement_per_epoch"] is None:
        return "unknown"
    return f"{record['improvement_per_epoch']:.3g}"
