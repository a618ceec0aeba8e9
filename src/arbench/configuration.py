"""The workflow config as the user meant it: values typed by the schema, before validation.

Snakemake hands over a structured `--config` value (`models={"nade": {"hidden": 300}}`) parsed
with YAML's BaseLoader, so every number, boolean and null inside it arrives as a string; and
YAML 1.1 reads a config file's `1e-5` as a string too. `coerce` walks the config beside the
schema and turns each string where the schema expects a number, an integer, a boolean or null
into that type, leaving anything it cannot read as it was, for validation to name.
"""

from __future__ import annotations

import re
from pathlib import Path

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
