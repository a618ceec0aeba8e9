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


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """The tests that read the shared tiny run go to one worker (`--dist loadgroup`), which
    makes it once; the others, each running its own workflow, spread over the rest. First:
    xdist reads the groups in its own hook of this name, and a marker added after it is ignored
    (each worker then made its own tiny run)."""
    for item in items:
        if "finished" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("tiny run"))


def pytest_terminal_summary(terminalreporter):
    """So that a CI log shows which SLURM jobs the cluster test submitted."""
    for report in terminalreporter.stats.get("passed", []):
        for name, value in report.user_properties:
            if name == "slurm_job_ids":
                terminalreporter.write_line(f"{report.nodeid}: submitted as SLURM jobs {value}")
