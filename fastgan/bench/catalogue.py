"""The catalogue of ``fastgan bench``: every case (an operator or a family × a size × its
parameters), the shapes and the fixed parameters of each, and :func:`select`, which picks the
cases of a run."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from fastgan.bench import FAMILIES, OPS, SIZES  # the names the command line accepts
from fastgan.testing import TOLERANCES
from fastgan.bench.bandwidth import ideal_bytes

KINDS = ("bce", "wgan", "lsgan", "hinge", "margin")
SCORE_FAMILIES = ("gan", "cgan", "wgan", "lsgan", "hinge")
# operator parameters held fixed in every case (the defaults of the public API)
CENTER, ONE_SIDED = 1.0, False
REAL_TARGET, FAKE_TARGET, MARGIN = 1.0, 0.0, 1.0
# family hyper-parameters: the defaults, except BEGAN's k0 (0 would hide the fake term)
GP_WEIGHT, EBGAN_MARGIN, PT_WEIGHT, BEGAN_K0, BEGAN_GAMMA, BEGAN_LAMBDA_K = 10.0, 1.0, 0.1, 0.5, 0.5, 0.001
N_CLASSES = 10

IMAGES = {"tiny": (4, 3, 8, 8), "small": (64, 3, 64, 64), "large": (256, 3, 64, 64), "target": (256, 3, 128, 128)}
LOGITS, PATCHGAN, TINY_SCORES = (64, 1), (64, 1, 30, 30), (4, 1, 5, 5)
SCORE_MAPS = {"tiny": TINY_SCORES, "small": PATCHGAN, "large": (256, 1, 30, 30)}

#: tolerance of the benchmark's check: largest |provider − reference| relative to the largest
#: |reference| of each tensor; the benchmark rows of fastgan.testing's one tolerance table
TOL_OP = TOLERANCES["benchmark_op"][torch.float32].atol_scaled
TOL_FAMILY = TOLERANCES["benchmark_fam"][torch.float32].atol_scaled


@dataclass(frozen=True)
class Case:
    """One benchmark case: an operator or a family, the shape of each big input, parameters.

    ``size`` is ``"tiny"`` (smoke tests), ``"small"``, ``"large"`` or ``"target"`` (the
    bandwidth-target size); ``quick`` marks the cases ``--quick`` runs.
    """

    op: str
    shape: tuple[int, ...]
    size: str
    params: tuple[tuple[str, Any], ...] = ()
    quick: bool = False

    @property
    def family(self) -> bool:
        """A family's full loss (else an operator)."""
        return self.op in FAMILIES

    @property
    def kw(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def shape_str(self) -> str:
        return "x".join(map(str, self.shape))

    @property
    def params_str(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.params)

    @property
    def id(self) -> str:
        return self.shape_str + "".join(f"-{k}{v}" if k == "p" else f"-{v}" for k, v in self.params)

    @property
    def label(self) -> str:
        return " ".join(filter(None, (self.op, self.shape_str, self.params_str)))

    @property
    def numel(self) -> int:
        """N of the ideal-bytes formula (bandwidth.ideal_bytes): elements of one input, or of both
        score tensors together for adversarial_loss."""
        n = math.prod(self.shape)
        return 2 * n if self.op == "adversarial_loss" else n

    def ideal_bytes(self, element_size: int = 4) -> int | None:
        """Ideal bytes of one forward + backward (operators only; ``None`` for a family)."""
        if self.family:
            return None
        return ideal_bytes(self.op, self.numel, element_size)


def all_cases() -> list[Case]:
    """Every case, in the order they run."""
    out: list[Case] = []
    for z, s in IMAGES.items():
        out.append(Case("interpolate", s, z, quick=z == "small"))
    for z, s in IMAGES.items():
        out.append(Case("grad_norm_penalty", s, z, quick=z == "small"))
    for z, s in IMAGES.items():
        for p in (1, 2):
            out.append(Case("reconstruction_error", s, z, (("p", p),), quick=z == "small"))
    out += [Case("adversarial_loss", TINY_SCORES, "tiny", (("kind", k),)) for k in KINDS]
    for s in (LOGITS, PATCHGAN):
        for k in KINDS:
            quick = s == PATCHGAN and k in ("bce", "lsgan")
            out.append(Case("adversarial_loss", s, "small", (("kind", k),), quick=quick))
    for fam in FAMILIES:
        table = SCORE_MAPS if fam in SCORE_FAMILIES else IMAGES
        for z, s in table.items():
            if z != "target":
                out.append(Case(fam, s, z, quick=z == "small"))
    return out


CASES = all_cases()
NAMES = OPS + FAMILIES


def select(names: list[str] | None = None, sizes: list[str] | None = None, quick: bool = False) -> list[Case]:
    """The cases of the operators / families ``names`` (default all) with a size in ``sizes``
    (default: all but ``tiny``); with ``quick`` and no ``sizes``, the quick cases only."""
    names = list(names or NAMES)
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise ValueError(f"unknown operator or family {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    bad = [z for z in sizes or () if z not in SIZES]
    if bad:
        raise ValueError(f"unknown size {', '.join(bad)}; choose from {', '.join(SIZES)}")
    order = {n: i for i, n in enumerate(names)}
    if sizes:
        chosen = [c for c in CASES if c.op in order and c.size in sizes]
    elif quick:
        chosen = [c for c in CASES if c.op in order and c.quick]
    else:
        chosen = [c for c in CASES if c.op in order and c.size != "tiny"]
    return sorted(chosen, key=lambda c: order[c.op])  # stable: keeps the sizes' order
