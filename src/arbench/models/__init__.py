"""Models behind one interface: `log_prob(x)` in nats per image, `sample(n, seed)`, checkpoints."""

from arbench.models.made import MADE
from arbench.models.mixtures import GMM, MixtureOfBernoullis
from arbench.models.nade import NADE

MODELS = {cls.name: cls for cls in (NADE, MADE, GMM, MixtureOfBernoullis)}
NEURAL = ("nade", "made")


def model_class(name: str):
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
    return MODELS[name]


def build_model(name: str, shape, levels: int, config: dict | None = None):
    return model_class(name)(shape, levels, config)


def from_checkpoint(checkpoint: dict):
    return model_class(checkpoint["model"]).from_checkpoint(checkpoint)
