"""``python -m pathviz`` runs the command-line interface."""

import sys

from pathviz.cli import main

sys.exit(main())
