"""What a failing run tells its user: the command they typed, repeated without what must not be,
and each failed job's own last line read from Snakemake's log."""

from arbench.hooks.advice import failed_jobs_summary, is_dry_run, user_command


def test_the_users_command_is_repeated_as_typed_without_a_dry_run_or_earlier_forced_files():
    typed = ["/venv/bin/python", ".venv/bin/snakemake", "--cores", "all", "-n"]
    typed += ["--configfile", "config/study.yaml", "--forcerun", "a.npz", "b.npz", "-p"]
    assert user_command(typed) == (
        ".venv/bin/snakemake --cores all --configfile config/study.yaml -p"
    )
    module = ["/venv/bin/python", "-m", "snakemake", "--config", 'models={"nade": {"hidden": 9}}']
    assert user_command(module) == (
        '/venv/bin/python -m snakemake --config \'models={"nade": {"hidden": 9}}\''
    )


def test_a_dry_run_is_known_by_any_of_its_spellings():
    assert is_dry_run(["snakemake", "-np"]) and is_dry_run(["snakemake", "--dry-run"])
    assert is_dry_run(["snakemake", "-n"]) and not is_dry_run(["snakemake", "--cores", "2"])


def test_each_failed_jobs_own_last_line_is_read_from_snakemake_log(tmp_path):
    job_log = tmp_path / "report.log"
    job_log.write_text(
        "2026-12-01 10:00:00,000 arbench.report: reading\n"
        "2026-12-01 10:00:01,000 arbench: report failed: x.npz: nll has 499 values, not 500\n"
    )
    snakemake_log = tmp_path / "snakemake.log"
    snakemake_log.write_text(
        "Error in rule report:\n"
        "    message: None\n"
        "    jobid: 0\n"
        f"    log: {job_log} (check log file(s) for error details)\n"
        "    shell:\n"
        "        python -m arbench.report ...\n"
        "Error in rule sample:\n"
        "    jobid: 3\n"
        "    wildcards: dataset=mnist, model=nade\n"
        f"    log: {tmp_path / 'missing.log'} (check log file(s) for error details)\n"
        "Shutting down, this might take some time.\n"
    )
    lines = failed_jobs_summary([snakemake_log]).splitlines()
    assert lines[0] == "arbench (report job): report failed: x.npz: nll has 499 values, not 500"
    assert lines[1].startswith("arbench (sample job, dataset=mnist, model=nade): it wrote no log")
    assert lines[2] == "arbench: each job's log keeps the detail."
    assert failed_jobs_summary([tmp_path / "absent.log"]) == ""
