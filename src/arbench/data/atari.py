"""Atari frames generated with the Arcade Learning Environment (ale-py ships the ROMs).

Frames are recorded per episode and episodes are assigned whole to train/valid/test, so
near-identical consecutive frames never straddle splits. The same spec and seed give the same
bytes.
"""

from __future__ import annotations

import difflib
import logging
import re
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from arbench.data.pixels import quantize, to_chw
from arbench.data.splits import split_groups
from arbench.plan import source_spec

log = logging.getLogger(__name__)

POLICIES = ("random",)


class UnknownGameError(ValueError):
    pass


def rom_id(game: str) -> str:
    """'SpaceInvaders', 'space_invaders' and 'spaceinvaders' all name ALE's 'space_invaders'."""
    from ale_py import roms

    known = roms.get_all_rom_ids()
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", game.strip()).lower().replace("-", "_")
    squashed = {rom.replace("_", ""): rom for rom in known}
    found = snake if snake in known else squashed.get(snake.replace("_", ""))
    if found is None:
        close = difflib.get_close_matches(snake, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownGameError(
            f"unknown Atari game {game!r}{hint} Games ale-py ships: {', '.join(known)}"
        )
    return found


def _frame(ale, spec: dict) -> np.ndarray:
    rgb = spec["color"] == "rgb"
    screen = ale.getScreenRGB() if rgb else ale.getScreenGrayscale()
    if spec["crop"]:
        top, bottom, left, right = spec["crop"]
        screen = screen[top : screen.shape[0] - bottom, left : screen.shape[1] - right]
    image = Image.fromarray(screen, "RGB" if rgb else "L")
    height, width = spec["size"]
    image = image.resize((width, height), Image.Resampling.BOX)
    return to_chw(image)


def play_episodes(game: str, n_frames: int, spec: dict, seed: int) -> list[np.ndarray]:
    """Record `n_frames` preprocessed 8-bit frames of `game`, as a list of episodes."""
    from ale_py import ALEInterface, LoggerMode, roms

    ALEInterface.setLoggerMode(LoggerMode.Error)
    ale = ALEInterface()
    ale.setInt("random_seed", seed)
    ale.setInt("frame_skip", spec["frame_skip"])
    ale.setFloat("repeat_action_probability", 0.0)
    ale.loadROM(roms.get_rom_path(rom_id(game)))
    actions = ale.getMinimalActionSet()
    rng = np.random.default_rng(seed)

    episodes, current = [], []
    for _ in range(int(rng.integers(0, spec["noop_max"] + 1))):
        ale.act(actions[0])
    with tqdm(total=n_frames, desc=f"atari {game}", unit="frame", disable=None) as bar:
        for _ in range(n_frames):
            current.append(_frame(ale, spec))
            bar.update()
            ale.act(actions[rng.integers(len(actions))])
            if ale.game_over() or len(current) >= spec["max_episode_frames"]:
                episodes.append(np.stack(current))
                current = []
                ale.reset_game()
                # Random no-ops at the start make episodes differ beyond the first few frames.
                for _ in range(int(rng.integers(0, spec["noop_max"] + 1))):
                    ale.act(actions[0])
    if current:
        episodes.append(np.stack(current))
    return episodes


def atari(spec: dict, resources: Path) -> tuple[dict, int, dict]:
    spec = source_spec({**spec, "source": "atari"})
    if spec["policy"] not in POLICIES:
        raise ValueError(f"unknown Atari policy {spec['policy']!r}; expected one of {POLICIES}")
    if spec["color"] not in ("gray", "rgb"):
        raise ValueError(f"Atari color must be 'gray' or 'rgb', got {spec['color']!r}")
    games = list(spec["games"])
    for game in games:  # fail on a typo before spending time on the other games
        rom_id(game)
    per_game = np.full(len(games), spec["frames"] // len(games))
    per_game[: spec["frames"] % len(games)] += 1

    parts: dict[str, list[np.ndarray]] = {"train": [], "valid": [], "test": []}
    episode_counts = {}
    for index, (game, n_frames) in enumerate(zip(games, per_game, strict=True)):
        episodes = play_episodes(game, int(n_frames), spec, seed=spec["seed"] + index)
        try:
            groups = split_groups([len(e) for e in episodes], spec["split"], spec["seed"] + index)
        except ValueError as error:
            raise ValueError(
                f"Atari game {game}: {len(episodes)} episodes from {n_frames} frames: {error}; "
                "lower max_episode_frames or raise frames"
            ) from None
        episode_counts[game] = {name: len(ids) for name, ids in groups.items()}
        for name, ids in groups.items():
            parts[name].extend(episodes[i] for i in ids)
        log.info("atari %s: %d frames in %d episodes", game, n_frames, len(episodes))

    levels = int(spec["levels"])
    splits = {name: quantize(np.concatenate(chunks), levels) for name, chunks in parts.items()}
    meta = {
        "source": "atari",
        "files": {},
        "generator": "ale-py",
        "episodes": episode_counts,
    }
    return splits, levels, meta
