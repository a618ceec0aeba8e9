import json

import numpy as np
import pytest

from arbench.data.format import DatasetFormatError, load_dataset, save_dataset, sidecar_path


def make_splits(levels=4, shape=(1, 3, 3)):
    rng = np.random.default_rng(0)
    return {
        name: rng.integers(0, levels, size=(n, *shape), dtype=np.uint8)
        for name, n in (("train", 6), ("valid", 2), ("test", 3))
    }


def test_round_trip_keeps_arrays_and_records_provenance(tmp_path):
    splits = make_splits()
    path = save_dataset(tmp_path / "d.npz", splits, 4, {"source": "unit", "files": {}})
    data = load_dataset(path, verify=True)
    for name, array in splits.items():
        np.testing.assert_array_equal(data.split(name), array)
    assert data.levels == 4 and data.shape == (1, 3, 3) and data.dims == 9
    assert data.meta["counts"] == {"train": 6, "valid": 2, "test": 3}
    assert data.meta["source"] == "unit"
    assert set(data.meta["content_sha256"]) == {"train", "valid", "test"}


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda s: s.pop("valid"), "missing split"),
        (lambda s: s.update(test=s["test"][:0]), "empty"),
        (lambda s: s.update(train=s["train"].astype(np.int16)), "uint8"),
        (lambda s: s.update(test=s["test"][:, :, :2]), "disagree"),
        (lambda s: s["train"].__setitem__((0, 0, 0, 0), 9), "outside 0..3"),
    ],
)
def test_inconsistent_splits_are_refused_and_nothing_is_written(tmp_path, mutate, message):
    splits = make_splits()
    mutate(splits)
    with pytest.raises(DatasetFormatError, match=message):
        save_dataset(tmp_path / "d.npz", splits, 4, {})
    assert list(tmp_path.iterdir()) == []


def test_a_failed_rewrite_removes_the_stale_dataset(tmp_path, monkeypatch):
    path = save_dataset(tmp_path / "d.npz", make_splits(), 4, {})

    def disk_full(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(OSError, match="disk full"):
        save_dataset(path, make_splits(), 4, {})
    assert [p.name for p in tmp_path.iterdir()] == ["d.json"]


def test_tampered_content_fails_verification(tmp_path):
    path = save_dataset(tmp_path / "d.npz", make_splits(), 4, {})
    meta = json.loads(sidecar_path(path).read_text())
    meta["content_sha256"]["test"] = "0" * 64
    sidecar_path(path).write_text(json.dumps(meta))
    load_dataset(path, verify=False)  # a load told not to hash does not see it
    with pytest.raises(DatasetFormatError, match="content sha256"):
        load_dataset(path)


def test_missing_sidecar_is_named(tmp_path):
    path = save_dataset(tmp_path / "d.npz", make_splits(), 4, {})
    sidecar_path(path).unlink()
    with pytest.raises(DatasetFormatError, match="no sidecar"):
        load_dataset(path)
