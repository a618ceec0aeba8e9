"""The workflow config as the user meant it: checked as written, typed where text is all there is.

- A config file is read again with a loader that refuses a key given twice in one mapping (YAML
  would keep the last silently, dropping the first one's datasets or models), naming the key and
  both lines.
- Snakemake hands over a structured `--config` value (`models={"nade": {"hidden": 300}}`) parsed
  with YAML's BaseLoader, so every number, boolean and null inside it arrives as a string.
  `coerce` walks those values beside the schema and turns each string where the schema expects
  a number, an integer, a boolean or null into that type; `with_typed_overrides` merges them
  back. A value written in a file keeps the type it was written with: `hidden: "500"` is a
  string there, and validation says so.
- `check` validates the config against the schema and reports every problem in one message,
  by its key path.
- `fill_defaults` then writes every default the schema states into the config where the key is
  left out, so that whatever reads the config later (the rules, the plan) finds every key.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import jsonschema
import yaml

BOOLEANS = {"true": True, "false": False}
NULLS = ("null", "~", "none", "")


def load_schema(path: str | Path) -> dict:
    return yaml.safe_load(Path(path).read_text())


def _resolve(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        pointer = schema["$ref"].removeprefix("#/").split("/")
        target = root
        for part in pointer:
            target = target[part]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _expected_types(schema: dict) -> set[str]:
    kinds = schema.get("type", [])
    kinds = {kinds} if isinstance(kinds, str) else set(kinds)
    for value in schema.get("enum", []):
        kinds.add(
            "null"
            if value is None
            else "boolean"
            if isinstance(value, bool)
            else "number"
            if isinstance(value, int | float)
            else "string"
        )
    return kinds


def _from_string(text: str, kinds: set[str]):
    lowered = text.strip().lower()
    if "integer" in kinds and re.fullmatch(r"[-+]?\d+", text.strip()):
        return int(text)
    if "number" in kinds:
        try:
            return int(text) if re.fullmatch(r"[-+]?\d+", text.strip()) else float(text)
        except ValueError:
            pass
    if "boolean" in kinds and lowered in BOOLEANS:
        return BOOLEANS[lowered]
    if "null" in kinds and lowered in NULLS:
        return None
    return text


def _alternative(schema: dict, value, root: dict) -> dict:
    """Of a `oneOf`/`anyOf` schema, the alternative for a value of this kind (mapping, list or
    scalar); the schema itself without alternatives."""
    options = schema.get("oneOf") or schema.get("anyOf")
    if not options:
        return schema
    wanted = "object" if isinstance(value, dict) else "array" if isinstance(value, list) else None
    resolved = [_resolve(option, root) for option in options]
    for option in resolved:
        kinds = _expected_types(option)
        if wanted in kinds or (wanted is None and kinds - {"object", "array"}):
            return option
    return schema


def coerce(value, schema: dict, root: dict | None = None):
    """`value` with every string typed as `schema` expects where it can be read so."""
    root = root if root is not None else schema
    schema = _alternative(_resolve(schema, root), value, root)
    if isinstance(value, str):
        kinds = _expected_types(schema)
        return value if "string" in kinds and not kinds - {"string"} else _from_string(value, kinds)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        return {
            key: coerce(
                item,
                properties.get(key, extra if isinstance(extra, dict) else {}),
                root,
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        items = schema.get("items", {})
        return [coerce(item, items, root) for item in value]
    return value


class ConfigError(ValueError):
    """The config cannot be run as written; the message names the key and what to do."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key repeated in one mapping."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    f"{self.name} line {line}: key {key!r} appears twice in one mapping (first "
                    f"on line {seen[key]}); YAML would keep only the last. Merge the two entries "
                    "into one."
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def check_file(path: str | Path) -> None:
    """Refuse a config file that repeats a key within one mapping."""
    path = Path(path)
    loader = _UniqueKeyLoader(path.read_text())
    loader.name = str(path)
    try:
        loader.get_single_data()
    finally:
        loader.dispose()


def merge(base: dict, overrides: dict) -> None:
    """Update `base` in place with `overrides`, recursing into mappings (as Snakemake merges
    `--config` into the config)."""
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value


def with_typed_overrides(config: dict, overrides: dict, schema: dict) -> None:
    """Give the `--config` values merged into `config` the types the schema asks for."""
    merge(config, coerce(overrides, schema))


KINDS = {dict: "object", list: "array", str: "string", bool: "boolean"}
KIND_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "integer": "an integer",
    "number": "a number",
    "string": "text",
    "boolean": "true or false",
    "null": "null",
}


def _kind(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return KINDS.get(type(value), "null")


def _branch_errors(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """Of a failed `oneOf`/`anyOf`, the errors of the alternative meant for a value of this kind
    (a mapping's, for a mapping): what the user has to fix, not why the other forms fail."""
    branches: dict[int, list] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    options = error.schema.get(error.validator, [])
    kind = _kind(error.instance)
    for index, errors in branches.items():
        kinds = _expected_types(options[index]) if index < len(options) else set()
        if kind in kinds or (kind == "number" and "integer" in kinds):
            return errors
    return []


def _message(error: jsonschema.ValidationError) -> str:
    """What is wrong with one value, in the config's words."""
    value = error.instance
    if isinstance(value, str) and re.fullmatch(r"[-+.\deE]+", value.strip()):
        return (
            f"{value!r} is text, not a number: remove the quotes (YAML 1.1 also reads 1e-5 as "
            "text, so write 1.0e-5)"
        )
    bound = error.validator_value
    if error.validator == "minimum":
        return f"must be at least {bound}, got {value!r}"
    if error.validator == "exclusiveMinimum":
        return f"must be more than {bound}, got {value!r}"
    if error.validator == "maximum":
        return f"must be at most {bound}, got {value!r}"
    if error.validator == "exclusiveMaximum":
        return f"must be less than {bound}, got {value!r}"
    return error.message


def _describe(error: jsonschema.ValidationError) -> str:
    where = ".".join(str(part) for part in error.absolute_path) or "the config"
    if error.validator in ("oneOf", "anyOf") and error.context:
        meant = _branch_errors(error)
        if meant:
            return "; ".join(_describe(sub) for sub in meant)
        kinds = sorted({k for o in error.validator_value for k in _expected_types(o)})
        names = " or ".join(KIND_NAMES.get(k, k) for k in kinds)
        return f"{where}: must be {names}, got {error.instance!r}"
    return f"{where}: {_message(error)}"


def check(config: dict, schema: dict, files: list[str]) -> None:
    """Raise a ConfigError listing every way `config` breaks the schema."""
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        origin = ", ".join(files) or "the config"
        problems = "; ".join(_describe(error) for error in errors)
        raise ConfigError(
            f"{origin}: {problems}. Fix these keys and run again (config/README.md documents "
            "every key)."
        )


# A schema keyword of ours: the defaults below a property marked with it are not written into the
# config. A model's settings are layered (the plan's defaults, then `models`, then a dataset's
# `overrides`) and take their defaults per job (`arbench.core.plan.job_settings`): an `overrides`
# entry filled with every default would undo the `models` entry beneath it.
DEFAULTS_PER_JOB = "x-defaults-per-job"


def _defaults_inside(schema: dict, root: dict) -> bool:
    """Whether a mapping's schema gives a default to some key below it (then an absent mapping is
    filled as if it were written empty)."""
    schema = _resolve(schema, root)
    if schema.get(DEFAULTS_PER_JOB) or "object" not in _expected_types(schema):
        return False
    return any(
        "default" in _resolve(sub, root) or _defaults_inside(sub, root)
        for sub in schema.get("properties", {}).values()
    )


def fill_defaults(config: dict, schema: dict, root: dict | None = None) -> dict:
    """Write into `config` (in place; also returned) every default the schema gives a key that
    the config leaves out, at any depth: an absent mapping whose keys have defaults is filled as
    if written empty. Call it on a config that `check` passed. Keys below a property marked
    `x-defaults-per-job` are left as written."""
    root = root if root is not None else schema
    schema = _alternative(_resolve(schema, root), config, root)
    if schema.get(DEFAULTS_PER_JOB) or not isinstance(config, dict):
        return config
    properties = schema.get("properties", {})
    for key, sub in properties.items():
        if key in config:
            continue
        resolved = _resolve(sub, root)
        if "default" in resolved:
            config[key] = copy.deepcopy(resolved["default"])
        elif _defaults_inside(resolved, root):
            config[key] = {}
    extra = schema.get("additionalProperties")
    for key, value in config.items():
        sub = properties.get(key, extra if isinstance(extra, dict) else None)
        if sub is not None:
            fill_defaults(value, sub, root)
    return config
