"""What the workflow runs in Snakemake's own process, not as a job: `damaged` checks the results
already on disk before the run plans anything, and `advice` records the command the user typed
and, when jobs fail, prints each one's own reason at the console (the Snakefile's `onerror`)."""
