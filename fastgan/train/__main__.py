"""``python -m fastgan.train`` (what ``torchrun -m fastgan.train ... --distributed`` runs)."""

import sys

from fastgan.train import main

sys.exit(main())
