"""arbench: autoregressive density estimators (NADE, MADE, PixelCNN) against mixture baselines
on images. `arbench.load(path)` gives a trained model to sample, score and complete images with
(`arbench.trained`)."""

import importlib

__version__ = "0.1.0"


def load(path):
    """A trained model file (and its card), checked: see `arbench.trained.load`."""
    # Imported by name: this file is part of every workflow job's code (arbench.core.code_inputs),
    # and an import statement here would make every job depend on arbench.trained's imports.
    return importlib.import_module("arbench.trained").load(path)
