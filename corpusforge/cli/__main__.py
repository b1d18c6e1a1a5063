"""`python -m corpusforge.cli ...` (what Slurm's finalize job and the tests run)."""

import sys

from corpusforge.cli.app import main

sys.exit(main())
