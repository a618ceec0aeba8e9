"""`python -m arbench.report`: the report stage (`arbench.report.main`)."""

import sys

from arbench.report import main

sys.exit(main())
