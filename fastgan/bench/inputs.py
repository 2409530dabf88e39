"""The inputs of a benchmark case: random fp32 tensors requiring grad, deterministic in a
seed, and several independent sets where one fits in cache (so each timed call reads fresh
data)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from fastgan.bench import timing
from fastgan.bench.catalogue import N_CLASSES, SCORE_FAMILIES, Case

@dataclass
class Inputs:
    """The differentiable inputs of one call and the incoming gradient of its output (``None``
    for a 0-dim output: ``torch.autograd.grad`` then uses 1)."""

    tensors: tuple[torch.Tensor, ...]
    grad_out: torch.Tensor | None

    @property
    def nbytes(self) -> int:
        extra = self.grad_out.nbytes if self.grad_out is not None else 0
        return sum(t.nbytes for t in self.tensors) + extra


def make_inputs(case: Case, seed: int = 0, device: str = "cpu") -> Inputs:
    """Random fp32 inputs of ``case`` (all requiring grad) on ``device``, deterministic in
    ``seed`` (drawn on the CPU, then moved)."""
    g = torch.Generator().manual_seed(seed)
    shape, B = case.shape, case.shape[0]

    def rnd(*s, scale=1.0, shift=0.0, uniform=False):
        t = torch.rand(*s, generator=g) if uniform else torch.randn(*s, generator=g)
        return (t * scale + shift).to(device).requires_grad_()

    def const(*s):
        return torch.randn(*s, generator=g).to(device)

    op = case.op
    if op == "interpolate":
        return Inputs((rnd(*shape), rnd(*shape), rnd(B, uniform=True)), const(*shape))
    if op == "grad_norm_penalty":
        # per-sample norms around 1.5, as critic gradients near the WGAN-GP target
        return Inputs((rnd(*shape, scale=1.5 / math.sqrt(math.prod(shape[1:]))),), None)
    if op == "reconstruction_error":
        return Inputs((rnd(*shape), rnd(*shape)), const(B))
    if op == "adversarial_loss" or op in SCORE_FAMILIES:
        return Inputs((rnd(*shape, scale=2.0), rnd(*shape, scale=2.0)), None)
    if op == "wgan-gp":  # critic weights: input-gradient norms around 1.5
        w = rnd(*shape[1:], scale=1.5 / math.sqrt(math.prod(shape[1:])))
        return Inputs((rnd(*shape), rnd(*shape), w), None)
    if op in ("ebgan", "began"):  # autoencoder weights around 1: energies around 0.3
        w = rnd(*shape[1:], scale=0.5, shift=0.75, uniform=True)
        return Inputs((rnd(*shape), rnd(*shape), w), None)
    raise ValueError(f"unknown case operator {op!r}")


def input_sets(case: Case, device: timing.Device | None = None, seed: int = 0) -> list[Inputs]:
    """One input set, or several to cycle when one fits in cache (timing.rotation_sets)."""
    device = device or timing.get_device("cpu")
    first = make_inputs(case, seed, device.type)
    n = timing.rotation_sets(first.nbytes, device.rotate_bytes)
    return [first] + [make_inputs(case, seed + i, device.type) for i in range(1, n)]


def labels(case: Case, device: str) -> torch.Tensor:
    return (torch.arange(case.shape[0]) % N_CLASSES).to(device)
