"""Run a loss (the user's or a recipe) on a probe and measure its numbers: the loss, the
gradients w.r.t. D's parameters and w.r.t. G's output (the fake batch), BEGAN's next k, and the
host syncs made on the way (docs/audit.md, "What is compared")."""

from __future__ import annotations

import contextlib
import copy
import random
from collections.abc import Callable

import torch

try:
    import numpy as np
except ImportError:  # NumPy is optional for fastgan: without it no script draws from it either
    np = None
from torch.overrides import TorchFunctionMode

__all__ = ["SYNC_METHODS", "Measured", "sandbox", "measure_loss", "close", "RTOL", "ATOL"]

RTOL = 1e-7  # float64 everywhere: relative to the largest magnitude of the quantity
ATOL = 1e-12
SYNC_METHODS = frozenset({"item", "__float__", "__int__", "__bool__", "tolist", "cpu", "numpy"})


class _SyncCounter(TorchFunctionMode):
    """Counts the tensor methods that read a value back to the host (``.item()``, ``float(t)``, …)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.numpy_rng_used = False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in SYNC_METHODS:
            self.calls.append(name)
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def sandbox(seed: int, count_syncs: bool = False):
    """Seed torch's, NumPy's and Python's RNGs with ``seed``, make float64 the default dtype and
    (``count_syncs``) count host syncs; everything is restored on exit. Yields the counter, whose
    ``numpy_rng_used`` tells afterwards whether NumPy's RNG was drawn from."""
    np_state = np.random.get_state() if np is not None else None
    py_state, dtype = random.getstate(), torch.get_default_dtype()
    with torch.random.fork_rng():  # torch.manual_seed seeds the CUDA generators too: fork them all
        torch.manual_seed(seed)
        random.seed(seed)
        if np is not None:
            np.random.seed(seed)
            seeded = np.random.get_state()
        torch.set_default_dtype(torch.float64)
        counter = _SyncCounter()
        try:
            with counter if count_syncs else contextlib.nullcontext():
                yield counter
            if np is not None:
                after = np.random.get_state()
                counter.numpy_rng_used = after[2] != seeded[2] or not np.array_equal(after[1], seeded[1])
        finally:
            torch.set_default_dtype(dtype)
            if np is not None:
                np.random.set_state(np_state)
            random.setstate(py_state)


Measured = dict  # quantity name -> float64 tensor (and "syncs" -> list of method names)


def _as_loss(name: str, value) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must return a tensor (the loss), got {type(value).__name__}")
    if value.numel() != 1 or not value.is_floating_point():
        raise TypeError(f"{name} must return a floating tensor with one element, got {value.dtype} of shape {tuple(value.shape)}")
    return value.reshape(())


def measure_loss(name: str, fn: Callable, probe, seed: int, *, pass_k: bool = False, with_real: bool = True) -> Measured:
    """Call ``fn(D, real, fake[, labels][, k])`` (``fn(D, fake[, labels])`` without ``with_real``)
    on a fresh copy of the probe and measure it."""
    D = copy.deepcopy(probe.D)
    real = probe.real.clone()
    fake = probe.fake.clone().requires_grad_(True)
    args = [D] + ([real] if with_real else []) + [fake] + ([probe.labels] if probe.labels is not None else []) + ([probe.k.clone()] if pass_k else [])
    with sandbox(seed) as syncs:
        loss = _as_loss(name, fn(*args))
    params = [p for p in D.parameters() if p.requires_grad]
    inputs = params + [fake]
    grads = [None] * len(inputs)
    if loss.requires_grad:
        grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    flat = [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads)]
    out = {"loss": loss.detach().to(torch.float64).reshape(1)}
    if params:
        out["grad wrt D's parameters"] = torch.cat([g.detach().reshape(-1) for g in flat[: len(params)]])
    g_fake = flat[-1].detach().clone()
    for row in probe.extra.get("finite_only_rows", ()):  # compared for being finite only
        g_fake[row] = torch.where(torch.isfinite(g_fake[row]), torch.zeros_like(g_fake[row]), g_fake[row])
    out["grad wrt G's output"] = g_fake.reshape(-1)
    out["syncs"] = syncs.calls
    out["numpy rng"] = syncs.numpy_rng_used
    return out


def close(u: torch.Tensor, c: torch.Tensor) -> bool:
    """``u`` equals ``c`` to the audit's tolerance: the same non-finite entries, and finite ones
    within RTOL of the quantity's largest magnitude (plus ATOL)."""
    if u.numel() != c.numel():
        return False
    u, c = u.reshape(-1).to(torch.float64), c.reshape(-1).to(torch.float64)
    fu, fc = torch.isfinite(u), torch.isfinite(c)
    if not torch.equal(fu, fc):
        return False
    nf = ~fu
    if nf.any() and not (torch.equal(torch.isnan(u[nf]), torch.isnan(c[nf]))
                         and torch.equal(torch.nan_to_num(u[nf]), torch.nan_to_num(c[nf]))):
        return False
    if not fu.any():
        return True
    scale = torch.maximum(u[fu].abs().max(), c[fu].abs().max())
    return bool((u[fu] - c[fu]).abs().max() <= RTOL * scale + ATOL)
