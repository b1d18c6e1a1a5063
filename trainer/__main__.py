"""``python -m corpusforge_trainer config.yaml`` — also under ``accelerate launch -m`` and ``torchrun -m``."""

import sys

from corpusforge_trainer.cli import main

sys.exit(main())
