"""``python benchmarks/run_cpu.py [options]`` is ``fastgan bench --device cpu --out
benchmarks/results [options]``: every operator and family's full loss, all providers in one
process, results written next to this file (``results/cpu-<machine>[-quick].*``). Any option of
``fastgan bench`` may follow (``--quick``, ``--ops``, ``--sizes``, ``--out``, ``--no-mmap`` …);
``python -m fastgan bench --help`` lists them. The measurement code lives in
:mod:`fastgan.bench`.
"""

from __future__ import annotations

import os
import sys

from fastgan.cli import main

HERE = os.path.dirname(os.path.abspath(__file__))

if __name__ == "__main__":
    sys.exit(main(["bench", "--device", "cpu", "--out", os.path.join(HERE, "results"), *sys.argv[1:]]))
