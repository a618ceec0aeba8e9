import numpy as np
import pytest

from arbench.data.atari import (
    CROPS,
    UnknownGameError,
    atari,
    binarize,
    dedupe,
    game_crop,
    rom_id,
)
from arbench.data.format import SPLITS, content_sha256, duplicate_counts
from arbench.data.splits import split_groups, stratified_sample

# Two games, short episodes: 400 frames in ~16 episodes, a few seconds of emulation
SPEC = {
    "games": ["SpaceInvaders", "Freeway"],
    "frames": 400,
    "episode_steps": 200,
    "record_every": 8,
    "seed": 7,
}


def images_of(splits):
    return {name: splits[name] for name in SPLITS}


def test_same_seed_same_bytes_other_seed_other_bytes():
    first, levels, meta = atari(SPEC, None)
    second, _, _ = atari(SPEC, None)
    other, _, _ = atari({**SPEC, "seed": 8}, None)
    assert levels == 8
    assert all(content_sha256(first[s]) == content_sha256(second[s]) for s in first)
    assert content_sha256(other["train"]) != content_sha256(first["train"])
    dropped = sum(meta["dropped_as_repeats"].values())
    assert sum(len(first[s]) for s in SPLITS) + dropped == 400
    # every game contributes whole episodes to every split, and every image names its game
    for counts in meta["episodes"].values():
        assert min(counts.values()) >= 1
    assert meta["label_names"] == SPEC["games"]
    for name in SPLITS:
        assert set(np.unique(first[f"{name}_labels"])) == {0, 1}


def test_no_frame_repeats_another_in_any_split_and_the_counts_say_so():
    splits, _, meta = atari(SPEC, None)
    counts = duplicate_counts(images_of(splits))
    for name in SPLITS:
        assert counts[name].get("copies_of_train", 0) == 0
        assert counts[name]["repeated_in_split"] == 0
    kept, _, _ = atari({**SPEC, "dedupe": False}, None)
    for name in SPLITS:
        assert len(kept[name]) - len(splits[name]) == meta["dropped_as_repeats"][name]
    # the training split loses its repeats too: the splits stay alike
    assert meta["dropped_as_repeats"]["train"] > 0


def test_which_copy_survives_follows_the_play_not_the_split():
    frame = np.zeros((1, 1, 2, 2), np.uint8)
    other = frame + 1
    images = {"train": np.concatenate([frame, other]), "valid": frame.copy(), "test": other}
    labels = {name: np.arange(len(array)) for name, array in images.items()}
    # the valid frame was played first: it stays, the training copy goes; the test frame was
    # played after its training copy: it goes
    order = {"train": np.array([5, 1]), "valid": np.array([0]), "test": np.array([2])}
    kept, kept_labels, dropped = dedupe(images, labels, order)
    assert dropped == {"train": 1, "valid": 0, "test": 1}
    assert np.array_equal(kept["train"], other) and np.array_equal(kept["valid"], frame)
    assert len(kept["test"]) == 0 and kept_labels["train"].tolist() == [1]


def test_frames_are_recognisable_game_screens_not_blank():
    splits, levels, _ = atari({**SPEC, "binarize": "background"}, None)
    assert levels == 2
    for game in (0, 1):
        frames = splits["train"][splits["train_labels"] == game]
        on = frames.mean()
        assert 0.01 < on < 0.5  # sprites on a background, neither empty nor flooded
        assert len({f.tobytes() for f in frames}) > 0.8 * len(frames)  # mostly distinct frames


def test_flicker_is_removed_by_the_maximum_of_two_frames():
    # Space Invaders draws its invaders on alternate frames: one frame alone misses many
    with_max, _, _ = atari({**SPEC, "games": ["SpaceInvaders"], "autocontrast": False}, None)
    without, _, _ = atari(
        {**SPEC, "games": ["SpaceInvaders"], "autocontrast": False, "max_pool": False}, None
    )
    assert with_max["train"].mean() > without["train"].mean()


def test_rgb_crop_resize_and_levels():
    spec = {
        **SPEC,
        "games": ["Breakout"],
        "color": "rgb",
        "size": [20, 16],
        "crop": [30, 10, 8, 8],
        "levels": 4,
    }
    splits, levels, meta = atari(spec, None)
    assert levels == 4 and meta["crops"] == {"Breakout": [30, 10, 8, 8]}
    assert splits["train"].shape[1:] == (3, 20, 16)
    assert splits["train"].max() <= 3
    assert len(np.unique(splits["train"])) > 1  # real frames, not blank


def test_each_game_takes_its_own_crop_unless_the_spec_names_one():
    assert game_crop("SpaceInvaders", None) == CROPS["space_invaders"]
    assert game_crop("Freeway", {"SpaceInvaders": [1, 2, 3, 4]}) == CROPS["freeway"]
    assert game_crop("space_invaders", {"SpaceInvaders": [1, 2, 3, 4]}) == [1, 2, 3, 4]
    assert game_crop("Pong", [5, 5, 5, 5]) == [5, 5, 5, 5]


def test_game_names_are_forgiving_but_unknown_games_are_refused():
    assert rom_id("SpaceInvaders") == rom_id("space_invaders") == "space_invaders"
    with pytest.raises(UnknownGameError, match="'Pongg'; did you mean pong"):
        atari({**SPEC, "games": ["Pong", "Pongg"]}, None)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"crop": [200, 10, 0, 0]}, "leaves no pixels"),
        ({"crop": [0, 0, 100, 60]}, "leaves no pixels"),
        ({"crop": [-1, 0, 0, 0]}, "four integers >= 0"),
        ({"crop": {"Freeway": [1, 2]}}, "four integers >= 0"),
        ({"frame_skip": 0}, "frame_skip must be at least 1"),
        ({"record_every": 0}, "record_every must be at least 1"),
        ({"keep_probability": 0.0}, r"keep_probability must be in \(0, 1\]"),
        ({"keep_probability": 1.5}, r"keep_probability must be in \(0, 1\]"),
        ({"frames": 40}, "fewer than 3 episodes"),
        ({"episode_steps": 4}, "records no frame in an episode"),
        ({"binarize": "stochastic"}, "binarize must be one of"),
    ],
)
def test_bad_settings_are_refused_before_the_emulator_runs(change, message, monkeypatch):
    from arbench.data import atari as module

    def never(*args, **kwargs):
        raise AssertionError("the emulator ran")

    monkeypatch.setattr(module, "play_episodes", never)
    with pytest.raises(ValueError, match=message):
        atari({**SPEC, **change}, None)


def test_binarize_marks_what_differs_from_the_background():
    frames = np.full((2, 1, 3, 3), 100, np.uint8)
    frames[0, 0, 1, 1] = 150
    frames[1, 0, 0, 0] = 105  # within the threshold of the background: not a sprite
    marked = binarize(frames, "background", threshold=0.1)
    assert marked[0].sum() == 1 and marked[0, 0, 1, 1] == 1 and marked[1].sum() == 0
    assert binarize(frames, "threshold", threshold=0.5).sum() == 1


def test_stratified_sample_shows_every_label_and_is_repeatable():
    labels = np.repeat([0, 1, 2], [100, 5, 50])  # stored in blocks, one label rare
    first = stratified_sample(len(labels), 12, labels, seed=3)
    assert np.array_equal(first, stratified_sample(len(labels), 12, labels, seed=3))
    assert np.bincount(labels[first], minlength=3).tolist() == [4, 4, 4]
    assert len(set(first.tolist())) == 12
    assert np.bincount(labels[stratified_sample(155, 30, labels, 0)]).tolist() == [13, 5, 12]


@pytest.mark.parametrize("seed", range(5))
def test_groups_never_straddle_splits_and_all_are_used(seed):
    sizes = np.random.default_rng(seed).integers(1, 50, size=12)
    groups = split_groups(sizes, (0.8, 0.1, 0.1), seed)
    assigned = np.concatenate(list(groups.values()))
    assert sorted(assigned) == list(range(12))
    assert all(len(ids) >= 1 for ids in groups.values())


def test_three_groups_give_one_to_each_split():
    groups = split_groups([100, 1, 1], (0.5, 0.25, 0.25), 0)
    assert sorted(len(ids) for ids in groups.values()) == [1, 1, 1]
