"""Atari frames generated with the Arcade Learning Environment (ale-py ships the ROMs).

Preprocessing follows the literature, each step an option of the spec:

- the agent acts every `frame_skip` emulator frames, and a recorded screen is the maximum over
  the last two emulator frames (`max_pool`), which removes sprite flicker (Mnih et al. 2015);
- a crop per game removes the score bar and keeps the play area (`CROPS`; `crop` overrides it);
- an area resize to `size`, then grayscale stretched to the game's own range (`autocontrast`) and
  quantized to `levels`, or binarized (`binarize`): `background` marks pixels that differ from
  the frame's most common value by more than `threshold` (the sprites; DARN, Gregor et al. 2014,
  modelled binarized frames), `threshold` marks pixels brighter than it;
- frames are sparse: long episodes of random play (`episode_steps` agent steps), a frame recorded
  every `record_every` steps and kept with probability `keep_probability`, so that near-identical
  consecutive screens do not fill the set;
- whole episodes go to train, valid or test, and with `dedupe` every frame that repeats an
  earlier frame of the play (in any episode of any game, once binarized or quantized) is dropped
  from whichever split it fell in (the counts go to the sidecar): no test frame copies a training
  frame, and since which copy survives depends on the order of play, not on the split, the
  three splits stay exchangeable (dropping only the valid and test copies of training frames
  left the training split with the common frames the others had lost).

Each image is labelled with its game. The same spec and seed give the same bytes.
"""

from __future__ import annotations

import difflib
import logging
import re
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from arbench.core.plan import source_spec
from arbench.data.format import SPLITS
from arbench.data.pixels import quantize, to_chw, to_rgb
from arbench.data.splits import split_groups

log = logging.getLogger(__name__)

POLICIES = ("random",)
SCREEN = (210, 160)  # rows, columns of every ALE screen
# Rows and columns cut from the top, bottom, left and right of the screen: the score bar and the
# borders go, the whole play area stays. `crop` in the spec overrides them.
CROPS = {
    "pong": [34, 16, 0, 0],
    "breakout": [32, 15, 8, 8],
    "space_invaders": [24, 15, 0, 0],
    "freeway": [24, 16, 8, 0],
    "ms_pacman": [0, 38, 0, 0],
}
BINARIZATIONS = ("background", "threshold")
# Percentiles of a game's training pixels that `autocontrast` maps to black and white.
CONTRAST_PERCENTILES = (0.5, 99.5)


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


def game_crop(game: str, crop) -> list[int]:
    """The crop of one game: the spec's (one for all games, or a mapping by game), else the
    table's, else none."""
    if isinstance(crop, dict):
        named = {rom_id(name): value for name, value in crop.items()}
        crop = named.get(rom_id(game))
    if crop is None:
        crop = CROPS.get(rom_id(game))
        if crop is None:
            log.warning("no crop known for %s: its whole screen is kept (set `crop`)", game)
            crop = [0, 0, 0, 0]
    if len(crop) != 4 or any(not isinstance(v, int) or v < 0 for v in crop):
        raise ValueError(
            f"Atari crop for {game}: {crop!r} must be four integers >= 0 (rows from the top, "
            "rows from the bottom, columns from the left, columns from the right)"
        )
    top, bottom, left, right = crop
    if top + bottom >= SCREEN[0] or left + right >= SCREEN[1]:
        raise ValueError(
            f"Atari crop for {game}: {crop} leaves no pixels of the {SCREEN[0]}x{SCREEN[1]} "
            "screen; cut fewer rows or columns"
        )
    return list(crop)


def check_spec(spec: dict, games: list[str]) -> None:
    """Every setting that would fail late, refused before the emulator runs."""
    if spec["policy"] not in POLICIES:
        raise ValueError(f"unknown Atari policy {spec['policy']!r}; expected one of {POLICIES}")
    if spec["color"] not in ("gray", "rgb"):
        raise ValueError(f"Atari color must be 'gray' or 'rgb', got {spec['color']!r}")
    for key in ("frame_skip", "record_every", "episode_steps"):
        if spec[key] < 1:
            raise ValueError(f"Atari {key} must be at least 1, got {spec[key]}")
    if not 0 < spec["keep_probability"] <= 1:
        raise ValueError(
            f"Atari keep_probability must be in (0, 1], got {spec['keep_probability']}"
        )
    if spec["binarize"] is not None and spec["binarize"] not in BINARIZATIONS:
        raise ValueError(
            f"Atari binarize must be one of {BINARIZATIONS} or null, got {spec['binarize']!r}"
        )
    if spec["binarize"] is not None and spec["color"] == "rgb":
        raise ValueError("Atari binarize needs color: gray")
    if min(spec["size"]) < 1:
        raise ValueError(f"Atari size must be positive, got {spec['size']}")
    for game in games:
        game_crop(game, spec["crop"])
    per_episode = spec["episode_steps"] // spec["record_every"] * spec["keep_probability"]
    smallest = spec["frames"] // len(games)
    if per_episode < 1:
        raise ValueError(
            f"Atari: episode_steps {spec['episode_steps']} with record_every "
            f"{spec['record_every']} records no frame in an episode; raise episode_steps"
        )
    if smallest / per_episode < 3:
        raise ValueError(
            f"Atari: {smallest} frames per game at about {per_episode:g} per episode "
            f"(episode_steps / record_every x keep_probability) make fewer than 3 episodes, and "
            "train, valid and test need one each: raise frames or lower episode_steps"
        )


def screen(ale, rgb: bool) -> np.ndarray:
    return ale.getScreenRGB() if rgb else ale.getScreenGrayscale()


def shrink(frame: np.ndarray, crop: list[int], size, rgb: bool) -> np.ndarray:
    """Crop, then area-resize to (H, W): uint8 (C, H, W) on 0..255."""
    top, bottom, left, right = crop
    frame = frame[top : frame.shape[0] - bottom, left : frame.shape[1] - right]
    image = Image.fromarray(frame, "RGB" if rgb else "L")
    height, width = size
    return to_chw(image.resize((width, height), Image.Resampling.BOX))


def play_episodes(game: str, n_frames: int, spec: dict, seed: int) -> list[np.ndarray]:
    """`n_frames` preprocessed 8-bit frames of random play of `game`, as a list of episodes."""
    from ale_py import ALEInterface, LoggerMode, roms

    ALEInterface.setLoggerMode(LoggerMode.Error)
    ale = ALEInterface()
    ale.setInt("random_seed", seed)
    ale.setInt("frame_skip", 1)  # skipped here, so that the last two frames can be seen
    ale.setFloat("repeat_action_probability", 0.0)
    ale.loadROM(roms.get_rom_path(rom_id(game)))
    actions = ale.getMinimalActionSet()
    rng = np.random.default_rng(seed)
    crop, rgb = game_crop(game, spec["crop"]), spec["color"] == "rgb"

    def start():
        for _ in range(int(rng.integers(0, spec["noop_max"] + 1))):
            ale.act(actions[0])

    episodes, current, steps = [], [], 0
    start()
    with tqdm(total=n_frames, desc=f"atari {game}", unit="frame", disable=None) as bar:
        while sum(map(len, episodes)) + len(current) < n_frames:
            action = actions[rng.integers(len(actions))]
            steps += 1
            record = steps % spec["record_every"] == 0 and (
                spec["keep_probability"] >= 1 or rng.random() < spec["keep_probability"]
            )
            previous = None
            for repeat in range(spec["frame_skip"]):
                ale.act(action)
                if record and spec["max_pool"] and repeat == spec["frame_skip"] - 2:
                    previous = screen(ale, rgb)
            if record:
                frame = screen(ale, rgb)
                if previous is not None:
                    frame = np.maximum(frame, previous)
                current.append(shrink(frame, crop, spec["size"], rgb))
                bar.update()
            if ale.game_over() or steps >= spec["episode_steps"]:
                if current:
                    episodes.append(np.stack(current))
                current, steps = [], 0
                ale.reset_game()
                start()  # random no-ops make episodes differ from their first frames on
    if current:
        episodes.append(np.stack(current))
    return episodes


def autocontrast(frames: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Stretch 8-bit frames so that the reference's low and high percentiles become 0 and 255."""
    low, high = np.percentile(reference, CONTRAST_PERCENTILES)
    if high <= low:
        return frames
    stretched = (frames.astype(np.float64) - low) * 255 / (high - low)
    return np.clip(np.round(stretched), 0, 255).astype(np.uint8)


def binarize(frames: np.ndarray, method: str, threshold: float) -> np.ndarray:
    """`background`: differs from the frame's most common value by more than threshold x 255;
    `threshold`: brighter than threshold x 255."""
    if method == "threshold":
        return (frames > threshold * 255).astype(np.uint8)
    flat = frames.reshape(len(frames), -1)
    background = np.array([np.bincount(row, minlength=256).argmax() for row in flat])
    distance = np.abs(flat.astype(np.int16) - background[:, None])
    return (distance > threshold * 255).astype(np.uint8).reshape(frames.shape)


def dedupe(images: dict, labels: dict, order: dict) -> tuple[dict, dict, dict]:
    """Every split without the frames that repeat an earlier frame of the play (by `order`, the
    position of each frame in the play), and how many each split lost."""
    names = list(images)
    split = np.concatenate([np.full(len(images[n]), i) for i, n in enumerate(names)])
    position = np.concatenate([np.arange(len(images[n])) for n in names])
    played = np.argsort(np.concatenate([order[n] for n in names]), kind="stable")
    flat = np.concatenate([images[n].reshape(len(images[n]), -1) for n in names])
    seen, keep = set(), np.zeros(len(flat), dtype=bool)
    for index in played:
        key = flat[index].tobytes()
        keep[index] = key not in seen
        seen.add(key)
    kept_images, kept_labels, dropped = {}, {}, {}
    for i, name in enumerate(names):
        mine = np.sort(position[(split == i) & keep])
        kept_images[name], kept_labels[name] = images[name][mine], labels[name][mine]
        dropped[name] = int(len(images[name]) - len(mine))
    return kept_images, kept_labels, dropped


def atari(spec: dict, resources: Path) -> tuple[dict, int, dict]:
    spec = source_spec({**spec, "source": "atari"})
    games = list(spec["games"])
    for game in games:  # fail on a typo before spending time on the other games
        rom_id(game)
    check_spec(spec, games)
    per_game = np.full(len(games), spec["frames"] // len(games))
    per_game[: spec["frames"] % len(games)] += 1

    parts = {name: [] for name in SPLITS}
    labels = {name: [] for name in SPLITS}
    orders = {name: [] for name in SPLITS}  # each frame's position in the whole play
    played = 0
    episode_counts = {}
    for index, (game, n_frames) in enumerate(zip(games, per_game, strict=True)):
        episodes = play_episodes(game, int(n_frames), spec, seed=spec["seed"] + index)
        try:
            groups = split_groups([len(e) for e in episodes], spec["split"], spec["seed"] + index)
        except ValueError as error:
            raise ValueError(
                f"Atari game {game}: {len(episodes)} episodes from {n_frames} frames: {error}; "
                "lower episode_steps or raise frames"
            ) from None
        frames = {name: np.concatenate([episodes[i] for i in ids]) for name, ids in groups.items()}
        starts = played + np.cumsum([0, *(len(e) for e in episodes)])
        for name, ids in groups.items():
            orders[name].append(np.concatenate([np.arange(starts[i], starts[i + 1]) for i in ids]))
        played = starts[-1]
        if spec["autocontrast"] and spec["binarize"] is None:
            reference = frames["train"]  # the game's own range, read off training frames only
            frames = {name: autocontrast(array, reference) for name, array in frames.items()}
        for name, array in frames.items():
            parts[name].append(array)
            labels[name].append(np.full(len(array), index, dtype=np.int64))
        episode_counts[game] = {name: len(ids) for name, ids in groups.items()}
        log.info("atari %s: %d frames in %d episodes", game, n_frames, len(episodes))

    images = {name: np.concatenate(chunks) for name, chunks in parts.items()}
    labels = {name: np.concatenate(chunks) for name, chunks in labels.items()}
    if spec["binarize"] is not None:
        levels = 2
        images = {k: binarize(v, spec["binarize"], spec["threshold"]) for k, v in images.items()}
    else:
        levels = int(spec["levels"])
        images = {name: quantize(array, levels) for name, array in images.items()}
    dropped = {}
    if spec["dedupe"]:
        order = {name: np.concatenate(chunks) for name, chunks in orders.items()}
        images, labels, dropped = dedupe(images, labels, order)
        for name in ("valid", "test"):
            if not len(images[name]):
                raise ValueError(
                    f"Atari: every {name} frame repeats an earlier frame; raise record_every or "
                    "frames, or set dedupe: false"
                )
    splits = {**images, **{f"{name}_labels": array for name, array in labels.items()}}
    meta = {
        "source": "atari",
        "files": {},
        "generator": "ale-py",
        "episodes": episode_counts,
        "label_names": games,
        "crops": {game: game_crop(game, spec["crop"]) for game in games},
        "dropped_as_repeats": dropped,
    }
    return splits, levels, meta


def prepare_image(image: Image.Image, spec: dict, game: str | None = None) -> np.ndarray:
    """One screen as this spec's frames are: grey (or RGB), cropped to `game`'s play area (none
    without a game: an image already cropped), area-resized, then binarized or quantized. The
    contrast stretch of grey frames uses the frame's own range (the dataset used its game's
    training frames)."""
    rgb = spec["color"] == "rgb"
    frame = np.asarray(to_rgb(image).convert("RGB" if rgb else "L"))
    crop = game_crop(game, spec["crop"]) if game else [0, 0, 0, 0]
    frames = shrink(frame, crop, spec["size"], rgb)[None]
    if spec["binarize"] is not None:
        return binarize(frames, spec["binarize"], spec["threshold"])[0]
    if spec["autocontrast"]:
        frames = autocontrast(frames, frames)
    return quantize(frames, int(spec["levels"]))[0]
