"""The examine stage: one trained model against the test split, in one process.

    python -m arbench.examine --data D.npz --model M.pt --likelihood L.json --nll L.npz
        --completion C.json [--hidden-rows 0.5 --images 6 --completions 4 --seed 0]
        [--device auto]

runs the evaluate stage (the test NLL, `arbench.evaluate`) and then the complete stage (test
images completed from their top rows, `arbench.complete`) on the model, each as it runs alone:
the same files and the same numbers. A workflow job spends about 2 s starting Python and torch
before its work, which on the default run's models takes 1-3 s: one job a model instead of two
is 18 fewer processes there (BENCHMARKS.md, "The default workflow run"). Sampling stays a job of
its own: the sample-quality jobs read its samples, and a job that wrote them again would make
them all run again.
"""

from __future__ import annotations

import sys
from pathlib import Path

from arbench.complete import complete, images_file
from arbench.core.cli import nonnegative_int, positive_int, run_stage, stage_parser
from arbench.evaluate import evaluate


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(
        "arbench.examine", "Test NLL of a trained model, and test images completed by it."
    )
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--device", default="auto")
    scored = parser.add_argument_group("test likelihood (arbench.evaluate)")
    scored.add_argument("--likelihood", required=True, help="summary JSON")
    scored.add_argument("--nll", required=True, help="per-image NLLs (.npz)")
    completed = parser.add_argument_group("completion (arbench.complete)")
    completed.add_argument("--completion", required=True, help="summary JSON; images beside")
    completed.add_argument("--hidden-rows", type=float, default=0.5, help="fraction hidden")
    completed.add_argument("--images", type=positive_int, default=6)
    completed.add_argument("--completions", type=positive_int, default=4)
    completed.add_argument("--seed", type=nonnegative_int, default=0)
    args = parser.parse_args(argv)
    outputs = (
        args.likelihood,
        args.nll,
        args.completion,
        images_file(args.completion),
    )

    def examine() -> None:
        try:
            evaluate(args.data, args.model, args.likelihood, args.device, args.nll)
            complete(
                args.data,
                args.model,
                args.completion,
                args.hidden_rows,
                args.images,
                args.completions,
                args.seed,
                args.device,
            )
        except BaseException:  # all or nothing: no likelihood left without its completions
            for output in outputs:
                Path(output).unlink(missing_ok=True)
            raise

    return run_stage(
        f"examine {args.model} on {args.data}",
        examine,
        inputs=(args.data, args.model),
        outputs=outputs,
    )


if __name__ == "__main__":
    sys.exit(main())
