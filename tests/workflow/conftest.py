"""The tiny workflow run the workflow tests share, and the SLURM job ids in the summary."""

import pytest
from tiny_workflow import TINY, make_faces, snakemake


@pytest.fixture(scope="session")
def finished(tmp_path_factory):
    """One complete local run of the tiny config, shared by the tests that inspect it (they
    only plan further runs, never change it)."""
    workdir = tmp_path_factory.mktemp("workflow")
    make_faces(workdir)
    snakemake(workdir, TINY)
    return workdir


def pytest_terminal_summary(terminalreporter):
    """So that a CI log shows which SLURM jobs the cluster test submitted."""
    for report in terminalreporter.stats.get("passed", []):
        for name, value in report.user_properties:
            if name == "slurm_job_ids":
                terminalreporter.write_line(f"{report.nodeid}: submitted as SLURM jobs {value}")
