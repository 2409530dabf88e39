"""The audit's argument checks and each family's hyper-parameters (docs/audit.md)."""

from __future__ import annotations

import copy
import math
import numbers

import torch
from torch import nn

from fastgan.testing.audit.catalogue import FAMILIES

__all__ = ["HPARAMS", "check_family", "check_callables", "check_hparams", "check_data"]

# family -> {name: default}; the defaults are the papers' (docs/design.md §1)
HPARAMS = {
    "gan": {"saturating": False},
    "cgan": {"saturating": False},
    "wgan": {"clip_value": 0.01},
    "wgan-gp": {"gp_weight": 10.0, "one_sided": False},
    "ebgan": {"margin": 1.0, "pt_weight": 0.1},
    "began": {"gamma": 0.5, "lambda_k": 0.001},
    "lsgan": {"a": 0.0, "b": 1.0, "c": 1.0},
}
_BOOLS = {"saturating", "one_sided"}
_SIGNED = {"a", "b", "c"}


def check_family(family: object) -> str:
    """The canonical family name (case and ``_``/``-`` free)."""
    if not isinstance(family, str):
        raise TypeError(f"family must be a string, one of {', '.join(FAMILIES)}; got {type(family).__name__}")
    name = family.strip().lower().replace("_", "-")
    if name not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}; got {family!r}")
    return name


def check_callables(family: str, **fns) -> list[str]:
    """Check the user's callables; return the parts to audit."""
    for name, fn in fns.items():
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be callable or None, got {type(fn).__name__}")
    if fns["k_update"] is not None and family != "began":
        raise ValueError(f"k_update is BEGAN's k update; family {family!r} has none")
    if fns["clip"] is not None and family != "wgan":
        raise ValueError(f"clip is WGAN's weight clip; family {family!r} has none")
    parts = [p for p, name in (("d", "d_loss"), ("g", "g_loss"), ("k", "k_update"), ("clip", "clip")) if fns[name] is not None]
    if not parts:
        raise ValueError("give at least one of d_loss, g_loss, k_update (began) or clip (wgan) to audit")
    return parts


def check_hparams(family: str, given: dict) -> dict:
    """The family's hyper-parameters: the defaults overridden by ``given``, checked."""
    hp = dict(HPARAMS[family])
    for name, value in given.items():
        if name not in hp:
            raise TypeError(f"audit got an unexpected hyper-parameter {name!r} for family {family!r} "
                            f"(accepted: {', '.join(hp) or 'none'})")
        if name in _BOOLS:
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
        else:
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
            value = float(value)
            if not math.isfinite(value) or (name not in _SIGNED and value < 0):
                raise ValueError(f"{name} must be a finite number{'' if name in _SIGNED else ' >= 0'}, got {value}")
            if name == "clip_value" and value == 0:
                raise ValueError("clip_value must be > 0, got 0")
        hp[name] = value
    return hp


def _tensor(name: str, t: object) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got {t.dtype}")
    return t.detach().to(torch.float64)


def check_data(family: str, D, real, fake, labels, k):
    """Check the user's own discriminator and batches; return them copied to float64 (or None)."""
    given = {"D": D, "real": real, "fake": fake}
    if all(v is None for v in given.values()):
        if labels is not None or k is not None:
            raise ValueError("labels and k go with your own D, real and fake; give those too")
        return None
    missing = [n for n, v in given.items() if v is None]
    if missing:
        raise ValueError(f"give D, real and fake together (missing: {', '.join(missing)})")
    if not isinstance(D, nn.Module):
        raise TypeError(f"D must be a torch.nn.Module, got {type(D).__name__}")
    real, fake = _tensor("real", real), _tensor("fake", fake)
    if real.shape != fake.shape:
        raise ValueError(f"real has shape {tuple(real.shape)} but fake has shape {tuple(fake.shape)}; expected the same")
    if family == "cgan" and labels is None:
        raise ValueError("family 'cgan' needs labels with your own D")
    if labels is not None and family != "cgan":
        raise ValueError(f"labels go with family 'cgan' (a conditional D); family {family!r} has none")
    if labels is not None and not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels must be a tensor, got {type(labels).__name__}")
    if family == "began":
        if isinstance(k, bool) or not isinstance(k, (numbers.Real, type(None))):
            raise TypeError(f"k must be a number in [0, 1], got {type(k).__name__}")
        k = 0.0 if k is None else float(k)
        if not 0.0 <= k <= 1.0:
            raise ValueError(f"k must be in [0, 1], got {k}")
        k = torch.tensor(k, dtype=torch.float64)
    elif k is not None:
        raise ValueError(f"k is BEGAN's; family {family!r} has none")
    return copy.deepcopy(D).to(torch.float64), real, fake, labels, k
