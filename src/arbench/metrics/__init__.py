"""The instruments: the feature spaces, the math of each sample-quality metric, one set measured
against real images with its standard error, the sets of known answer and the checks a metric must
pass on them, error bars checked against independent draws, and the verdict's rule."""
