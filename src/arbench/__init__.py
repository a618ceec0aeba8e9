"""arbench: autoregressive density estimators (NADE, MADE) against mixture baselines on images."""

__version__ = "0.1.0"
