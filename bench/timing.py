"""How the benchmarks time things, in one place: medians of repeated calls after a warm-up, the
seconds of a run of training steps, and blocks of two implementations' steps alternated so that
both see the same machine (the ratio is the median over pairs of blocks)."""

from __future__ import annotations

import statistics
import time

import torch


def median_seconds(work, repeats: int = 7, warmup: int = 2, device=None) -> float:
    """Median seconds of `work()` over `repeats` calls after `warmup` (CUDA events on a GPU)."""
    for _ in range(warmup):
        work()
    times = []
    for _ in range(repeats):
        if device is not None and device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            work()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1000)
        else:
            started = time.perf_counter()
            work()
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def median_rate(work, items: int, repeats: int = 7, warmup: int = 2) -> float:
    """Median items a second of `work()`, which handles `items`, over `repeats` calls."""
    for _ in range(warmup):
        work()
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        rates.append(items / (time.perf_counter() - started))
    return statistics.median(rates)


def training_steps(model, optimizer, loss_of, x, batch: int, count: int) -> float:
    """Seconds for `count` training steps on consecutive batches of x."""
    started = time.perf_counter()
    for i in range(count):
        chunk = x[(i * batch) % (len(x) - batch) :][:batch]
        loss = loss_of(model, chunk)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - started


def paired_blocks(ours, theirs, x, batch: int, pairs: int, block: int):
    """(theirs / ours time ratios, our images/s, their images/s) of `pairs` blocks of `block`
    steps run alternately, after two blocks each to warm up; `ours` and `theirs` are each
    (model, optimizer, loss)."""
    for _ in range(2):
        training_steps(*ours, x, batch, block)
        training_steps(*theirs, x, batch, block)
    ratios, ours_rates, their_rates = [], [], []
    for _ in range(pairs):
        a = training_steps(*ours, x, batch, block)
        b = training_steps(*theirs, x, batch, block)
        ratios.append(b / a)
        ours_rates.append(block * batch / a)
        their_rates.append(block * batch / b)
    return ratios, ours_rates, their_rates


def rates_summary(ratios, ours_rates, their_rates) -> dict:
    """Medians of the blocks' images/s each way and of their time ratios, and the ratios' range."""
    return {
        "ours_images_per_s": statistics.median(ours_rates),
        "theirs_images_per_s": statistics.median(their_rates),
        "speedup": statistics.median(ratios),
        "speedup_range": [min(ratios), max(ratios)],
    }
