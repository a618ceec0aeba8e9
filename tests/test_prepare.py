import json

from arbench.core.plan import source_spec
from arbench.data import load_dataset
from arbench.prepare import main


def test_cli_writes_dataset_and_sidecar(tmp_path):
    out = tmp_path / "data" / "atari.npz"
    spec = {"source": "atari", "games": ["Pong"], "frames": 90, "episode_steps": 80}
    assert main(["--spec", json.dumps(spec), "--out", str(out)]) == 0
    data = load_dataset(out, verify=True)
    # the sidecar records the whole spec the data was made with: the given keys and defaults
    assert data.meta["spec"] == source_spec(spec) and data.meta["source"] == "atari"
    assert data.meta["spec"]["frames"] == 90 and data.meta["spec"]["frame_skip"] == 4
    dropped = sum(data.meta["dropped_as_repeats"].values())
    assert sum(data.meta["counts"].values()) + dropped == 90
    assert data.meta["duplicates"]["test"]["copies_of_train"] == 0  # dedupe is on
    assert data.labels is not None and set(data.labels) == {"train", "valid", "test"}


def test_cli_reads_yaml_spec_file(tmp_path):
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text("source: atari\ngames: [Breakout]\nframes: 60\nepisode_steps: 60\n")
    assert main(["--spec", str(spec_file), "--out", str(tmp_path / "b.npz")]) == 0


def test_cli_bad_spec_fails_with_message_and_no_output(tmp_path, caplog):
    out = tmp_path / "x.npz"
    assert main(["--spec", '{"source": "imagenet"}', "--out", str(out)]) == 1
    assert "unknown dataset source 'imagenet'" in caplog.text
    assert list(tmp_path.iterdir()) == []
