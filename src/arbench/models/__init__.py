"""Models behind one interface: `log_prob(x)` in nats per image, `sample(n, seed)`, checkpoints.

Each model lives in its own module; `arbench.core.plan.MODELS` names them all, so that a job imports
only the model it runs.
"""
