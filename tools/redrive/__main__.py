"""`python -m tools.redrive`: see tools/redrive/cli.py."""

import sys

from tools.redrive.cli import main

sys.exit(main())
