"""``python -m toolkit`` runs the ``dynasplit`` command line."""

import sys

from toolkit.cli import main

sys.exit(main())
