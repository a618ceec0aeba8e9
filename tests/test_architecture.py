"""The package's picture cannot rot: `lint-imports` (run by `.ci/run`) keeps the layers of
docs/architecture.md; this keeps the import graph free of cycles, layers or not."""

import grimp


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
