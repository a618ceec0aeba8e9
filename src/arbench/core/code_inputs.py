"""The source files a job runs, read off the imports of its entry modules.

A workflow job's code is every module of `arbench` that its entry modules import, directly or
through other modules (imports anywhere in a file count, those inside functions too), the
`__init__.py` of every package on the way, and the non-Python files a module names beside itself
(the NADE kernel's C source). The workflow gives each job the digest of those files' names
(relative to the package) and contents as a parameter: editing any of them reruns the job,
editing a file the job never runs does not, and a finished run moved or copied to another folder
(the package with it) plans nothing. Modules imported by name at run time (the registries in
`arbench.core.plan`) are not followed: a job names them as entry modules.

A user's model lives outside `arbench`: an entry module of another package (`independent_pixels.
model`) is followed the same way through the modules of its own top-level package, wherever that
is installed, and its files are named relative to the folder holding that package. Imports of
any other package (numpy, torch) are never followed.

Data a config names outside `results/` (a dataset's local folder, the labelled test digits) is
recorded the same way, by content (`content_digest`), not by its files' times: a read-only share
provisioned again (each session's `../shared` is) reruns nothing, a changed file reruns the jobs
that read it.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import re
from functools import cache
from pathlib import Path

PACKAGE = "arbench"
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the arbench package
FILE_NAME = re.compile(r"[\w.-]+\.\w+")


def module_file(module: str) -> Path | None:
    """The file of an `arbench` module or package, or the Python source of another package's
    module (found, not imported: its parent packages are); None where there is none."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return _source_file(module)
    base = PACKAGE_DIR.parent.joinpath(*parts)
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


@cache
def _source_file(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # a parent that is not a package, or fails to import
        return None
    origin = spec and spec.origin
    if not origin or not origin.endswith(".py") or not Path(origin).is_file():
        return None  # a built-in, an extension module or a namespace package: no source to read
    return Path(origin).resolve()


def _root(module: str) -> Path:
    """The folder holding a module's top-level package (or the module, when it is one file)."""
    top = module.split(".")[0]
    file = module_file(top)
    return file.parent.parent if file.name == "__init__.py" else file.parent


def _name(file: Path, module: str) -> str:
    """A file's name in the digest: relative to the arbench package for its own files (as
    they always were), to the folder of its top-level package for another package's."""
    if module.split(".")[0] == PACKAGE:
        return file.relative_to(PACKAGE_DIR).as_posix()
    return "user/" + file.relative_to(_root(module)).as_posix()


def _package_of(module: str, file: Path) -> str:
    return module if file.name == "__init__.py" else module.rpartition(".")[0]


@cache
def _direct(module: str) -> tuple[tuple[str, ...], tuple[Path, ...]]:
    """(modules of arbench and of `module`'s own top-level package that `module` imports,
    companion files it names beside itself). Other packages are not looked up: finding one
    would import its parents (torch, from `torch.nn`)."""
    own = {PACKAGE, module.split(".")[0]}
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
    modules = tuple(
        sorted(m for m in imported if m.split(".")[0] in own and module_file(m) is not None)
    )
    return modules, tuple(sorted(companions))


def _code(*modules: str) -> dict[Path, str]:
    """Every file that running `modules` executes or reads, from arbench and from the top-level
    packages of `modules`, with the module it belongs to."""
    followed = {PACKAGE, *(m.split(".")[0] for m in modules)}
    seen, files, pending = set(), {}, list(modules)
    pending += [f"{m}.__main__" for m in modules if module_file(f"{m}.__main__") is not None]
    while pending:
        module = pending.pop()
        if module in seen or module.split(".")[0] not in followed:
            continue
        seen.add(module)
        file = module_file(module)
        if file is None:
            where = PACKAGE_DIR if module.startswith(PACKAGE) else "this environment"
            raise ValueError(f"{module} is not a module with Python source in {where}")
        files[file] = module
        parts = module.split(".")
        pending.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages
        imported, companions = _direct(module)
        pending.extend(imported)
        files.update(dict.fromkeys(companions, module))
    return files


def code_files(*modules: str) -> list[str]:
    """Every file that running `modules` executes or reads from the package (and from the
    packages of modules outside it: a user's model), sorted (a package run as `python -m` runs
    its `__main__` too)."""
    return sorted(str(f) for f in _code(*modules))


@cache
def code_digest(*modules: str) -> str:
    """sha256 of the names (relative to their package) and contents of `code_files(*modules)`:
    the same wherever the package lies."""
    digest = hashlib.sha256()
    for file, module in sorted(_code(*modules).items(), key=lambda item: str(item[0])):
        digest.update(_name(file, module).encode() + b"\0")
        digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()


@cache
def content_digest(path: str) -> str:
    """sha256 of a file's contents, or of the names (relative to the folder) and contents of
    every file under a folder, read in blocks (a dataset archive may be large)."""
    root = Path(path)
    if root.is_file():
        named = {"": root}
    else:
        named = {f.relative_to(root).as_posix(): f for f in root.rglob("*") if f.is_file()}
    digest = hashlib.sha256()
    for name, file in sorted(named.items()):
        digest.update(name.encode() + b"\0")
        with file.open("rb") as stream:
            while block := stream.read(1 << 20):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()
