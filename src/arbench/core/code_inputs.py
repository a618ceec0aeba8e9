"""The source files a job runs, read off the imports of its entry modules.

A workflow job's code is every module of `arbench` that its entry modules import, directly or
through other modules (imports anywhere in a file count, those inside functions too), the
`__init__.py` of every package on the way, and the non-Python files a module names beside itself
(the NADE kernel's C source). The workflow gives each job the digest of those files' names
(relative to the package) and contents as a parameter: editing any of them reruns the job,
editing a file the job never runs does not, and a finished run moved or copied to another folder
(the package with it) plans nothing. Modules imported by name at run time (the registries in
`arbench.core.plan`) are not followed: a job names them as entry modules.
"""

from __future__ import annotations

import ast
import hashlib
import re
from functools import cache
from pathlib import Path

PACKAGE = "arbench"
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the arbench package
FILE_NAME = re.compile(r"[\w.-]+\.\w+")


def module_file(module: str) -> Path | None:
    """The file of an `arbench` module or package, None for anything else."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_DIR.parent.joinpath(*parts)
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _package_of(module: str, file: Path) -> str:
    return module if file.name == "__init__.py" else module.rpartition(".")[0]


@cache
def _direct(module: str) -> tuple[tuple[str, ...], tuple[Path, ...]]:
    """(modules of arbench that `module` imports, companion files it names beside itself)."""
    file = module_file(module)
    tree = ast.parse(file.read_text(), filename=str(file))
    imported, companions = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = _package_of(module, file).split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            imported.add(base)
            # `from package import name` may import a module called name
            imported.update(f"{base}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and FILE_NAME.fullmatch(node.value)
            and not node.value.endswith(".py")
            and (file.parent / node.value).is_file()
        ):
            companions.add(file.parent / node.value)
    modules = tuple(sorted(m for m in imported if module_file(m) is not None))
    return modules, tuple(sorted(companions))


def code_files(*modules: str) -> list[str]:
    """Every file that running `modules` executes or reads from the package, sorted (a package
    run as `python -m` runs its `__main__` too)."""
    seen, files, pending = set(), set(), list(modules)
    pending += [f"{m}.__main__" for m in modules if module_file(f"{m}.__main__") is not None]
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        file = module_file(module)
        if file is None:
            raise ValueError(f"{module} is not a module of {PACKAGE} ({PACKAGE_DIR})")
        files.add(file)
        parts = module.split(".")
        pending.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages
        imported, companions = _direct(module)
        pending.extend(imported)
        files.update(companions)
    return sorted(str(f) for f in files)


@cache
def code_digest(*modules: str) -> str:
    """sha256 of the names (relative to the package) and contents of `code_files(*modules)`:
    the same wherever the package lies."""
    digest = hashlib.sha256()
    for file in code_files(*modules):
        digest.update(Path(file).relative_to(PACKAGE_DIR).as_posix().encode() + b"\0")
        digest.update(Path(file).read_bytes() + b"\0")
    return digest.hexdigest()
