"""The interface a user's model follows, written once, and how arbench's stages use such a model.

A user's class (named in the config by `class: "package.module:Class"`, or registered by an
installed package under the `arbench.models` entry point) is checked against `DensityModel` before
any job runs (`problems`), then wrapped (`adopt`) so that every stage uses it as it uses
arbench's own models: images handed over in one form, outputs checked, the model file written and
read through plain dicts of tensors.

Every image a user's model is given is a `torch.long` tensor (N, C, H, W) of values
0..levels-1, on the model's device (a network's) or the CPU; `hidden` is a bool tensor (C, H, W),
True where completion hides a pixel (the bottom rows).
"""

from __future__ import annotations

import inspect
import math
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import torch

from arbench.core.plan import architecture_settings
from arbench.models.base import as_long_tensor
from arbench.training import convergence


@runtime_checkable
class DensityModel(Protocol):
    """What every user's model gives.

    - Built as `Class(shape, levels, settings)`: `shape` is (C, H, W), `levels` the values a pixel
      takes (2 for binary images), `settings` its `defaults` overridden by the config, with the
      run's `seed`.
    - `exact`: True when `log_prob` is the exact discrete log-likelihood; False when it is a lower
      bound (the report then labels its NLL an upper bound).
    - `defaults` (class attribute): every setting with its default; the config's values are
      checked against them (an unknown key, or a value of another type, is refused before any
      job runs). A default of None takes any value.
    - `family` (class attribute, or `family:` in the config): "autoregressive" or "mixture", the
      side of the study's question it stands on.
    - `version` (class attribute, optional, default 1): raise it when a change of the code reads
      old model files differently; a file of another version is refused.
    - Either `nll(batch)` (a `torch.nn.Module`: the shared trainer trains it, with early stopping
      and checkpoints that resume) or `fit(train, valid)` (it trains itself), not both.
    - `state_dict()` / `load_state_dict(state)`: what its model file holds, tensors and plain
      values only (a model file must load without running code).
    """

    exact: bool
    defaults: ClassVar[dict]

    def __init__(self, shape: tuple[int, int, int], levels: int, settings: dict) -> None: ...

    def log_prob(self, images: torch.Tensor) -> torch.Tensor:
        """log p(image) in nats, one per image: shape (N,)."""

    def sample(self, n: int, seed: int) -> np.ndarray | torch.Tensor:
        """`n` images (n, C, H, W) of values 0..levels-1, the same for the same seed."""

    def conditional_log_prob(
        self, images: torch.Tensor, hidden: torch.Tensor
    ) -> tuple[np.ndarray | torch.Tensor, bool]:
        """(log p(hidden pixels | the others) per image, whether that is exact)."""

    def complete(
        self, images: torch.Tensor, hidden: torch.Tensor, count: int, seed: int
    ) -> np.ndarray | torch.Tensor:
        """(N, count, C, H, W): `count` draws of the hidden pixels of each image given the
        others, the others left as they are."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> Any: ...


@runtime_checkable
class Network(DensityModel, Protocol):
    """A `torch.nn.Module` the shared trainer trains on minibatches (`arbench.training.trainer`):
    its loss is `nll`, and its settings take the training settings too (epochs, lr, patience,
    ...)."""

    def nll(self, batch: torch.Tensor) -> torch.Tensor:
        """The training loss of each image of a batch (B, C, H, W), in nats: shape (B,)."""


@runtime_checkable
class SelfFitting(DensityModel, Protocol):
    """A model that trains itself in one call (closed form, EM, its own loop)."""

    def fit(self, train: torch.Tensor, valid: torch.Tensor) -> dict | None:
        """Fit on the training images (valid to choose on, if it wants). May return
        `{"converged": bool, "log_likelihoods": [mean training log-likelihood after each
        iteration]}` for the record of how its fit ended; a closed-form fit returns None."""


# How arbench calls each method (positional arguments, keyword arguments), and what it is for.
CALLS = {
    "log_prob": (1, (), "log_prob(images): log p(image) in nats, one per image"),
    "sample": (1, ("seed",), "sample(n, seed): n images (n, C, H, W)"),
    "conditional_log_prob": (
        2,
        (),
        "conditional_log_prob(images, hidden): log p(hidden pixels | the others), exact or not",
    ),
    "complete": (4, (), "complete(images, hidden, count, seed): completions of hidden pixels"),
    "state_dict": (0, (), "state_dict(): what its model file holds"),
    "load_state_dict": (1, (), "load_state_dict(state): the state of a model file put back"),
}
NETWORK_CALL = (1, (), "nll(batch): the training loss of each image, for the shared trainer")
FIT_CALL = (2, (), "fit(train, valid): trains itself")


def _callable_as(function, positional: int, keywords=(), bound: bool = True) -> str | None:
    """Why `function` cannot be called with `positional` arguments and `keywords`, or None."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # a builtin without a signature: taken on trust
        return None
    arguments = [None] * (positional + (1 if bound else 0))
    try:
        signature.bind(*arguments, **dict.fromkeys(keywords))
    except TypeError as error:
        return f"its signature is {signature} ({error})"
    return None


def problems(cls: type) -> list[str]:
    """Every way `cls` falls short of `DensityModel`, each naming the method and how arbench
    calls it; empty when it follows it."""
    found = []
    if (why := _callable_as(cls, 3, bound=False)) is not None:
        found.append(f"it cannot be built as Class(shape, levels, settings): {why}")
    if not hasattr(cls, "exact"):
        found.append(
            "it has no attribute exact (True when log_prob is exact, False when it is a bound)"
        )
    calls = dict(CALLS)
    fits, trains = hasattr(cls, "fit"), hasattr(cls, "nll")
    if fits and trains:
        found.append(
            "it has both nll (a network the shared trainer trains) and fit (a model that trains "
            "itself): keep the one that trains it"
        )
    elif fits:
        calls["fit"] = FIT_CALL
    elif trains:
        calls["nll"] = NETWORK_CALL
        if not issubclass(cls, torch.nn.Module):
            found.append("it has nll, which the shared trainer calls on a torch.nn.Module only")
    else:
        found.append(
            f"it has neither method {NETWORK_CALL[2]} nor method {FIT_CALL[2]}: one of them "
            "trains it"
        )
    for name, (positional, keywords, meaning) in calls.items():
        method = getattr(cls, name, None)
        if not callable(method):
            found.append(f"it has no method {meaning}")
        elif (why := _callable_as(method, positional, keywords)) is not None:
            found.append(f"{name} cannot be called as {meaning.split(':')[0]}: {why}")
    defaults = getattr(cls, "defaults", {})
    if not isinstance(defaults, dict) or not all(isinstance(k, str) for k in defaults):
        found.append("its defaults must be a dict of settings by name")
    return found


def is_network(cls: type) -> bool:
    """Whether the shared trainer trains `cls` (it has `nll`), rather than its own `fit`."""
    return hasattr(cls, "nll") and not hasattr(cls, "fit")


class Adopted:
    """A user's model as arbench's stages use it: the name, shape, levels and settings every model
    has, images handed over as the interface says, outputs checked, and the model file."""

    user_class: type
    entry: Any  # its arbench.core.plan.ModelEntry
    name: str
    family: str
    class_path: str
    origin = "user"
    version: int = 1

    def __init__(self, shape, levels: int, config: dict | None = None):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.levels = int(levels)
        self.dims = math.prod(self.shape)
        self.config = architecture_settings(self.name, config)
        self.inner = self.user_class(self.shape, self.levels, dict(self.config))

    @property
    def exact(self) -> bool:
        return bool(self.inner.exact)

    def on_device(self) -> torch.device:
        return torch.device("cpu")

    def images(self, x) -> torch.Tensor:
        """Images as a user's model receives them: long (N, C, H, W) on its device."""
        return as_long_tensor(x, self.on_device()).reshape(-1, *self.shape)

    def hidden_pixels(self, hidden) -> torch.Tensor:
        hidden = torch.as_tensor(np.asarray(hidden), dtype=torch.bool, device=self.on_device())
        return hidden.reshape(self.shape)

    def refuse(self, method: str, problem: str) -> ValueError:
        return ValueError(f"{self.class_path}.{method} (model {self.name}) {problem}")

    def per_image(self, method: str, values, count: int) -> torch.Tensor:
        values = torch.as_tensor(values)
        if tuple(values.shape) != (count,):
            raise self.refuse(
                method,
                f"returned shape {tuple(values.shape)} for {count} images; it must return one "
                "number per image",
            )
        return values

    def on_levels(self, method: str, images, shape: tuple) -> np.ndarray:
        images = images.detach().cpu().numpy() if torch.is_tensor(images) else np.asarray(images)
        if images.shape != shape:
            raise self.refuse(method, f"returned shape {images.shape}; expected {shape}")
        if images.size and (images.min() < 0 or images.max() >= self.levels):
            raise self.refuse(
                method,
                f"returned values {images.min()}..{images.max()} outside 0..{self.levels - 1}",
            )
        return images.astype(np.uint8)

    def log_prob(self, x) -> torch.Tensor:
        images = self.images(x)
        with torch.inference_mode():
            return self.per_image("log_prob", self.inner.log_prob(images), len(images))

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        with torch.inference_mode():
            images = self.inner.sample(n, seed=seed)
        return self.on_levels("sample", images, (n, *self.shape))

    def conditional_log_prob(self, x, hidden) -> tuple[np.ndarray, bool]:
        images = self.images(x)
        with torch.inference_mode():
            values, exact = self.inner.conditional_log_prob(images, self.hidden_pixels(hidden))
        values = self.per_image("conditional_log_prob", values, len(images))
        return values.double().cpu().numpy(), bool(exact)

    def complete(self, x, hidden, count: int, seed: int = 0) -> np.ndarray:
        images = self.images(x)
        with torch.inference_mode():
            filled = self.inner.complete(images, self.hidden_pixels(hidden), count, seed)
        return self.on_levels("complete", filled, (len(images), count, *self.shape))

    def to_checkpoint(self) -> dict:
        """The model file's content: what names the class, and the state it saves."""
        state = self.inner.state_dict()
        if (problem := unsafe_value(state, "state")) is not None:
            raise self.refuse(
                "state_dict",
                f"holds {problem}: a model file holds tensors and plain values (numbers, text, "
                "lists, dicts of them) only, so that loading it runs no code",
            )
        return {
            "model": self.name,
            "class": self.class_path,
            "family": self.family,
            "version": self.version,
            "shape": list(self.shape),
            "levels": self.levels,
            "config": self.config,
            "state": state,
        }

    @classmethod
    def from_checkpoint(cls, checkpoint: dict):
        model = cls(checkpoint["shape"], checkpoint["levels"], checkpoint["config"])
        model.inner.load_state_dict(checkpoint["state"])
        return model


PLAIN = (bool, int, float, str, type(None))


def unsafe_value(value, where: str) -> str | None:
    """Where `value` holds something a weights-only torch file cannot hold, or None."""
    if torch.is_tensor(value) or isinstance(value, PLAIN):
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str | int):
                return f"a key of type {type(key).__name__} in {where}"
            if (found := unsafe_value(item, f"{where}[{key!r}]")) is not None:
                return found
        return None
    if isinstance(value, list | tuple):
        return next(
            (f for i, v in enumerate(value) if (f := unsafe_value(v, f"{where}[{i}]"))), None
        )
    return f"a {type(value).__module__}.{type(value).__name__} at {where}"


class AdoptedNetwork(Adopted, torch.nn.Module):
    """A user's network: a module holding theirs, trained by the shared trainer through `nll`."""

    def __init__(self, shape, levels: int, config: dict | None = None):
        super().__init__(shape, levels, config)
        if not any(True for _ in self.parameters()):
            raise self.refuse(
                "__init__", "made a network without parameters: the shared trainer has nothing "
            )

    def on_device(self) -> torch.device:
        return next(self.parameters()).device

    def nll(self, batch: torch.Tensor) -> torch.Tensor:
        images = batch.reshape(-1, *self.shape)
        return self.per_image("nll", self.inner.nll(images), len(images))


class AdoptedFit(Adopted):
    """A user's model that fits itself."""

    def fit(self, train, valid=None) -> dict:
        result = self.inner.fit(self.images(train), self.images(valid))
        result = result or {}
        if not isinstance(result, dict):
            raise self.refuse("fit", f"returned a {type(result).__name__}, not a dict or None")
        log_likelihoods = [float(v) for v in result.get("log_likelihoods", [])]
        converged = bool(result.get("converged", True))
        record = convergence.em_record(converged, log_likelihoods)
        if converged and len(log_likelihoods) < 2:
            # a fit in one step (a closed form) has nothing left to gain
            record.update(improvement_per_epoch=0.0, epochs=max(1, len(log_likelihoods)))
        return {"iterations": record["epochs"], "training": record}


def adopt(cls: type, entry) -> type:
    """The class arbench's stages build a user's model with: `cls` wrapped, under the name and
    family of its registry entry (`arbench.core.plan.ModelEntry`)."""
    base = AdoptedNetwork if entry.neural else AdoptedFit
    attributes = {
        "user_class": cls,
        "entry": entry,
        "name": entry.name,
        "family": entry.family,
        "class_path": entry.class_path,
        "version": int(getattr(cls, "version", 1)),
        "__module__": __name__,
        "__doc__": f"{entry.class_path} as model {entry.name}",
    }
    return type(f"Adopted_{entry.name}", (base,), attributes)
