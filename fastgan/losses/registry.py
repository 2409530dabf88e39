"""The families by name: :func:`create` and :func:`available`. See :mod:`fastgan.losses`."""

from __future__ import annotations

import inspect
import re
from typing import Any

from fastgan.losses.autoencoders import BEGANLoss, EBGANLoss
from fastgan.losses.base import GANLossBase
from fastgan.losses.scores import CGANLoss, GANLoss, HingeLoss, LSGANLoss, WGANGPLoss, WGANLoss

__all__ = ["available", "create"]

_REGISTRY: dict[str, type[GANLossBase]] = {
    cls.name: cls
    for cls in (GANLoss, CGANLoss, WGANLoss, WGANGPLoss, EBGANLoss, BEGANLoss, LSGANLoss, HingeLoss)
}


def available() -> list[str]:
    """Names accepted by :func:`create`."""
    return sorted(_REGISTRY)


def _plain(name: str) -> str:
    """A family name without case and separators: ``"WGAN_GP"``, ``"wgan gp"`` → ``"wgangp"``."""
    return re.sub(r"[-_\s]", "", name.lower())


_PLAIN = {_plain(key): key for key in _REGISTRY}


def create(name: str, **hparams: Any) -> GANLossBase:
    """Build the loss object of family ``name`` (see :func:`available`) with its
    hyper-parameters, e.g. ``create("wgan-gp", gp_weight=10.0)``. The name is case-insensitive
    and its separators are free: ``"wgan_gp"``, ``"WGAN-GP"``, ``"wgan gp"`` and ``"wgangp"`` all
    name ``"wgan-gp"``. An unknown name is a ``ValueError`` listing the names, a
    hyper-parameter the family does not take a ``TypeError``."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    key = _PLAIN.get(_plain(name))
    if key is None:
        raise ValueError(f"unknown loss {name!r}; available: {', '.join(available())}")
    cls = _REGISTRY[key]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(hparams) - set(accepted))
    if unknown:
        raise TypeError(
            f"the {key} loss has no hyper-parameter {', '.join(map(repr, unknown))}; "
            f"it takes: {', '.join(accepted) or 'none'}"
        )
    return cls(**hparams)
