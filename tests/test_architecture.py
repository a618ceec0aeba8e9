"""The package's picture cannot rot: `lint-imports` (run by `.ci/run`) keeps the layers of
docs/architecture.md; this keeps the import graph free of cycles, layers or not."""

import importlib
from importlib import resources

import grimp

from arbench import commands


def test_no_module_of_arbench_imports_one_that_imports_it_back():
    graph = grimp.build_graph("arbench")
    assert len(graph.modules) > 40  # the whole package, not an empty graph
    cycles = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back:
                cycles.append(" -> ".join((importer, *back)))
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_package_top_holds_only_stages_and_the_public_api():
    """Everything else lives in a layer's folder (docs/architecture.md): a module added at the
    top must be a stage the `arbench` command lists, or it belongs below."""
    top = {path.stem for path in resources.files("arbench").iterdir() if path.name.endswith(".py")}
    public = {"__init__", "__main__", "commands", "trained", "judge"}
    assert top - public == set(commands.STAGES) - {"report"}  # the report stage is a package
    for stage in commands.STAGES:
        assert callable(importlib.import_module(f"arbench.{stage}").main), stage
