"""``python -m edgeplan``: the command line (as the ``edgeplan`` script)."""

import sys

from edgeplan.cli import main

sys.exit(main())
