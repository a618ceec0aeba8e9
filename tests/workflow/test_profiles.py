"""The profiles name the workflow's rules as they are: a rule renamed or merged would leave its
resources silently unset on a cluster."""

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def workflow_rules() -> set[str]:
    files = [REPO / "Snakefile", *(REPO / "workflow" / "rules").glob("*.smk")]
    return {name for f in files for name in re.findall(r"^rule (\w+):", f.read_text(), re.M)}


def test_every_rule_a_profile_sets_resources_for_is_a_rule_of_the_workflow():
    rules = workflow_rules()
    assert {"train", "sample", "examine", "quality", "report"} <= rules
    profiles = sorted((REPO / "profiles").glob("*/config.yaml"))
    assert len(profiles) >= 3
    for profile in profiles:
        named = yaml.safe_load(profile.read_text()).get("set-resources", {})
        assert set(named) <= rules, f"{profile.relative_to(REPO)} names {set(named) - rules}"
