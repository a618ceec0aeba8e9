"""A user's model: a class of theirs, found by its import path or its package's entry point.

A config names a user's model in one of two ways:

- by import path: `models: {mine: {class: "package.module:Class", ...its settings}}`;
- by the name an installed package registers it under in the `arbench.models` entry-point group
  (`[project.entry-points."arbench.models"] mine = "package.module:Class"`): then `mine` is named
  in a dataset's `models` like one of arbench's own.

Here a class is imported and described (its family, whether the shared trainer trains it, its
settings' defaults) after `arbench.models.interface` has checked it against the interface every
model follows; `arbench.core.plan` makes its registry entry from that description. Everything that
can be wrong is one `UserModelError` naming where the model was named and what is missing.

A job that knows a model only by its name (the report, which places each model on its side of
the study) finds the run's user models in the environment variable `ARBENCH_USER_MODELS`, which
the workflow sets for its jobs (`run_models`); a job's settings and a model file name their
class themselves.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from dataclasses import dataclass, field
from importlib import metadata

ENTRY_POINTS = "arbench.models"
ENVIRONMENT = "ARBENCH_USER_MODELS"
# What a config's entry of a user's model says about the model itself rather than its settings
IDENTITY_KEYS = ("class", "family")
FAMILIES = ("autoregressive", "mixture")
# Settings a job is given by the workflow, which a class may not declare as its own
RESERVED = frozenset({"seed", "device", "threads", *IDENTITY_KEYS})
CLASS_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
# The module that states the interface (imported by name: it lies in a layer above this one)
INTERFACE = "arbench.models.interface"
HOW = "(docs/architecture.md, 'Bring your own model', describes the interface)"


class UserModelError(ValueError):
    """A user's model that cannot be used as named; the message names where and what to do."""


@dataclass(frozen=True)
class UserClass:
    """What arbench needs to know of a user's class to plan and run its jobs."""

    name: str
    path: str  # "package.module:Class"
    family: str
    neural: bool  # a network the shared trainer trains (else the class fits itself)
    defaults: dict = field(default_factory=dict)

    @property
    def module(self) -> str:
        return self.path.partition(":")[0]

    @property
    def cls(self) -> str:
        return self.path.partition(":")[2]


def import_class(path: str, where: str) -> type:
    """The class `path` ("package.module:Class") names, imported."""
    if not isinstance(path, str) or not CLASS_PATH.fullmatch(path):
        raise UserModelError(
            f"{where}: class {path!r} is not an import path; write it as 'package.module:Class'"
        )
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # a user's module may fail in any way while it is imported
        raise UserModelError(
            f"{where}: class {path} cannot be imported: {type(error).__name__}: {error}. "
            "Install the package that defines it in this environment (or put its folder on "
            "PYTHONPATH)"
        ) from None
    found = module
    for part in attribute.split("."):
        found = getattr(found, part, None)
        if found is None:
            raise UserModelError(
                f"{where}: module {module_name} ({getattr(module, '__file__', '?')}) has no "
                f"{attribute}; name the class as 'package.module:Class'"
            )
    if not isinstance(found, type):
        raise UserModelError(f"{where}: {path} is a {type(found).__name__}, not a class")
    return found


def entry_point(name: str) -> str | None:
    """The class path an installed package registers as model `name`, or None."""
    found = [ep for ep in metadata.entry_points(group=ENTRY_POINTS) if ep.name == name]
    if len({ep.value for ep in found}) > 1:
        raise UserModelError(
            f"model {name}: several installed packages register it as an {ENTRY_POINTS} entry "
            f"point ({', '.join(sorted(ep.value for ep in found))}); name the one you mean with "
            f"models: {{{name}: {{class: 'package.module:Class'}}}}"
        )
    return found[0].value if found else None


def entry_point_names() -> list[str]:
    return sorted({ep.name for ep in metadata.entry_points(group=ENTRY_POINTS)})


def describe(name: str, path: str, family: str | None, where: str) -> UserClass:
    """Import the class `path` names, check it against the interface and describe it; `family`
    (the config's) wins over the class's own `family`."""
    cls = import_class(path, where)
    interface = importlib.import_module(INTERFACE)
    problems = interface.problems(cls)
    if problems:
        raise UserModelError(
            f"{where}: class {path} does not follow arbench's model interface: "
            f"{'; '.join(problems)}. {HOW}"
        )
    family = family if family is not None else getattr(cls, "family", None)
    if family not in FAMILIES:
        given = "" if family is None else f" ({family!r} is neither)"
        raise UserModelError(
            f"{where}: the study places every model on a side, autoregressive or mixture, and "
            f"model {name} has no family{given}: set `family` in its config entry (models: "
            f"{{{name}: {{family: mixture}}}}) or as an attribute of {path}"
        )
    defaults = getattr(cls, "defaults", {})
    reserved = sorted(RESERVED & set(defaults))
    if reserved:
        raise UserModelError(
            f"{where}: {path}.defaults declares {', '.join(reserved)}, which the workflow "
            "sets itself (seed, device, threads) or which name the model (class, family); "
            "rename them"
        )
    try:
        json.dumps(defaults)
    except TypeError as error:
        raise UserModelError(
            f"{where}: {path}.defaults must hold plain values (numbers, text, true/false, "
            f"lists, mappings), as a config does: {error}"
        ) from None
    return UserClass(name, path, family, interface.is_network(cls), dict(defaults))


def run_models() -> dict[str, dict]:
    """The user's models of the workflow run this process belongs to: {name: {"class": path,
    "family": family}}, from the environment (none outside a workflow job)."""
    text = os.environ.get(ENVIRONMENT)
    return json.loads(text) if text else {}


def export(models: dict[str, UserClass]) -> None:
    """Hand the run's user models to the jobs it starts (they inherit the environment)."""
    os.environ[ENVIRONMENT] = json.dumps(
        {name: {"class": user.path, "family": user.family} for name, user in models.items()},
        sort_keys=True,
    )
