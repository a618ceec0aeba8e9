import numpy as np
import pytest

from arbench.data.atari import UnknownGameError, atari, rom_id
from arbench.data.format import content_sha256
from arbench.data.splits import split_groups

SPEC = {"games": ["Pong", "Breakout"], "frames": 300, "max_episode_frames": 30, "seed": 7}


def test_same_seed_same_bytes_other_seed_other_bytes():
    first, levels, meta = atari(SPEC, None)
    second, _, _ = atari(SPEC, None)
    other, _, _ = atari({**SPEC, "seed": 8}, None)
    assert levels == 8
    assert sum(len(a) for a in first.values()) == 300
    assert all(content_sha256(first[s]) == content_sha256(second[s]) for s in first)
    assert content_sha256(other["train"]) != content_sha256(first["train"])
    # every game contributes whole episodes to every split
    for counts in meta["episodes"].values():
        assert min(counts.values()) >= 1 and sum(counts.values()) == 5


def test_rgb_crop_resize_and_levels():
    spec = {
        **SPEC,
        "games": ["Breakout"],
        "frames": 90,
        "color": "rgb",
        "size": [20, 16],
        "crop": [30, 10, 8, 8],
        "levels": 4,
    }
    splits, levels, _ = atari(spec, None)
    assert levels == 4
    assert splits["train"].shape[1:] == (3, 20, 16)
    assert splits["train"].max() <= 3
    assert len(np.unique(splits["train"])) > 1  # real frames, not blank


def test_game_names_are_forgiving_but_unknown_games_are_refused():
    assert rom_id("SpaceInvaders") == rom_id("space_invaders") == "space_invaders"
    with pytest.raises(UnknownGameError, match="'Pongg'; did you mean pong"):
        atari({**SPEC, "games": ["Pong", "Pongg"]}, None)


def test_too_few_episodes_to_split_is_explained():
    with pytest.raises(ValueError, match="lower max_episode_frames or raise frames"):
        atari({**SPEC, "games": ["Pong"], "frames": 40}, None)


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
