"""Every kind of file a stage hands another is checked where it is read: truncated, emptied,
overwritten or hand-edited, each ends in one error naming the file, what is wrong and the
command that makes it again, never in a library's traceback or a silently changed number."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from arbench import complete, evaluate, features, metric_check, quality, sample
from arbench.core import contracts as core_contracts
from arbench.core.contracts import (
    COMPLETION,
    COMPLETIONS,
    CURVE,
    FEATURES_SUMMARY,
    LIKELIHOOD,
    METRIC_CHECK,
    NLLS,
    QUALITY,
    SAMPLES,
    DamagedFile,
    plainly,
)
from arbench.data.format import load_dataset, save_dataset
from arbench.hooks.damaged import scan
from arbench.metrics.spaces import FeatureSpaces
from arbench.train import train
from arbench.training.checkpoints import CheckpointError, IncompatibleModel, load_model
from arbench.training.trainer import load_checkpoint

SHAPE = (1, 6, 6)


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    """One good file of every kind, made by the stages on a small binary dataset."""
    folder = tmp_path_factory.mktemp("files")
    rng = np.random.default_rng(0)
    prototypes = rng.random((4, *SHAPE)) < 0.5

    def images(n):
        return (prototypes[rng.integers(0, 4, n)] ^ (rng.random((n, *SHAPE)) < 0.1)).astype(
            np.uint8
        )

    data = save_dataset(
        folder / "d.npz", {"train": images(300), "valid": images(60), "test": images(60)}, 2, {}
    )
    files = {"data": data, "sidecar": folder / "d.json"}
    files["features"] = folder / "f.pt"
    features.build(data, files["features"], bins=8)
    files["features_summary"] = folder / "f.json"
    files["metric_check"] = folder / "check.json"
    metric_check.check(data, files["features"], 30, files["metric_check"])
    files.update(model=folder / "m.pt", curve=folder / "m.csv", checkpoint=folder / "m.ckpt")
    settings = {"hidden": [8], "epochs": 2, "batch_size": 100, "checkpoint_minutes": 0}
    train(data, "made", settings, files["model"], files["curve"], files["checkpoint"], True)
    files["samples"] = folder / "s.npz"
    sample.sample(files["model"], 60, 0, files["samples"])  # two draws of 30
    files["quality"] = folder / "q.json"
    quality.assess(data, files["features"], files["samples"], 30, 2, 1, files["quality"])
    files["metrics"], files["nll"] = folder / "e.json", folder / "e.npz"
    evaluate.evaluate(data, files["model"], files["metrics"])
    files["completion"], files["completion_images"] = folder / "c.json", folder / "c.npz"
    complete.complete(data, files["model"], files["completion"], 0.5, 3, 2)
    return files


READERS = {
    "data": lambda files: load_dataset(files["data"]),
    "sidecar": lambda files: load_dataset(files["data"]),
    "samples": lambda files: SAMPLES.read(files["samples"], levels=2, shape=SHAPE),
    "nll": lambda files: NLLS.read(files["nll"], count=60),
    "metrics": lambda files: LIKELIHOOD.read(files["metrics"]),
    "completion": lambda files: COMPLETION.read(files["completion"]),
    "completion_images": lambda files: COMPLETIONS.read(
        files["completion_images"], levels=2, shape=SHAPE, count=60
    ),
    "quality": lambda files: QUALITY.read(files["quality"]),
    "metric_check": lambda files: METRIC_CHECK.read(files["metric_check"]),
    "features": lambda files: FeatureSpaces.load(files["features"]),
    "features_summary": lambda files: FEATURES_SUMMARY.read(files["features_summary"]),
    "model": lambda files: load_model(files["model"]),
    "checkpoint": lambda files: load_checkpoint(files["checkpoint"]),
    "curve": lambda files: CURVE.read(files["curve"]),
}


def truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def emptied(path: Path) -> None:
    path.write_bytes(b"")


def overwritten(path: Path) -> None:
    path.write_bytes(np.random.default_rng(1).bytes(max(path.stat().st_size, 64)))


def edit_npz(path: Path, name: str, change) -> None:
    with np.load(path) as archive:
        content = {key: archive[key] for key in archive.files}
    content[name] = change(content[name].copy())
    np.savez(path, **content)


def edit_json(path: Path, change) -> None:
    content = json.loads(path.read_text())
    change(content)
    path.write_text(json.dumps(content))


def edit_torch(path: Path, change) -> None:
    content = torch.load(path, weights_only=True)
    change(content)
    torch.save(content, path)


def set_values(value):
    def change(array):
        array.flat[:3] = value
        return array

    return change


# what a hand edit does to each kind: values the data cannot hold, NaN, a key removed
EDITS = {
    "data": lambda p: edit_npz(p, "train", set_values(2)),
    "sidecar": lambda p: edit_json(p, lambda c: c["content_sha256"].update(train="0" * 64)),
    "samples": lambda p: edit_npz(p, "samples", set_values(255)),
    "nll": lambda p: edit_npz(p, "nll", set_values(np.nan)),
    "metrics": lambda p: edit_json(p, lambda c: c.update(nll_nats=float("nan"))),
    "completion": lambda p: edit_json(p, lambda c: c.pop("conditional_nll_nats")),
    "completion_images": lambda p: edit_npz(p, "completions", set_values(5)),
    "quality": lambda p: edit_json(p, lambda c: c["model"]["draws"][0].update(recall=float("nan"))),
    "metric_check": lambda p: edit_json(p, lambda c: c["sets"]["prototypes"].pop("coverage")),
    "features": lambda p: edit_torch(p, lambda c: c.pop("contrastive")),
    "features_summary": lambda p: edit_json(p, lambda c: c.pop("contrastive")),
    "model": lambda p: edit_torch(p, lambda c: c["state"].pop(next(iter(c["state"])))),
    "checkpoint": lambda p: edit_torch(p, lambda c: c.pop("progress")),
    "curve": lambda p: p.write_text(p.read_text().replace("\n2,", "\n2,nan,", 1)),
}
DAMAGE = {"truncated": truncated, "emptied": emptied, "overwritten": overwritten, "edited": None}
RULES = Path(__file__).resolve().parents[2] / "workflow" / "rules"


@functools.cache
def writers() -> dict[str, str]:
    """Each kind of file (`core.plan.LAYOUT`) and the workflow rule whose output it is."""
    found = {}
    for rules in RULES.glob("*.smk"):
        for block in re.split(r"^rule ", rules.read_text(), flags=re.MULTILINE)[1:]:
            name = block.split(":", 1)[0]
            output = re.search(r"^    output:\n(.*?)^    \w+:", block, re.MULTILINE | re.DOTALL)
            for kind in re.findall(r'plan\.path\("(\w+)"', output.group(1) if output else ""):
                found[kind] = name
    return found


def test_the_rule_a_damaged_file_names_is_the_rule_that_writes_it():
    kinds = writers()
    assert {"data", "samples", "nll", "completion", "model", "curve"} <= set(kinds)
    assert kinds["nll"] == "examine" and kinds["samples"] == "sample"
    contracts = [c for c in vars(core_contracts).values() if hasattr(c, "rule")]
    assert len(contracts) >= 10
    rules = set(kinds.values())
    for contract in contracts:
        assert contract.rule in rules, f"{contract.kind} names the rule {contract.rule}"


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("kind", list(READERS))
def test_a_damaged_file_is_refused_naming_it_and_how_to_remake_it(made, kind, damage, tmp_path):
    files = {name: tmp_path / path.name for name, path in made.items()}
    for name, path in made.items():
        files[name].write_bytes(path.read_bytes())
    READERS[kind](files)  # the good file reads
    (EDITS[kind] if damage == "edited" else DAMAGE[damage])(files[kind])
    with pytest.raises(DamagedFile) as refused:
        READERS[kind](files)
    message = str(refused.value)
    named = files["data"] if kind == "sidecar" else files[kind]
    assert str(named) in message, message
    remedy = "Delete" if kind == "checkpoint" else "snakemake --cores all"
    assert remedy in message, message
    if kind != "checkpoint":  # a training's own file, not a rule's output
        assert f"(the {writers()[kind]} rule)" in message, message
    assert "\n" not in message


def test_a_samples_file_of_another_dataset_is_refused_by_the_quality_stage(made, tmp_path):
    wrong = tmp_path / "grey.npz"
    with np.load(made["samples"]) as archive:
        content = {key: archive[key] for key in archive.files}
    np.savez(wrong, **{**content, "samples": content["samples"][:, :, :4, :4]})
    result = subprocess.run(
        [sys.executable, "-m", "arbench.quality", "--data", str(made["data"])]
        + ["--features", str(made["features"]), "--samples", str(wrong), "--n", "30"]
        + ["--out", str(tmp_path / "q.json")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert str(wrong) in last and "(1, 4, 4), not (1, 6, 6)" in last and "snakemake" in last
    assert "Traceback" not in result.stderr and not (tmp_path / "q.json").exists()


def test_writers_refuse_what_their_readers_would(tmp_path):
    with pytest.raises(DamagedFile, match="outside 0..1"):
        SAMPLES.write(
            tmp_path / "s.npz",
            {
                "samples": np.full((4, *SHAPE), 3, np.uint8),
                "levels": np.int64(2),
                "seed": np.int64(0),
                "seconds": np.float64(0.1),
            },
        )
    with pytest.raises(DamagedFile, match="nll_nats is NaN"):
        summary = {**dict.fromkeys(LIKELIHOOD.keys, 1.0), "nll_nats": float("nan")}
        LIKELIHOOD.write(tmp_path / "e.json", summary)
    assert not list(tmp_path.iterdir())


def test_a_model_file_of_another_model_version_is_refused_naming_both(made, tmp_path):
    older = tmp_path / "old.pt"
    content = torch.load(made["model"], weights_only=True)
    content["version"] = 0
    torch.save(content, older)
    with pytest.raises(IncompatibleModel, match="version 0 of arbench's made code; this arbench's"):
        load_model(older)


def test_a_scan_finds_each_damaged_result_once_and_skips_files_it_has_seen(made, tmp_path):
    files = {}
    for kind in ("data", "samples", "quality", "model"):
        files[str(tmp_path / made[kind].name)] = kind
        (tmp_path / made[kind].name).write_bytes(made[kind].read_bytes())
    (tmp_path / made["sidecar"].name).write_bytes(made["sidecar"].read_bytes())
    record = tmp_path / "checked.json"
    assert scan(files, record) == {}
    assert set(json.loads(record.read_text())) == set(files)
    truncated(tmp_path / made["model"].name)
    EDITS["samples"](tmp_path / made["samples"].name)
    found = scan(files, record)
    assert set(found) == {str(tmp_path / made["model"].name), str(tmp_path / made["samples"].name)}
    assert "outside 0..1" in found[str(tmp_path / made["samples"].name)].problem


def test_a_librarys_message_inside_ours_is_its_meaning_or_its_first_sentence_whole():
    torch_text = (
        "PytorchStreamReader failed reading zip archive: failed finding central directory. "
        "This is an internal miniz error. If you are seeing this error, there is a high "
        "likelihood that your checkpoint file is corrupted."
    )
    assert plainly(RuntimeError(torch_text)) == "its zip archive is cut short or damaged"
    assert plainly(EOFError()) == "it ends early: cut short"
    assert plainly(ValueError("Expecting value. And more text.")) == "Expecting value."
    long = ValueError("word " * 60)
    shortened = plainly(long)
    assert shortened.endswith(" ...") and len(shortened) <= 170
    assert all(piece == "word" for piece in shortened[:-4].split())  # cut between words
    assert plainly(KeyError()) == "KeyError"


def test_a_truncated_features_file_is_named_in_our_words(tmp_path):
    saved = tmp_path / "features.pt"
    torch.save({"learned": {}}, saved)
    saved.write_bytes(saved.read_bytes()[:100])
    with pytest.raises(CheckpointError) as refused:
        FeatureSpaces.load(saved)
    message = str(refused.value)
    assert "its zip archive is cut short or damaged" in message
    assert "high likelihood" not in message and "miniz" not in message
