"""What every stage's command line shares: argument types, logging, SIGTERM, and failure.

`run_stage` runs a stage's work so that a job that fails ends with one log line naming the job
and what to do, never with a library's traceback as the last word, and so that SIGTERM (what
SLURM and Snakemake send first) and SIGINT unwind like an exception: temporary files are removed
on the way out and a training job keeps its last checkpoint. The line a stopped job ends with
says what that stage will do when run again (`on_stop`: a training resumes, a scoring command
starts over). A signal that arrives once the job has written every output it makes does not
turn its finished result into a failure: the outputs are kept and the job succeeds.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import traceback
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("arbench")

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the arbench package

LOG_FORMAT = "%(asctime)s %(name)s: %(message)s"


class Terminated(SystemExit):
    """The process received SIGTERM."""


# What a stopped stage says of itself, unless it says more (a training resumes)
STOPPED = "No output was left half-written; run it again to redo it."


# How a module's command was typed when the `arbench` command runs it (`arbench.commands`);
# otherwise it runs as `python -m MODULE`
TYPED: dict[str, str] = {}


def typed_as(command: str, module: str) -> None:
    TYPED[module] = command


def stage_parser(module: str, description: str) -> argparse.ArgumentParser:
    """A stage's argument parser, whose help and errors name the command as it is typed."""
    return argparse.ArgumentParser(
        prog=TYPED.get(module, f"python -m {module}"), description=description
    )


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def nonnegative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def json_object(text: str) -> dict:
    """A JSON object given inline, or the path of a file holding one. JSON, never YAML: a value
    keeps the type it was written with (YAML 1.1 reads 1e-05 as a string)."""
    source = "inline JSON"
    if not text.lstrip().startswith("{"):
        path = Path(text)
        if not path.is_file():
            raise argparse.ArgumentTypeError(f"{text!r} is neither a JSON object nor a file")
        text, source = path.read_text(), str(path)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"{source} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"{source} must hold a JSON object, got {value!r}")
    return value


def expected(error: BaseException) -> bool:
    """An error raised on purpose by arbench's own code, whose message already says what is
    wrong and what to do (a library's error deep inside a call is not)."""
    frames = traceback.extract_tb(error.__traceback__)
    raised_here = bool(frames) and Path(frames[-1].filename).resolve().is_relative_to(PACKAGE_DIR)
    return raised_here or isinstance(error, FileNotFoundError | PermissionError)


class InputChanged(RuntimeError):
    """An input file changed while the job that reads it ran."""


def stamps(paths) -> dict[str, tuple[int, int] | None]:
    """Each file's size and modification time (None where it does not exist)."""
    found = {}
    for path in paths:
        try:
            status = Path(path).stat()
        except OSError:
            found[str(path)] = None
        else:
            found[str(path)] = (status.st_size, status.st_mtime_ns)
    return found


def unchanged_inputs(before: dict, outputs) -> None:
    """Refuse what a job wrote if one of its inputs changed while it ran (edited, replaced or
    remade by another command): its outputs may mix the old input and the new, and a later
    run would take them for up to date. They are removed."""
    changed = [path for path, stamp in stamps(before).items() if stamp != before[path]]
    if changed:
        for output in outputs:
            Path(output).unlink(missing_ok=True)
        raise InputChanged(
            f"{', '.join(changed)} changed while this job ran, so what it wrote was removed; "
            "run the same command again"
        )


def every_output_written(before: dict, outputs: list) -> bool:
    """Whether each of `outputs` (there are some) exists and was written since `before`."""
    now = stamps(outputs)
    return bool(outputs) and all(now[p] is not None and now[p] != before[p] for p in now)


def run_stage(
    job: str, work: Callable[[], object], inputs=(), outputs=(), on_stop: str = STOPPED
) -> int:
    """Run `work()` as the job described by `job`; returns the process exit status. The
    `inputs` it reads must not change while it runs (`unchanged_inputs`), or its `outputs` are
    removed and the job fails. `on_stop` is what the job says it will do when SIGTERM or SIGINT
    stops it before it has written every output."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    outputs = [path for path in outputs if path is not None]
    finished = False  # every output written: a signal from now on changes nothing

    def stop(signum, frame):
        if finished:
            log.warning(
                "%s: %s arrived after the job had written its outputs: they are kept",
                job,
                signal.Signals(signum).name,
            )
            return
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(128 + signum)

    previous = {number: signal.signal(number, stop) for number in (signal.SIGTERM, signal.SIGINT)}
    before = stamps(path for path in inputs if path is not None)
    written = stamps(outputs)
    try:
        try:
            work()
        except (Terminated, KeyboardInterrupt) as stopped:
            if not every_output_written(written, outputs):
                raise
            name = "SIGINT" if isinstance(stopped, KeyboardInterrupt) else "SIGTERM"
            log.warning("%s: %s arrived once every output was written: they are kept", job, name)
        finished = True
        unchanged_inputs(before, outputs)
    except (Terminated, KeyboardInterrupt) as stopped:
        if every_output_written(written, outputs):  # it came as the work returned
            finished = True
            log.warning("%s: a signal arrived once every output was written: they are kept", job)
            try:
                unchanged_inputs(before, outputs)
            except InputChanged as error:
                log.error("%s failed: %s", job, error)
                return 1
            return 0
        if isinstance(stopped, KeyboardInterrupt):
            log.error("%s: interrupted. %s", job, on_stop)
            return 130
        log.error("%s: stopped by SIGTERM. %s", job, on_stop)
        return int(stopped.code)
    except Exception as error:
        if expected(error):
            log.error("%s failed: %s", job, error)
        else:
            log.exception("unexpected error")
            log.error(
                "%s failed: %s: %s. This was not expected; the traceback above shows where. "
                "Please report it with this log.",
                job,
                type(error).__name__,
                error,
            )
        return 1
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 0
