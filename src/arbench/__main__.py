"""`python -m arbench`: the `arbench` command (`arbench.commands`)."""

import sys

from arbench.commands import main

sys.exit(main())
