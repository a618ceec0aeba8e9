"""What every stage stands on: the plan (registries, defaults, the layout of `results/`), the
configuration's checks, the code each job runs, atomic file writing, the contract of every file a
stage hands another, and the command-line plumbing of a stage. It imports nothing else of
arbench."""
