"""The shared training loop of the networks (minibatches, early stopping, checkpoints that resume
bit for bit), saving and loading models and checkpoints, and how a training ended."""
