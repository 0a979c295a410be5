"""``python -m microsight`` runs the command line."""

import sys

from microsight.cli import main

sys.exit(main())
