"""arbench: autoregressive density estimators (NADE, MADE, PixelCNN) against mixture baselines
on images. `arbench.load(path)` gives a trained model to sample, score and complete images with
(`arbench.trained`)."""

__version__ = "0.1.0"


def load(path):
    """A trained model file (and its card), checked: see `arbench.trained.load`."""
    from arbench.trained import load as load_trained

    return load_trained(path)
