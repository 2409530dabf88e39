"""``fastgan bench``: check every backend against the reference, then time it.

For each operator and each family's full loss (forward + backward), every provider — the eager
idiom users write, the best eager form, ``torch.compile`` of the reference and each fastgan
backend available on the device — is first checked against the reference (✓/✗ with the largest
error; a wrong or failing provider is never timed), then timed in interleaved rounds in one
process. Prints one table and writes JSON, CSV, markdown and PNG plots to ``--out``::

    fastgan bench --quick                      # a few small cases of each operator and loss
    fastgan bench                              # every case and size
    fastgan bench --device cuda --out results/ # on a GPU: CUDA-event timing
    fastgan bench --ops wgan-gp,interpolate --e2e

The exit status is 1 when a fastgan backend failed its check (or raised), 2 on a usage error
(e.g. ``--device cuda`` without a GPU, an ``--out`` that cannot be written, a bad
``FASTGAN_BACKEND``: one line on stderr, found before anything is measured), 130 when interrupted
(the partial results are written). Without tqdm the progress is plain lines, without matplotlib
there are no plots, without scikit-learn ``--e2e`` leaves out the digits (each said once).

Modules: :mod:`~fastgan.bench.catalogue` (the cases), :mod:`~fastgan.bench.inputs`,
:mod:`~fastgan.bench.families` (the full losses through fastgan's loss objects),
:mod:`~fastgan.bench.idioms` (the baselines' operator tables), :mod:`~fastgan.bench.providers`,
:mod:`~fastgan.bench.checks` (all six re-exported by :mod:`~fastgan.bench.cases`);
:mod:`~fastgan.bench.timing` (interleaved timing, rotation), :mod:`~fastgan.bench.machine`,
:mod:`~fastgan.bench.load` (other processes' CPU use), :mod:`~fastgan.bench.devices` (devices,
timers), :mod:`~fastgan.bench.bandwidth` (copy bandwidth, ideal bytes);
:mod:`~fastgan.bench.runner` (the run), :mod:`~fastgan.bench.outputs` (its files and printed
table), :mod:`~fastgan.bench.report` (tables, files), :mod:`~fastgan.bench.plots` (PNG),
:mod:`~fastgan.bench.e2e` and :mod:`~fastgan.bench.dcgan` (whole training steps).
This module imports nothing heavy: the command line builds its parser from it cheaply.
"""

from __future__ import annotations

import argparse
import math
import os

from fastgan.cli import nonnegative_int

__all__ = ["add_arguments", "run"]

OPS = ("interpolate", "grad_norm_penalty", "reconstruction_error", "adversarial_loss")
FAMILIES = ("gan", "cgan", "wgan", "wgan-gp", "ebgan", "began", "lsgan", "hinge")
GROUPS = {"ops": OPS, "losses": FAMILIES, "all": OPS + FAMILIES}
SIZES = ("tiny", "small", "large", "target")


def _csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _ops(text: str) -> list[str]:
    out: list[str] = []
    for name in _csv_list(text):
        name = name.lower()
        if name in GROUPS:
            out += [n for n in GROUPS[name] if n not in out]
        elif name in OPS or name in FAMILIES:
            if name not in out:
                out.append(name)
        else:
            raise argparse.ArgumentTypeError(
                f"unknown operator or loss {name!r}; choose from {', '.join(OPS + FAMILIES)} "
                f"or the groups {', '.join(GROUPS)}"
            )
    if not out:
        raise argparse.ArgumentTypeError("expected at least one operator or loss")
    return out


def _sizes(text: str) -> list[str]:
    out = _csv_list(text)
    bad = [z for z in out if z not in SIZES]
    if bad or not out:
        raise argparse.ArgumentTypeError(f"sizes are among {', '.join(SIZES)}, got {text!r}")
    return out


def _names(text: str) -> list[str]:
    out = _csv_list(text)
    if not out:
        raise argparse.ArgumentTypeError("expected a comma-separated list of names")
    return out


def _nonneg(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (v >= 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return v


def _machine_name(text: str) -> str:
    name = text.strip()
    if not name or name in (".", "..") or "/" in name or (os.sep in name) or (os.altsep and os.altsep in name):
        raise argparse.ArgumentTypeError(f"expected a name for the result files (no path separator), got {text!r}")
    return name


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``fastgan bench``."""
    p.add_argument("--quick", action="store_true",
                   help="a few cases of every operator and loss at the small size, fewer samples, "
                   "no torch.compile of the full losses: the shortest run")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where to run: cpu (wall-clock timer) or cuda (CUDA-event timer; needs a GPU)")
    p.add_argument("--ops", type=_ops, default=list(OPS + FAMILIES), metavar="NAMES",
                   help="comma-separated operators and/or losses: "
                   f"{', '.join(OPS)}, {', '.join(FAMILIES)}, or the groups ops, losses, all (default all)")
    p.add_argument("--out", default="fastgan-bench", metavar="DIR",
                   help="output folder for JSON, CSV, markdown and PNG (default ./fastgan-bench)")
    p.add_argument("--e2e", action="store_true",
                   help="also time whole training steps (D step + G step) of every family on the toy MLP "
                   "and the small conv net of `fastgan train`, reference backend against the fused one")
    p.add_argument("--sizes", type=_sizes, default=None, metavar="SIZES",
                   help="comma-separated size classes among tiny (smoke test), small (64x3x64x64, "
                   "logits, PatchGAN maps), large (256x3x64x64), target (256x3x128x128); "
                   "default all but tiny, --quick: a selection of small cases")
    p.add_argument("--backends", type=_names, default=None, metavar="NAMES",
                   help="fastgan backends to check and time (default: every available one that runs on the device)")
    p.add_argument("--baselines", type=_names, default=None, metavar="NAMES",
                   help="baselines among eager_idiom, best_eager, compiled (default all three)")
    p.add_argument("--budget", type=_nonneg, default=None, metavar="S",
                   help="seconds of timed calls per provider and case (default 1, --quick 0.25)")
    p.add_argument("--name", type=_machine_name, default=None,
                   help="machine name in the file names (default: from the CPU or GPU model)")
    p.add_argument("--max-wait", type=_nonneg, default=None, metavar="S",
                   help="CPU only: wait before each case (up to 60 s, at most S seconds in all; default 300, "
                   "--quick 15, 0: never) for other processes to leave the CPUs idle")
    p.add_argument("--retries", type=nonnegative_int, default=None,
                   help="CPU only: measure a case again (default up to 2 times, --quick 1) when other "
                   "processes used more than 10%% of the CPUs meanwhile; the quietest attempt is kept")
    p.add_argument("--no-mmap", action="store_true",
                   help="CPU, glibc only: run with freed memory kept for reuse "
                   "(GLIBC_TUNABLES=glibc.malloc.mmap_max=0), so large outputs do not pay fresh page faults")
    p.add_argument("--no-plots", action="store_true", help="write no PNG plots")


def run(args: argparse.Namespace) -> int:
    """Run ``fastgan bench`` with parsed ``args``; returns the exit status."""
    from fastgan.bench import runner

    return runner.main(args)
