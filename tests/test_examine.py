"""The examine stage: evaluate and complete in one process, the files as each stage alone
writes them."""

import json

import numpy as np
import pytest

from arbench import complete, evaluate, examine, train
from arbench.data.format import SPLITS, save_dataset


@pytest.fixture
def mixture(tiny_data, tmp_path):
    model = tmp_path / "mob.pt"
    settings = '{"components": 3, "max_iter": 20}'
    argv = ["--data", str(tiny_data), "--model", "mob", "--settings", settings]
    assert train.main([*argv, "--out", str(model)]) == 0
    return model


def examined(data, model, folder, *extra):
    folder.mkdir()
    argv = ["--data", str(data), "--model", str(model), "--likelihood", str(folder / "l.json")]
    argv += ["--nll", str(folder / "l.npz"), "--completion", str(folder / "c.json"), *extra]
    return examine.main(argv)


def test_examine_writes_what_evaluate_and_complete_write_alone(tiny_data, mixture, tmp_path):
    completion = ("--images", "3", "--completions", "2", "--seed", "5")
    assert examined(tiny_data, mixture, tmp_path / "together", *completion) == 0
    alone = tmp_path / "alone"
    alone.mkdir()
    base = ["--data", str(tiny_data), "--model", str(mixture)]
    likelihood = ["--out", str(alone / "l.json"), "--nll", str(alone / "l.npz")]
    assert evaluate.main([*base, *likelihood]) == 0
    assert complete.main([*base, "--out", str(alone / "c.json"), *completion]) == 0

    together = tmp_path / "together"
    assert json.loads((together / "l.json").read_text()) == json.loads(
        (alone / "l.json").read_text()
    )
    timed = [json.loads((folder / "c.json").read_text()) for folder in (together, alone)]
    assert [t.pop("seconds") > 0 for t in timed] == [True, True]
    assert timed[0] == timed[1] and timed[0]["test_images"] == 60
    for name in ("l.npz", "c.npz"):
        with np.load(together / name) as ours, np.load(alone / name) as theirs:
            assert sorted(ours.files) == sorted(theirs.files)
            for key in ours.files:
                np.testing.assert_array_equal(ours[key], theirs[key])


def test_examine_refuses_a_model_of_other_images_and_leaves_nothing(mixture, tmp_path):
    wider = np.zeros((10, 1, 5, 5), dtype=np.uint8)  # 5x5 images, the model's are 4x4
    other = save_dataset(tmp_path / "other.npz", dict.fromkeys(SPLITS, wider), 2, {"source": "t"})
    assert examined(other, mixture, tmp_path / "out") == 1
    assert not list((tmp_path / "out").iterdir())


def test_examine_that_fails_completing_leaves_no_likelihood_behind(tiny_data, mixture, tmp_path):
    assert examined(tiny_data, mixture, tmp_path / "out", "--hidden-rows", "1.5") == 1
    assert not list((tmp_path / "out").iterdir())  # the evaluation had written its files
