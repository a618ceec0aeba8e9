"""One categorical distribution per pixel: an example of a model of your own for arbench."""
