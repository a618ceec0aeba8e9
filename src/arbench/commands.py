"""The `arbench` command: what people run by hand, each as a subcommand.

    arbench sample MODEL --out grid.png          draw samples from a trained model
    arbench complete MODEL IMAGE... --out a.png  complete the bottom rows of image files
    arbench score MODEL IMAGE... --out a.csv     NLL of image files, one CSV row per file
    arbench judge SAMPLES --run R --dataset D    your samples measured and judged beside a run's
    arbench prepare --spec SPEC --out D.npz      build a dataset in the common format
    arbench stage NAME ...                       any stage of the workflow, as its rule runs it

The workflow itself runs each stage as `python -m arbench.NAME` (the same entry point as
`arbench stage NAME`): the interpreter is named by the job's environment, not by where a console
script was installed, so a run moved to another virtual environment plans nothing new. Each
subcommand's own `--help` gives its arguments; a stage is imported only when it runs, so
`arbench --help` answers at once.
"""

from __future__ import annotations

import importlib
import sys

from arbench.core import cli

TRAINED = {
    "sample": "draw samples from a trained model to a PNG grid and an .npz",
    "complete": "complete the bottom rows of image files with a trained model",
    "score": "the NLL of image files under a trained model, one CSV row per file",
}
JUDGE = "your samples (an .npz or image files) measured and judged beside a run's models"
# The workflow's stages, in the order data flows through them
STAGES = {
    "prepare": "download (checked), generate or read a dataset; write it in the common format",
    "train": "fit one model on one dataset (networks checkpoint and resume)",
    "sample": "draw independent sets of samples from a trained model (.npz)",
    "examine": "evaluate, then complete, with one trained model: the workflow's job for both",
    "evaluate": "exact (or bounded) test NLL, per image and summarised",
    "complete": "complete test images whose bottom rows are hidden",
    "features": "learn a dataset's feature spaces",
    "metric_check": "every sample-quality metric on sets whose ranking is known",
    "error_check": "every metric's standard error against independent draws",
    "quality": "sample-quality measurements of one model's samples",
    "report": "tables, figures, verdicts and report.md from the stages' outputs",
    "stale": "list (or remove) results the config does not make",
}


def usage() -> str:
    lines = [
        "usage: arbench COMMAND [ARGS...]",
        "",
        "Trained models (a model file with its card beside it):",
        *(f"  {name:<22}{text}" for name, text in TRAINED.items()),
        "",
        "Samples of your own (no model needed):",
        f"  {'judge':<22}{JUDGE}",
        "",
        "Data:",
        f"  {'prepare':<22}{STAGES['prepare']}",
        "",
        "The workflow's stages (`arbench stage NAME --help`; the workflow runs them as",
        "`python -m arbench.NAME`):",
        *(f"  {'stage ' + name:<22}{text}" for name, text in STAGES.items()),
        "",
        "The whole study runs with Snakemake: `snakemake --cores all` (see README.md).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command in TRAINED:
        cli.typed_as("arbench", "arbench.trained")
        return importlib.import_module("arbench.trained").main([command, *rest])
    if command == "judge":
        cli.typed_as("arbench judge", "arbench.judge")
        return importlib.import_module("arbench.judge").main(rest)
    if command == "prepare":
        cli.typed_as("arbench prepare", "arbench.prepare")
        return importlib.import_module("arbench.prepare").main(rest)
    if command == "stage" and rest and rest[0] in STAGES:
        cli.typed_as(f"arbench stage {rest[0]}", f"arbench.{rest[0]}")
        return importlib.import_module(f"arbench.{rest[0]}").main(rest[1:])
    known = "stage NAME" if command == "stage" else command
    print(f"arbench: unknown command {known!r}\n\n{usage()}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
