"""What a run tells its user where they look: the command they typed, for advice to repeat, and
when jobs fail, each failed job's own last line at the console.

A stage that fails ends its log with one line naming the job, what is wrong and what to do
(`arbench.core.cli.run_stage`); Snakemake's console shows only its generic "Error in rule ...
(check log file(s) for error details)" and the job's shell command. The workflow's `onerror`
handler reads the failed jobs from Snakemake's own log and prints each one's line from its log
(`failed_jobs_summary`). The command line of the run (`user_command`) reaches every job through
the environment (`arbench.core.contracts.RUN_COMMAND`), so that the advice a stage gives (remake
this file with ...) repeats it with its config files, `--config` overrides and profile.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

# options of the user's command that advice must not repeat: a dry run would remake nothing,
# and earlier forced files are not this advice's
DROPPED_FLAGS = ("-n", "--dry-run", "--dryrun")
DROPPED_WITH_VALUES = ("--forcerun", "-R")
LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [\w.]+: ")


def user_command(argv: list[str]) -> str:
    """The command a user ran (`sys.orig_argv`: the interpreter and `-m snakemake` when typed
    so, the `snakemake` script alone when typed so), quoted for a shell, without a dry run or
    earlier forced files."""
    if len(argv) > 1 and Path(argv[1]).name == "snakemake":
        argv = argv[1:]  # the interpreter running the script is not part of what was typed
    kept, skipping = [], False
    for word in argv:
        if skipping and not word.startswith("-"):
            continue
        skipping = word in DROPPED_WITH_VALUES
        if skipping or word in DROPPED_FLAGS:
            continue
        kept.append(word)
    return shlex.join(kept)


def is_dry_run(argv: list[str]) -> bool:
    """Whether a Snakemake command line plans only (`-n`, `--dry-run`, or `-n` among other
    short flags, as in `-np`)."""
    return any(
        word in ("--dry-run", "--dryrun") or re.fullmatch(r"-[a-zA-Z]*n[a-zA-Z]*", word)
        for word in argv
    )


@dataclass(frozen=True)
class FailedJob:
    rule: str
    wildcards: str
    log: Path | None

    def reason(self) -> str:
        """The job's own last line (timestamps and logger name cut), or where to look."""
        if self.log is None or not self.log.is_file():
            return "it wrote no log; Snakemake's output above says why"
        lines = [line for line in self.log.read_text(errors="replace").splitlines() if line]
        if not lines:
            return f"its log {self.log} is empty"
        return LOG_PREFIX.sub("", lines[-1])


def failed_jobs(snakemake_log: str | Path) -> list[FailedJob]:
    """The jobs Snakemake's log records as failed, in order, each with its rule, wildcards and
    log file."""
    jobs, current = [], None
    if not Path(snakemake_log).is_file():
        return []
    for line in Path(snakemake_log).read_text(errors="replace").splitlines():
        if match := re.match(r"^Error in rule (\w+):$", line):
            current = {"rule": match.group(1), "wildcards": "", "log": None}
            jobs.append(current)
        elif current is not None and line.startswith("    "):
            key, _, value = line.strip().partition(": ")
            if key == "wildcards":
                current["wildcards"] = value
            elif key == "log":
                current["log"] = Path(value.split(" (check log file", 1)[0].split(", ")[0])
        elif current is not None and not line.startswith(" "):
            current = None
    return [FailedJob(**job) for job in jobs]


def failed_jobs_summary(snakemake_logs: list[str | Path]) -> str:
    """One line per failed job of Snakemake's logs (its `onerror` hands over their paths): its
    rule and wildcards, and its own reason."""
    jobs = [job for log in snakemake_logs for job in failed_jobs(log)]
    lines = []
    for job in jobs:
        where = f"{job.rule} job, {job.wildcards}" if job.wildcards else f"{job.rule} job"
        lines.append(f"arbench ({where}): {job.reason()}")
    if any(job.log for job in jobs):
        lines.append("arbench: each job's log keeps the detail.")
    return "\n".join(lines)
